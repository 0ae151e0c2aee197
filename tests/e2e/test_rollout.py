"""Part 3 end to end: `rollout start` on the sandbox under steady load through the LB."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from canary.devtools.loadgen import LoadGenerator
from tests.e2e.helpers import DEMO_POLICY, LOAD_RPS, at_step, start, status_json, versions, wait_for
from tests.sandbox_fleet import REPO, publish_variant, rollout

pytestmark = pytest.mark.sandbox


def test_a_healthy_version_reaches_every_host_with_zero_failed_requests(stable_fleet, state_dir):
    load = LoadGenerator(stable_fleet.lb_public_url, rps=LOAD_RPS).start(duration_s=900)
    try:
        result = start("v1.3.0", state_dir)
    finally:
        traffic = load.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(versions(stable_fleet).values()) == {"v1.3.0"}
    assert not traffic.failed, traffic.summary()
    assert traffic.by_version()["v1.3.0"] > 0 and traffic.by_version()["v1.2.0"] > 0
    history = json.loads(rollout("history", "--json", env=state_dir).stdout)
    assert history[0]["result"] == "succeeded" and history[0]["version"] == "v1.3.0"


def test_a_version_failing_a_share_of_requests_is_rolled_back(stable_fleet, state_dir):
    flaky = publish_variant("v1.3.0", "flaky")
    load = LoadGenerator(stable_fleet.lb_public_url, rps=8).start(duration_s=900)
    interval = 10  # at 8 req/s and 10%, two intervals hold about 16 canary requests
    try:
        result = start(flaky, state_dir, "--set", f"interval_s={interval}", "--set", "consecutive_failures=1",
                       "--set", "max_error_rate=0.05")
    finally:
        traffic = load.stop()
    assert result.returncode == 3, result.stdout + result.stderr  # rolled back
    assert set(versions(stable_fleet).values()) == {"v1.2.0"}
    record = json.loads(rollout("history", "--json", env=state_dir).stdout)[0]
    assert record["result"] == "rolled_back" and "analysis failed" in record["reason"]
    show = json.loads(rollout("show", record["id"], env=state_dir).stdout)
    verdicts = [e for e in show["events"] if e["kind"] == "verdict"]
    weights_live = next(e["at"] for e in show["events"] if e["kind"] == "weights live")
    rollback = next(e["at"] for e in show["events"] if e["kind"] == "enter ROLLING_BACK")
    assert len([v for v in verdicts if v["at"] <= rollback]) <= 2
    assert rollback - weights_live <= 2 * interval + 15  # two analyses, plus the time each look takes
    # nginx retries the canary's failures on stable: clients see (almost) none of them
    print(f"client failures during the flaky canary: {len(traffic.failed)} of {len(traffic.outcomes)}")
    assert len(traffic.failed) <= max(2, len(traffic.outcomes) // 100)


def test_a_version_with_broken_audio_never_gets_traffic(stable_fleet, state_dir):
    silent = publish_variant("v1.3.0", "silent")
    load = LoadGenerator(stable_fleet.lb_public_url, rps=4).start(duration_s=600)
    try:
        result = start(silent, state_dir)
    finally:
        traffic = load.stop()
    assert result.returncode == 3, result.stdout + result.stderr
    assert traffic.by_version()[silent] == 0 and not traffic.failed, traffic.summary()
    record = json.loads(rollout("history", "--json", env=state_dir).stdout)[0]
    # caught before any traffic: the canary never turns ready (its warm-up audio fails the
    # checks), or the warm-up gate's golden prompts fail; either way the reason says why
    assert "silence_share" in record["reason"], record["reason"]
    assert set(versions(stable_fleet).values()) == {"v1.2.0"}


def test_a_killed_controller_resumes_to_the_same_result_without_a_traffic_jump(stable_fleet, state_dir):
    load = LoadGenerator(stable_fleet.lb_public_url, rps=LOAD_RPS).start(duration_s=900)
    env = dict(os.environ, **state_dir)
    cmd = [str(Path(sys.executable).with_name("rollout")), "start", "v1.3.0", *DEMO_POLICY,
           "--set", "dwell_s=30"]
    process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(state_dir, at_step(10), what="step 1 live")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        view = status_json(state_dir)
        assert (view["phase"], view["step"], view["weight_set"]) == ("TRAFFIC", 1, 10)
        shares = {s["version"]: s["weight"] for s in view["lb_servers"] if s["state"] == "up"}
        assert set(shares) == {"v1.3.0", "v1.2.0"}

        second = start("v1.3.0", state_dir)  # a second start while one is active is refused
        assert second.returncode == 1 and "already active" in second.stderr

        resumed = rollout("resume", check=False, env=state_dir)
    finally:
        if process.poll() is None:
            process.kill()
        traffic = load.stop()
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert set(versions(stable_fleet).values()) == {"v1.3.0"}
    assert not traffic.failed, traffic.summary()
    record = json.loads(rollout("history", "--json", env=state_dir).stdout)[0]
    show = json.loads(rollout("show", record["id"], env=state_dir).stdout)
    weights = [e["data"]["canary_percent"] for e in show["events"] if e["kind"] == "weights live"]
    assert weights == [10, 50, 100]  # resumed at step 1's weight; no step skipped or repeated higher
