"""Capacity arithmetic: who carries how much of the load, and a rollout plan that never
gives a host more than its share of the fleet's capacity times `1 + canary_headroom` (pure).

A host's capacity is a relative number (`tts_capacity`, default its GPU count, 1 for a
CPU host). With total capacity C, a host of capacity c should carry c/C of the load;
its *load ratio* is what it is given divided by that. Every in-service host's ratio must
stay ≤ 1 + headroom, in every stage of a rollout and while hosts are switched.

Traffic is split in two sides: the new version's hosts N get a share s of the load and
the old version's hosts O the rest, each side by capacity. So a host on the new side has
ratio s·C/cap(N) and one on the old side (1 − s)·C/cap(O). Hosts being switched
(drained, deployed, verified) carry nothing, so the others carry more.

A plan is a list of stages. Each traffic step below 100% is a stage whose share is the
step's percentage, with just enough hosts on the new version to carry it (after the
first step, more while that leaves both versions' hosts more equally busy: their latencies
are compared, and a host run hotter than the others answers slower); the hosts it needs
are switched first, in batches, while the share stays between the previous step's
and this one's (whichever spreads the load best). The last step, 100%, is reached by
promotion batches: the remaining old hosts are switched a batch at a time, and between
batches every host carries load in proportion to its capacity (both versions), so the new
version keeps being judged against the old until no old host is left.

Arithmetic is exact (fractions): a bound that holds exactly must not fail by rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce
from math import gcd, lcm

# nginx takes `weight=` as an integer; every weight here is reduced to the smallest integers
# with the exact ratios, and a plan whose weights would not fit is refused.
MAX_WEIGHT = 1_000_000


class PlanError(ValueError):
    """The policy cannot be honoured on this fleet; the message names the step and the numbers."""


def capacity_units(value: float | int) -> Fraction:
    """A capacity as an exact fraction (two decimals are kept)."""
    return Fraction(round(float(value) * 100), 100)


@dataclass(frozen=True)
class Layout:
    """One moment of traffic: which hosts run the new version, which are out of service,
    and the new version's share of the load (None: every in-service host by capacity)."""

    new: frozenset[str]
    out: frozenset[str] = frozenset()
    share: Fraction | None = None


def effective_share(capacity: Mapping[str, Fraction], layout: Layout) -> Fraction:
    """The new version's share of the load in `layout` (resolves None to by-capacity)."""
    serving = [h for h in capacity if h not in layout.out]
    new = sum((capacity[h] for h in serving if h in layout.new), Fraction(0))
    total = sum((capacity[h] for h in serving), Fraction(0))
    if layout.share is not None:
        return layout.share
    return new / total if total else Fraction(0)


def load_ratios(capacity: Mapping[str, Fraction], layout: Layout) -> dict[str, Fraction]:
    """Each in-service host's share of the load ÷ its share of the fleet's capacity; a side
    that is given load but has no capacity in service gets an infinite ratio (None)."""
    total = sum(capacity.values(), Fraction(0))
    share = effective_share(capacity, layout)
    ratios: dict[str, Fraction] = {}
    for side_hosts, side_share in ((layout.new, share), (set(capacity) - layout.new, 1 - share)):
        serving = [h for h in side_hosts if h not in layout.out]
        side_capacity = sum((capacity[h] for h in serving), Fraction(0))
        if side_share > 0 and side_capacity == 0:
            raise PlanError(f"{float(side_share):.0%} of the load would have no host in service to go to")
        for host in serving:
            ratios[host] = side_share * total / side_capacity if side_capacity else Fraction(0)
    return ratios


def peak(capacity: Mapping[str, Fraction], layout: Layout) -> Fraction:
    ratios = load_ratios(capacity, layout)
    return max(ratios.values()) if ratios else Fraction(0)


