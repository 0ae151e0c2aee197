"""Host keys are checked on every path to a host: a node whose key is not the one in the
inventory's known_hosts is refused, by name, by the playbooks and by the connector."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from canary.adapters.connection import HostConnection, RemoteCommandError
from canary.adapters.inventory import load_fleet
from canary.decisions.inventory import Fleet
from tests.sandbox_fleet import INVENTORY, rollout

pytestmark = pytest.mark.sandbox


@pytest.fixture
def node2_key_changed(sandbox: Fleet, tmp_path: Path) -> Path:
    """A copy of the sandbox inventory whose known_hosts holds another key for node2, as
    if node2 had been replaced by a host we do not know."""
    inventory = tmp_path / "inventory"
    shutil.copytree(INVENTORY, inventory)
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    port = sandbox.hostvars["node2"]["ansible_port"]
    known = inventory / ".sandbox" / "known_hosts"
    lines = [line for line in known.read_text().splitlines() if not line.startswith(f"[127.0.0.1]:{port} ")]
    kind, blob = other.with_suffix(".pub").read_text().split()[:2]
    known.write_text("\n".join([*lines, f"[127.0.0.1]:{port} {kind} {blob}"]) + "\n")
    return inventory


def test_the_connector_refuses_a_changed_host_key_and_names_the_host(node2_key_changed: Path):
    fleet = load_fleet(node2_key_changed)
    assert HostConnection.from_inventory(fleet, "node1").run("echo ok").strip() == b"ok"
    with pytest.raises(RemoteCommandError, match=r"^node2 \(127\.0\.0\.1:\d+\): its SSH host key has changed"):
        HostConnection.from_inventory(fleet, "node2").run("echo ok")


def test_a_rollout_refuses_a_fleet_with_a_changed_host_key_and_changes_nothing(node2_key_changed: Path,
                                                                               tmp_path: Path):
    before = rollout("fleet", "-i", str(INVENTORY)).stdout
    started = rollout("start", "v1.3.0", "-i", str(node2_key_changed), check=False,
                      env={"VOXFLEET_STATE_DIR": str(tmp_path / "state")})
    out = started.stdout + started.stderr
    assert started.returncode != 0 and "PREFLIGHT_FAILED" in out
    assert "node2: its SSH host key has changed; refusing to connect" in out
    assert rollout("fleet", "-i", str(INVENTORY)).stdout == before
