"""What a deploy's progress says per host comes from the role's own task names: a task
renamed in the role must not silence its line."""

from __future__ import annotations

from pathlib import Path

import yaml

from canary.adapters.ansible import ProgressEvent
from canary.adapters.fleet import MILESTONES, milestones

TASKS = Path(__file__).resolve().parents[2] / "roles" / "tts_node" / "tasks"


def task_names(tasks: list[dict]) -> set[str]:
    names = set()
    for task in tasks:
        names.add(task.get("name", ""))
        for key in ("block", "rescue", "always"):
            names |= task_names(task.get(key) or [])
    return names


def test_every_milestone_is_a_task_of_the_role_and_is_said_once_per_host():
    names = set().union(*(task_names(yaml.safe_load(f.read_text()) or []) for f in TASKS.glob("*.yml")))
    assert set(MILESTONES) <= names, set(MILESTONES) - names
    said: list[str] = []
    progress = milestones(said.append, "v1.3.0")
    for task in MILESTONES:
        progress(ProgressEvent("node1", task, "ok"))
    assert len(said) == len(MILESTONES) and all("node1" in line for line in said), said
