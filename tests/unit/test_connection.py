"""The connector's ssh command is built from the inventory and Ansible's settings (no
spawning here; tests/integration/test_host_keys.py connects for real)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from canary.adapters.connection import HostConnection, host_key_refusal
from tests.unit.fakes import make_fleet

LB_VARS = {"ansible_host": "10.0.0.5", "ansible_port": 2222, "ansible_user": "deploy",
           "ansible_ssh_common_args": "-o UserKnownHostsFile={{ inventory_dir }}/known_hosts"}


def options(argv: tuple[str, ...]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]


@pytest.fixture
def connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ANSIBLE_SSH_ARGS", raising=False)
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    fleet = replace(make_fleet(tmp_path), source=tmp_path / "inv" / "hosts.yml", hostvars={"lb1": dict(LB_VARS)})

    def build(**env: str) -> HostConnection:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return HostConnection.from_inventory(fleet, "lb1")
    return build


def test_the_inventory_names_the_known_hosts_file_and_ansible_cfg_checks_host_keys(connection, tmp_path):
    argv = connection().argv
    assert argv[-1] == "deploy@10.0.0.5" and argv[argv.index("-p") + 1] == "2222"
    opts = options(argv)
    assert f"UserKnownHostsFile={tmp_path}/inv/known_hosts" in opts
    assert "StrictHostKeyChecking=yes" in opts  # from ansible.cfg's ssh_args
    assert not any(o.startswith("StrictHostKeyChecking=no") or o == "UserKnownHostsFile=/dev/null" for o in opts)


def test_the_key_and_ssh_args_ci_hands_ansible_are_the_connectors_too(connection):
    argv = connection(ANSIBLE_PRIVATE_KEY_FILE="/run/ci/key",
                      ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=/run/ci/known -o StrictHostKeyChecking=yes").argv
    assert argv[argv.index("-i") + 1] == "/run/ci/key"
    opts = options(argv)
    # ssh takes an option's first value: CI's file comes before the inventory's
    assert opts.index("UserKnownHostsFile=/run/ci/known") < next(
        i for i, o in enumerate(opts) if o.startswith("UserKnownHostsFile=") and o.endswith("/inv/known_hosts"))


def test_a_host_key_refusal_names_the_host_and_what_to_do():
    changed = ("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
               "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
               "Host key verification failed.")
    message = host_key_refusal("node2", changed, "127.0.0.1:22202")
    assert message is not None and message.startswith("node2 (127.0.0.1:22202): its SSH host key has changed")
    assert "known_hosts" in message
    unknown = host_key_refusal("lb1", "No ED25519 host key is known for [127.0.0.1]:22200 and you have "
                                      "requested strict checking.\nHost key verification failed.")
    assert unknown is not None and "lb1: its SSH host key is not in known_hosts" in unknown
    assert host_key_refusal("lb1", "ssh: connect to host 10.0.0.5 port 22: Connection refused") is None
