"""What the end-to-end tests drive rollouts with: the demo policy, a timer that runs
`rollout tick` the way systemd or cron would, a webhook receiver, status polling."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from canary.adapters import fleet as fleet_ops
from canary.decisions.inventory import Fleet
from tests.sandbox_fleet import rollout

# Steady load one sandbox host can carry alone: at the 100% step the single canary host
# takes all of it, and queueing there would (rightly) fail the latency comparison.
LOAD_RPS = 3
# Short timings for a 3-host sandbox under light load. With no errors at all, a 20% cap
# is proven after 14 canary requests (a 5% cap would need 59: minutes at 10% of 3 req/s).
DEMO_POLICY = ["--set", "dwell_s=8", "--set", "min_requests=15", "--set", "interval_s=4",
               "--set", "step_max_s=300", "--set", "consecutive_failures=2", "--set", "max_error_rate=0.2"]


def start(version: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return rollout("start", version, *DEMO_POLICY, *extra, check=False, env=env)


def versions(fleet: Fleet) -> dict[str, str | None]:
    """What each host runs, read from the hosts themselves."""
    return {h: s.version for h, s in fleet_ops.facts(fleet, strict=True).items()}


def status_json(env: dict[str, str]) -> dict[str, Any]:
    return json.loads(rollout("status", "--json", env=env).stdout)


def show(env: dict[str, str], rollout_id: str | None = None) -> dict[str, Any]:
    rollout_id = rollout_id or json.loads(rollout("history", "--json", env=env).stdout)[0]["id"]
    return json.loads(rollout("show", rollout_id, env=env).stdout)


def wait_for(env: dict[str, str], ready: Callable[[dict[str, Any]], bool], timeout_s: float = 600,
             what: str = "") -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = status_json(env)
        if ready(view):
            return view
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what or ready}; last status: {json.dumps(view)[:2000]}")


def at_step(weight: int) -> Callable[[dict[str, Any]], bool]:
    return lambda v: v.get("phase") == "TRAFFIC" and v.get("weight_live") == weight


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
