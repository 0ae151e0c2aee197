"""The rollout policy: what operators set in `group_vars/all/rollout.yml` as `rollout_policy`.

Parsing is pure and reports every mistake at once, each naming its key, so
`rollout inventory check` can list them all. Command-line overrides go through the
same parser.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

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
    batch_size: int = 1  # hosts swapped at a time during promotion
    canary_hosts: tuple[str, ...] = ()  # empty: the first canary-eligible host
    health_timeout_s: int = 180
    promotion_window: str = ""  # e.g. "02:00-05:00"; empty: any time
    promotion_timezone: str = "UTC"
    promotion_weekdays: tuple[str, ...] = WEEKDAYS
    promotion_not_before: str = ""  # ISO 8601 with an offset, e.g. 2026-11-26T02:00:00+01:00
    notify_url: str = ""
    gate_latency_max_ratio: float = 2.0  # release gate: golden-prompt latency at most this × live version's
    gate_max_rtf: float = 1.0  # release gate: synthesis slower than real time fails
    extra: dict[str, Any] = field(default_factory=dict)


_INT_MIN = {"dwell_s": 0, "min_requests": 1, "interval_s": 1, "step_max_s": 1, "consecutive_failures": 1,
            "max_p95_ms": 1, "batch_size": 1, "health_timeout_s": 60}
_FLOAT_RANGE = {"max_error_rate": (0.0, 1.0), "latency_max_ratio": (1.0, 100.0),
                "gate_latency_max_ratio": (1.0, 100.0), "gate_max_rtf": (0.001, 100.0)}
KNOWN_KEYS = tuple(f.name for f in fields(Policy) if f.name != "extra")


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_policy(raw: dict[str, Any] | None, base: Policy | None = None) -> Policy:
    """Validate `raw` over `base` (defaults); raise PolicyError listing every problem."""
    raw = dict(raw or {})
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in KNOWN_KEYS:
            problems.append(f"rollout_policy.{key}: unknown key{_suggest(key)}")
        elif key in _INT_MIN:
            if isinstance(value, bool) or not isinstance(value, int) or value < _INT_MIN[key]:
                problems.append(f"rollout_policy.{key}: must be an integer ≥ {_INT_MIN[key]}, got {value!r}")
            else:
                values[key] = value
        elif key in _FLOAT_RANGE:
            lo, hi = _FLOAT_RANGE[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                problems.append(f"rollout_policy.{key}: must be a number in [{lo}, {hi}], got {value!r}")
            else:
                values[key] = float(value)
        elif key == "steps":
            ok = (isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool)
                                                           for v in value))
            if not ok or any(not 0 < v <= 100 for v in value) or list(value) != sorted(set(value)) \
                    or value[-1] != 100:
                problems.append(f"rollout_policy.steps: must be increasing percentages in 1..100 ending at 100, "
                                f"got {value!r}")
            else:
                values[key] = tuple(value)
        elif key == "inconclusive_action":
            if value not in ("pause", "fail"):
                problems.append(f"rollout_policy.inconclusive_action: must be 'pause' or 'fail', got {value!r}")
            else:
                values[key] = value
        elif key == "promotion_window":
            if value not in ("", None) and not (isinstance(value, str) and WINDOW.match(value)):
                problems.append(f"rollout_policy.promotion_window: must look like '02:00-05:00', got {value!r}")
            else:
                values[key] = value or ""
        elif key == "promotion_weekdays":
            if not isinstance(value, list) or not value or any(v not in WEEKDAYS for v in value):
                problems.append(f"rollout_policy.promotion_weekdays: must be a list of {', '.join(WEEKDAYS)}, "
                                f"got {value!r}")
            else:
                values[key] = tuple(value)
        elif key == "canary_hosts":
            if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
                problems.append(f"rollout_policy.canary_hosts: must be a list of inventory host names, got {value!r}")
            else:
                values[key] = tuple(value)
        elif key == "promotion_not_before":
            values[key] = _instant(key, value, problems)
        elif key == "promotion_timezone":
            values[key] = _timezone(value, problems)
        elif key == "notify_url":
            if not isinstance(value, str) or (value and not value.startswith(("http://", "https://"))):
                problems.append(f"rollout_policy.notify_url: must be an http(s) URL, got {value!r}")
            else:
                values[key] = value
    policy = replace(base or Policy(), **values)
    if policy.step_max_s < policy.dwell_s:
        problems.append(f"rollout_policy.step_max_s ({policy.step_max_s}) must be ≥ dwell_s ({policy.dwell_s})")
    if problems:
        raise PolicyError(problems)
    return policy


def _instant(key: str, value: Any, problems: list[str]) -> str:
    from datetime import datetime

    if value in ("", None):
        return ""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems.append(f"rollout_policy.{key}: must be an ISO 8601 time with an offset "
                        f"(2026-11-26T02:00:00+01:00), got {value!r}")
        return ""
    return parsed.isoformat()


def _timezone(value: Any, problems: list[str]) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"rollout_policy.promotion_timezone: unknown time zone {value!r}")
    return str(value)
