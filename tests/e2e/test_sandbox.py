"""`rollout sandbox up/down/status` on a second, small sandbox (its own names and ports)."""

from __future__ import annotations

import subprocess

import pytest

from canary.adapters.inventory import load_fleet
from canary.devtools import sandbox
from tests.sandbox_fleet import REPO, docker_works

pytestmark = pytest.mark.sandbox
SPEC = sandbox.SandboxSpec(hosts=2, prefix="vftest", registry_port=15900, http_port=18900, ssh_base_port=22900,
                           prometheus_port=19900, controller_metrics_port=19901)
CONTAINERS = ("vftest-registry", "vftest-lb1", "vftest-lb2", "vftest-node1", "vftest-node2", "vftest-prometheus")


def docker_names(kind: str) -> set[str]:
    args = {"container": ["ps", "-a", "--format", "{{.Names}}"], "volume": ["volume", "ls", "-q"],
            "network": ["network", "ls", "--format", "{{.Name}}"]}[kind]
    return set(subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.split())


def test_up_is_idempotent_and_down_removes_exactly_what_up_created(tmp_path):
    if not docker_works():
        pytest.fail("no Docker engine (deselect with -m 'not sandbox')")
    inventory = tmp_path / "sandbox"
    before = {kind: docker_names(kind) for kind in ("container", "volume", "network")}
    try:
        first = sandbox.up(SPEC, inventory, REPO)
        assert {first[n] for n in (*CONTAINERS, "inventory")} == {"created", "written"}
        fleet = load_fleet(inventory)
        assert [n.name for n in fleet.nodes] == ["node1", "node2"] and fleet.lbs == ("lb1", "lb2")
        assert fleet.registry == "vftest-registry:5000"
        assert fleet.lb_public_urls == ("http://127.0.0.1:18900", "http://127.0.0.1:18901")
        # every SSH container's own host key, by its published port; no two alike
        known = (inventory / ".sandbox" / "known_hosts").read_text().splitlines()
        keys = {line.split()[0]: line.split()[2] for line in known if " ssh-ed25519 " in line}
        assert set(keys) == {"[127.0.0.1]:22900", "[127.0.0.1]:22952", "[127.0.0.1]:22901", "[127.0.0.1]:22902"}
        assert len(set(keys.values())) == 4

        second = sandbox.up(SPEC, inventory, REPO)
        assert set(second.values()) == {"unchanged"}

        rows = {row["name"]: row for row in sandbox.status(SPEC)}
        assert rows["vftest-node1"]["state"] == "running" and rows["vftest-node1"]["runs"] == "nothing"
        assert rows["vftest-lb2"]["role"] == "lb" and rows["vftest-lb2"]["runs"] == "nginx on http://127.0.0.1:18901"
        assert rows["vftest-prometheus"]["runs"] == "Prometheus on http://127.0.0.1:19900"
        assert fleet.policy.prometheus_url == "http://127.0.0.1:19900"
        # it scrapes this sandbox's nodes by the names the LBs use
        config = (inventory / ".sandbox" / "prometheus" / "prometheus.yml").read_text()
        assert "vftest-node1:6006" in config and "vftest-node2:6006" in config
    finally:
        removed = sandbox.down(inventory, prefix="vftest")
    after = {kind: docker_names(kind) for kind in ("container", "volume", "network")}
    assert after == before  # the shared sandbox and everything else untouched
    assert set(CONTAINERS) <= set(removed)
    assert not (inventory / "hosts.yml").exists() and not (inventory / ".sandbox").exists()
