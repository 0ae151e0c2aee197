"""Versions that must not reach the fleet, each started with `rollout start` on the sandbox
under steady load at 60% of its measured capacity through the LB: a flaky one, one that
is twice as slow (rolled back while every tick is killed), and one with broken audio."""

from __future__ import annotations

import json
import re

import pytest

from canary.devtools.loadgen import LoadGenerator
from tests.e2e.helpers import LOAD_RPS, crash_at_every_event, events, show, start, versions
from tests.sandbox_fleet import publish_variant, rollout

pytestmark = pytest.mark.sandbox
ROLLBACK_EVENTS = ["enter ROLLING_BACK", "traffic off new version", "previous version restored"]


def test_a_version_failing_a_share_of_requests_is_rolled_back(stable_fleet, state_dir):
    flaky = publish_variant("v1.3.0", "flaky")
    first_lb, second_lb = stable_fleet.lbs
    # every client reaches the second LB only: the judge must read its log, not just the first's
    load = LoadGenerator(stable_fleet.lb_public_urls[1], rps=LOAD_RPS).start(duration_s=900)
    interval = 10  # at 6.6 req/s and 10%, two intervals hold about 13 canary requests
    try:
        result = start(flaky, state_dir, "--set", f"interval_s={interval}", "--set", "consecutive_failures=1",
                       "--set", "max_error_rate=0.05")
    finally:
        traffic = load.stop()
    assert result.returncode == 3, result.stdout + result.stderr  # rolled back
    assert set(versions(stable_fleet).values()) == {"v1.2.0"}
    record = json.loads(rollout("history", "--json", env=state_dir).stdout)[0]
    assert record["result"] == "rolled_back" and "analysis failed" in record["reason"]
    story = show(state_dir, record["id"])
    verdicts = events(story, "verdict")
    weights_live = events(story, "weights live")[0]["at"]
    rollback = events(story, "enter ROLLING_BACK")[0]["at"]
    assert len([v for v in verdicts if v["at"] <= rollback]) <= 3  # two analyses, then the failing one
    assert rollback - weights_live <= 2 * interval + 15  # two analyses, plus the time each look takes
    failing = [v for v in verdicts if v["at"] <= rollback][-1]["data"]
    assert failing["verdict"]["verdict"] == "fail" and failing["canary_n_by_lb"].get(first_lb, 0) == 0
    assert failing["canary_n_by_lb"][second_lb] == failing["verdict"]["canary_n"] > 0
    # nginx retries the canary's failures on stable: clients see (almost) none of them
    print(f"client failures during the flaky canary: {len(traffic.failed)} of {len(traffic.outcomes)}")
    assert len(traffic.failed) <= max(2, len(traffic.outcomes) // 100)
    assert not traffic.shed, traffic.summary()


def test_a_version_twice_as_slow_is_rolled_back_with_no_failed_request(stable_fleet, state_dir):
    slow = publish_variant("v1.3.0", "halfspeed")
    load = LoadGenerator(stable_fleet.lb_public_urls, rps=LOAD_RPS).start(duration_s=900)
    try:
        # judged from the sandbox's Prometheus alone (the service's own histograms)
        started = start(slow, state_dir, "--detach", "--set", "evidence=prometheus")
        assert started.returncode == 0, started.stdout + started.stderr
        done, kills = crash_at_every_event(state_dir)  # the roll back too, at each of its steps
    finally:
        traffic = load.stop()
    assert done["result"] == "rolled_back" and "analysis failed" in done["reason"], done
    assert "fail (prometheus): canary slower" in done["reason"] and "histograms" in done["reason"], done["reason"]
    assert set(versions(stable_fleet).values()) == {"v1.2.0"}
    assert all(s["version"] == "v1.2.0" and s["state"] == "up" for s in done["lb_servers"])
    story = show(state_dir, done["id"])
    assert [e["kind"] for e in story["events"] if e["kind"] in ROLLBACK_EVENTS] == ROLLBACK_EVENTS
    assert kills >= 8, kills
    slow_ok = [o.latency_s for o in traffic.outcomes if o.version == slow and o.status == 200]
    print(f"{slow}: {len(slow_ok)} answers; {traffic.summary()}")
    assert slow_ok and not traffic.failed, traffic.summary()
    assert_verdict_counts_every_lb(stable_fleet, story, traffic, slow)


def assert_verdict_counts_every_lb(fleet, story, traffic, canary_version: str) -> None:
    """The last verdict counted the canary's requests in every LB's log, each LB's count
    what the clients that went through it saw answered by the canary."""
    verdict = [v for v in events(story, "verdict") if sum(v["data"]["canary_n_by_lb"].values())][-1]
    live = [e for e in events(story, "weights live") if e["at"] <= verdict["at"]][-1]["at"]
    by_lb = verdict["data"]["canary_n_by_lb"]
    assert set(by_lb) == set(fleet.lbs)
    for lb, url in zip(fleet.lbs, fleet.lb_public_urls, strict=True):
        seen = sum(1 for o in traffic.outcomes if o.version == canary_version and o.url == url
                   and live <= o.started + o.latency_s <= verdict["at"])
        print(f"{lb}: the verdict counted {by_lb[lb]} canary requests, its clients saw {seen}")
        assert abs(by_lb[lb] - seen) <= max(2, by_lb[lb] // 100), (lb, by_lb[lb], seen)


def test_a_version_with_broken_audio_never_gets_traffic(stable_fleet, state_dir):
    silent = publish_variant("v1.3.0", "silent")
    load = LoadGenerator(stable_fleet.lb_public_urls, rps=LOAD_RPS).start(duration_s=600)
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
    if "not running healthy" in record["reason"]:  # given up when /readyz said so, not at the health timeout
        waited = re.search(r"gave up after (\d+) s of up to (\d+) s", record["reason"])
        assert waited and int(waited[1]) < int(waited[2]) / 2, record["reason"]
    assert set(versions(stable_fleet).values()) == {"v1.2.0"}
