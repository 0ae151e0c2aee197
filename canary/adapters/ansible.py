"""The one seam to Ansible: run a playbook through ansible-runner, get plain data back.

This is the only module that imports `ansible_runner`. Every run gets its own
private data directory (removed afterwards), `suppress_env_files`, a timeout and a
cancel hook. Secrets travel as environment variables (never on the command line,
which ansible-runner records in its artifacts) and are redacted from everything
this module returns; playbooks read them with
`lookup('ansible.builtin.env', 'VOXFLEET_SECRET_<NAME>')` in `no_log` tasks.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canary import REPO_ROOT
from canary.adapters.connection import control_dir, host_key_refusal

SECRET_ENV_PREFIX = "VOXFLEET_SECRET_"
REDACTED = "********"


@dataclass(frozen=True)
class PlaybookRun:
    playbook: str  # relative to the repo root, e.g. "playbooks/deploy.yml"
    inventory: Path
    extravars: dict[str, Any] = field(default_factory=dict)
    limit: str | None = None
    tags: str | None = None
    timeout_s: int = 900
    forks: int = 20
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class HostResult:
    host: str
    ok: int = 0
    changed: int = 0
    failed: bool = False
    unreachable: bool = False
    message: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgressEvent:
    host: str | None
    task: str
    outcome: str  # ok | changed | failed | unreachable | skipped | task_start | play_start


@dataclass(frozen=True)
class PlaybookResult:
    playbook: str
    status: str  # successful | failed | timeout | canceled
    rc: int
    hosts: dict[str, HostResult]
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.status == "successful" and not any(h.failed or h.unreachable for h in self.hosts.values())

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    def failed_hosts(self) -> list[str]:
        return sorted(h.host for h in self.hosts.values() if h.failed)

    def unreachable_hosts(self) -> list[str]:
        return sorted(h.host for h in self.hosts.values() if h.unreachable)

    def describe(self) -> str:
        """One line per problem host, naming it and why; or the run's status."""
        lines = [(h.unreachable and host_key_refusal(h.host, h.message))
                 or f"{h.host}: {'unreachable' if h.unreachable else 'failed'}: {h.message}"
                 for h in sorted(self.hosts.values(), key=lambda h: h.host) if h.failed or h.unreachable]
        if self.status in ("timeout", "canceled"):
            lines.insert(0, f"{self.playbook}: {self.status}")
        return "\n".join(lines) or f"{self.playbook}: {self.status} (rc {self.rc})"


def _redact(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    return value


def _message(res: dict[str, Any]) -> str:
    for key in ("msg", "stderr", "reason", "exception"):
        if res.get(key):
            return str(res[key]).strip().splitlines()[-1] if key == "exception" else str(res[key]).strip()
    return "no message"


def runner_kwargs(run: PlaybookRun, private_data_dir: Path) -> dict[str, Any]:
    """The ansible_runner.run() arguments for `run` (pure; tested without spawning)."""
    envvars = {f"{SECRET_ENV_PREFIX}{name.upper()}": value for name, value in run.secrets.items()}
    envvars.update(ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_ROLES_PATH=str(REPO_ROOT / "roles"),
                   ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir(Path(run.inventory))))
    # Not `binary=`: ansible-runner 2.4 then runs the binary in "raw" mode and drops the
    # playbook argument. Putting this interpreter's bin dir first on PATH finds the venv's.
    bin_dir = str(Path(sys.executable).parent)
    envvars["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")
    kwargs: dict[str, Any] = {
        "private_data_dir": str(private_data_dir),
        "project_dir": str(REPO_ROOT),
        "playbook": run.playbook,
        "inventory": str(Path(run.inventory).resolve()),
        "extravars": dict(run.extravars),
        "envvars": envvars,
        "suppress_env_files": True,
        "quiet": True,
        "timeout": run.timeout_s,
        "forks": run.forks,
    }
    if run.limit:
        kwargs["limit"] = run.limit
    if run.tags:
        kwargs["tags"] = run.tags
    return kwargs


class _Collector:
    """Turns runner events into per-host results and progress callbacks."""

    def __init__(self, secrets: tuple[str, ...], on_event: Callable[[ProgressEvent], None] | None) -> None:
        self.secrets, self.on_event = secrets, on_event
        self.messages: dict[str, str] = {}
        self.facts: dict[str, dict[str, Any]] = {}

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        host, task = data.get("host"), data.get("task", "")
        res = _redact(data.get("res") or {}, self.secrets)
        if kind == "runner_on_ok" and isinstance(res.get("ansible_facts"), dict) and host:
            self.facts.setdefault(host, {}).update(res["ansible_facts"])
        if kind in ("runner_on_failed", "runner_on_unreachable") and host and not data.get("ignore_errors"):
            # the last failure is the one that ended the host's run (earlier ones may be rescued)
            self.messages[host] = f"{task}: {_message(res)}"
        if self.on_event and kind.startswith(("runner_on_", "playbook_on_task_start")):
            outcome = kind.removeprefix("runner_on_").removeprefix("playbook_on_")
            if outcome == "ok" and res.get("changed"):
                outcome = "changed"
            self.on_event(ProgressEvent(host, task, outcome))
        return True  # ansible-runner drops events whose handler returns False


def run_playbook(run: PlaybookRun, on_event: Callable[[ProgressEvent], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> PlaybookResult:
    import ansible_runner  # the only import of ansible_runner in the project

    secrets = tuple(v for v in run.secrets.values() if v)
    collector = _Collector(secrets, on_event)
    private_data_dir = Path(tempfile.mkdtemp(prefix="voxfleet-ansible-"))
    started = time.monotonic()
    try:
        runner = ansible_runner.run(**runner_kwargs(run, private_data_dir), event_handler=collector,
                                    cancel_callback=cancel or (lambda: False))
        stats = runner.stats or {}
        status, rc = runner.status, runner.rc if runner.rc is not None else -1
    finally:
        shutil.rmtree(private_data_dir, ignore_errors=True)
    hosts: dict[str, HostResult] = {}
    names = set(collector.messages) | set(collector.facts)
    for bucket in ("ok", "changed", "failures", "dark", "skipped", "processed"):
        names |= set(stats.get(bucket, {}))
    for name in sorted(names):
        hosts[name] = HostResult(
            host=name,
            ok=stats.get("ok", {}).get(name, 0),
            changed=stats.get("changed", {}).get(name, 0),
            failed=name in stats.get("failures", {}),
            unreachable=name in stats.get("dark", {}),
            message=collector.messages.get(name, ""),
            facts=collector.facts.get(name, {}),
        )
    return PlaybookResult(run.playbook, status, rc, hosts, time.monotonic() - started)