def weights(capacity: Mapping[str, Fraction], layout: Layout) -> dict[str, int]:
    """Integer nginx weights for the in-service hosts that carry load, proportional to the
    load `layout` gives each (hosts given nothing are left out: the caller marks them)."""
    total = sum(capacity.values(), Fraction(0))
    loads = {h: r * capacity[h] / total for h, r in load_ratios(capacity, layout).items() if r > 0}
    if not loads:
        return {}
    scale = reduce(lcm, (f.denominator for f in loads.values()), 1)
    ints = {h: int(f * scale) for h, f in loads.items()}
    divisor = reduce(gcd, ints.values())
    out = {h: w // divisor for h, w in ints.items()}
    if max(out.values()) > MAX_WEIGHT:
        raise PlanError(f"weights {out} exceed {MAX_WEIGHT}: use capacities with fewer decimals")
    return out


@dataclass(frozen=True)
class Stage:
    """One step of the plan: its share (percent; None for a promotion batch, judged with
    load by capacity), the batches switched to the new version before it, the new
    version's hosts once they are, and the highest load ratio any host sees meanwhile."""

    percent: int | None
    switch: tuple[tuple[str, ...], ...]
    new_hosts: tuple[str, ...]
    peak: Fraction

    @property
    def is_promotion(self) -> bool:
        return self.percent is None


@dataclass(frozen=True)
class Host:
    name: str
    capacity: Fraction
    canary_eligible: bool = True


def switch_layout(new: Iterable[str], batch: Iterable[str], low: Fraction, high: Fraction,
                  capacity: Mapping[str, Fraction]) -> Layout:
    """While `batch` is switched: the new version's share that spreads the load best,
    within [low, high] (the previous step's share and the next one's)."""
    new, out = frozenset(new), frozenset(batch)
    proportional = effective_share(capacity, Layout(new, out))
    return Layout(new, out, min(max(proportional, low), high))


class _Planner:
    def __init__(self, hosts: Sequence[Host], headroom: float, batch_size: int) -> None:
        self.capacity = {h.name: h.capacity for h in hosts}
        self.eligible = {h.name for h in hosts if h.canary_eligible}
        self.order = [h.name for h in hosts]
        self.limit = 1 + Fraction(headroom).limit_denominator(1000)
        self.batch_size = batch_size

    def peak(self, layout: Layout) -> Fraction:
        """The layout's highest load ratio; a side with load and no host counts as infinite."""
        try:
            return peak(self.capacity, layout)
        except PlanError:
            return Fraction(10**9)

    def ok(self, layout: Layout) -> bool:
        return self.peak(layout) <= self.limit

    def why_not(self, layout: Layout) -> str:
        """What is wrong with `layout`: the host over the limit, and by how much."""
        draining = f"with {', '.join(sorted(layout.out))} out of traffic, " if layout.out else ""
        try:
            ratios = load_ratios(self.capacity, layout)
        except PlanError as exc:
            return draining + str(exc)
        host = max(sorted(ratios), key=lambda h: ratios[h])
        return (f"{draining}{host} would carry {float(ratios[host]):.2f}× its share of the fleet's capacity, "
                f"above 1 + canary_headroom = {float(self.limit):.2f}")

    def imbalance(self, layout: Layout) -> Fraction:
        """The busiest loaded host's load ratio ÷ the idlest one's (1: all equally busy)."""
        ratios = [r for r in load_ratios(self.capacity, layout).values() if r > 0]
        return max(ratios) / min(ratios) if ratios else Fraction(1)

    def fairer(self, new: list[str], low: Fraction, high: Fraction, target: Fraction,
               label: str) -> tuple[tuple[str, ...], Fraction] | None:
        """One more batch to switch before the step at `target` when that leaves the two
        versions' hosts more equally busy (their latencies are compared: a canary run
        hotter than its share looks slower than it is); None when it would not."""
        try:
            batch, drain_peak = self.batch(new, low, high, target, set(self.capacity), label)
        except PlanError:
            return None
        before, after = Layout(frozenset(new), share=target), Layout(frozenset([*new, *batch]), share=target)
        if not self.ok(after) or self.imbalance(after) >= self.imbalance(before):
            return None
        return batch, drain_peak

    def batch(self, new: list[str], low: Fraction, high: Fraction, target: Fraction | None,
              allowed: set[str], label: str) -> tuple[tuple[str, ...], Fraction]:
        """The next batch to switch to the new version (and the peak while it is switched):
        hosts chosen one at a time, each keeping the drain within bounds and leaving the
        best stage behind, until the batch is full or the stage at `target` (None: load
        by capacity) is within bounds."""
        batch: list[str] = []
        while len(batch) < self.batch_size:
            if batch and target is not None and self.ok(Layout(frozenset(new + batch), share=target)):
                break
            candidates = [h for h in self.order if h not in new and h not in batch and h in allowed
                          and self.ok(switch_layout(new, [*batch, h], low, high, self.capacity))]
            if not candidates:
                break
            batch.append(min(candidates, key=lambda h: (
                self.peak(Layout(frozenset([*new, *batch, h]), share=target)),
                self.peak(switch_layout(new, [*batch, h], low, high, self.capacity)), self.order.index(h))))
        if not batch:
            left = [h for h in self.order if h not in new and h in allowed]
            if not left:
                raise PlanError(f"{label}: no {'canary-eligible ' if allowed != set(self.capacity) else ''}"
                                "host is left to switch to the new version")
            drains = [switch_layout(new, [h], low, high, self.capacity) for h in left]
            raise PlanError(f"{label}: no host can be taken out of traffic to switch it: "
                            + self.why_not(min(drains, key=self.peak)))
        return tuple(batch), self.peak(switch_layout(new, batch, low, high, self.capacity))


def plan_stages(hosts: Sequence[Host], steps: Sequence[int], headroom: float, batch_size: int = 1,
                canaries: Sequence[str] = ()) -> list[Stage]:
    """The stages of a rollout of `steps` (percent, ending at 100) over `hosts`.

    The first step's new hosts are the canaries: `canaries` when given (they must carry
    the step within bounds), else the fewest canary-eligible hosts that can. PlanError
    names the step and the numbers when the policy cannot be honoured."""
    planner = _Planner(hosts, headroom, batch_size)
    if len(hosts) < 2:
        raise PlanError(f"a fleet of {len(hosts)} host cannot take a host out of traffic to switch it")
    stages: list[Stage] = []
    new: list[str] = []
    share = Fraction(0)
    for index, percent in enumerate(p for p in steps if p < 100):
        label, target = f"step {index + 1} ({percent}%)", Fraction(percent, 100)
        high = target if index else Fraction(0)  # canaries are switched with no traffic
        allowed = planner.eligible if index == 0 else set(planner.capacity)
        switched: list[tuple[str, ...]] = []
        worst = Fraction(0)
        if index == 0 and canaries:
            drain = switch_layout([], canaries, share, high, planner.capacity)
            if not planner.ok(drain):
                raise PlanError(f"canary deploy of {', '.join(canaries)} (canary_hosts): {planner.why_not(drain)}")
            switched, worst, new = [tuple(canaries)], planner.peak(drain), list(canaries)
        while not planner.ok(Layout(frozenset(new), share=target)):
            if index == 0 and canaries:
                raise PlanError(f"{label} on canary_hosts {', '.join(canaries)}: "
                                + planner.why_not(Layout(frozenset(new), share=target)))
            batch, drain_peak = planner.batch(new, share, high, target, allowed, label)
            switched.append(batch)
            worst = max(worst, drain_peak)
            new += batch
        while index and (more := planner.fairer(new, share, high, target, label)):
            batch, drain_peak = more
            switched.append(batch)
            worst = max(worst, drain_peak)
            new += batch
        stage = Layout(frozenset(new), share=target)
        stages.append(Stage(percent, tuple(switched), tuple(new), max(worst, planner.peak(stage))))
        share = target
    while len(new) < len(hosts):
        label = f"promotion batch {len(stages) - sum(1 for s in stages if not s.is_promotion) + 1}"
        allowed = set(planner.capacity) if new else planner.eligible  # the first hosts are canaries
        batch, drain_peak = planner.batch(new, Fraction(0), Fraction(1), None, allowed, label)
        new += batch
        stages.append(Stage(None, (batch,), tuple(new), max(drain_peak, planner.peak(Layout(frozenset(new))))))
    return stages


def drain_shortfall(capacity: Mapping[str, Fraction], out: set[str], rate_rps: float, unit_rps: float) -> str | None:
    """None when the hosts left in service (all but `out`) can carry `rate_rps` at
    `unit_rps` per unit of capacity; else what is short, with the numbers."""
    remaining = sum((c for h, c in capacity.items() if h not in out), Fraction(0))
    can_carry = float(remaining) * unit_rps
    if rate_rps <= can_carry:
        return None
    return (f"the fleet serves {rate_rps:.1f} req/s; without {', '.join(sorted(out))} the hosts in service carry "
            f"{can_carry:.1f} req/s ({float(remaining):g} capacity units × {unit_rps:g} req/s)")
