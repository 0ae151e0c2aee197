"""In-memory ports for driving the controller in unit tests (the only fakes in the suite).

`SimulatedFleet` plays every port at once: hosts that run versions, an LB that
holds a layout, and traffic that follows the layout, with error rates and
latencies per version, so a test can script "v1.3.0 fails 30% of requests".
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from canary.adapters.ansible import HostResult, PlaybookResult
from canary.adapters.fleet import FleetError
from canary.adapters.prometheus import PrometheusUnavailable
from canary.adapters.store import Record
from canary.decisions.access_log import Attempt, Request
from canary.decisions.fleet_state import ImageLabels, NodeState
from canary.decisions.inventory import Fleet, Node
from canary.decisions.phases import Phase
from canary.decisions.policy import parse_policy
from canary.decisions.prometheus_evidence import VersionTotals
from canary.decisions.traffic import UpstreamServer
from canary.rollout.controller import Controller
from service.metrics import LATENCY_BUCKETS


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


@dataclass
class VersionBehaviour:
    error_rate: float = 0.0
    latency_s: float = 0.3
    golden_ok: bool = True


class Crash(BaseException):
    """Simulates the controller process dying mid-action (not caught by the controller)."""


@dataclass
class SimulatedFleet:
    hosts: dict[str, str]  # host -> version running
    addresses: dict[str, str]  # host -> upstream address
    behaviour: dict[str, VersionBehaviour] = field(default_factory=dict)
    registry_tags: set[str] = field(default_factory=set)
    digests: list[tuple[str, str]] = field(default_factory=list)  # (version, digest) of every deploy
    mislabelled: dict[str, str] = field(default_factory=dict)  # tag -> the model version its labels name
    unreachable: set[str] = field(default_factory=set)
    rps: float = 20.0
    clock: FakeClock = field(default_factory=FakeClock)
    servers: list[UpstreamServer] = field(default_factory=list)
    applied: list[tuple[list[UpstreamServer], int]] = field(default_factory=list)
    deploys: list[tuple[str, tuple[str, ...], bool]] = field(default_factory=list)
    crash_on: str | None = None  # "deploy" | "apply": raise Crash *after* the action happened
    broken_start: set[str] = field(default_factory=set)  # versions whose start fails (container left behind)
    fail_apply: Exception | None = None  # raised by the next apply, before anything changes
    golden_asked: list[tuple[str, str, bool]] = field(default_factory=list)  # (host, its version, in traffic)
    golden_unanswered: set[str] = field(default_factory=set)  # hosts whose golden prompts fail to run
    seq: int = 0
    log_time: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    # FleetPort
    def states(self) -> dict[str, NodeState]:
        if self.unreachable:
            result = PlaybookResult("playbooks/facts.yml", "failed", 4, {
                h: HostResult(h, unreachable=True, message="ssh: connect timed out") for h in self.unreachable}, 0)
            raise FleetError("reading fleet facts", result)
        return {h: NodeState(h, v, f"reg/tts:{v}", f"reg/tts@sha256:{v}", "m", "g", "running", "healthy", "t", 0, None)
                for h, v in self.hosts.items()}

    def deploy(self, version: str, hosts: list[str], pull_only: bool = False, digest: str = "") -> None:
        self.deploys.append((version, tuple(hosts), pull_only))
        self.digests.append((version, digest))
        gone = [h for h in hosts if h in self.unreachable]
        hosts = [h for h in hosts if h not in self.unreachable]
        if not pull_only:
            for host in hosts:
                self.hosts[host] = version
            if version in self.broken_start:
                result = PlaybookResult("playbooks/deploy.yml", "failed", 2, {
                    h: HostResult(h, failed=True, message=f"{version} is not ready") for h in hosts}, 0)
                raise FleetError(f"deploy of {version}", result)
        if self.crash_on == "deploy":
            self.crash_on = None
            raise Crash()
        if gone:
            raise FleetError(f"deploy of {version}", PlaybookResult("playbooks/deploy.yml", "failed", 4, {
                h: HostResult(h, unreachable=True, message="ssh: connect timed out") for h in gone}, 0))

    # TrafficPort
    def prepare(self, servers: list[UpstreamServer], canary_percent: int) -> str:
        return self.apply(servers, canary_percent)

    def apply(self, servers: list[UpstreamServer], canary_percent: int) -> str:
        if self.fail_apply is not None:
            exc, self.fail_apply = self.fail_apply, None
            raise exc
        self.servers = list(servers)
        self.applied.append((list(servers), canary_percent))
        if self.crash_on == "apply":
            self.crash_on = None
            raise Crash()
        return f"sha-{len(self.applied)}"

    # MetricsPort: traffic since the cursor, following the live layout
    def cursor(self) -> dict[str, Any]:
        self._advance()
        return {"generation": "g", "offset": self.seq}

    def read(self, cursor: dict[str, Any]) -> tuple[list[Request], dict[str, Any]]:
        self._advance()
        start = cursor.get("offset", 0) if cursor else 0
        return [r for r in self.log if int(r.request_id) >= start], {"generation": "g", "offset": self.seq}

    log: list[Request] = field(default_factory=list)

    def request_rate(self, window_s: float) -> float:
        return self.rps

    def _advance(self) -> None:
        if not self.log_time or self.rps <= 0:
            self.log_time = self.clock.now()
            return
        n = int((self.clock.now() - self.log_time) * self.rps)
        self.log_time += n / self.rps
        up = [s for s in self.servers if s.state == "up"]
        if not up:
            return
        weights = [s.weight for s in up]
        by_address = {a: h for h, a in self.addresses.items()}
        for _ in range(n):
            server = self.rng.choices(up, weights)[0]
            version = self.hosts[by_address[server.address]]
            b = self.behaviour.get(version, VersionBehaviour())
            error = self.rng.random() < b.error_rate
            latency = b.latency_s * (0.8 + 0.4 * self.rng.random())
            when = datetime.fromtimestamp(self.log_time, UTC)
            attempt = Attempt(str(self.seq), when, server.address, 500 if error else 200, latency, error, True,
                              "/v1/audio/speech")
            self.log.append(Request(str(self.seq), when, 500 if error else 200, (attempt,), error,
                                    "/v1/audio/speech", "POST", latency, version))
            self.seq += 1

    # AggregatePort: what Prometheus would total from the same simulated traffic
    prometheus_down: bool = False

    def totals(self, versions: Sequence[str], since: float, until: float,
               latency_since: float | None = None) -> dict[str, VersionTotals]:
        if self.prometheus_down:
            raise PrometheusUnavailable("Prometheus at http://prometheus.test:9090 is not reachable: refused")
        self._advance()
        start, latency_start = (datetime.fromtimestamp(t, UTC) for t in (since, latency_since or since))
        end = datetime.fromtimestamp(until, UTC)
        out = {}
        for version in versions:
            served = [r for r in self.log if r.version == version and start <= r.time <= end]
            by_status: dict[int, float] = {}
            for r in served:
                by_status[r.status] = by_status.get(r.status, 0) + 1
            fast = [r.request_time_s or 0.0 for r in served if r.status == 200 and r.time >= latency_start]
            buckets = tuple((le, float(sum(t <= le for t in fast))) for le in (*LATENCY_BUCKETS, math.inf))
            out[version] = VersionTotals(version, by_status, buckets)
        return out

    # ProbePort
    def golden(self, hosts: list[str]) -> dict[str, list[dict[str, Any]]]:
        for host in hosts:
            serving = any(s.address == self.addresses[host] and s.state == "up" for s in self.servers)
            self.golden_asked.append((host, self.hosts[host], serving))
        if unanswered := [h for h in hosts if h in self.golden_unanswered]:
            result = PlaybookResult("playbooks/probe.yml", "failed", 2, {
                h: HostResult(h, failed=True, message="Error: No such container: tts") for h in unanswered}, 0)
            raise FleetError("golden prompts", result)
        out = {}
        for host in hosts:
            ok = self.behaviour.get(self.hosts[host], VersionBehaviour()).golden_ok
            out[host] = [{"name": "short", "passed": ok, "version": self.hosts[host],
                          "reason": "ok" if ok else "silence_share=1 (limit <= 0.85)",
                          "seconds_per_char": 0.1, "rms_dbfs": -20.0, "latency_s": 0.2}]
        return out

    # RegistryPort
    def digest(self, version: str) -> str | None:
        return f"sha256:{version}" if version in self.registry_tags else None

    def labels(self, version: str) -> ImageLabels:
        if version not in self.registry_tags:
            return ImageLabels()
        return ImageLabels(self.mislabelled.get(version, version), f"rev-{version}")

    def share(self, version: str) -> float:
        """Canary share of the live layout's weights for hosts running `version`."""
        by_address = {a: h for h, a in self.addresses.items()}
        up = [s for s in self.servers if s.state == "up"]
        total = sum(s.weight for s in up)
        return sum(s.weight for s in up if self.hosts[by_address[s.address]] == version) / total if total else 0.0


