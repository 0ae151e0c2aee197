"""Promotion windows on a fake clock: time zones, midnight, weekdays, daylight saving edges."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.decisions.policy import PolicyError, parse_policy
from canary.decisions.schedule import promotion_gate, window_of

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, zone: ZoneInfo = BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def policy(**raw):
    return parse_policy({"promotion_window": "02:00-05:00", "promotion_timezone": "Europe/Berlin", **raw})


@pytest.mark.parametrize("local, allowed", [
    ("2026-11-25T01:59", False), ("2026-11-25T02:00", True), ("2026-11-25T04:59", True),
    ("2026-11-25T05:00", False), ("2026-11-25T14:00", False),
])
def test_window_in_a_named_time_zone(local, allowed):
    assert promotion_gate(policy(), at(local))[0] is allowed


def test_the_reason_says_when_the_window_opens():
    allowed, why = promotion_gate(policy(), at("2026-11-25T14:00"))
    assert not allowed and "opens Thu 2026-11-26 02:00 CET" in why


def test_a_window_across_midnight_belongs_to_the_day_it_starts():
    p = parse_policy({"promotion_window": "22:00-02:00", "promotion_timezone": "UTC",
                      "promotion_weekdays": ["fri"]})
    utc = ZoneInfo("UTC")
    assert promotion_gate(p, at("2026-11-27T23:00", utc))[0]  # Friday night
    assert promotion_gate(p, at("2026-11-28T01:30", utc))[0]  # Saturday early: still Friday's window
    assert not promotion_gate(p, at("2026-11-28T23:00", utc))[0]  # Saturday night
    assert "opens Fri 2026-12-04 22:00" in promotion_gate(p, at("2026-11-28T23:00", utc))[1]


def test_weekdays_skip_to_the_next_allowed_day():
    p = policy(promotion_weekdays=["mon"])
    allowed, why = promotion_gate(p, at("2026-11-25T03:00"))  # a Wednesday, inside the hours
    assert not allowed and "opens Mon 2026-11-30 02:00" in why


def test_spring_forward_skipped_hour_opens_after_the_jump():
    # 2026-03-29: Berlin clocks go from 02:00 to 03:00; a window opening at 02:30 opens at 03:30 CEST
    p = parse_policy({"promotion_window": "02:30-04:00", "promotion_timezone": "Europe/Berlin"})
    window = window_of(p)
    assert window is not None
    opened = window.next_open(at("2026-03-29T01:00"))
    assert datetime.fromtimestamp(opened, BERLIN).strftime("%H:%M %Z") == "03:30 CEST"
    assert window.is_open(at("2026-03-29T03:45"))


def test_fall_back_repeated_hour_counts_once():
    # 2026-10-25: Berlin clocks go from 03:00 back to 02:00; the window 02:00-03:00 is the first pass
    p = parse_policy({"promotion_window": "02:00-03:00", "promotion_timezone": "Europe/Berlin"})
    window = window_of(p)
    assert window is not None
    first_pass = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0).timestamp()
    second_pass = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1).timestamp()
    assert window.is_open(first_pass)
    assert second_pass - first_pass == 3600


def test_a_window_that_opens_while_waiting_allows_promotion_then():
    p = policy()
    now = at("2026-11-25T01:00")
    allowed, _ = promotion_gate(p, now)
    assert not allowed
    assert promotion_gate(p, now + 3600)[0]


def test_not_before_holds_until_the_given_instant():
    p = parse_policy({"promotion_not_before": "2026-11-26T02:00:00+01:00"})
    assert not promotion_gate(p, at("2026-11-26T01:59"))[0]
    assert promotion_gate(p, at("2026-11-26T02:00"))[0]
    with pytest.raises(PolicyError, match="promotion_not_before"):
        parse_policy({"promotion_not_before": "tomorrow"})
    with pytest.raises(PolicyError, match="with an offset"):
        parse_policy({"promotion_not_before": "2026-11-26T02:00:00"})


def test_no_window_means_any_time():
    assert promotion_gate(parse_policy({}), at("2026-11-25T14:00")) == (True, "")


@given(start=st.integers(0, 1439), length=st.integers(1, 1439), now=st.integers(1_700_000_000, 1_900_000_000))
def test_a_utc_window_is_open_exactly_at_its_minutes_whatever_the_time_of_day(start: int, length: int, now: int):
    """The CI failure of the held-canary test was checked against the product here: at any
    time of day, a window is open exactly during its minutes (midnight included)."""
    end = (start + length) % 1440
    window = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    p = parse_policy({"promotion_window": window, "promotion_timezone": "UTC"})
    minute = (now // 60) % 1440
    inside = (minute - start) % 1440 < length
    assert promotion_gate(p, float(now))[0] is inside
