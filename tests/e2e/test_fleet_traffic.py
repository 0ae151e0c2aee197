"""Part 2 end to end: versions on real hosts over SSH, weights through the real nginx."""

from __future__ import annotations

import pytest

from canary.adapters import fleet as fleet_ops
from canary.devtools.loadgen import LoadGenerator

pytestmark = pytest.mark.sandbox


def test_ten_percent_of_a_thousand_requests_reach_the_canary(stable_fleet):
    fleet = stable_fleet
    fleet_ops.deploy(fleet, "v1.3.0", ["node1"])
    states = fleet_ops.facts(fleet, strict=True)
    assert {h: s.version for h, s in states.items()} == {"node1": "v1.3.0", "node2": "v1.2.0", "node3": "v1.2.0"}
    fleet_ops.set_traffic(fleet, canary={"node1": "v1.3.0"}, stable={"node2": "v1.2.0", "node3": "v1.2.0"},
                          canary_percent=10)
    result = LoadGenerator(fleet.lb_public_url, rps=8).run(duration_s=300, max_requests=1000)
    assert len(result.outcomes) == 1000 and not result.failed, result.summary()
    share = result.by_version()["v1.3.0"] / len(result.outcomes)
    assert 0.08 <= share <= 0.12, result.summary()

    fleet_ops.set_traffic(fleet, canary={"node1": "v1.3.0"}, stable={"node2": "v1.2.0", "node3": "v1.2.0"},
                          canary_percent=0)
    after = LoadGenerator(fleet.lb_public_url, rps=8).run(duration_s=120, max_requests=200)
    assert len(after.outcomes) == 200 and not after.failed, after.summary()
    assert after.by_version()["v1.3.0"] == 0


def test_node_reports_agree_with_each_nodes_version_endpoint(stable_fleet):
    import json
    import subprocess

    states = fleet_ops.facts(stable_fleet, strict=True)
    for node in stable_fleet.nodes:
        container = stable_fleet.hostvars[node.name]["sandbox_container"]
        raw = subprocess.run(["docker", "exec", container, "curl", "-sf", "http://127.0.0.1:6006/version"],
                             capture_output=True, text=True, check=True).stdout
        version = json.loads(raw)
        state = states[node.name]
        assert state.version == version["model_version"] == "v1.2.0"
        assert state.model_sha256 == version["model_sha256"]
        assert state.health == "healthy" and state.image_digest
