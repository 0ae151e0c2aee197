"""Measure what a fleet serves: the highest steady request rate at which its p95 latency
stays within 2× its unloaded p95, with no failed request (bench/capacity.py, and the
end-to-end tests that must run near the sandbox's capacity).

The rate climbs in steps, each held long enough for queues to show; the first step that
fails the bound ends the climb, and the capacity is the last rate that met it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from canary.devtools.loadgen import LoadGenerator, LoadResult

P95_BOUND = 2.0  # × the unloaded p95


@dataclass(frozen=True)
class RateStep:
    rps: float
    requests: int
    failed: int
    shed: int
    p95_s: float

    def within(self, unloaded_p95_s: float) -> bool:
        return self.failed == 0 and self.p95_s <= P95_BOUND * unloaded_p95_s


@dataclass(frozen=True)
class Capacity:
    unloaded_p95_s: float
    rps: float  # the highest rate within the bound (0: not even the first)
    steps: tuple[RateStep, ...] = field(default_factory=tuple)

    def table(self) -> list[str]:
        rows = [f"  unloaded p95 {self.unloaded_p95_s:.3f} s; bound {P95_BOUND:g}× = "
                f"{P95_BOUND * self.unloaded_p95_s:.3f} s",
                f"  {'req/s':>6} {'requests':>8} {'failed':>6} {'shed':>5} {'p95 s':>7}  within"]
        rows += [f"  {s.rps:>6.1f} {s.requests:>8} {s.failed:>6} {s.shed:>5} {s.p95_s:>7.3f}  "
                 f"{'yes' if s.within(self.unloaded_p95_s) else 'no'}" for s in self.steps]
        return rows + [f"  capacity: {self.rps:.1f} req/s"]


def _step(urls: Sequence[str], rps: float, seconds: float) -> LoadResult:
    return LoadGenerator(urls, rps=rps).run(duration_s=seconds)


def measure_capacity(urls: str | Sequence[str], start_rps: float = 1.0, factor: float = 1.25,
                     step_s: float = 30.0, max_rps: float = 60.0) -> Capacity:
    """Climb from `start_rps` by `factor` until the p95 bound or a failure is crossed."""
    targets = [urls] if isinstance(urls, str) else list(urls)
    _step(targets, 1.0, 5.0)  # warm the connections and the caches: not measured
    unloaded = _step(targets, 1.0, 30.0).p95_s()  # no queueing at one request a second
    steps: list[RateStep] = []
    best, rps = 0.0, start_rps
    while rps <= max_rps:
        result = _step(targets, rps, step_s)
        step = RateStep(rps, len(result.outcomes), len(result.failed), len(result.shed), result.p95_s())
        steps.append(step)
        if not step.within(unloaded):
            break
        best = rps
        rps = round(rps * factor, 2)
    return Capacity(unloaded, best, tuple(steps))
