"""Fixtures for driving the controller with in-memory ports."""

from __future__ import annotations

import pytest

from canary.adapters.store import Store
from canary.rollout.controller import Controller
from tests.unit.fakes import FakeClock, SimulatedFleet, make_fleet


@pytest.fixture
def world(tmp_path):
    """(simulated fleet, real SQLite store, factory of fresh controllers, fake clock)."""
    clock = FakeClock()
    sim = SimulatedFleet(hosts={"node1": "v1.2.0", "node2": "v1.2.0", "node3": "v1.2.0"},
                         addresses={f"node{i}": f"10.9.0.{i}:6006" for i in (1, 2, 3)},
                         registry_tags={"v1.2.0", "v1.3.0", "v1.4.0"}, clock=clock)
    fleet = make_fleet(tmp_path)
    store = Store(tmp_path / "state.db")

    def controller(actor: str = "tester") -> Controller:  # a fresh process: nothing in memory
        return Controller(fleet, store, sim, sim, sim, sim, sim, clock, actor=actor)

    return sim, store, controller, clock
