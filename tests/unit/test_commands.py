"""The CLI's controller building: a rollout keeps the policy it started with."""

from __future__ import annotations

from dataclasses import asdict

from canary.adapters.store import Store
from canary.decisions.policy import Policy
from canary.rollout.production import with_rollout_policy
from tests.unit.fakes import make_fleet


def test_ticks_and_verbs_use_the_policy_the_rollout_started_with(tmp_path):
    fleet = make_fleet(tmp_path)
    started_with = {k: v for k, v in asdict(Policy(notify_url="http://127.0.0.1:9/hook", dwell_s=8)).items()
                    if k != "extra"}
    with Store(tmp_path / "state.db") as store:
        assert with_rollout_policy(fleet, store) is fleet  # nothing active: the inventory's policy
        store.create("r-1", str(fleet.source.resolve()), "v1.3.0", None, "TRAFFIC",
                     {"phase": "TRAFFIC", "policy": started_with}, "tester", 1.0)
        policy = with_rollout_policy(fleet, store).policy
    assert (policy.notify_url, policy.dwell_s) == ("http://127.0.0.1:9/hook", 8)
    assert fleet.policy.notify_url == ""
