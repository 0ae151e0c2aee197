"""The old plan (a fixed canary cohort) and the capacity-true plan, side by side under the
same load on the sandbox: what each stage of each plan does to the busiest host.

    .venv/bin/python bench/rollout.py --plans-only [--stage-s 40] [--load 0.6]

Both plans' traffic layouts are put on the real LB one stage at a time (every host runs
v1.2.0; which "version" each server stands for only decides its weight), with open-loop
load at a share of the fleet's measured capacity. Per stage: the busiest host's measured
request rate against what its capacity serves (capacity × capacity_unit_rps), client
failures, 429/503 answers, p95 latency.
"""

from __future__ import annotations

from dataclasses import dataclass

from canary.adapters import fleet as fleet_ops
from canary.adapters.lb_traffic import LbTraffic
from canary.decisions.inventory import Fleet
from canary.decisions.plan import layout_servers, plan_rollout, planned_layouts
from canary.decisions.traffic import UpstreamServer, canary_percent_of, upstream_servers
from canary.devtools.loadgen import LoadGenerator


@dataclass(frozen=True)
class StageResult:
    name: str
    busiest: str
    busiest_load: float  # the busiest host's request rate / what its capacity serves
    requests: int
    failed: int
    shed: int
    p95_s: float


def old_plan(fleet: Fleet, steps: list[int]) -> list[tuple[str, list[UpstreamServer]]]:
    """The plan before capacity: one canary takes each step's share alone, the others get
    equal weights (backup at 100%); promotion swaps hosts while the new ones carry all."""
    hosts = [n.name for n in fleet.nodes]
    address = {n.name: n.upstream for n in fleet.nodes}

    def servers(new: list[str], percent: int, out: tuple[str, ...] = ()) -> list[UpstreamServer]:
        return upstream_servers({address[h]: "v2.0.0" for h in new}, {address[h]: "v1.0.0" for h in hosts if h not in new},
                                percent, out=[address[h] for h in out])

    canary = hosts[:1]
    stages = [(f"canary deploy: {canary[0]} out", servers(canary, 0, tuple(canary)))]
    stages += [(f"step {i} ({p}%)", servers(canary, p)) for i, p in enumerate(steps, 1)]
    for i, host in enumerate(hosts[1:], 1):
        stages.append((f"promotion batch {i}: {host} out", servers(hosts[:i], 100, (host,))))
    return stages


def new_plan(fleet: Fleet, steps: list[int]) -> list[tuple[str, list[UpstreamServer]]]:
    state = plan_rollout(fleet, fleet.policy, "bench", "v2.0.0", stable_version="v1.0.0")
    return [(name, layout_servers(state, layout)[0]) for name, layout in planned_layouts(state)]


def run_stage(fleet: Fleet, name: str, servers: list[UpstreamServer], rps: float, seconds: float,
              unit_rps: float) -> StageResult:
    for lb in fleet.lbs:  # the controller's own fast path (compare() had the role install it)
        LbTraffic(fleet, lb).apply(servers, canary_percent_of(servers))
    result = LoadGenerator(fleet.lb_public_urls, rps=rps).run(duration_s=seconds)
    capacity = {n.name: float(n.capacity) * unit_rps for n in fleet.nodes}
    load = {host: result.by_host().get(host, 0) / seconds / capacity[host] for host in capacity}
    busiest = max(load, key=lambda h: load[h])
    return StageResult(name, busiest, load[busiest], len(result.outcomes), len(result.failed), len(result.shed),
                       result.p95_s())


def compare(fleet: Fleet, load_share: float, fleet_capacity_rps: float, seconds: float) -> list[str]:
    """Both plans stage by stage; the printed table's lines."""
    steps = list(fleet.policy.steps)
    unit_rps = fleet.policy.capacity_unit_rps or fleet_capacity_rps / float(sum(n.capacity for n in fleet.nodes))
    rps = round(load_share * fleet_capacity_rps, 1)
    everyone = {n.name: "v1.2.0" for n in fleet.nodes}
    fleet_ops.deploy(fleet, "v1.2.0")
    fleet_ops.set_traffic(fleet, {}, everyone, None)  # the role: the LB's config and its apply script
    results: dict[str, list[StageResult]] = {}
    for label, stages in (("old", old_plan(fleet, steps)), ("new", new_plan(fleet, steps))):
        results[label] = [run_stage(fleet, name, servers, rps, seconds, unit_rps) for name, servers in stages]
        fleet_ops.set_traffic(fleet, {}, everyone, None)
        LoadGenerator(fleet.lb_public_urls, rps=1).run(duration_s=20)  # let queues drain between plans
    lines = [f"plans under {rps:g} req/s ({load_share:.0%} of the fleet's {fleet_capacity_rps:g}); "
             f"a host serves {unit_rps:g} req/s per unit of capacity; {seconds:g} s a stage",
             f"{'plan':<4} {'stage':<34} {'busiest':<7} {'load/cap':>8} {'requests':>8} {'failed':>6} "
             f"{'429/503':>7} {'p95 s':>6}"]
    for label, rows in results.items():
        lines += [f"{label:<4} {r.name[:34]:<34} {r.busiest:<7} {r.busiest_load:>8.2f} {r.requests:>8} "
                  f"{r.failed:>6} {r.shed:>7} {r.p95_s:>6.2f}" for r in rows]
    old, new = results["old"], results["new"]
    lines.append(f"worst stage: old {max(r.busiest_load for r in old):.2f}× capacity, "
                 f"new {max(r.busiest_load for r in new):.2f}× (ratio "
                 f"{max(r.busiest_load for r in old) / max(r.busiest_load for r in new):.2f}); failed "
                 f"{sum(r.failed for r in old)} vs {sum(r.failed for r in new)}; 429/503 "
                 f"{sum(r.shed for r in old)} vs {sum(r.shed for r in new)}")
    return lines

