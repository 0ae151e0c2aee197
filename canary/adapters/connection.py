"""How the controller reaches a host outside a playbook: a shell command over SSH with the
settings Ansible uses for that host.

Playbooks go through Ansible (`canary.adapters.ansible`). The few remote actions that
must be faster than a playbook run (reading the LB's log at every analysis, a traffic
change in well under two seconds) go through this connector, which is built from the
same inventory values and ansible.cfg: address, port, user, private key (the host's
`ansible_ssh_private_key_file`, or `ANSIBLE_PRIVATE_KEY_FILE` as CI hands it to Ansible),
ansible.cfg's `ssh_args`, and the host's `ansible_ssh_common_args` and
`ansible_ssh_extra_args`. One master connection per host is kept open for a minute
(ControlPersist), shared by every command and process, so a command costs a round trip.
"""

from __future__ import annotations

import configparser
import hashlib
import os
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


def _ansible_ssh_args() -> list[str]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(os.environ.get("ANSIBLE_CONFIG") or ANSIBLE_CFG)
    return shlex.split(config.get("ssh_connection", "ssh_args", fallback=""))


def _control_dir() -> Path:
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"voxfleet-ssh-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    return base


@dataclass(frozen=True)
class HostConnection:
    host: str  # the inventory name, for messages
    argv: tuple[str, ...]  # ssh and its options, up to the destination

    @classmethod
    def from_inventory(cls, fleet: Fleet, host: str) -> HostConnection:
        hv = fleet.hostvars.get(host, {})
        inventory_dir = str(fleet.source if fleet.source.is_dir() else fleet.source.parent)
        key = str(hv.get("ansible_ssh_private_key_file") or hv.get("ansible_private_key_file")
                  or os.environ.get("ANSIBLE_PRIVATE_KEY_FILE", "")).replace("{{ inventory_dir }}", inventory_dir)
        address = str(hv.get("ansible_host", host))
        port = str(hv.get("ansible_port", hv.get("ansible_ssh_port", 22)))
        user = str(hv.get("ansible_user") or hv.get("ansible_ssh_user") or os.environ.get("ANSIBLE_REMOTE_USER")
                   or "root")
        control = _control_dir() / hashlib.sha256(f"{user}@{address}:{port}".encode()).hexdigest()[:16]
        argv = ["ssh", "-o", f"ControlPath={control}", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                *_ansible_ssh_args(), *shlex.split(str(hv.get("ansible_ssh_common_args", ""))),
                *shlex.split(str(hv.get("ansible_ssh_extra_args", ""))), "-p", port]
        if key:
            argv += ["-i", key]
        return cls(host, (*argv, f"{user}@{address}"))

    def run(self, command: str, stdin: bytes = b"", timeout_s: float = 60.0) -> bytes:
        """`command` in the host's shell; its standard output, or RemoteCommandError with its
        standard error and the host's name."""
        try:
            result = subprocess.run([*self.argv, command], input=stdin, capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise RemoteCommandError(f"{self.host}: no answer within {timeout_s:.0f} s") from exc
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip() or f"exit {result.returncode}"
            raise RemoteCommandError(f"{self.host}: {detail}")
        return result.stdout
