"""An operator edits rollout_policy in the inventory while a rollout runs: the next tick
records the edit once and the rollout keeps the policy it started with; `rollout resume
--adopt-policy` takes the new one, except the keys the rollout's plan was built from."""

from __future__ import annotations

from dataclasses import replace

import pytest

from canary.adapters.store import Store
from canary.decisions.policy import Policy
from canary.rollout.controller import Controller, RolloutError
from tests.unit.fakes import FakeClock, SimulatedFleet, make_fleet, run, to_first_step


@pytest.fixture
def world(tmp_path):
    clock = FakeClock()
    sim = SimulatedFleet(hosts={f"node{i}": "v1.2.0" for i in (1, 2, 3)},
                         addresses={f"node{i}": f"10.9.0.{i}:6006" for i in (1, 2, 3)},
                         registry_tags={"v1.2.0", "v1.3.0"}, clock=clock)
    fleet = make_fleet(tmp_path)
    store = Store(tmp_path / "state.db")

    def controller(inventory: Policy | None = None) -> Controller:
        """A fresh process reading the inventory, its rollout_policy as `inventory` says."""
        return Controller(replace(fleet, inventory_policy=inventory or fleet.policy), store, sim, sim, sim, sim,
                          sim, clock, actor="tester")

    record = controller().start("v1.3.0")
    to_first_step(controller(), clock, record.id)
    return store, controller, clock, fleet.policy, record.id


def events(store: Store, rollout_id: str, kind: str) -> list:
    return [e for e in store.events(rollout_id) if e.kind == kind]


def test_an_edit_is_recorded_once_and_the_rollout_keeps_its_policy(world):
    store, controller, clock, started, rollout_id = world
    edited = replace(started, max_error_rate=0.01, dwell_s=started.dwell_s + 300)
    for _ in range(4):
        controller(edited).tick()
        clock.sleep(10)
    (noticed,) = events(store, rollout_id, "policy edited")
    assert noticed.data["changes"] == [f"dwell_s: {started.dwell_s} → {edited.dwell_s}",
                                       f"max_error_rate: {started.max_error_rate} → 0.01"]
    assert "keeps the policy it started with" in noticed.data["message"]
    policy = store.get(rollout_id).state["policy"]
    assert (policy["dwell_s"], policy["max_error_rate"]) == (started.dwell_s, started.max_error_rate)


def test_adopting_the_edit_runs_the_rest_with_it(world):
    store, controller, clock, started, rollout_id = world
    edited = replace(started, max_error_rate=0.01, dwell_s=started.dwell_s + 300)
    controller(edited).tick()
    controller(edited).resume("the stricter cap", adopt_policy=True)
    (adopted,) = events(store, rollout_id, "policy adopted")
    assert adopted.actor == "tester" and adopted.data["reason"] == "the stricter cap"
    assert len(adopted.data["changes"]) == 2
    policy = store.get(rollout_id).state["policy"]
    assert (policy["dwell_s"], policy["max_error_rate"]) == (edited.dwell_s, 0.01)
    before = len(store.events(rollout_id))
    controller(edited).tick()
    assert not [e for e in store.events(rollout_id)[before:] if e.kind == "policy edited"]  # nothing new to notice
    with pytest.raises(RolloutError, match="already runs with the rollout_policy"):
        controller(edited).resume("again", adopt_policy=True)
    assert run(controller(edited), clock)[-1] == "SUCCEEDED"


@pytest.mark.parametrize("key, value", [("steps", (20, 50, 100)), ("batch_size", 2), ("canary_headroom", 1.0)])
def test_adopting_a_key_the_plan_was_built_from_is_refused_naming_it(world, key, value):
    store, controller, clock, started, rollout_id = world
    before = store.get(rollout_id)
    with pytest.raises(RolloutError, match=rf"rollout_policy\.{key} changed: rollout {rollout_id}'s plan"):
        controller(replace(started, **{key: value}, dwell_s=1)).resume("x", adopt_policy=True)
    after = store.get(rollout_id)
    assert after.state == before.state and after.revision == before.revision
