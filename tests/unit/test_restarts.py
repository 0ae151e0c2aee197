"""A new version's container that restarts during a traffic step fails the analysis, and
the verdict names the host, how often, how the process ended and what it last logged."""

from __future__ import annotations

from canary.adapters.containers import life_command, parse_life
from canary.decisions.judge import MetricVerdict, Verdict
from canary.decisions.restarts import ContainerLife, restart_metric, with_restarts
from tests.unit.fakes import run, started_to_first_step

CRASHED = ContainerLife(2, "2026-12-07T05:01:02Z", 137, True, "loading | Killed")
PASSING = Verdict("pass", (MetricVerdict("error_rate", "pass", "0/40", {"n": 40, "stable_n": 300}),), 40, 300,
                  "pass: canary error rate 0/40")


def test_no_restart_passes_and_leaves_the_verdict_as_it_was():
    metric = restart_metric({"node1": ContainerLife(0), "node2": ContainerLife(0)})
    assert metric.verdict == "pass"
    kept = with_restarts(PASSING, metric)
    assert (kept.verdict, kept.summary) == ("pass", PASSING.summary) and kept.metrics[-1] is metric


def test_a_restart_fails_naming_host_count_exit_and_last_log():
    metric = restart_metric({"node1": ContainerLife(0), "node2": CRASHED})
    assert metric.verdict == "fail" and metric.numbers["restarts"] == {"node2": 2}
    assert "node1" not in metric.reason
    for fragment in ("node2's container restarted 2×", "exit code 137", "killed for memory", "Killed"):
        assert fragment in metric.reason, metric.reason
    failed = with_restarts(PASSING, metric)
    assert failed.verdict == "fail" and failed.summary.startswith("fail: canary process crashed: node2")
    assert PASSING.summary in failed.summary and (failed.canary_n, failed.stable_n) == (40, 300)


def test_what_docker_prints_is_read_back():
    restarted = ('{"restarts": 2, "started_at": "2026-12-07T05:01:02.5Z"}\n--voxfleet-section--\n'
                 "die 1\noom \ndie 137\n--voxfleet-section--\n"
                 "INFO loading\nTraceback (most recent call last):\nRuntimeError: boom\n")
    assert parse_life(restarted) == ContainerLife(
        2, "2026-12-07T05:01:02.5Z", 137, True, "INFO loading | Traceback (most recent call last): | RuntimeError: boom")
    never = parse_life('{"restarts": 0, "started_at": "2026-12-07T05:00:00Z"}\n')
    assert never == ContainerLife(0, "2026-12-07T05:00:00Z") and restart_metric({"node1": never}).verdict == "pass"
    command = life_command("tts; rm -rf /")
    assert "'tts; rm -rf /'" in command and "; rm -rf /;" not in command  # quoted, never run


def test_a_canary_whose_container_restarts_mid_step_is_rolled_back_saying_so(world):
    sim, store, controller, clock = world
    c = controller()
    record, canary = started_to_first_step(c, clock)
    sim.restarted[canary] = CRASHED  # healthy traffic, but its process died and Docker started it again
    assert run(c, clock)[-1] == "ROLLED_BACK"
    final = store.get(record.id)
    assert "analysis failed" in final.reason and f"{canary}'s container restarted 2×" in final.reason, final.reason
    assert set(sim.hosts.values()) == {"v1.2.0"}
    verdicts = [e.data["verdict"] for e in store.events(record.id) if e.kind == "verdict"]
    assert any(m["metric"] == "restarts" and m["verdict"] == "fail" for v in verdicts for m in v["metrics"])
