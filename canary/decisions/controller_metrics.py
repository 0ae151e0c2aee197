"""The controller's own metrics, in Prometheus' text exposition format (pure: rollout
records in, text out; `rollout metrics` prints or serves it).

Per fleet, of its latest rollout: the phase (one series per phase, 1 for the current
one), step, weight set and live, and the last verdict's numbers for each side; per fleet
and outcome, how many rollouts ended so (a counter: it only grows while history is kept).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from canary.decisions.phases import Phase
from canary.decisions.plan import RolloutState, traffic_layout
from canary.decisions.status import metric_numbers
from canary.decisions.traffic import canary_percent_of

PREFIX = "voxfleet"
HELP = {
    "rollout_phase": ("gauge", "1 for the phase the fleet's latest rollout is in, 0 for the others"),
    "rollout_step": ("gauge", "the latest rollout's traffic step (1-based; 0 before the first)"),
    "rollout_weight_set_percent": ("gauge", "the canary share the controller means to have live"),
    "rollout_weight_live_percent": ("gauge", "the canary share confirmed live on every LB (-1: not known)"),
    "verdict": ("gauge", "1 for the last verdict's outcome (pass, fail, inconclusive), 0 for the others"),
    "verdict_requests": ("gauge", "requests the last verdict counted, by side (canary, stable)"),
    "verdict_error_rate": ("gauge", "error rate at the last verdict, by side"),
    "verdict_shed_rate": ("gauge", "shed rate (429/503) at the last verdict, by side"),
    "verdict_latency_median_seconds": ("gauge", "median latency at the last verdict, by side"),
    "verdict_latency_p95_seconds": ("gauge", "p95 latency at the last verdict, by side"),
    "rollouts_total": ("counter", "rollouts that ended, by result"),
}
SIDES = {"canary": "", "stable": "stable_"}


def _labels(labels: dict[str, str]) -> str:
    def quoted(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return "{" + ",".join(f'{k}="{quoted(v)}"' for k, v in labels.items()) + "}"


def _latest_series(record: Any) -> list[tuple[str, dict[str, str], float]]:
    state = record.state
    base = {"fleet": record.fleet, "rollout_id": record.id, "version": record.version}
    meant = canary_percent_of(traffic_layout(RolloutState.from_dict(state))[0])
    judged = record.phase in (Phase.TRAFFIC.value, Phase.PROMOTING.value)
    live = state.get("weight_live") if judged else meant  # outside the steps, each phase's layout is applied in it
    series = [("rollout_phase", base | {"phase": p.value}, float(record.phase == p.value)) for p in Phase]
    series += [("rollout_step", base, float(state.get("step_index", -1)) + 1),
               ("rollout_weight_set_percent", base, float(meant)),
               ("rollout_weight_live_percent", base, float(live) if live is not None else -1.0)]
    verdict = (state.get("last_verdict") or {}).get("verdict") or {}
    if not verdict:
        return series
    series += [("verdict", base | {"outcome": o}, float(verdict.get("verdict") == o))
               for o in ("pass", "fail", "inconclusive")]
    series += [("verdict_requests", base | {"side": "canary"}, float(verdict.get("canary_n", 0))),
               ("verdict_requests", base | {"side": "stable"}, float(verdict.get("stable_n", 0)))]
    for side, prefix in SIDES.items():
        for name, metric, field in (("verdict_error_rate", "error_rate", "rate"), ("verdict_shed_rate", "shed", "rate"),
                                    ("verdict_latency_median_seconds", "latency", "median_s"),
                                    ("verdict_latency_p95_seconds", "latency", "p95_s")):
            value = metric_numbers(verdict, metric).get(prefix + field)
            if isinstance(value, int | float):
                series.append((name, base | {"side": side}, float(value)))
    return series


def exposition(records: Iterable[Any]) -> str:
    """The text `/metrics` serves for these rollout records (store Records, any order)."""
    records = sorted(records, key=lambda r: r.started_at)
    latest: dict[str, Any] = {}
    ended: Counter[tuple[str, str]] = Counter()
    for record in records:
        latest[record.fleet] = record
        if record.result:
            ended[(record.fleet, record.result)] += 1
    series = [s for record in latest.values() for s in _latest_series(record)]
    series += [("rollouts_total", {"fleet": fleet, "result": result}, float(n))
               for (fleet, result), n in sorted(ended.items())]
    lines = []
    for name, (kind, text) in HELP.items():
        rows = [(labels, value) for metric, labels, value in series if metric == name]
        if not rows:
            continue
        lines += [f"# HELP {PREFIX}_{name} {text}", f"# TYPE {PREFIX}_{name} {kind}"]
        lines += [f"{PREFIX}_{name}{_labels(labels)} {value:g}" for labels, value in rows]
    return "\n".join(lines) + "\n"
