"""The controller judging from Prometheus (policy evidence: prometheus | both), with the
simulated fleet playing Prometheus over the same traffic (tests/unit/fakes.py)."""

from __future__ import annotations

import pytest

from canary.adapters.store import Store
from canary.decisions.policy import PolicyError, parse_policy
from canary.rollout.controller import Controller
from tests.unit.fakes import POLICY, FakeClock, SimulatedFleet, VersionBehaviour, make_fleet, run

PROMETHEUS = {"prometheus_url": "http://prometheus.test:9090", "latency_settle_s": 0}


def world(tmp_path, evidence: str, **behaviour: VersionBehaviour):
    clock = FakeClock()
    sim = SimulatedFleet(hosts={f"node{i}": "v1.2.0" for i in (1, 2, 3)},
                         addresses={f"node{i}": f"10.9.0.{i}:6006" for i in (1, 2, 3)},
                         registry_tags={"v1.2.0", "v1.3.0"}, clock=clock, behaviour=dict(behaviour))
    fleet = make_fleet(tmp_path, dict(POLICY, evidence=evidence, **PROMETHEUS))
    store = Store(tmp_path / "state.db")
    urls: list[str] = []

    def prometheus_at(url: str) -> SimulatedFleet:
        urls.append(url)
        return sim

    return sim, store, Controller(fleet, store, sim, sim, sim, sim, sim, clock, actor="tester",
                                  aggregates=prometheus_at), clock, urls


def verdicts(store: Store, rollout_id: str) -> list[str]:
    return [e.data["verdict"]["summary"] for e in store.events(rollout_id) if e.kind == "verdict"]


def test_a_version_twice_as_slow_is_rolled_back_on_prometheus_numbers_alone(tmp_path):
    sim, store, c, clock, urls = world(tmp_path, "prometheus", **{"v1.3.0": VersionBehaviour(latency_s=0.6)})
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "ROLLED_BACK"
    seen = verdicts(store, record.id)
    assert seen[-1].startswith("fail (prometheus): canary slower") and "histograms" in seen[-1]
    assert set(urls) == {"http://prometheus.test:9090"}
    assert set(sim.hosts.values()) == {"v1.2.0"}


def test_a_healthy_version_succeeds_judged_by_prometheus(tmp_path):
    sim, store, c, clock, _ = world(tmp_path, "prometheus")
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "SUCCEEDED"
    passed = [v for v in verdicts(store, record.id) if v.startswith("pass")]
    assert passed and all(v.startswith("pass (prometheus)") for v in passed)


def test_no_prometheus_is_inconclusive_until_the_step_times_out_never_a_pass(tmp_path):
    sim, store, c, clock, _ = world(tmp_path, "prometheus")
    sim.prometheus_down = True
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "PAUSED"
    seen = verdicts(store, record.id)
    assert seen and all(v.startswith("inconclusive (prometheus)") and "prometheus.test:9090" in v for v in seen)
    assert store.get(record.id).state["weight_live"] == 10  # the canary never got past its first step


def test_both_sources_must_pass_and_either_can_fail(tmp_path):
    sim, store, c, clock, _ = world(tmp_path, "both")
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "SUCCEEDED"
    passed = [e.data["verdict"] for e in store.events(record.id) if e.kind == "verdict"
              and e.data["verdict"]["verdict"] == "pass"]
    assert passed and all({"error_rate", "prometheus error_rate", "prometheus latency"}
                          <= {m["metric"] for m in v["metrics"]} for v in passed)

    down = world(tmp_path / "down", "both")
    down[0].prometheus_down = True
    record = down[2].start("v1.3.0")
    assert run(down[2], down[3])[-1] == "PAUSED"  # the access log alone passes nothing


def test_prometheus_evidence_needs_a_url_named_in_the_error():
    with pytest.raises(PolicyError, match=r"rollout_policy.prometheus_url: must be set for evidence: prometheus"):
        parse_policy({"evidence": "prometheus"})
    with pytest.raises(PolicyError, match=r"rollout_policy.evidence: must be 'access_log' or 'prometheus' or 'both'"):
        parse_policy({"evidence": "grafana"})
