"""`rollout plan` on the example production inventory: every stage with each host's share
of the load next to its share of the capacity, as text and as data; refusals by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventory" / "production"
pytestmark = pytest.mark.integration


def plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("rollout")), "plan", *args, "-i", str(INVENTORY)],
                          cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=120)


def test_the_plan_shows_each_hosts_load_next_to_its_capacity_and_stays_within_headroom():
    data = json.loads(plan("v1.3.0", "--json").stdout)
    assert data["canary_hosts"] == ["gpu-a1"] and data["canary_headroom"] == 1.0
    names = [s["stage"] for s in data["stages"]]
    assert names[0] == "canary deploy: gpu-a1 out" and "step 1 (10%)" in names and "step 2 (50%)" in names
    assert names[-1] == "every host on the new version"
    for stage in data["stages"]:
        assert max(h["ratio"] for h in stage["hosts"]) <= 2.0 + 1e-9, stage
        assert sum(h["load_share"] for h in stage["hosts"]) == pytest.approx(1.0)
    final = {h["host"]: (h["load_share"], h["capacity_share"]) for h in data["stages"][-1]["hosts"]}
    assert final == {"gpu-a1": (0.25, 0.25), "gpu-a2": (0.25, 0.25), "gpu-b1": (0.5, 0.5)}  # 2 GPUs: twice the load
    text = plan("v1.3.0").stdout
    assert "step 1 (10%)" in text and "10.0% of load" in text and "of capacity" in text


@pytest.mark.parametrize(("args", "message"), [
    (["v1.3.0", "--set", "canary_headroom=0.5"],
     "promotion batch 1: no host can be taken out of traffic to switch it: with gpu-b1 out of traffic"),
    (["v1.3.0", "--set", "steps=[90,100]"], "step 1 (90%) on canary_hosts gpu-a1: gpu-a1 would carry 3.60×"),
    (["not-a-version"], "version 'not-a-version' is not a semantic version tag"),
])
def test_a_plan_the_fleet_cannot_honour_is_refused_by_name(args, message):
    result = plan(*args)
    assert result.returncode == 1 and message in result.stderr, result.stdout + result.stderr


def test_a_reader_that_stops_early_gets_no_traceback():
    rollout = str(Path(sys.executable).with_name("rollout"))
    # `true` has gone long before the plan is printed: every write meets a closed pipe
    piped = subprocess.run(["bash", "-o", "pipefail", "-c", f"{rollout} plan v1.3.0 -i {INVENTORY} | true"],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and "Traceback" not in piped.stderr, piped.stderr
