"""The one-line traffic summary of `rollout status`: a running rollout's weights, and where
an ended one left the traffic (seen: "weight: set 67%" after SUCCEEDED, a promotion batch's
share, though every host ran the new version)."""

from __future__ import annotations

import pytest

from canary.cli.rollout import traffic_summary


def view(phase: str, weight_set: int = 67, weight_live: int | None = 67) -> dict:
    return {"phase": phase, "version": "v1.3.0", "stable_version": "v1.2.0", "weight_set": weight_set,
            "weight_live": weight_live, "weight_layout": weight_set}


@pytest.mark.parametrize(("phase", "on"), [("SUCCEEDED", "v1.3.0"), ("ROLLED_BACK", "v1.2.0"),
                                            ("PREFLIGHT_FAILED", "v1.2.0")])
def test_an_ended_rollout_says_where_it_left_all_the_traffic(phase, on):
    assert traffic_summary(view(phase)) == f"traffic: all of it on {on}"


def test_a_running_rollout_shows_its_weights_and_a_failed_one_keeps_them():
    assert traffic_summary(view("TRAFFIC", 10, 10)) == "weight: set 10%  live 10%"
    assert traffic_summary(view("TRAFFIC", 50, None) | {"weight_layout": 10}) == \
        "weight: set 50%  live 10% (on its way to 50%)"
    assert traffic_summary(view("FAILED", 50, 50)) == "weight: set 50%  live 50%"
