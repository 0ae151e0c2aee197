"""Scheduled promotion: may a healthy canary be promoted now? (pure)

Policy can hold a rollout at its canary step until a promotion window opens
(`promotion_window: "02:00-05:00"` in `promotion_timezone`, on `promotion_weekdays`)
and/or until a fixed time (`promotion_not_before`, ISO 8601 with an offset). A window
whose end is before its start runs past midnight; it belongs to the weekday it starts
on. Local times that do not exist (the hour skipped when clocks go forward) resolve
to the same wall time after the jump; repeated ones (clocks go back) to their first
occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from canary.decisions.policy import WEEKDAYS, Policy


@dataclass(frozen=True)
class Window:
    start: time
    end: time
    zone: ZoneInfo
    weekdays: frozenset[int]  # 0 = Monday

    def _span(self, day: date) -> tuple[float, float]:
        end_day = day + timedelta(days=1) if self.end <= self.start else day
        opens = datetime.combine(day, self.start, self.zone).timestamp()
        closes = datetime.combine(end_day, self.end, self.zone).timestamp()
        return opens, closes

    def _days(self, now: float, ahead: int) -> list[date]:
        today = datetime.fromtimestamp(now, self.zone).date()
        return [today + timedelta(days=k) for k in range(-1, ahead)]

    def is_open(self, now: float) -> bool:
        return any(day.weekday() in self.weekdays and self._span(day)[0] <= now < self._span(day)[1]
                   for day in self._days(now, 1))

    def next_open(self, now: float) -> float:
        """`now` when open, else when the window next opens."""
        if self.is_open(now):
            return now
        starts = [self._span(day)[0] for day in self._days(now, 9) if day.weekday() in self.weekdays]
        return min(t for t in starts if t > now)


def window_of(policy: Policy) -> Window | None:
    if not policy.promotion_window:
        return None
    start, end = policy.promotion_window.split("-")
    return Window(time.fromisoformat(start), time.fromisoformat(end), ZoneInfo(policy.promotion_timezone),
                  frozenset(WEEKDAYS.index(d) for d in policy.promotion_weekdays))


def promotion_gate(policy: Policy, now: float) -> tuple[bool, str]:
    """(allowed, why not) for promoting a healthy canary beyond its first step at `now`."""
    if policy.promotion_not_before:
        not_before = datetime.fromisoformat(policy.promotion_not_before).timestamp()
        if now < not_before:
            return False, f"holding until {policy.promotion_not_before} (promotion_not_before)"
    window = window_of(policy)
    if window is None or window.is_open(now):
        return True, ""
    opens = datetime.fromtimestamp(window.next_open(now), window.zone)
    return False, (f"holding for the promotion window {policy.promotion_window} {policy.promotion_timezone} "
                   f"({', '.join(policy.promotion_weekdays)}); it opens {opens:%a %Y-%m-%d %H:%M %Z}")
