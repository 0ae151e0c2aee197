"""A release day on the sandbox, as one story under steady load at 60% of the fleet's
measured capacity: a tag goes through `rollout release` to every host while every tick
driving it is killed right after it records something and a promotion window holds the
canary; then the operator rolls back, kills the foreground controller, pauses, resumes,
sets a weight and promotes by hand. Nothing the clients send may fail or be shed, while
another client sends 20 requests a second of input the service must refuse (4xx only, no
server taken out, no rollout rolled back for it)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from canary.adapters import images, registry
from canary.adapters.images import image_tag
from canary.devtools.loadgen import LoadGenerator, LoadResult
from tests.e2e.helpers import (
    DEMO_POLICY,
    LOAD_RPS,
    Ticker,
    WebhookReceiver,
    assert_no_jump,
    at_step,
    crash_at_every_event,
    events,
    lb_error_logs,
    show,
    status_json,
    versions,
    wait_for,
    weights_live,
)
from tests.hostile import HostileClient
from tests.sandbox_fleet import REPO, rollout

pytestmark = pytest.mark.sandbox
MODELS = REPO / "build" / "models"
NEW = "v1.4.0"  # a demo release nothing else publishes
SESSIONS = 100  # clients, each with its session key, sending one request every SESSIONS / LOAD_RPS s
HOLD_S = 8 * 3600  # the calendar shift that puts "now" outside the promotion window


def promotion_window() -> str:
    """A UTC window open now, from an hour ago to three hours ahead."""
    now = datetime.now(UTC)
    return f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=3):%H:%M}"


def held_by_window(view: dict) -> bool:
    return "promotion window" in ((view.get("last_decision") or {}).get("reason", ""))


def test_a_release_day_under_load(stable_fleet, state_dir, tmp_path):
    shutil.rmtree(MODELS / NEW, ignore_errors=True)  # release builds the model from its recipe
    hook = WebhookReceiver()
    shift = tmp_path / "calendar-shift"
    shift.write_text(str(HOLD_S))
    env = {**state_dir, "VOXFLEET_CALENDAR_SHIFT_FILE": str(shift)}
    # SESSIONS clients, each keeping one session (X-Session-Id), each round of keys through the other LB
    load = LoadGenerator(stable_fleet.lb_public_urls, rps=LOAD_RPS, sessions=SESSIONS).start(duration_s=3600)
    # all the while, another client sends only input the service must refuse
    hostile = HostileClient(stable_fleet.lb_public_urls[-1], rps=20)
    try:
        errors_before = lb_error_logs(stable_fleet)
        hostile.__enter__()
        released = rollout("release", NEW, *DEMO_POLICY, "--detach", "--report", str(tmp_path),
                           "--set", f"promotion_window={promotion_window()}", "--set", "promotion_timezone=UTC",
                           "--set", f"notify_url={hook.url}", check=False, env=env)
        assert released.returncode == 0, released.stdout[-4000:] + released.stderr[-4000:]
        for step in ("1/5 model check", "2/5 build", "3/5 gate", "4/5 publish", "5/5 rollout start"):
            assert step in released.stdout

        # every tick dies right after recording one event; the calendar holds step 1
        held, kills = crash_at_every_event(env, until=held_by_window)
        assert held["phase"] == "TRAFFIC" and held["step"] == 1 and held["weight_live"] == 10, held
        # the tag pushed again with another image while the canary is held: no host may get it
        pushed = registry.tag_digest(stable_fleet.registry_push, stable_fleet.repository, NEW,
                                     stable_fleet.registry_insecure)
        images.push_image(image_tag("v1.3.0", None), stable_fleet.image(NEW, for_push=True))
        time.sleep(6)  # more ticks: still held
        assert rollout("tick", env=env).returncode == 0 and status_json(env)["weight_live"] == 10
        opened = time.time()
        shift.write_text("0")  # the window is open now
        done, more = crash_at_every_event(env)
        kills += more
        assert done["result"] == "succeeded", done
        story = show(env, done["id"])
        # every phase, step, switch and batch the ticks recorded was crossed by a killed tick
        recorded = [e["kind"] for e in story["events"] if e["kind"] not in ("created", "verdict")]
        assert kills >= len(recorded) >= 12, (kills, recorded)
        step2 = next(e for e in events(story, "enter TRAFFIC") if "step 2" in e["data"]["reason"])
        assert step2["at"] >= opened
        assert_no_jump(weights_live(story), [10, 50])
        assert set(versions(stable_fleet).values()) == {NEW}
        assert all(s["version"] == NEW and s["state"] == "up" for s in done["lb_servers"])

        # the gate's report, and what shipped is traceable from each host to the registry
        report = json.loads((tmp_path / f"gate-{NEW}.json").read_text())
        assert report["passed"] and report["baseline"] == "v1.2.0" and len(report["rows"]) == 5
        fleet_view = json.loads(rollout("fleet", "--json").stdout)
        assert all(r["served_version"] == NEW and r["problem"] is None for r in fleet_view)
        assert all(r["image_digest"].endswith(f"@{pushed}") for r in fleet_view), (pushed, fleet_view)
        shipped = json.loads(rollout("history", "--json", env=env).stdout)[0]
        assert shipped["image_digest"] == pushed and shipped["stable_version"] == "v1.2.0"

        # notices reached a real HTTP server (a killed tick may take its notice with it:
        # only what a process that lived sent is certain), naming version, step and numbers
        assert hook.of("step_passed"), hook.kinds()
        assert all(NEW in p["text"] and int(p["voxfleet"]["canary_requests"]) >= 15 for p in hook.of("step_passed"))

        # the operator's day: `rollout rollback` (the version before the last success) in
        # the foreground, killed at its canary step; then pause, resume, a manual weight,
        # promote, and promote --full, with no step passing on its own
        hook.received.clear()
        rolled_back = operator_day(env, stable_fleet, hook)
    finally:
        traffic = load.stop()
        hostile.__exit__()
        hook.close()
        if images.image_present(image_tag(NEW, None)):  # the genuine tag back, for the next run
            images.push_image(image_tag(NEW, None), stable_fleet.image(NEW, for_push=True))
    print("under load:", traffic.summary())
    print(hostile.summary())
    assert not traffic.failed, traffic.summary()
    assert not hostile.server_errors, hostile.server_errors[:5]
    assert all(400 <= status < 500 for status in hostile.statuses) and sum(hostile.statuses.values()) > 1000
    taken_out = [f"{lb}: {line}" for lb, log in lb_error_logs(stable_fleet).items()
                 for line in log[len(errors_before[lb]):].splitlines() if "temporarily disabled" in line]
    assert not taken_out, taken_out[:5]  # no server was marked down, though versions came and went
    assert traffic.by_version()[NEW] > 0 and traffic.by_version()["v1.2.0"] > 0
    assert_each_session_hears_one_version(traffic, rolled_back, canary_version="v1.2.0")


def assert_each_session_hears_one_version(traffic: LoadResult, story: dict, canary_version: str) -> None:
    """While a share is live, each session key hears one version; a key the canary had at a
    smaller share it keeps at a larger one (the split's canary range comes first)."""
    moments = sorted(e["at"] for e in story["events"] if e["kind"] != "verdict")
    on_canary: dict[int, set[str]] = {}
    seen: dict[int, set[str]] = {}
    for live in events(story, "weights live"):
        share, start = live["data"]["canary_percent"], live["at"] + 1
        end = next((at for at in moments if at > live["at"]), float("inf")) - 2
        heard = traffic.since(start, end).versions_by_session()
        mixed = {key: versions for key, versions in heard.items() if len(set(versions)) > 1}
        assert not mixed, (share, list(mixed.items())[:5])
        on_canary.setdefault(share, set()).update(k for k, v in heard.items() if v[0] == canary_version)
        seen.setdefault(share, set()).update(heard)
        if share == 50:
            twice = [k for k, v in heard.items() if len(v) >= 2]
            assert len(twice) >= SESSIONS / 2, (len(heard), len(twice))
            assert 0.3 <= len([k for k in heard if k in on_canary[50]]) / len(heard) <= 0.7, len(on_canary[50])
    assert on_canary.get(10) and on_canary.get(50), on_canary
    moved_back = {key for key in on_canary[10] & seen[50] if key not in on_canary[50]}
    assert not moved_back, moved_back


def operator_day(env: dict[str, str], fleet, hook: WebhookReceiver) -> dict:
    # The point here is the operator, not the judge: a freshly started canary's first answers
    # are slower while this 2-core machine also deploys, serves 60% of its capacity and a
    # hostile stream (seen: median x1.65 on 20 requests at 35% load, x4.5 on 23 at 60%), so
    # latency is judged loosely here; the bad-version tests judge it strictly.
    cmd = [str(Path(sys.executable).with_name("rollout")), "rollback", *DEMO_POLICY, "--set", "dwell_s=900",
           "--set", "step_max_s=1800", "--set", "latency_max_ratio=10", "--set", f"notify_url={hook.url}",
           "--reason", "e2e: back to v1.2.0"]
    foreground = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    try:
        live = wait_for(env, lambda v: v["version"] == "v1.2.0" and at_step(10)(v), what="the rollback's canary")
        foreground.send_signal(signal.SIGKILL)
        foreground.wait(30)
    finally:
        if foreground.poll() is None:
            foreground.kill()
    view = status_json(env)
    assert (view["phase"], view["step"], view["weight_set"]) == ("TRAFFIC", 1, 10)
    assert {s["version"] for s in view["lb_servers"] if s["state"] == "up"} == {"v1.2.0", NEW}
    second = rollout("start", "v1.3.0", check=False, env=env)
    assert second.returncode == 1 and "already active" in second.stderr
    time.sleep(1.5 * SESSIONS / LOAD_RPS)  # every session key heard about once at 10%, before the pause

    with Ticker(env, every_s=2, overlap=2) as ticker:  # two timers at once: each action exactly once
        rollout("pause", "--reason", "e2e: hold", env=env)
        time.sleep(8)
        paused = status_json(env)
        assert paused["phase"] == "PAUSED" and paused["lb_servers"] == live["lb_servers"]
        rollout("resume", "--detach", "--reason", "e2e: go on", env=env)
        wait_for(env, at_step(10), what="resumed")
        rollout("set-weight", "30", "--reason", "e2e: manual 30%", env=env)
        assert wait_for(env, at_step(30), what="manual weight live")["step"] == 1
        rollout("promote", "--reason", "e2e: next step", env=env)
        wait_for(env, at_step(50), what="step 2 live")
        time.sleep(2.5 * SESSIONS / LOAD_RPS)  # every session key heard at least twice at 50%
        rollout("promote", "--full", "--reason", "e2e: hurry", env=env)
        done = wait_for(env, lambda v: v["phase"] == "SUCCEEDED", what="the rollback's end")
    assert not ticker.errors, ticker.errors[:3]
    assert set(versions(fleet).values()) == {"v1.2.0"}
    story = show(env, done["id"])
    assert_no_jump(weights_live(story), [10, 30, 50])
    by_kind = {e["kind"]: e for e in story["events"]}
    for verb in ("pause", "set-weight", "promote", "promote --full"):
        assert by_kind[verb]["actor"] == getpass.getuser() and by_kind[verb]["data"]["reason"].startswith("e2e:")
    # no process was killed after the first: every notice arrived, in order
    kinds = hook.kinds()
    assert kinds[0] == "started" and kinds[-1] == "succeeded" and "paused" in kinds, kinds
    assert all("v1.2.0" in body["text"] for body in hook.received)
    return story
