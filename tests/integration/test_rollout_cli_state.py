"""The `rollout` CLI with a missing, corrupt or orphaned state store: a clear message,
and nothing created or changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from canary.adapters.store import Store

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventory" / "production"
pytestmark = pytest.mark.integration


def rollout(state_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "VOXFLEET_ACTOR"))} | (env or {})
    env["VOXFLEET_STATE_DIR"] = str(state_dir)
    return subprocess.run([str(Path(sys.executable).with_name("rollout")), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_reading_verbs_on_a_missing_store_say_so_and_create_nothing(tmp_path):
    state = tmp_path / "state"
    status = rollout(state, "status", "-i", str(INVENTORY))
    assert status.returncode == 0 and f"no state store at {state / 'rollouts.db'}" in status.stdout
    as_json = json.loads(rollout(state, "status", "-i", str(INVENTORY), "--json").stdout)
    assert as_json["phase"] is None and "no state store" in as_json["message"]
    assert json.loads(rollout(state, "history", "--json").stdout) == []
    show = rollout(state, "show", "r-123")
    assert show.returncode == 1 and "does not exist" in show.stderr
    assert not state.exists()


@pytest.mark.parametrize("verb", [["status", "-i", str(INVENTORY)], ["history"], ["show", "r-1"], ["tick"],
                                  ["start", "v1.3.0", "-i", str(INVENTORY)], ["abort", "-i", str(INVENTORY)]])
def test_a_corrupt_store_is_named_and_left_as_it_was(tmp_path, verb):
    state = tmp_path / "state"
    state.mkdir()
    db = state / "rollouts.db"
    db.write_bytes(b"this is not SQLite\n" * 100)
    result = rollout(state, *verb)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"state store {db} is corrupt" in result.stderr
    assert db.read_bytes() == b"this is not SQLite\n" * 100
    assert sorted(p.name for p in state.iterdir()) == ["rollouts.db"]


def test_tick_names_an_active_rollout_whose_inventory_is_gone(tmp_path):
    state = tmp_path / "state"
    gone = tmp_path / "inventory-removed"
    with Store(state / "rollouts.db") as store:
        store.create("r-1", str(gone), "v1.3.0", None, "PENDING", {"phase": "PENDING"}, "tester", 1.0)
    result = rollout(state, "tick")
    assert result.returncode == 1
    assert f"error: {gone}" in result.stderr
    with Store(state / "rollouts.db") as store:
        record = store.get("r-1")
        assert record.phase == "PENDING" and record.revision == 1 and len(store.events("r-1")) == 1


def test_aborting_a_rollout_before_preflight_stops_it_and_says_nothing_needs_rolling_back(tmp_path):
    state = tmp_path / "state"
    started = rollout(state, "start", "v1.3.0", "-i", str(INVENTORY), "--detach")
    assert started.returncode == 0, started.stderr
    aborted = rollout(state, "abort", "-i", str(INVENTORY), "--reason", "wrong tag")
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert "nothing to roll back" in aborted.stdout and "rolling back" not in aborted.stdout
    (record,) = json.loads(rollout(state, "history", "-i", str(INVENTORY), "--json").stdout)
    assert record["phase"] == "PREFLIGHT_FAILED" and "wrong tag" in record["reason"]
    again = rollout(state, "abort", "-i", str(INVENTORY))
    assert again.returncode == 1 and "no active rollout" in again.stderr


def test_in_a_ci_job_events_name_who_triggered_it_and_the_run(tmp_path):
    state = tmp_path / "state"
    ci = {"GITHUB_ACTOR": "octocat", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/voice",
          "GITHUB_RUN_ID": "42"}
    assert rollout(state, "start", "v1.3.0", "-i", str(INVENTORY), "--detach", env=ci).returncode == 0
    assert rollout(state, "abort", "-i", str(INVENTORY), env={"VOXFLEET_ACTOR": "alice (pager)"}).returncode == 0
    (record,) = json.loads(rollout(state, "history", "-i", str(INVENTORY), "--json").stdout)
    actors = [e["actor"] for e in json.loads(rollout(state, "show", record["id"]).stdout)["events"]]
    assert actors[0] == "octocat (CI https://github.com/acme/voice/actions/runs/42)", actors
    assert actors[-1] == "alice (pager)", actors


def test_an_operator_adopts_an_edited_rollout_policy_but_not_new_steps(tmp_path):
    state, inventory = tmp_path / "state", tmp_path / "inventory"
    shutil.copytree(INVENTORY, inventory)
    policy_file = inventory / "group_vars" / "all" / "rollout.yml"
    assert rollout(state, "start", "v1.3.0", "-i", str(inventory), "--detach").returncode == 0
    policy_file.write_text(policy_file.read_text().replace("dwell_s: 600", "dwell_s: 900"))
    adopted = rollout(state, "resume", "-i", str(inventory), "--adopt-policy", "--detach", "--reason", "longer dwell")
    assert adopted.returncode == 0 and "now runs with the rollout_policy" in adopted.stdout, adopted.stderr
    policy_file.write_text(policy_file.read_text().replace("steps: [10, 50, 100]", "steps: [5, 50, 100]"))
    refused = rollout(state, "resume", "-i", str(inventory), "--adopt-policy", "--detach")
    assert refused.returncode == 1 and "rollout_policy.steps changed" in refused.stderr, refused.stderr
    (record,) = json.loads(rollout(state, "history", "-i", str(inventory), "--json").stdout)
    events = json.loads(rollout(state, "show", record["id"]).stdout)["events"]
    (event,) = [e for e in events if e["kind"] == "policy adopted"]
    assert event["data"]["changes"] == ["dwell_s: 600 → 900"] and event["data"]["reason"] == "longer dwell"
