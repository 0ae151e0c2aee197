"""The rollout policy: what operators set in `group_vars/all/rollout.yml` as `rollout_policy`.

Parsing is pure and reports every mistake at once, each naming its key, so
`rollout inventory check` can list them all. Command-line overrides go through the
same parser.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from canary.decisions.redact import redact_url

WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PolicyError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Policy:
    steps: tuple[int, ...] = (10, 50, 100)  # % of traffic to the new version, per step
    dwell_s: int = 300  # minimum time at each step
    min_requests: int = 200  # minimum canary requests at each step before it may pass
    interval_s: int = 30  # analysis interval
    step_max_s: int = 3600  # inconclusive for longer than this → inconclusive_action
    inconclusive_action: str = "pause"  # pause | fail
    consecutive_failures: int = 2  # fail verdicts in a row that roll back
    max_error_rate: float = 0.05  # absolute cap on the canary's attempt error rate
    max_p95_ms: int = 30_000  # absolute cap on the canary's p95 latency
    latency_max_ratio: float = 1.5  # canary median latency at most this × stable's
    # A version freshly started or switched answers its first requests slower (cold caches,
    # first-shape kernels) while the other side is warm: the first seconds of each stage are
    # not judged for latency (on either side; errors are judged from the first request), and
    # a slower median fails only when it is also this much slower in absolute terms.
    latency_settle_s: int = 30
    latency_min_effect_ms: int = 20
    # Streamed answers (stream_format): the canary's median time to first audio at most this ×
    # stable's. Judged once a step has LATENCY_MIN_N streamed canary answers; a fleet whose
    # clients do not stream is judged as before.
    ttfa_max_ratio: float = 1.5
    batch_size: int = 1  # at most this many hosts are switched at a time
    # A host may carry up to (1 + canary_headroom) × its share of the fleet's capacity while
    # others are switched or judged: 0.5 keeps every host at or below its capacity while the
    # fleet runs at up to 2/3 of its own, and lets a 3-host fleet take one host out.
    canary_headroom: float = 0.5
    capacity_unit_rps: float = 0.0  # requests/s one unit of tts_capacity serves (bench/capacity.py); 0: unknown
    canary_hosts: tuple[str, ...] = ()  # empty: the first canary-eligible host
    health_timeout_s: int = 180
    promotion_window: str = ""  # e.g. "02:00-05:00"; empty: any time
    promotion_timezone: str = "UTC"
    promotion_weekdays: tuple[str, ...] = WEEKDAYS
    promotion_not_before: str = ""  # ISO 8601 with an offset, e.g. 2026-11-26T02:00:00+01:00
    notify_url: str = ""
    # Where the judge's numbers come from: the LBs' access logs (every attempt, as clients
    # saw them), Prometheus (the service's own per-version series) or both (either failing
    # fails; a pass needs both).
    evidence: str = "access_log"
    prometheus_url: str = ""  # the server evidence: prometheus|both queries
    gate_latency_max_ratio: float = 2.0  # release gate: golden-prompt latency at most this × live version's
    gate_max_rtf: float = 1.0  # release gate: synthesis slower than real time fails
    # After the warm-up gate, pause with the canary at 0% so people can listen to it
    # (the LB's X-Voxfleet-Canary header); `rollout resume` gates it again, then step 1.
    listen_first: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Invalid(ValueError):
    """One key's value is wrong; the message says what it must be, and what it got."""


Validator = Callable[[Any], Any]


def _integer(minimum: int) -> Validator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise Invalid(f"must be an integer ≥ {minimum}, got {value!r}")
        return value
    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {value!r}")
    return value


def _number(lo: float, hi: float) -> Validator:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise Invalid(f"must be a number in [{lo}, {hi}], got {value!r}")
        return float(value)
    return check


def _one_of(*choices: str) -> Validator:
    def check(value: Any) -> str:
        if value not in choices:
            raise Invalid(f"must be {' or '.join(repr(c) for c in choices)}, got {value!r}")
        return str(value)
    return check


def _steps(value: Any) -> tuple[int, ...]:
    ints = isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ints or any(not 0 < v <= 100 for v in value) or list(value) != sorted(set(value)) or value[-1] != 100:
        raise Invalid(f"must be increasing percentages in 1..100 ending at 100, got {value!r}")
    return tuple(value)


