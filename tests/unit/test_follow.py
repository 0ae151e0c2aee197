"""`rollout start` in the foreground looks at the evidence once an interval, in every judged phase."""

from __future__ import annotations

from canary.rollout.production import follow
from tests.unit.fakes import POLICY


def test_the_foreground_loop_waits_an_interval_between_looks_in_steps_and_promotion(world):
    sim, store, controller, clock = world
    c = controller()
    record = c.start("v1.3.0")
    ticks, tick = [0], c.tick

    def bounded_tick():  # a loop that never waits would tick forever on the fake clock
        ticks[0] += 1
        assert ticks[0] < 400, "the foreground loop looks again without waiting"
        return tick()

    c.tick = bounded_tick
    assert follow(c, record) == 0
    verdicts = [e for e in store.events(record.id) if e.kind == "verdict"]
    promoting = [e for e in verdicts if e.data.get("stage", "").startswith(("promotion", "after promotion"))]
    assert promoting, [e.data.get("stage") for e in verdicts]
    gaps = [b.at - a.at for a, b in zip(verdicts, verdicts[1:])]
    assert min(gaps) >= POLICY["interval_s"], gaps
