"""Part 4 end to end: rollouts run by timers, operators stepping in, crashes at every
phase boundary; all on the sandbox under steady load through the LB."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from canary.devtools.loadgen import LoadGenerator
from tests.e2e.helpers import (
    DEMO_POLICY,
    LOAD_RPS,
    Ticker,
    WebhookReceiver,
    at_step,
    show,
    start,
    status_json,
    versions,
    wait_for,
)
from tests.sandbox_fleet import REPO, rollout

pytestmark = pytest.mark.sandbox


def kinds_of(story: dict, kind: str) -> list[dict]:
    return [e for e in story["events"] if e["kind"] == kind]


def weights_live(story: dict) -> list[int]:
    return [e["data"]["canary_percent"] for e in kinds_of(story, "weights live")]


def test_a_held_canary_is_promoted_by_ticks_alone_when_its_window_opens(stable_fleet, state_dir):
    hook = WebhookReceiver()
    now = datetime.now(UTC)
    # 4-5 minutes from now: time enough to reach the canary step and pass it on a busy machine
    opens = (now + timedelta(seconds=300)).replace(second=0, microsecond=0)
    window = f"{opens:%H:%M}-{opens + timedelta(hours=1):%H:%M}"
    load = LoadGenerator(stable_fleet.lb_public_url, rps=LOAD_RPS).start(duration_s=1200)
    try:
        started = start("v1.3.0", state_dir, "--detach", "--set", f"promotion_window={window}",
                        "--set", "promotion_timezone=UTC", "--set", f"notify_url={hook.url}")
        assert started.returncode == 0, started.stdout + started.stderr
        with Ticker(state_dir, every_s=2, overlap=2) as ticker:  # no foreground command: timers only
            held = wait_for(state_dir, lambda v: "promotion window" in ((v.get("last_decision") or {})
                                                                         .get("reason", "")), what="a held canary")
            assert time.time() < opens.timestamp() and held["step"] == 1 and held["weight_live"] == 10
            done = wait_for(state_dir, lambda v: v["phase"] == "SUCCEEDED", timeout_s=600, what="success")
        assert not ticker.errors, ticker.errors[:3]
        story = show(state_dir, done["id"])
        step2 = next(e for e in kinds_of(story, "enter TRAFFIC") if "step 2" in e["data"]["reason"])
        assert step2["at"] >= opens.timestamp()
        # overlapping ticks never acted twice: each weight and each batch exactly once
        assert weights_live(story) == [10, 50, 100]
        assert [e["data"]["hosts"] for e in kinds_of(story, "batch promoted")] == [["node2"], ["node3"]]
        assert set(versions(stable_fleet).values()) == {"v1.3.0"}

        # notices reached a real HTTP server, naming version, step and numbers
        assert hook.kinds()[0] == "started" and hook.kinds()[-1] == "succeeded"
        passed = hook.of("step_passed")
        assert [p["voxfleet"]["step"] for p in passed] == ["1/3", "2/3", "3/3"]
        assert all("v1.3.0" in p["text"] and int(p["voxfleet"]["canary_requests"]) >= 15 for p in passed)

        # rollback (no --to): the version before the last success, by the same safe path;
        # an operator's promote --full hurries it once its canary is live
        back = subprocess.Popen([str(Path(sys.executable).with_name("rollout")), "rollback", *DEMO_POLICY,
                                 "--reason", "e2e: back to v1.2.0"], cwd=REPO, env=dict(os.environ, **state_dir),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(state_dir, lambda v: v["version"] == "v1.2.0" and at_step(10)(v), what="the rollback's canary")
        rollout("promote", "--full", "--reason", "e2e: hurry", env=state_dir)
        output, _ = back.communicate(timeout=600)
        assert back.returncode == 0, output
    finally:
        traffic = load.stop()
        hook.close()
    assert set(versions(stable_fleet).values()) == {"v1.2.0"}
    assert not traffic.failed, traffic.summary()


def test_operator_verbs_act_mid_rollout_with_zero_failed_requests(stable_fleet, state_dir):
    load = LoadGenerator(stable_fleet.lb_public_url, rps=LOAD_RPS).start(duration_s=1200)
    try:
        started = start("v1.3.0", state_dir, "--detach", "--set", "dwell_s=600", "--set", "step_max_s=900")
        assert started.returncode == 0, started.stderr  # with this dwell, no step passes on its own
        with Ticker(state_dir, every_s=2, overlap=1) as ticker:
            live = wait_for(state_dir, at_step(10), what="step 1 live")
            rollout("pause", "--reason", "e2e: hold", env=state_dir)
            time.sleep(8)  # several ticks: nothing moves
            paused = status_json(state_dir)
            assert paused["phase"] == "PAUSED" and paused["lb_servers"] == live["lb_servers"]

            rollout("resume", "--detach", "--reason", "e2e: go on", env=state_dir)
            wait_for(state_dir, at_step(10), what="resumed")
            rollout("set-weight", "30", "--reason", "e2e: manual 30%", env=state_dir)
            manual = wait_for(state_dir, at_step(30), what="manual weight live")
            assert manual["step"] == 1
            rollout("promote", "--reason", "e2e: next step", env=state_dir)
            wait_for(state_dir, at_step(50), what="step 2 live")
            aborted = rollout("abort", "--reason", "e2e: stop it", env=state_dir, check=False)
        assert aborted.returncode == 3, aborted.stdout + aborted.stderr  # rolled back
        assert not ticker.errors, ticker.errors[:3]
    finally:
        traffic = load.stop()
    assert set(versions(stable_fleet).values()) == {"v1.2.0"}
    assert not traffic.failed, traffic.summary()
    story = show(state_dir)
    assert story["result"] == "rolled_back" and "aborted by" in story["reason"] and "e2e: stop it" in story["reason"]
    by_kind = {e["kind"]: e for e in story["events"]}
    for verb in ("pause", "set-weight", "promote"):
        assert by_kind[verb]["actor"] == getpass.getuser() and by_kind[verb]["data"]["reason"].startswith("e2e:")
    assert weights_live(story) == [10, 30, 50]


# Every boundary a healthy rollout crosses, in order: the controller dies right after
# recording each (state written, action not done); the next tick must carry on.
BOUNDARIES = ["enter PREFLIGHT", "enter PREPULL", "enter CANARY_DEPLOY", "enter WARMUP_GATE",
              "enter TRAFFIC", "weights live", "verdict", "enter TRAFFIC", "weights live", "enter TRAFFIC",
              "weights live", "enter PROMOTING", "batch promoted", "batch promoted"]


def test_killed_at_every_phase_boundary_ends_like_an_uninterrupted_run(stable_fleet, state_dir):
    load = LoadGenerator(stable_fleet.lb_public_url, rps=LOAD_RPS).start(duration_s=1200)
    kills = []
    try:
        assert start("v1.3.0", state_dir, "--detach").returncode == 0
        for boundary in BOUNDARIES:
            for _ in range(200):
                tick = rollout("tick", check=False, env={**state_dir, "VOXFLEET_CRASH_AFTER": boundary})
                if tick.returncode == -9:  # SIGKILL, right after recording the boundary
                    break
                assert tick.returncode == 0, tick.stdout + tick.stderr
                time.sleep(1)
            else:
                raise AssertionError(f"never crossed {boundary}")
            view = status_json(state_dir)
            kills.append((boundary, view["phase"], view["weight_set"]))
            if boundary.startswith("enter "):
                assert view["phase"] == boundary.removeprefix("enter "), kills
        with Ticker(state_dir, every_s=1, overlap=1):
            done = wait_for(state_dir, lambda v: v["phase"] in ("SUCCEEDED", "ROLLED_BACK", "FAILED"), what="end")
    finally:
        traffic = load.stop()
    print("killed at:", kills)
    # the same end as an uninterrupted run (test_rollout's healthy case)
    assert done["result"] == "succeeded", done
    assert set(versions(stable_fleet).values()) == {"v1.3.0"}
    assert all(s["version"] == "v1.3.0" and s["state"] == "up" for s in done["lb_servers"])
    story = show(state_dir, done["id"])
    assert weights_live(story) == [10, 50, 100]  # no step repeated or skipped, no jump
    assert len(kinds_of(story, "batch promoted")) == 2
    assert not traffic.failed, traffic.summary()


ROLLBACK_BOUNDARIES = ["traffic off new version", "previous version restored"]


def test_killed_at_every_roll_back_boundary_ends_rolled_back(stable_fleet, state_dir):
    load = LoadGenerator(stable_fleet.lb_public_url, rps=LOAD_RPS).start(duration_s=1200)
    try:
        assert start("v1.3.0", state_dir, "--detach", "--set", "dwell_s=600", "--set", "step_max_s=900"
                     ).returncode == 0
        with Ticker(state_dir, every_s=1, overlap=1):
            wait_for(state_dir, at_step(10), what="step 1 live")
        killed = rollout("abort", "--reason", "e2e: crash test", check=False,
                         env={**state_dir, "VOXFLEET_CRASH_AFTER": "enter ROLLING_BACK"})
        assert killed.returncode == -9, killed.stdout + killed.stderr
        assert status_json(state_dir)["phase"] == "ROLLING_BACK"
        for boundary in ROLLBACK_BOUNDARIES:
            tick = rollout("tick", check=False, env={**state_dir, "VOXFLEET_CRASH_AFTER": boundary})
            assert tick.returncode == -9, (boundary, tick.stdout + tick.stderr)
        with Ticker(state_dir, every_s=1, overlap=1):
            done = wait_for(state_dir, lambda v: v["phase"] in ("ROLLED_BACK", "FAILED"), what="the end")
    finally:
        traffic = load.stop()
    assert done["result"] == "rolled_back" and "e2e: crash test" in done["reason"], done
    assert set(versions(stable_fleet).values()) == {"v1.2.0"}
    assert all(s["version"] == "v1.2.0" and s["state"] == "up" for s in done["lb_servers"])
    story = show(state_dir, done["id"])
    assert [e["kind"] for e in story["events"] if e["kind"] in ROLLBACK_BOUNDARIES] == ROLLBACK_BOUNDARIES
    assert not traffic.failed, traffic.summary()
