"""The capacity-true plan, as properties over many fleets: at every step, every switch and
every promotion batch, no host's share of the load exceeds its share of the capacity
times 1 + headroom; weights are exact integers nginx accepts; the plan ends with every
host on the new version; and a policy that cannot be honoured is refused by name."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from canary.decisions.capacity import (
    MAX_WEIGHT,
    Host,
    Layout,
    PlanError,
    Stage,
    capacity_units,
    load_ratios,
    plan_stages,
    switch_layout,
    weights,
)

capacities = st.sampled_from([Fraction(1), Fraction(1), Fraction(2), Fraction(4), Fraction(3, 2), Fraction(1, 2)])


@st.composite
def fleets(draw: st.DrawFn, min_hosts: int = 1, max_hosts: int = 16) -> list[Host]:
    n = draw(st.integers(min_hosts, max_hosts))
    caps = draw(st.lists(capacities, min_size=n, max_size=n))
    eligible = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    eligible[draw(st.integers(0, n - 1))] = True
    return [Host(f"h{i:02d}", c, e) for i, (c, e) in enumerate(zip(caps, eligible))]


steps_lists = st.lists(st.integers(1, 99), max_size=4, unique=True).map(lambda s: [*sorted(s), 100])
headrooms = st.sampled_from([0.1, 0.25, 0.5, 1.0, 2.0])


def every_layout(stages: list[Stage], capacity: dict[str, Fraction]) -> list[tuple[str, Layout]]:
    """Every traffic layout the plan goes through, each switch included, with its name."""
    out: list[tuple[str, Layout]] = []
    new: list[str] = []
    share = Fraction(0)
    for stage in stages:
        target = None if stage.percent is None else Fraction(stage.percent, 100)
        if target is None:
            low, high = Fraction(0), Fraction(1)
        else:
            low, high = share, target if new else Fraction(0)
        for batch in stage.switch:
            out.append((f"switching {batch}", switch_layout(new, batch, low, high, capacity)))
            new += batch
        out.append((f"stage {stage.percent}", Layout(frozenset(new), share=target)))
        share = target if target is not None else share
    return out


@settings(max_examples=150, deadline=None)
@given(fleets(), steps_lists, headrooms, st.integers(1, 4))
def test_no_host_ever_carries_more_than_its_capacity_allows(hosts, steps, headroom, batch_size):
    capacity = {h.name: h.capacity for h in hosts}
    try:
        stages = plan_stages(hosts, steps, headroom, batch_size)
    except PlanError as exc:
        assert "step" in str(exc) or "batch" in str(exc) or "fleet of" in str(exc)
        return
    limit = 1 + Fraction(headroom).limit_denominator(1000)
    for name, layout in every_layout(stages, capacity):
        ratios = load_ratios(capacity, layout)
        assert max(ratios.values()) <= limit, (name, {h: float(r) for h, r in ratios.items()})
        ints = weights(capacity, layout)
        assert all(isinstance(w, int) and 1 <= w <= MAX_WEIGHT for w in ints.values())
        total_w, total_c = sum(ints.values()), sum(capacity.values())
        for host, w in ints.items():  # the weights give exactly the intended loads
            assert Fraction(w, total_w) == ratios[host] * capacity[host] / total_c
    assert set(stages[-1].new_hosts) == {h.name for h in hosts}
    assert [s.percent for s in stages if not s.is_promotion] == [p for p in steps if p < 100]
    first = stages[0].new_hosts
    assert all(h.canary_eligible for h in hosts if h.name in first)
    switched = [h for s in stages for b in s.switch for h in b]
    assert sorted(switched) == sorted(h.name for h in hosts) and all(len(b) <= batch_size for s in stages
                                                                      for b in s.switch)


@settings(max_examples=100, deadline=None)
@given(st.integers(3, 16), steps_lists, st.integers(1, 3))
def test_equal_hosts_from_three_up_always_have_a_plan_at_the_default_headroom(n, steps, batch_size):
    # The canaries are switched with no traffic on the new version, so at most a third of
    # the fleet (the others then carry 1.5× their share); the first step must fit on them.
    assume(steps[0] == 100 or steps[0] * n <= 150 * (n // 3))
    hosts = [Host(f"h{i:02d}", Fraction(1)) for i in range(n)]
    stages = plan_stages(hosts, steps, 0.5, batch_size)
    assert len(stages[0].new_hosts) <= -(-n * steps[0] // 150) or steps[0] == 100  # the fewest canaries


def test_three_equal_hosts_one_canary_then_promotion_host_by_host():
    hosts = [Host(n, Fraction(1)) for n in ("node1", "node2", "node3")]
    stages = plan_stages(hosts, [10, 50, 100], 0.5)
    assert [(s.percent, s.switch, s.new_hosts) for s in stages] == [
        (10, (("node1",),), ("node1",)),
        (50, (), ("node1",)),
        (None, (("node2",),), ("node1", "node2")),
        (None, (("node3",),), ("node1", "node2", "node3"))]
    assert max(s.peak for s in stages) == Fraction(3, 2)


def test_a_two_gpu_host_gets_twice_the_weight_of_a_one_gpu_host():
    capacity = {"a": Fraction(1), "b": Fraction(1), "c": Fraction(2)}
    assert weights(capacity, Layout(frozenset())) == {"a": 1, "b": 1, "c": 2}
    assert weights(capacity, Layout(frozenset({"a"}), share=Fraction(1, 10))) == {"a": 1, "b": 3, "c": 6}


@pytest.mark.parametrize(("hosts", "steps", "canaries", "fragment"), [
    ([Host("a", Fraction(1)), Host("b", Fraction(1)), Host("c", Fraction(1))], [60, 100], ["a"],
     "step 1 (60%) on canary_hosts a: a would carry 1.80× its share of the fleet's capacity, above 1 + "
     "canary_headroom = 1.50"),
    ([Host("a", Fraction(1)), Host("b", Fraction(1)), Host("c", Fraction(2))], [10, 50, 100], [],
     "promotion batch 1: no host can be taken out of traffic to switch it: with c out of traffic"),
    ([Host("a", Fraction(1))], [10, 100], [], "a fleet of 1 host cannot take a host out"),
    ([Host("a", Fraction(1)), Host("b", Fraction(1))], [10, 100], [],
     "step 1 (10%): no host can be taken out of traffic to switch it: with a out of traffic, b would carry 2.00×"),
])
def test_a_policy_that_cannot_be_honoured_is_refused_naming_the_step_and_the_numbers(hosts, steps, canaries, fragment):
    with pytest.raises(PlanError) as info:
        plan_stages(hosts, steps, 0.5, 1, canaries)
    assert fragment in str(info.value)


def test_capacities_keep_two_decimals():
    assert capacity_units(1.5) == Fraction(3, 2) and capacity_units(2) == 2 and capacity_units(0.333) == Fraction(33,
                                                                                                                 100)


def test_a_later_step_takes_more_hosts_when_that_leaves_both_versions_equally_busy():
    # node1 alone could carry 50% within a 1.0 headroom (2× its share) while the others sat at
    # 0.67×: its latency would be compared with hosts a third as busy. node2 joins it instead.
    hosts = [Host("node1", Fraction(1)), Host("node2", Fraction(1)), Host("node3", Fraction(2))]
    stages = plan_stages(hosts, [10, 50, 100], 1.0)
    assert [(s.percent, s.new_hosts) for s in stages][:2] == [(10, ("node1",)), (50, ("node1", "node2"))]
    ratios = load_ratios({h.name: h.capacity for h in hosts}, Layout(frozenset({"node1", "node2"}), share=Fraction(1, 2)))
    assert set(ratios.values()) == {1}
    # no gain, no extra host: three equal hosts at 50% are as unequal with one new host as with two
    equal = plan_stages([Host(n, Fraction(1)) for n in ("a", "b", "c")], [10, 50, 100], 0.5)
    assert equal[1].new_hosts == ("a",)
