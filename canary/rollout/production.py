"""The controller wired to a real fleet: where its state lives, the production adapters
behind its ports, and the foreground loop that follows a rollout to its end."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from canary.adapters.lb_log import lb_access_log
from canary.adapters.private_files import load_secret
from canary.adapters.rollout_ports import AnsibleFleet, AnsibleProbe, HttpRegistry, LbTrafficPort
from canary.adapters.store import Record, Store
from canary.decisions.inventory import Fleet
from canary.decisions.phases import EXIT_CODES, EXIT_ERROR, Phase
from canary.decisions.policy import parse_policy
from canary.decisions.redact import is_redacted
from canary.rollout.controller import NOTIFY_SECRET, Controller
from canary.rollout.ports import ShiftedClock, SystemClock

# A file of seconds to add to the time promotion windows are judged at (tests, rehearsals).
CALENDAR_SHIFT_ENV = "VOXFLEET_CALENDAR_SHIFT_FILE"


def state_path() -> Path:
    base = os.environ.get("VOXFLEET_STATE_DIR") or Path.home() / ".local" / "state" / "voxfleet"
    return Path(base) / "rollouts.db"


def with_rollout_policy(fleet: Fleet, store: Store) -> Fleet:
    """A rollout keeps the policy it started with (`--set` included): its notices,
    health timeout and steps must not change because a later command or tick reads
    the inventory again."""
    active = store.active(str(fleet.source.resolve()))
    if active is None or not active.state.get("policy"):
        return fleet
    policy = parse_policy(active.state["policy"])
    # The state keeps the notify URL redacted; the real one is in a 0600 file next to the
    # store (canary.adapters.private_files). Without it: VOXFLEET_NOTIFY_URL, or no notices.
    saved = load_secret(store.path.parent, active.id, NOTIFY_SECRET)
    # (a state written before the URL was kept apart holds the URL itself)
    url = saved or ("" if is_redacted(policy.notify_url) else policy.notify_url)
    return replace(fleet, policy=replace(policy, notify_url=url))


def actor_from(env: Mapping[str, str]) -> str | None:
    """Who acts, as events record it: in a GitHub Actions job, the user who triggered it
    and the run (not the runner's account); VOXFLEET_ACTOR where set; else None (the login)."""
    if env.get("VOXFLEET_ACTOR"):
        return env["VOXFLEET_ACTOR"]
    if env.get("GITHUB_ACTOR"):
        run = "/".join(env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY"))
        url = f"{run}/actions/runs/{env['GITHUB_RUN_ID']}" if env.get("GITHUB_RUN_ID") else ""
        return f"{env['GITHUB_ACTOR']} (CI {url})" if url else f"{env['GITHUB_ACTOR']} (CI)"
    return None


def controller_for(fleet: Fleet, store: Store, log: Callable[[str], None] = print) -> Controller:
    fleet = with_rollout_policy(fleet, store)
    clock = SystemClock()
    shift_file = os.environ.get(CALENDAR_SHIFT_ENV)
    return Controller(fleet, store, AnsibleFleet(fleet, log), LbTrafficPort(fleet), lb_access_log(fleet),
                      AnsibleProbe(fleet), HttpRegistry(fleet), clock, actor=actor_from(os.environ), log=log,
                      calendar=ShiftedClock(clock, Path(shift_file)) if shift_file else None)


# Phases judged every interval_s (steps, and promotion batches against the old version).
JUDGED_PHASES = (Phase.TRAFFIC, Phase.PROMOTING)


def follow(controller: Controller, record: Record) -> int:
    """Tick until the rollout ends or pauses; Ctrl-C leaves it resumable."""
    interrupted = {"flag": False}
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.update(flag=True))
    try:
        while not interrupted["flag"]:
            before = record.revision
            record = controller.tick() or controller.store.get(record.id)
            phase = Phase(record.phase)
            if phase.terminal or phase is Phase.PAUSED:
                print(f"{record.id}: {phase.value} — {record.reason or ''}")
                controller.notifier.flush()
                return EXIT_CODES[phase]
            if phase in JUDGED_PHASES:  # the next look needs new evidence: one interval
                controller.clock.sleep(float(record.state["policy"]["interval_s"]))
            elif record.revision == before:  # another process holds the tick: wait for it
                controller.clock.sleep(1.0)
        print(f"interrupted: {record.id} stays {record.phase}; continue with `rollout resume`")
        return EXIT_ERROR
    finally:
        signal.signal(signal.SIGINT, previous)


def previous_version(store: Store, fleet_key: str) -> str | None:
    """The version live before the last successful rollout on this fleet."""
    for record in store.history(fleet_key, limit=None):
        if record.result == "succeeded":
            return record.stable_version or record.state.get("stable_version") or None
    return None
