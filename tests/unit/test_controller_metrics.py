"""The controller's own metrics, read back with the Prometheus client library's parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from canary.decisions.controller_metrics import exposition
from tests.unit.fakes import VersionBehaviour, run, to_first_step


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("fleet", "rollout_id", "version")))):
            s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_latest_rollouts_phase_weights_and_verdict_and_every_rollouts_outcome(world):
    sim, store, controller, clock = world
    c = controller()
    assert run(c, clock, max_ticks=0) == [] and exposition(store.history(limit=None)) == "\n"
    c.start("v1.3.0")
    assert run(c, clock)[-1] == "SUCCEEDED"

    sim.behaviour["v1.4.0"] = VersionBehaviour(error_rate=0.5)
    record = c.start("v1.4.0")
    to_first_step(c, clock, record.id)
    during = samples(exposition(store.history(limit=None)))
    assert during[("voxfleet_rollout_phase", (("phase", "TRAFFIC"),))] == 1
    assert during[("voxfleet_rollout_phase", (("phase", "SUCCEEDED"),))] == 0
    assert during[("voxfleet_rollout_step", ())] == 1
    assert during[("voxfleet_rollout_weight_set_percent", ())] == during[("voxfleet_rollout_weight_live_percent", ())] == 10
    assert during[("voxfleet_rollouts_total", (("result", "succeeded"),))] == 1

    assert run(c, clock)[-1] == "ROLLED_BACK"
    after = samples(exposition(store.history(limit=None)))
    assert after[("voxfleet_rollout_phase", (("phase", "ROLLED_BACK"),))] == 1
    assert after[("voxfleet_rollout_weight_set_percent", ())] == 0
    assert after[("voxfleet_verdict", (("outcome", "fail"),))] == 1
    assert after[("voxfleet_verdict_error_rate", (("side", "canary"),))] > 0.2
    assert after[("voxfleet_verdict_error_rate", (("side", "stable"),))] < 0.05
    assert after[("voxfleet_verdict_requests", (("side", "canary"),))] > 0
    assert after[("voxfleet_rollouts_total", (("result", "succeeded"),))] == 1
    assert after[("voxfleet_rollouts_total", (("result", "rolled_back"),))] == 1
