"""An inventory edited during a rollout: a clear message and a safe outcome."""

from __future__ import annotations

from dataclasses import replace

import pytest

from canary.decisions.drift import inventory_drift
from canary.decisions.inventory import Fleet, Node
from canary.decisions.plan import RolloutState, plan_rollout
from canary.rollout.controller import Controller, RolloutError
from tests.unit.fakes import make_fleet, run, ticked, to_first_step


def edited(fleet: Fleet, drop: str | None = None, add: str | None = None, move: str | None = None) -> Fleet:
    nodes = [n for n in fleet.nodes if n.name != drop]
    nodes = [replace(n, upstream="10.9.9.9:6006") if n.name == move else n for n in nodes]
    if add:
        nodes.append(Node(add, "10.9.0.4:6006", 0, "", True, "127.0.0.1:2204"))
    return replace(fleet, nodes=tuple(nodes))


def on_edited(c: Controller, **edit: str) -> Controller:
    """The same rollout's controller, reading an inventory edited meanwhile."""
    return Controller(edited(c.fleet, **edit), c.store, c.fleet_port, c.traffic, c.metrics, c.probe, c.registry,
                      c.clock, actor=c.actor)


def test_drift_names_added_removed_and_moved_hosts(tmp_path):
    fleet = make_fleet(tmp_path)
    state = plan_rollout(fleet, fleet.policy, "r-1", "v1.3.0", "v1.2.0")
    unchanged = inventory_drift(state, fleet)
    assert not unchanged.blocking and not unchanged.added
    drift = inventory_drift(state, edited(fleet, drop="node1", add="node4", move="node3"))
    assert (drift.added, drift.removed, drift.moved) == (("node4",), ("node1",), ("node3",))
    assert drift.blocking
    text = drift.describe(state, "inventory/production")
    assert "node1 (canary) removed" in text and "node3 changed address" in text and "node4 added" in text


def test_a_removed_stable_host_pauses_the_rollout_and_leaves_traffic_alone(world, tmp_path):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    applied = len(sim.applied)

    shrunk = on_edited(c, drop="node3")
    paused = ticked(shrunk)
    assert paused.phase == "PAUSED"
    assert "node3 (stable) removed" in (paused.reason or "") and "rollout abort" in (paused.reason or "")
    assert len(sim.applied) == applied  # no traffic change it did not mean
    assert ticked(shrunk).phase == "PAUSED"  # ticks wait for the operator
    with pytest.raises(RolloutError, match="node3"):
        shrunk.resume("go on")

    shrunk.abort("node3 is gone")
    assert run(shrunk, clock)[-1] == "ROLLED_BACK"
    assert {s.address for s in sim.servers} == {"10.9.0.1:6006", "10.9.0.2:6006"}  # LB: listed hosts only
    assert all(s.version == "v1.2.0" and s.state == "up" for s in sim.servers)
    assert not any("node3" in hosts for _, hosts, pull_only in sim.deploys if not pull_only)


def test_a_removed_canary_is_taken_out_of_traffic_on_abort(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    canary = store.get(record.id).state["canary_hosts"][0]

    without = on_edited(c, drop=canary)
    assert f"{canary} (canary) removed" in (ticked(without).reason or "")
    without.abort("canary host decommissioned")
    assert run(without, clock)[-1] == "ROLLED_BACK"
    assert sim.addresses[canary] not in {s.address for s in sim.servers}
    assert sim.share("v1.3.0") == 0.0


def test_an_added_host_is_noted_once_and_the_rollout_goes_on(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    grown = on_edited(c, add="node4")
    assert run(grown, clock)[-1] == "SUCCEEDED"
    noted = [e for e in store.events(record.id) if e.kind == "inventory changed"]
    assert len(noted) == 1 and "node4 added (not part of this rollout)" in noted[0].data["message"]
    assert RolloutState.from_dict(store.get(record.id).state).ignored_hosts == ["node4"]


def started_then_edited(world, **edit: str) -> tuple[str, str]:
    """Start a rollout, edit the inventory before its preflight, run it: (id, end phase)."""
    _, _, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    return record.id, run(on_edited(c, **edit), clock)[-1]


def test_an_inventory_changed_before_preflight_stops_touching_nothing(world):
    sim, store, _, _ = world
    rollout_id, end = started_then_edited(world, move="node2")
    assert end == "PREFLIGHT_FAILED"
    final = store.get(rollout_id)
    assert "node2 changed address" in final.reason and "start the rollout again" in final.reason
    assert sim.deploys == [] and sim.applied == []


def test_a_host_added_before_preflight_is_left_out_and_the_rollout_goes_on(world):
    sim, store, _, _ = world
    rollout_id, end = started_then_edited(world, add="node4")
    assert end == "SUCCEEDED"
    assert not any("node4" in hosts for _, hosts, _ in sim.deploys)
    assert RolloutState.from_dict(store.get(rollout_id).state).ignored_hosts == ["node4"]


def test_an_abort_while_rolling_back_follows_the_inventory(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    to_first_step(c, clock, record.id)
    c.abort("first abort")
    shrunk = on_edited(c, drop="node3")
    shrunk.abort("again, with node3 gone")
    assert "node3" not in store.get(record.id).state["upstream"]
    assert run(shrunk, clock)[-1] == "ROLLED_BACK"
    assert {s.address for s in sim.servers} == {"10.9.0.1:6006", "10.9.0.2:6006"}