def _window(value: Any) -> str:
    if value not in ("", None) and not (isinstance(value, str) and WINDOW.match(value)):
        raise Invalid(f"must look like '02:00-05:00', got {value!r}")
    return str(value or "")


def _weekdays(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or any(v not in WEEKDAYS for v in value):
        raise Invalid(f"must be a list of {', '.join(WEEKDAYS)}, got {value!r}")
    return tuple(value)


def _host_names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise Invalid(f"must be a list of inventory host names, got {value!r}")
    return tuple(value)


def _instant(value: Any) -> str:
    if value in ("", None):
        return ""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Invalid(f"must be an ISO 8601 time with an offset (2026-11-26T02:00:00+01:00), got {value!r}")
    return parsed.isoformat()


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"unknown time zone {value!r}") from None
    return str(value)


def _url(value: Any) -> str:
    if not isinstance(value, str) or (value and not value.startswith(("http://", "https://"))):
        raise Invalid(f"must be an http(s) URL, got {value!r}")
    return value


VALIDATORS: dict[str, Validator] = {
    "steps": _steps, "dwell_s": _integer(0), "min_requests": _integer(1), "interval_s": _integer(1),
    "step_max_s": _integer(1), "inconclusive_action": _one_of("pause", "fail"),
    "consecutive_failures": _integer(1), "max_error_rate": _number(0.0, 1.0), "max_p95_ms": _integer(1),
    "latency_max_ratio": _number(1.0, 100.0), "latency_settle_s": _integer(0), "latency_min_effect_ms": _integer(0),
    "ttfa_max_ratio": _number(1.0, 100.0), "batch_size": _integer(1), "canary_hosts": _host_names,
    "canary_headroom": _number(0.0, 10.0), "capacity_unit_rps": _number(0.0, 1e6),
    "health_timeout_s": _integer(60), "promotion_window": _window, "promotion_timezone": _timezone,
    "promotion_weekdays": _weekdays, "promotion_not_before": _instant, "notify_url": _url,
    "evidence": _one_of("access_log", "prometheus", "both"), "prometheus_url": _url,
    "gate_latency_max_ratio": _number(1.0, 100.0), "gate_max_rtf": _number(0.001, 100.0),
    "listen_first": _flag,
}
KNOWN_KEYS = tuple(f.name for f in fields(Policy) if f.name != "extra")
assert set(VALIDATORS) == set(KNOWN_KEYS), "every policy key has exactly one validator"


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_policy(raw: dict[str, Any] | None, base: Policy | None = None) -> Policy:
    """Validate `raw` over `base` (defaults); raise PolicyError listing every problem."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in dict(raw or {}).items():
        if key not in VALIDATORS:
            problems.append(f"rollout_policy.{key}: unknown key{_suggest(key)}")
            continue
        try:
            values[key] = VALIDATORS[key](value)
        except Invalid as exc:
            problems.append(f"rollout_policy.{key}: {exc}")
    policy = replace(base or Policy(), **values)
    if policy.step_max_s < policy.dwell_s:
        problems.append(f"rollout_policy.step_max_s ({policy.step_max_s}) must be ≥ dwell_s ({policy.dwell_s})")
    if policy.evidence != "access_log" and not policy.prometheus_url:
        problems.append(f"rollout_policy.prometheus_url: must be set for evidence: {policy.evidence}")
    if problems:
        raise PolicyError(problems)
    return policy


# A rollout's plan (its canary cohort, steps and batches) is built from these at start.
PLAN_KEYS = ("steps", "batch_size", "canary_headroom", "canary_hosts")


def stored_policy(policy: Policy) -> dict[str, Any]:
    """The policy as a rollout's state keeps it (JSON values: lists, not tuples): every
    key, the notify URL redacted."""
    return {k: redact_url(v) if k == "notify_url" else list(v) if isinstance(v, tuple) else v
            for k, v in asdict(policy).items() if k != "extra"}


def policy_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """`key: old → new` for each key whose value differs (stored policies)."""
    return [f"{key}: {before.get(key)!r} → {after.get(key)!r}" for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)]
