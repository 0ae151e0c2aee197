"""What the end-to-end tests drive rollouts with: the demo policy, a timer that runs
`rollout tick` the way systemd or cron would, a webhook receiver, status polling."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from canary.adapters import fleet as fleet_ops
from canary.adapters.store import Store
from canary.decisions.inventory import Fleet
from canary.decisions.status import status_view
from canary.devtools import sandbox
from tests.sandbox_fleet import INVENTORY, rollout

# What the 3-host sandbox (0.4 CPU per host) serves within 2x its unloaded p95, measured
# with bench/capacity.py on this 2-core machine kind; the tests load it at 60% of that.
FLEET_CAPACITY_RPS = sandbox.MEASURED_FLEET_RPS
LOAD_RPS = round(0.6 * FLEET_CAPACITY_RPS, 1)
# Short timings for a 3-host sandbox under light load. With no errors at all, a 20% cap
# is proven after 14 canary requests (a 5% cap would need 59: minutes at 10% of 3 req/s).
DEMO_POLICY = ["--set", "dwell_s=8", "--set", "min_requests=15", "--set", "interval_s=4",
               "--set", "step_max_s=300", "--set", "consecutive_failures=2", "--set", "max_error_rate=0.2",
               # steps of seconds: latency is judged from a stage's first answer (bench/fairness.py
               # shows the default settling time at work)
               "--set", "latency_settle_s=0"]


def start(version: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return rollout("start", version, *DEMO_POLICY, *extra, check=False, env=env)


def versions(fleet: Fleet) -> dict[str, str | None]:
    """What each host runs, read from the hosts themselves."""
    return {h: s.version for h, s in fleet_ops.facts(fleet, strict=True).items()}


def status_json(env: dict[str, str]) -> dict[str, Any]:
    """`rollout status --json`, as an operator reads it."""
    return json.loads(rollout("status", "--json", env=env).stdout)


def peek(env: dict[str, str]) -> dict[str, Any]:
    """What `rollout status --json` would print, read from the state store in this process:
    for polling, where a command a second would cost this 2-core machine, already kept
    busy by the fleet, a quarter of its CPU."""
    db = Path(env["VOXFLEET_STATE_DIR"]) / "rollouts.db"
    if not db.exists():
        return {"id": None, "phase": None}
    with Store(db, create_if_missing=False) as store:
        record = store.current(str(INVENTORY.resolve()))
        return json.loads(json.dumps(status_view(record, time.time()))) if record else {"id": None, "phase": None}


def show(env: dict[str, str], rollout_id: str | None = None) -> dict[str, Any]:
    rollout_id = rollout_id or json.loads(rollout("history", "--json", env=env).stdout)[0]["id"]
    return json.loads(rollout("show", rollout_id, env=env).stdout)


def wait_for(env: dict[str, str], ready: Callable[[dict[str, Any]], bool], timeout_s: float = 600,
             what: str = "") -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    ended_before = None  # a rollout already over when the wait began is not the one awaited
    while time.monotonic() < deadline:
        view = peek(env)
        if ready(view) and ready(view := status_json(env)):  # as the operator's command says it
            return view
        if view.get("phase") in TERMINAL:
            if ended_before is None:
                ended_before = view.get("id")
            elif view.get("id") != ended_before:  # the awaited one ended otherwise: no use waiting
                break
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what or ready}; last status: {json.dumps(view)[:2000]}")


def at_step(weight: int) -> Callable[[dict[str, Any]], bool]:
    return lambda v: v.get("phase") == "TRAFFIC" and v.get("weight_live") == weight


TERMINAL = ("SUCCEEDED", "ROLLED_BACK", "FAILED", "PREFLIGHT_FAILED")


def crash_at_every_event(env: dict[str, str], until: Callable[[dict[str, Any]], bool] = lambda v: False,
                         timeout_s: float = 900) -> tuple[dict[str, Any], int]:
    """Drive the active rollout with `rollout tick`s that each die by SIGKILL right after
    recording an event (state written, action not done), until it ends or `until`; (the
    last status, how many ticks were killed). A tick dies after its first event, or after
    its second when the last one killed was a verdict (the next tick judges again, then
    acts on it): so every event a rollout records is, at least once, its last."""
    deadline, kills, nth = time.monotonic() + timeout_s, 0, 1
    while time.monotonic() < deadline:
        tick = rollout("tick", check=False, env={**env, "VOXFLEET_CRASH_AFTER": f"*{nth}"})
        view = peek(env)
        if tick.returncode == -9:
            kills += 1
            nth = 2 if nth == 1 and last_event(env) == "verdict" else 1
        else:
            assert tick.returncode == 0, tick.stdout + tick.stderr
            nth = 1
            time.sleep(1)
        if view.get("phase") in TERMINAL or until(view):
            return status_json(env), kills
    raise AssertionError(f"the rollout did not end within {timeout_s:.0f}s of killed ticks")


def last_event(env: dict[str, str]) -> str:
    with Store(Path(env["VOXFLEET_STATE_DIR"]) / "rollouts.db", create_if_missing=False) as store:
        (record,) = store.history(limit=1)
        return store.events(record.id)[-1].kind


def events(story: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in story["events"] if e["kind"] == kind]


def weights_live(story: dict[str, Any]) -> list[int]:
    return [e["data"]["canary_percent"] for e in events(story, "weights live")]


def assert_no_jump(weights: list[int], steps: list[int]) -> None:
    """Each step's weight in order, none skipped or raised past it (a manual weight may sit between)."""
    assert weights == sorted(weights), weights
    assert [w for w in weights if w in steps] == steps, (weights, steps)


class Ticker:
    """A timer running `rollout tick` every `every_s`, `overlap` processes at once (as
    two timers, or a timer and a CI job, would), until stopped."""

    def __init__(self, env: dict[str, str], every_s: float = 2.0, overlap: int = 2) -> None:
        self.env, self.every_s, self.overlap = env, every_s, overlap
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)

    def _run(self) -> None:
        while not self._stop.is_set():
            threads = [threading.Thread(target=self._tick) for _ in range(self.overlap)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self._stop.wait(self.every_s)

    def _tick(self) -> None:
        result = rollout("tick", check=False, env=self.env)
        if result.returncode != 0:
            self.errors.append(result.stdout + result.stderr)


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def kinds(self) -> list[str]:
        return [body["voxfleet"]["kind"] for body in self.received]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [body for body in self.received if body["voxfleet"]["kind"] == kind]

    def close(self) -> None:
        self._server.shutdown()


def lb_error_logs(fleet: Fleet) -> dict[str, str]:
    """Each sandbox LB's nginx error log (where it says when it takes a server out)."""
    logs = {}
    for lb in fleet.lbs:
        shown = subprocess.run(["docker", "exec", fleet.hostvars[lb]["sandbox_container"], "cat",
                                "/var/log/nginx/error.log"], capture_output=True, text=True, timeout=60, check=True)
        logs[lb] = shown.stdout
    return logs
