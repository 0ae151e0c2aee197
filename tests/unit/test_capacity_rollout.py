"""The controller on capacity: weights by capacity in every phase, hosts switched before a
step needs them, promotion judged batch by batch with the old version still serving,
drains that wait for the load to fit, and policies the fleet cannot honour refused."""

from __future__ import annotations

from fractions import Fraction

import pytest

from canary.adapters.store import Store
from canary.cli.rollout import live_weight
from canary.decisions.capacity import Layout, load_ratios
from canary.decisions.status import status_view
from canary.rollout.controller import Controller, RolloutError
from tests.unit.fakes import POLICY, FakeClock, SimulatedFleet, VersionBehaviour, make_fleet, run


def world_of(tmp_path, capacities: list[int], policy: dict | None = None, rps: float = 20.0):
    clock = FakeClock()
    names = [f"node{i}" for i in range(1, len(capacities) + 1)]
    sim = SimulatedFleet(hosts={n: "v1.2.0" for n in names},
                         addresses={n: f"10.9.0.{i}:6006" for i, n in enumerate(names, 1)},
                         registry_tags={"v1.2.0", "v1.3.0"}, clock=clock, rps=rps)
    fleet = make_fleet(tmp_path, dict(POLICY, **(policy or {})), capacities=capacities)
    store = Store(tmp_path / "state.db")
    return sim, store, Controller(fleet, store, sim, sim, sim, sim, sim, clock, actor="tester"), clock


def ratios_of(sim: SimulatedFleet, servers, capacities: dict[str, Fraction]) -> dict[str, float]:
    """Each host's share of the weight ÷ its share of the capacity, as the LB has it."""
    by_address = {a: h for h, a in sim.addresses.items()}
    up = {by_address[s.address]: s.weight for s in servers if s.state == "up"}
    total_w, total_c = sum(up.values()), sum(capacities.values())
    return {h: (w / total_w) / float(capacities[h] / total_c) for h, w in up.items()}


def test_every_layout_the_lb_gets_keeps_every_host_within_its_capacity(tmp_path):
    capacities = [1, 1, 2, 1, 1]
    sim, store, c, clock = world_of(tmp_path, capacities)
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "SUCCEEDED"
    caps = {f"node{i}": Fraction(cap) for i, cap in enumerate(capacities, 1)}
    worst = max(max(ratios_of(sim, servers, caps).values()) for servers, _ in sim.applied)
    assert worst <= 1.5 + 1e-9  # 1 + the default canary_headroom
    first = sim.applied[0][0]  # preflight: no rollout yet, weights by capacity
    assert [s.weight for s in first] == [1, 1, 2, 1, 1]
    kinds = [e.kind for e in store.events(record.id)]
    assert kinds.count("batch switched") >= 2  # promotion host by host, judged in between


def test_promotion_keeps_the_old_version_serving_and_judged_until_it_is_gone(tmp_path):
    sim, store, c, clock = world_of(tmp_path, [1, 1, 1])
    record = c.start("v1.3.0")
    run(c, clock)
    promoting = [(servers, p) for servers, p in sim.applied if 0 < p < 100 and any(s.state == "down" for s in servers)
                 or p == 67]
    assert promoting, "no promotion layout seen"
    for servers, _ in promoting:  # the new version never takes everything while old hosts remain
        assert any(s.role == "stable" and s.state == "up" for s in servers)
    verdicts = [e for e in store.events(record.id) if e.kind == "verdict" and "promotion batch" in e.data["stage"]]
    assert verdicts and all(v.data["verdict"]["stable_n"] > 0 for v in verdicts)


def test_a_step_that_needs_more_hosts_switches_them_before_its_share_goes_live(tmp_path):
    sim, store, c, clock = world_of(tmp_path, [1, 1, 1, 1, 1, 1])
    record = c.start("v1.3.0")
    assert run(c, clock)[-1] == "SUCCEEDED"
    events = [(e.kind, e.data) for e in store.events(record.id)]
    fifty = next(i for i, (k, d) in enumerate(events) if k == "weights live" and d["canary_percent"] == 50)
    ten = next(i for i, (k, d) in enumerate(events) if k == "weights live" and d["canary_percent"] == 10)
    switched_between = [d["hosts"] for k, d in events[ten:fifty] if k == "batch switched"]
    # 50% of 6 hosts' load fits on 2 of them (1.5× each, the rest 0.75×); on 3, every host is equally busy
    assert switched_between == [["node2"], ["node3"]]
    at_fifty = next(servers for servers, p in sim.applied if p == 50)
    new_at_fifty = {h for s in at_fifty if s.role == "canary" for h, a in sim.addresses.items() if a == s.address}
    assert new_at_fifty == {"node1", "node2", "node3"}


def test_a_fail_verdict_during_promotion_rolls_back_every_switched_host(tmp_path):
    sim, store, c, clock = world_of(tmp_path, [1, 1, 1])
    record = c.start("v1.3.0")
    for _ in range(500):
        r = c.tick()
        if r.phase == "PROMOTING" and r.state["batch_index"] == 1 and not r.state["draining"]:
            sim.behaviour["v1.3.0"] = VersionBehaviour(error_rate=0.5)  # breaks under promotion traffic
        if r.phase in ("ROLLED_BACK", "SUCCEEDED", "FAILED"):
            break
        clock.sleep(10)
    final = store.get(record.id)
    assert final.phase == "ROLLED_BACK" and "analysis failed" in (final.reason or "")
    assert set(sim.hosts.values()) == {"v1.2.0"}
    restored = next(e for e in store.events(record.id) if e.kind == "previous version restored")
    assert restored.data["hosts"] == ["node1", "node2"]


