"""The operator's inventory as the controller sees it, checked before anything acts (pure).

`canary.adapters.inventory` reads it with `ansible-inventory --list` (so the controller
sees exactly what the playbooks will see); `check_fleet` turns that data into a `Fleet`
or names each mistake: unknown keys in our namespaces, duplicate addresses, a missing
LB group, no canary-eligible host, a bad policy value.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from canary.decisions.capacity import capacity_units
from canary.decisions.policy import Policy, PolicyError, parse_policy
from service.config import SettingsError, cpu_count

NODE_GROUP, LB_GROUP = "tts_nodes", "lb"
KNOWN_HOST_VARS = ("tts_upstream_address", "tts_gpu_count", "tts_gpu_type", "tts_canary_eligible", "tts_capacity",
                   "tts_cpus", "tts_workers", "tts_worker_cpus")
KNOWN_GLOBAL_VARS = ("tts_registry", "tts_registry_push", "tts_image_repository", "tts_registry_username",
                     "tts_registry_password", "tts_service_env", "tts_pull_policy", "rollout_policy", "lb_public_url",
                     "tts_model_artifacts", "tts_model_cache_dir", "tts_registry_insecure")
OUR_PREFIXES = ("tts_", "rollout_")


class InventoryError(ValueError):
    def __init__(self, source: Path, problems: list[str]) -> None:
        super().__init__(f"inventory {source}: " + "; ".join(problems))
        self.source, self.problems = source, problems


@dataclass(frozen=True)
class Node:
    name: str
    upstream: str  # host:port as the LB reaches it
    gpu_count: int
    gpu_type: str
    canary_eligible: bool
    ssh: str  # ansible_host:ansible_port, for messages
    capacity: Fraction = Fraction(1)  # relative: tts_capacity, default its GPU count (1 for a CPU host)


@dataclass(frozen=True)
class Fleet:
    source: Path
    nodes: tuple[Node, ...]
    lbs: tuple[str, ...]
    registry: str
    registry_push: str
    repository: str
    policy: Policy
    # where clients reach the LBs: one address in front of them, or each LB's own
    lb_public_urls: tuple[str, ...] = ()
    # registries (host:port, as written in tts_registry/tts_registry_push) spoken to over
    # plain HTTP; any other is HTTPS only (canary.adapters.registry.registry_url)
    registry_insecure: tuple[str, ...] = ()
    hostvars: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    # the inventory's own rollout_policy, without a command's --set (None: the same as policy)
    inventory_policy: Policy | None = None

    @property
    def lb_public_url(self) -> str:
        """The first address clients reach the LBs at ("" when none is set)."""
        return self.lb_public_urls[0] if self.lb_public_urls else ""

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def image(self, version: str, for_push: bool = False) -> str:
        return f"{self.registry_push if for_push else self.registry}/{self.repository}:{version}"


def _group_hosts(data: dict[str, Any], group: str) -> list[str]:
    hosts = list(data.get(group, {}).get("hosts", []))
    for child in data.get(group, {}).get("children", []):
        hosts += [h for h in _group_hosts(data, child) if h not in hosts]
    return hosts


def _unknown(key: str, known: tuple[str, ...], where: str) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"{where}: unknown key {key}" + (f" (did you mean {close[0]}?)" if close else "")


def _unknown_keys(hostvars: dict[str, dict[str, Any]]) -> list[str]:
    known = KNOWN_HOST_VARS + KNOWN_GLOBAL_VARS
    return [_unknown(key, known, f"host {host}") for host, hv in sorted(hostvars.items())
            for key in hv if key.startswith(OUR_PREFIXES) and key not in known]


def _node(name: str, hv: dict[str, Any], problems: list[str]) -> Node:
    """One tts_nodes host from its variables; each bad value is named in `problems`."""
    upstream = str(hv.get("tts_upstream_address") or f"{hv.get('ansible_host', name)}:6006")
    if not upstream.rpartition(":")[2].isdigit():
        problems.append(f"host {name}: tts_upstream_address {upstream!r} must be host:port")
    gpus = hv.get("tts_gpu_count", 0)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        problems.append(f"host {name}: tts_gpu_count must be a non-negative integer, got {gpus!r}")
        gpus = 0
    eligible = hv.get("tts_canary_eligible", False)
    if not isinstance(eligible, bool):
        problems.append(f"host {name}: tts_canary_eligible must be true or false, got {eligible!r}")
        eligible = False
    ssh = f"{hv.get('ansible_host', name)}:{hv.get('ansible_port', 22)}"
    capacity = hv.get("tts_capacity", gpus or 1)
    if isinstance(capacity, bool) or not isinstance(capacity, (int, float)) or not capacity_units(capacity) > 0:
        problems.append(f"host {name}: tts_capacity must be a positive number (default: tts_gpu_count, or 1 "
                        f"without GPUs), got {capacity!r}")
        capacity = 1
    workers = hv.get("tts_workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        problems.append(f"host {name}: tts_workers must be a positive integer (default: one per GPU), got {workers!r}")
    worker_cpus = hv.get("tts_worker_cpus", "")
    try:
        cpu_count("tts_worker_cpus", worker_cpus)  # as the service takes it (TTS_WORKER_CPUS)
    except SettingsError:
        problems.append(f"host {name}: tts_worker_cpus must be a positive number of CPUs up to 1024 (e.g. \"0.4\") "
                        f"or empty, got {worker_cpus!r}")
    return Node(name, upstream, gpus, str(hv.get("tts_gpu_type", "")), eligible, ssh, capacity_units(capacity))


def _duplicate_addresses(nodes: list[Node]) -> list[str]:
    problems = []
    for what, address_of in (("upstream address", lambda n: n.upstream), ("SSH address", lambda n: n.ssh)):
        seen: dict[str, str] = {}
        for node in nodes:
            address = address_of(node)
            if address in seen:
                problems.append(f"host {node.name}: duplicate {what} {address} (also host {seen[address]})")
            seen[address] = node.name
    return problems


def _policy(common: dict[str, Any], overrides: dict[str, Any] | None, problems: list[str]) -> tuple[Policy, Policy]:
    """(the inventory's policy, with the overrides)."""
    try:
        policy = parse_policy(common.get("rollout_policy"))
        return policy, parse_policy(overrides, base=policy) if overrides else policy
    except PolicyError as exc:
        problems += exc.problems
        return Policy(), Policy()


def _canary_problems(nodes: list[Node], policy: Policy, common: dict[str, Any]) -> list[str]:
    problems = []
    if nodes and not any(n.canary_eligible for n in nodes):
        problems.append("no canary-eligible host (set tts_canary_eligible: true on at least one tts_nodes host)")
    by_name = {n.name: n for n in nodes}
    raw = (common.get("rollout_policy") or {}).get("canary_hosts")  # named even when the policy is invalid
    canary_hosts = policy.canary_hosts or (tuple(raw) if isinstance(raw, list) else ())
    for host in canary_hosts:
        if host not in by_name:
            problems.append(f"rollout_policy.canary_hosts: {host} is not a host of group '{NODE_GROUP}'")
        elif not by_name[host].canary_eligible:
            problems.append(f"rollout_policy.canary_hosts: {host} is not canary-eligible")
    if nodes and len(nodes) - max(len(canary_hosts), 1) < 1:
        problems.append(f"need at least one stable host besides the canary; group '{NODE_GROUP}' has {len(nodes)}")
    return problems


def _insecure_registries(common: dict[str, Any], problems: list[str]) -> tuple[str, ...]:
    """tts_registry_insecure: the registries spoken to over plain HTTP, by name."""
    insecure = common.get("tts_registry_insecure") or []
    if not isinstance(insecure, list) or not all(isinstance(r, str) and r.strip() for r in insecure):
        problems.append(f"tts_registry_insecure must be a list of registry host:port names, got {insecure!r}")
        return ()
    return tuple(r.strip().rstrip("/") for r in insecure)


def _public_urls(common: dict[str, Any], problems: list[str]) -> tuple[str, ...]:
    """lb_public_url: one URL, or a list of them (each LB's, where clients reach them apart)."""
    value = common.get("lb_public_url") or []
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not all(isinstance(u, str) and u.strip() for u in urls):
        problems.append(f"lb_public_url must be a URL or a list of URLs, got {value!r}")
        return ()
    return tuple(u.strip().rstrip("/") for u in urls)


def check_fleet(source: Path, data: dict[str, Any], hostvars: dict[str, dict[str, Any]],
                policy_overrides: dict[str, Any] | None = None) -> Fleet:
    """Pure: build the Fleet from `ansible-inventory --list` output, or name every mistake."""
    problems: list[str] = []
    node_names, lbs = _group_hosts(data, NODE_GROUP), _group_hosts(data, LB_GROUP)
    if not node_names:
        problems.append(f"no hosts in group '{NODE_GROUP}'")
    if not lbs:
        problems.append(f"no hosts in group '{LB_GROUP}' (the load balancer)")
    problems += _unknown_keys(hostvars)
    nodes = [_node(name, hostvars.get(name, {}), problems) for name in node_names]
    problems += _duplicate_addresses(nodes)
    common = hostvars.get(node_names[0], {}) if node_names else {}
    registry = common.get("tts_registry")
    if not registry:
        problems.append("tts_registry is not set (the registry address as the hosts see it)")
    inventory_policy, policy = _policy(common, policy_overrides, problems)
    problems += _canary_problems(nodes, policy, common)
    insecure = _insecure_registries(common, problems)
    public_urls = _public_urls(common, problems)
    if problems:
        raise InventoryError(source, problems)
    return Fleet(source=source, nodes=tuple(nodes), lbs=tuple(lbs), registry=str(registry),
                 registry_push=str(common.get("tts_registry_push") or registry),
                 repository=str(common.get("tts_image_repository") or "tts"), policy=policy,
                 inventory_policy=inventory_policy,
                 lb_public_urls=public_urls,
                 registry_insecure=insecure, hostvars=hostvars)