POLICY = {"steps": [10, 50, 100], "dwell_s": 60, "min_requests": 50, "interval_s": 10,
          "consecutive_failures": 2, "step_max_s": 600, "max_error_rate": 0.05, "batch_size": 1}


def make_fleet(tmp_path: Path, policy: dict | None = None, hosts: int = 3,
               capacities: list[int] | None = None) -> Fleet:
    caps = capacities or [1] * hosts
    nodes = tuple(Node(f"node{i}", f"10.9.0.{i}:6006", 0, "", True, f"127.0.0.1:{2200 + i}", Fraction(caps[i - 1]))
                  for i in range(1, len(caps) + 1))
    return Fleet(source=tmp_path / "inventory", nodes=nodes, lbs=("lb1",), registry="reg:5000",
                 registry_push="127.0.0.1:5000", repository="tts", policy=parse_policy(policy or POLICY))


def ticked(controller: Controller) -> Record:
    """One tick of a controller that has an active rollout."""
    record = controller.tick()
    assert record is not None, "no active rollout to tick"
    return record


def to_first_step(controller: Controller, clock: FakeClock, rollout_id: str) -> None:
    """Tick until the first traffic step's weights are live."""
    while controller.store.get(rollout_id).state.get("weight_live") != 10:
        controller.tick()
        clock.sleep(10)


def run(controller: Controller, clock: FakeClock, max_ticks: int = 500) -> list[str]:
    """Tick until the rollout ends or pauses; returns the phase after each tick."""
    phases = []
    for _ in range(max_ticks):
        record = controller.tick()
        if record is None:
            break
        phases.append(record.phase)
        if Phase(record.phase).terminal or record.phase == Phase.PAUSED.value:
            break
        clock.sleep(10)
    return phases