def test_a_drain_waits_until_the_rest_can_carry_the_measured_load(tmp_path):
    # 3 hosts × 10 req/s per unit; 25 req/s measured: taking one host out leaves 20 req/s of capacity
    sim, store, c, clock = world_of(tmp_path, [1, 1, 1], {"capacity_unit_rps": 10.0}, rps=15.0)
    record = c.start("v1.3.0")
    sim.rps = 15.0
    for _ in range(3):  # preflight (15 req/s: the canary can go), pre-pull
        c.tick()
    sim.rps = 25.0  # the load rises meanwhile
    for _ in range(5):
        c.tick()
        clock.sleep(10)
    waiting = store.get(record.id)
    assert waiting.phase == "CANARY_DEPLOY"
    assert waiting.state["capacity_wait"] == ("waiting to switch node1: the fleet serves 25.0 req/s; without node1 "
                                              "the hosts in service carry 20.0 req/s (2 capacity units × 10 req/s)")
    assert [e.kind for e in store.events(record.id)].count("waiting for capacity") == 1  # said once
    sim.rps = 12.0
    assert run(c, clock)[-1] == "SUCCEEDED"


def test_preflight_refuses_a_rollout_that_cannot_take_even_one_host_out(tmp_path):
    sim, store, c, clock = world_of(tmp_path, [1, 1, 1], {"capacity_unit_rps": 10.0}, rps=28.0)
    record = c.start("v1.3.0")
    phases = run(c, clock)
    assert phases[-1] == "PREFLIGHT_FAILED"
    reason = store.get(record.id).reason or ""
    assert "cannot take even its canary (node1) out of traffic now" in reason and "28.0 req/s" in reason
    assert not [d for d in sim.deploys if not d[2]]  # nothing was deployed


def test_a_policy_the_fleet_cannot_honour_is_refused_at_start(tmp_path):
    sim, store, c, clock = world_of(tmp_path, [1, 1, 2])  # the 2-unit host is half the fleet
    with pytest.raises(RolloutError, match=r"promotion batch 1: .*with node3 out of traffic.*2\.00×"):
        c.start("v1.3.0")
    assert store.active(c.fleet_key) is None
    (tmp_path / "roomier").mkdir()
    _, _, roomier, roomier_clock = world_of(tmp_path / "roomier", [1, 1, 2], {"canary_headroom": 1.0})
    roomier.start("v1.3.0")  # a fleet that runs below half its capacity may say so
    assert run(roomier, roomier_clock)[-1] == "SUCCEEDED"


def test_set_weight_refuses_a_share_the_new_hosts_cannot_carry(tmp_path):
    sim, store, c, clock = world_of(tmp_path, [1, 1, 1])
    c.start("v1.3.0")
    while (store.active(c.fleet_key).state.get("weight_live")) != 10:
        c.tick()
        clock.sleep(10)
    with pytest.raises(RolloutError, match=r"set-weight 80%: a host would carry 2\.40×"):
        c.set_weight(80, "too much")
    c.set_weight(40, "fine")  # 1.2× on node1


def test_capacity_ratios_of_the_sandbox_plan_with_a_two_unit_host(tmp_path):
    caps = {"a": Fraction(1), "b": Fraction(1), "c": Fraction(2)}
    ratios = load_ratios(caps, Layout(frozenset()))
    assert ratios == {"a": 1, "b": 1, "c": 1}


def test_a_roll_back_drains_the_failing_version_even_when_the_rest_is_short_and_says_so(tmp_path):
    sim, store, c, clock = world_of(tmp_path, [1, 1, 1], {"capacity_unit_rps": 10.0}, rps=15.0)
    record = c.start("v1.3.0")
    for _ in range(200):
        r = c.tick()
        if r.phase == "TRAFFIC" and r.state["weight_live"] == 50:
            break
        clock.sleep(10)
    sim.rps = 25.0  # more than node2 and node3 carry (20 req/s) once node1 is out
    sim.behaviour["v1.3.0"] = VersionBehaviour(error_rate=0.5)
    assert run(c, clock)[-1] == "ROLLED_BACK"
    drained = next(e for e in store.events(record.id) if e.kind == "traffic off new version")
    assert drained.data["hosts"] == ["node1"]
    assert drained.data["fleet_short"] == ("the fleet serves 25.0 req/s; without node1 the hosts in service carry "
                                           "20.0 req/s (2 capacity units × 10 req/s)")
    assert set(sim.hosts.values()) == {"v1.2.0"}


def test_while_a_steps_hosts_switch_status_shows_the_share_still_live(tmp_path):
    sim, store, c, clock = world_of(tmp_path, [1, 1, 1, 1, 1, 1])
    c.start("v1.3.0")
    for _ in range(100):
        record = c.tick()
        if record.phase == "TRAFFIC" and record.state["step_index"] == 1 and record.state["weight_live"] is None:
            break
        clock.sleep(10)
    else:
        pytest.fail("never saw step 2 entered before its share went live")
    view = status_view(record, clock.now())
    live = sim.applied[-1][1]  # what the LBs have while step 2's hosts switch
    assert 10 < live < 50 and (view["weight_set"], view["weight_live"], view["weight_layout"]) == (50, None, live)
    assert live_weight(view) == f"{live}% (on its way to 50%)"
