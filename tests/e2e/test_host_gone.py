"""A canary host that is gone mid-step (its container stopped, so its name no longer
resolves on the sandbox network), under load at 60% of capacity through both LBs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from canary.devtools.loadgen import LoadGenerator
from tests.browser import ARTIFACTS, render
from tests.e2e.helpers import DEMO_POLICY, LOAD_RPS, at_step, events, show, status_json, versions, wait_for
from tests.sandbox_fleet import REPO, start_node, stop_node

pytestmark = pytest.mark.sandbox


def test_a_canary_host_that_is_gone_is_drained_and_the_others_rolled_back(stable_fleet, state_dir):
    load = LoadGenerator(stable_fleet.lb_public_urls, rps=LOAD_RPS).start(duration_s=900)
    rollout = subprocess.Popen(  # in the foreground, as an operator runs it
        [str(Path(sys.executable).with_name("rollout")), "start", "v1.3.0", *DEMO_POLICY, "--set", "dwell_s=900",
         "--set", "step_max_s=1200"],
        cwd=REPO, env={**os.environ, **state_dir}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    canary = ""
    try:
        view = wait_for(state_dir, lambda v: at_step(10)(v) or rollout.poll() is not None, timeout_s=400,
                        what="the canary at 10%")
        assert rollout.poll() is None, rollout.communicate()[0][-4000:]
        (canary,) = view["canary_hosts"]
        stop_node(stable_fleet.hostvars[canary]["sandbox_container"])
        output, _ = rollout.communicate(timeout=300)
    finally:
        rollout.kill()
        traffic = load.stop()
        if canary:
            start_node(stable_fleet.hostvars[canary]["sandbox_container"],
                       int(stable_fleet.hostvars[canary]["ansible_port"]))
    assert rollout.returncode == 3, output[-4000:]  # rolled back
    story = show(state_dir)
    assert story["result"] == "rolled_back", story["reason"]
    assert f"{canary} could not be reached to restore v1.2.0: kept out of traffic" in story["reason"]
    entered, drained = events(story, "enter ROLLING_BACK")[0], events(story, "traffic off new version")[0]
    print(f"fail verdict to 0% on {canary} through both LBs: {drained['at'] - entered['at']:.2f} s; "
          f"{traffic.summary()}")
    assert drained["at"] - entered["at"] <= 2.0
    lb = {s["address"]: s["state"] for s in status_json(state_dir)["lb_servers"]}
    assert lb[stable_fleet.hostvars[canary]["tts_upstream_address"]] == "down"
    assert not traffic.failed, traffic.summary()
    others = {h: v for h, v in versions(stable_fleet).items() if h != canary}
    assert set(others.values()) == {"v1.2.0"}, others

    # the story as a page people look at, rendered by a real browser
    page = Path(state_dir["VOXFLEET_STATE_DIR"]) / "report.html"
    run([str(Path(sys.executable).with_name("rollout")), "show", story["id"], "--html", str(page)], env=state_dir)
    dom = render(page, ARTIFACTS / "rollout-report-host-gone.png")
    assert dom.count('class="panel"') == 4 and 'data-series="traffic to v1.3.0"' in dom
    assert 'data-series="errors v1.3.0"' in dom and 'data-series="errors v1.2.0"' in dom
    assert dom.count('<tr class="verdict ') == len(events(story, "verdict")) and '<tr class="verdict fail">' in dom
    assert f"{canary} could not be reached" in dom


def run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
