"""A new version's container that restarted is evidence against it, named in the verdict.

Docker restarts a service container whose process died (`restart: unless-stopped`). The
LB then sees a few refused connections, retried elsewhere, and the version looks merely
"slower" or no worse at all. The deploy's own wait fails on a restart at start-up; this
covers the traffic steps after it: every analysis asks each new-version host how often
its container restarted, and any restart fails the analysis, saying which host, how often,
how the process ended and what it last logged. The count starts at 0 when the deploy
creates the container, so any restart at all is the new version's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from canary.decisions.judge import MetricVerdict, Verdict


@dataclass(frozen=True)
class ContainerLife:
    """What a host's service container says of its own life (`docker inspect`, `docker logs`)."""

    restart_count: int
    started_at: str = ""
    exit_code: int | None = None  # of the process that ended last (0 while it never ended)
    oom_killed: bool = False
    last_log: str = ""  # its last log lines, joined with " | "


def describe(host: str, life: ContainerLife) -> str:
    how = f"exit code {life.exit_code}" if life.exit_code is not None else "exit code unknown"
    if life.oom_killed:
        how += ", killed for memory"
    text = f"{host}'s container restarted {life.restart_count}× ({how}; running again since {life.started_at or '?'})"
    return text + (f", last log: {life.last_log}" if life.last_log else "")


def restart_metric(lives: Mapping[str, ContainerLife]) -> MetricVerdict:
    """Pass when no new-version host's container restarted; fail naming each that did."""
    restarted = {host: life for host, life in sorted(lives.items()) if life.restart_count > 0}
    numbers = {"hosts_asked": len(lives), "restarts": {h: life.restart_count for h, life in restarted.items()}}
    if not restarted:
        return MetricVerdict("restarts", "pass", f"no restart on {len(lives)} new-version host(s)", numbers)
    reason = "canary process crashed: " + "; ".join(describe(h, life) for h, life in restarted.items())
    return MetricVerdict("restarts", "fail", reason, numbers)


def with_restarts(verdict: Verdict, restarts: MetricVerdict) -> Verdict:
    """The traffic's verdict with the restart check added: a restart fails it, named first."""
    metrics = (*verdict.metrics, restarts)
    if restarts.verdict != "fail":
        return Verdict(verdict.verdict, metrics, verdict.canary_n, verdict.stable_n, verdict.summary)
    return Verdict("fail", metrics, verdict.canary_n, verdict.stable_n,
                   f"fail: {restarts.reason}; the traffic's own verdict: {verdict.summary}")
