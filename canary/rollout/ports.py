"""The controller's ports: everything it does to the world goes through these.

Production adapters (Ansible, the LB's access log over SSH, Prometheus' query API, the
registry's HTTP API) live in `canary/adapters/`; unit tests use in-memory fakes (`tests/unit/fakes.py`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from canary.decisions.access_log import Request
from canary.decisions.fleet_state import ImageLabels, NodeState
from canary.decisions.prometheus_evidence import VersionTotals
from canary.decisions.traffic import UpstreamServer


class FleetPort(Protocol):
    def states(self) -> dict[str, NodeState]:
        """What every node runs now. Raises FleetError naming unreachable hosts."""

    def deploy(self, version: str, hosts: list[str], pull_only: bool = False, digest: str = "") -> None:
        """Pull (and unless pull_only, run and verify) `version` on `hosts`; idempotent.
        `digest` (sha256:…): pull exactly that manifest, whatever the tag points at now."""


class TrafficPort(Protocol):
    def prepare(self, servers: list[UpstreamServer], canary_percent: int) -> str:
        """Install or update every LB's whole config with these weights (slow: a playbook)."""

    def apply(self, servers: list[UpstreamServer], canary_percent: int) -> str:
        """Validate and load these LB weights in one reload on every LB, or on none (fast);
        returns the live split's sha256."""


class MetricsPort(Protocol):
    def cursor(self) -> dict[str, Any]:
        """A position at the end of the LB's access log now."""

    def read(self, cursor: dict[str, Any]) -> tuple[list[Request], dict[str, Any]]:
        """API requests logged since `cursor`, and the cursor after them."""

    def request_rate(self, window_s: float) -> float:
        """API requests per second through the LB over the last `window_s` seconds."""


class AggregatePort(Protocol):
    def totals(self, versions: Sequence[str], since: float, until: float,
               latency_since: float | None = None) -> dict[str, VersionTotals]:
        """Each version's speech requests from `since` to `until` (unix seconds), its
        latency histogram from `latency_since` (default `since`). Raises
        PrometheusUnavailable naming the server and why."""


class ProbePort(Protocol):
    def golden(self, hosts: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Golden-prompt reports (service.golden) from each host's running container."""


class RegistryPort(Protocol):
    def digest(self, version: str) -> str | None:
        """The image digest of `version` in the registry, or None when the tag is missing."""

    def labels(self, version: str) -> ImageLabels:
        """What `version`'s image says of itself in the registry; "" where it cannot be read."""


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class ShiftedClock:
    """Another clock's time plus the seconds written in a file (read at every `now`), so a
    rehearsal or a test can move the calendar a rollout's promotion window is judged
    at (`VOXFLEET_CALENDAR_SHIFT_FILE`) without waiting for the wall clock."""

    def __init__(self, base: Clock, shift_file: Path) -> None:
        self.base, self.shift_file = base, shift_file

    def now(self) -> float:
        try:
            shift = float(self.shift_file.read_text().strip() or 0)
        except (OSError, ValueError):
            shift = 0.0
        return self.base.now() + shift

    def sleep(self, seconds: float) -> None:
        self.base.sleep(seconds)
