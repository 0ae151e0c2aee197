from __future__ import annotations

import pytest

from canary.decisions.policy import Policy, PolicyError, parse_policy


def test_defaults_are_the_product_headline():
    policy = parse_policy(None)
    assert policy.steps == (10, 50, 100) and policy.inconclusive_action == "pause"


def test_overrides_apply_over_a_base():
    base = parse_policy({"steps": [5, 25, 100], "dwell_s": 60})
    policy = parse_policy({"min_requests": 50}, base=base)
    assert (policy.steps, policy.dwell_s, policy.min_requests) == ((5, 25, 100), 60, 50)


@pytest.mark.parametrize("raw, fragment", [
    ({"stpes": [10, 100]}, "rollout_policy.stpes: unknown key (did you mean steps?)"),
    ({"steps": [50, 10, 100]}, "rollout_policy.steps"),
    ({"steps": [10, 50]}, "ending at 100"),
    ({"steps": [0, 100]}, "rollout_policy.steps"),
    ({"steps": "10,50,100"}, "rollout_policy.steps"),
    ({"dwell_s": -1}, "rollout_policy.dwell_s: must be an integer ≥ 0"),
    ({"min_requests": 0}, "rollout_policy.min_requests"),
    ({"interval_s": True}, "rollout_policy.interval_s"),
    ({"max_error_rate": 2}, "rollout_policy.max_error_rate: must be a number in [0.0, 1.0]"),
    ({"latency_max_ratio": 0.5}, "rollout_policy.latency_max_ratio"),
    ({"inconclusive_action": "ignore"}, "rollout_policy.inconclusive_action"),
    ({"promotion_window": "2am-5am"}, "rollout_policy.promotion_window"),
    ({"promotion_timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ({"promotion_weekdays": ["monday"]}, "rollout_policy.promotion_weekdays"),
    ({"canary_hosts": "node1"}, "rollout_policy.canary_hosts"),
    ({"notify_url": "ftp://x"}, "rollout_policy.notify_url"),
    ({"health_timeout_s": 30}, "rollout_policy.health_timeout_s: must be an integer ≥ 60"),
    ({"dwell_s": 600, "step_max_s": 300}, "step_max_s (300) must be ≥ dwell_s (600)"),
])
def test_each_bad_value_is_named(raw, fragment):
    with pytest.raises(PolicyError) as info:
        parse_policy(raw)
    assert any(fragment in problem for problem in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once():
    with pytest.raises(PolicyError) as info:
        parse_policy({"dwell_s": "long", "batch_size": 0, "colour": "red"})
    assert len(info.value.problems) == 3


def test_a_valid_window_and_timezone():
    policy = parse_policy({"promotion_window": "02:00-05:00", "promotion_timezone": "Europe/Berlin",
                           "promotion_weekdays": ["mon", "tue"]})
    assert policy.promotion_window == "02:00-05:00" and policy.promotion_weekdays == ("mon", "tue")
    assert isinstance(policy, Policy)
