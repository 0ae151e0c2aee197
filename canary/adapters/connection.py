"""How the controller reaches a host outside a playbook: a shell command over SSH with the
settings Ansible uses for that host.

Playbooks go through Ansible (`canary.adapters.ansible`). The few remote actions that
must be faster than a playbook run (reading the LB's log at every analysis, a traffic
change in well under two seconds) go through this connector, which is built from the
same inventory values and ansible.cfg: address, port, user, private key (the host's
`ansible_ssh_private_key_file`, or `ANSIBLE_PRIVATE_KEY_FILE` as CI hands it to Ansible),
`ssh_args` (`ANSIBLE_SSH_ARGS`, else ansible.cfg's), and the host's
`ansible_ssh_common_args` and `ansible_ssh_extra_args` (where the inventory names its
known_hosts file). Host keys are checked as Ansible checks them: a changed or unknown
key refuses the connection with a message naming the host. One master connection per
host is kept open for a minute (ControlPersist), shared by every command and process, so
a command costs a round trip.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from canary import REPO_ROOT
from canary.decisions.inventory import Fleet

ANSIBLE_CFG = REPO_ROOT / "ansible.cfg"


class RemoteCommandError(OSError):
    """A command on a host failed or the host could not be reached; names the host."""


# What ssh says when a host's key is not the one known_hosts has for it (or none is listed).
_HOST_KEY_REFUSED = re.compile(r"REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed"
                               r"|No \S+ host key is known")


def host_key_refusal(host: str, ssh_error: str, address: str = "") -> str | None:
    """The message for an SSH failure that is a host-key refusal, naming the host; None
    for any other failure."""
    if not _HOST_KEY_REFUSED.search(ssh_error):
        return None
    changed = "CHANGED" in ssh_error
    return (f"{host}{f' ({address})' if address else ''}: its SSH host key {'has changed' if changed else 'is not in known_hosts'}; "
            "refusing to connect. If the host was really reinstalled, put its new key in the known_hosts "
            "file the inventory names (ansible_ssh_common_args UserKnownHostsFile)")


def _ansible_ssh_args() -> list[str]:
    """ssh_args as Ansible takes them: ANSIBLE_SSH_ARGS, else ansible.cfg's."""
    if "ANSIBLE_SSH_ARGS" in os.environ:
        return shlex.split(os.environ["ANSIBLE_SSH_ARGS"])
    config = configparser.ConfigParser(interpolation=None)
    config.read(os.environ.get("ANSIBLE_CONFIG") or ANSIBLE_CFG)
    return shlex.split(config.get("ssh_connection", "ssh_args", fallback=""))


def _with_inventory_dir(value: object, inventory_dir: str) -> str:
    """An inventory value with `{{ inventory_dir }}` filled in (the one variable these
    connection settings use; any other template is refused by name upstream)."""
    return re.sub(r"\{\{\s*inventory_dir\s*\}\}", inventory_dir, str(value))


def control_dir(inventory: Path) -> Path:
    """Where the master connections to an inventory's hosts live, shared by the playbooks
    (ANSIBLE_SSH_CONTROL_PATH_DIR) and this connector. One folder per inventory: a
    connection made under one known_hosts file is never reused under another."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"voxfleet-ssh-{os.getuid()}"
    return base / hashlib.sha256(str(inventory.resolve()).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class HostConnection:
    host: str  # the inventory name, for messages
    argv: tuple[str, ...]  # ssh and its options, up to the destination
    address: str = ""  # address:port, for messages

    @classmethod
    def from_inventory(cls, fleet: Fleet, host: str) -> HostConnection:
        hv = fleet.hostvars.get(host, {})
        inventory_dir = str(fleet.source if fleet.source.is_dir() else fleet.source.parent)
        key = _with_inventory_dir(hv.get("ansible_ssh_private_key_file") or hv.get("ansible_private_key_file")
                                  or os.environ.get("ANSIBLE_PRIVATE_KEY_FILE", ""), inventory_dir)
        address = str(hv.get("ansible_host", host))
        port = str(hv.get("ansible_port", hv.get("ansible_ssh_port", 22)))
        user = str(hv.get("ansible_user") or hv.get("ansible_ssh_user") or os.environ.get("ANSIBLE_REMOTE_USER")
                   or "root")
        control = control_dir(fleet.source)
        control.mkdir(mode=0o700, parents=True, exist_ok=True)
        # %C as in ansible.cfg's control_path: the same master as the playbooks' for this host
        argv = ["ssh", "-o", f"ControlPath={control}/%C", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                *_ansible_ssh_args(),
                *shlex.split(_with_inventory_dir(hv.get("ansible_ssh_common_args", ""), inventory_dir)),
                *shlex.split(_with_inventory_dir(hv.get("ansible_ssh_extra_args", ""), inventory_dir)), "-p", port]
        if key:
            argv += ["-i", key]
        return cls(host, (*argv, f"{user}@{address}"), f"{address}:{port}")

    def run(self, command: str, stdin: bytes = b"", timeout_s: float = 60.0) -> bytes:
        """`command` in the host's shell; its standard output, or RemoteCommandError with its
        standard error and the host's name."""
        try:
            result = subprocess.run([*self.argv, command], input=stdin, capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise RemoteCommandError(f"{self.host}: no answer within {timeout_s:.0f} s") from exc
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip() or f"exit {result.returncode}"
            if result.returncode == 255:  # ssh's own failure, not the command's
                refusal = host_key_refusal(self.host, detail, self.address)
                if refusal:
                    raise RemoteCommandError(refusal)
            raise RemoteCommandError(f"{self.host}: {detail}")
        return result.stdout
