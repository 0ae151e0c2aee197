"""The fleet's hands: deploy a version to hosts, set LB weights, read what runs where.

Each operation is one playbook run through the ansible-runner seam and returns
plain data. Nothing here decides anything: the controller decides, then calls these.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from canary.adapters.ansible import PlaybookResult, PlaybookRun, ProgressEvent, run_playbook
from canary.adapters.lb_traffic import LbTraffic
from canary.decisions.fleet_state import NodeState
from canary.decisions.inventory import Fleet
from canary.decisions.traffic import UpstreamServer, canary_percent_of, upstream_servers


class FleetError(RuntimeError):
    """A playbook failed; the message names each failed or unreachable host and why."""

    def __init__(self, action: str, result: PlaybookResult) -> None:
        super().__init__(f"{action} failed:\n{result.describe()}")
        self.result = result


Progress = Callable[[ProgressEvent], None]


# What a deploy's progress says, per host, as each milestone task finishes.
MILESTONES = {
    "Pull the service image": "image pulled",
    "Run the service container": "container started",
    "Wait until the model is loaded, warm-up passed and the health check agrees": "model loaded, warm-up passed",
    "Synthesise a probe sentence": "speaks: probe sentence passed",
}


def milestones(log: Callable[[str], None], version: str) -> Progress:
    """A deploy's progress as one line per host and milestone (and per failure)."""
    def on_event(event: ProgressEvent) -> None:
        task = event.task.rpartition(" : ")[2]  # role tasks come as "role : name"
        if event.host and event.outcome in ("ok", "changed") and task in MILESTONES:
            log(f"  {event.host}: {version} {MILESTONES[task]}")
        elif event.host and event.outcome in ("failed", "unreachable"):
            log(f"  {event.host}: {event.outcome} at '{task}'")
    return on_event


def _secrets(fleet: Fleet) -> dict[str, str]:
    """Secrets from the controller's environment (a CI secret), handed to Ansible out of band."""
    password = os.environ.get("VOXFLEET_REGISTRY_PASSWORD", "")
    return {"registry_password": password} if password else {}


def _run(fleet: Fleet, playbook: str, extravars: dict[str, Any], action: str, limit: str | None = None,
         on_event: Progress | None = None, cancel: Callable[[], bool] | None = None,
         timeout_s: int = 900, check: bool = True) -> PlaybookResult:
    run = PlaybookRun(playbook, fleet.source, extravars=extravars, limit=limit, timeout_s=timeout_s,
                      secrets=_secrets(fleet))
    result = run_playbook(run, on_event=on_event, cancel=cancel)
    if check and not result.ok:
        raise FleetError(action, result)
    return result


def node_states(result: PlaybookResult) -> dict[str, NodeState]:
    return {host: NodeState.from_report(host, r.facts["tts_node_report"], r.facts.get("tts_node_served"))
            for host, r in result.hosts.items() if "tts_node_report" in r.facts}


def deploy(fleet: Fleet, version: str, hosts: list[str] | None = None, pull_only: bool = False,
           serial: str = "100%", on_event: Progress | None = None, check: bool = True,
           cancel: Callable[[], bool] | None = None, digest: str = "") -> PlaybookResult:
    """Pull (and unless pull_only, run and verify) `version` on `hosts` (default: every
    node); by `digest` (sha256:…) when given, else by tag."""
    target = ",".join(hosts) if hosts else "tts_nodes"
    extravars = {"tts_version": version, "deploy_hosts": target, "deploy_pull_only": pull_only,
                 "deploy_serial": serial, "tts_node_health_timeout_s": fleet.policy.health_timeout_s,
                 "tts_node_image_digest": digest}
    action = f"{'pre-pull' if pull_only else 'deploy'} of {version} to {target}"
    return _run(fleet, "playbooks/deploy.yml", extravars, action, on_event=on_event, check=check, cancel=cancel)


def facts(fleet: Fleet, strict: bool = False) -> dict[str, NodeState]:
    """What each node runs now. strict: raise FleetError naming any host that could not be read."""
    result = _run(fleet, "playbooks/facts.yml", {}, "reading fleet facts", check=False)
    if strict and (result.unreachable_hosts() or result.failed_hosts()):
        raise FleetError("reading fleet facts", result)
    return node_states(result)


def set_servers(fleet: Fleet, servers: list[UpstreamServer], canary_percent: int,
                on_event: Progress | None = None) -> PlaybookResult:
    """The nginx_lb role on every LB, each with the servers named by its own addresses."""
    by_lb = {lb: [asdict(s) for s in LbTraffic(fleet, lb).resolved(servers)] for lb in fleet.lbs}
    extravars = {"traffic_servers_by_lb": by_lb, "traffic_canary_percent": canary_percent}
    return _run(fleet, "playbooks/traffic.yml", extravars, f"setting traffic to {canary_percent}% canary",
                on_event=on_event, timeout_s=300)


def split(fleet: Fleet, canary: dict[str, str], stable: dict[str, str], canary_percent: int | None,
          out: Iterable[str] = ()) -> list[UpstreamServer]:
    """The LB servers that route `canary_percent`% to the canary hosts (None: every host by
    capacity), weights by capacity within each side; `canary`/`stable` map host name →
    version; `out`: hosts taken out of traffic."""
    upstream = {n.name: n.upstream for n in fleet.nodes}
    return upstream_servers({upstream[h]: v for h, v in canary.items()},
                            {upstream[h]: v for h, v in stable.items()}, canary_percent,
                            {n.upstream: n.capacity for n in fleet.nodes}, [upstream[h] for h in out])


def set_traffic(fleet: Fleet, canary: dict[str, str], stable: dict[str, str], canary_percent: int | None,
                out: Iterable[str] = (), on_event: Progress | None = None) -> PlaybookResult:
    """The nginx_lb role on every LB with `split(...)`'s servers."""
    servers = split(fleet, canary, stable, canary_percent, out)
    return set_servers(fleet, servers, canary_percent_of(servers), on_event)
