"""The controller's ports (canary.rollout.ports) on the real fleet: playbooks through
Ansible for hosts, LB weights and golden prompts; the registry's HTTP API. The LB's
access log is read by `canary.adapters.lb_log`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from canary.adapters import fleet as fleet_ops
from canary.adapters import registry
from canary.adapters.ansible import PlaybookRun, run_playbook
from canary.adapters.fleet import FleetError
from canary.adapters.images import MODEL_VERSION_LABEL, REVISION_LABEL
from canary.adapters.lb_traffic import LbTraffic, TrafficChangeError
from canary.decisions.fleet_state import ImageLabels, NodeState
from canary.decisions.inventory import Fleet
from canary.decisions.traffic import UpstreamServer


class AnsibleFleet:
    def __init__(self, fleet: Fleet, log: Callable[[str], None] | None = None) -> None:
        self.fleet, self.log = fleet, log

    def states(self) -> dict[str, NodeState]:
        return fleet_ops.facts(self.fleet, strict=True)

    def deploy(self, version: str, hosts: list[str], pull_only: bool = False, digest: str = "") -> None:
        progress = fleet_ops.milestones(self.log, version) if self.log else None
        fleet_ops.deploy(self.fleet, version, hosts, pull_only=pull_only, on_event=progress, digest=digest)


class LbTrafficPort:
    """The traffic port on every LB of the fleet: the nginx_lb role (through Ansible) to
    prepare them, the fast path (canary.adapters.lb_traffic) for each change after."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.lbs = [LbTraffic(fleet, lb) for lb in fleet.lbs]

    def prepare(self, servers: list[UpstreamServer], canary_percent: int) -> str:
        result = fleet_ops.set_servers(self.fleet, servers, canary_percent)
        reports = [h.facts.get("nginx_lb_report", {}) for h in result.hosts.values()]
        return next((str(r.get("traffic_sha256", "")) for r in reports if r), "")

    def apply(self, servers: list[UpstreamServer], canary_percent: int) -> str:
        """Every LB or none: when one refuses, those already changed are put back."""
        done: list[LbTraffic] = []
        sha = ""
        for lb in self.lbs:
            try:
                sha = lb.apply(servers, canary_percent)
            except TrafficChangeError as refused:
                unrestored = []
                for changed in done:
                    try:
                        changed.restore()
                    except TrafficChangeError as exc:
                        unrestored.append(str(exc))
                if unrestored:
                    raise TrafficChangeError(f"{refused}; and the LBs already changed could not all be put "
                                             f"back: {'; '.join(unrestored)}") from refused
                raise TrafficChangeError(f"{refused}; the other LBs are back on the previous split "
                                         f"({', '.join(c.lb for c in done) or 'none had changed'})") from refused
            done.append(lb)
        return sha


class AnsibleProbe:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def golden(self, hosts: list[str]) -> dict[str, list[dict[str, Any]]]:
        run = PlaybookRun("playbooks/probe.yml", self.fleet.source, extravars={"probe_hosts": ",".join(hosts)},
                          timeout_s=600)
        result = run_playbook(run)
        if not result.ok:
            raise FleetError("golden prompts", result)
        return {h: list(r.facts.get("golden_report", [])) for h, r in result.hosts.items()}


class HttpRegistry:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def digest(self, version: str) -> str | None:
        return registry.tag_digest(self.fleet.registry_push, self.fleet.repository, version,
                                   self.fleet.registry_insecure)

    def labels(self, version: str) -> ImageLabels:
        """An image whose labels cannot be read (an index, a registry quirk) still rolls
        out: each host checks its model version label again at pull."""
        try:
            config = registry.image_config(self.fleet.registry_push, self.fleet.repository, version,
                                           self.fleet.registry_insecure)
        except (registry.RegistryError, ValueError):
            return ImageLabels()
        labels = config.labels if config else {}
        return ImageLabels(labels.get(MODEL_VERSION_LABEL, ""), labels.get(REVISION_LABEL, ""))
