"""A rollout's durable state and the pure functions over it: plan and LB layout.

Everything here is data in, data out. The controller writes a `RolloutState` to the
store before each action, so these functions must give the same answer after a
restart as before it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from typing import Any

from canary.decisions.capacity import Host, Layout, load_ratios, plan_stages, switch_layout
from canary.decisions.inventory import Fleet
from canary.decisions.phases import Phase
from canary.decisions.policy import Policy, stored_policy
from canary.decisions.traffic import UpstreamServer, canary_percent_of, upstream_servers


@dataclass
class RolloutState:
    rollout_id: str
    fleet: str
    version: str
    stable_version: str
    phase: Phase
    canary_hosts: list[str]
    stable_hosts: list[str]
    steps: list[int]  # the policy's steps, percent; the last (100) is reached by promotion batches
    batches: list[list[str]]  # promotion batches, switched one after the other, each then judged
    upstream: dict[str, str]  # host -> address the LB uses
    policy: dict[str, Any] = field(default_factory=dict)
    inventory_policy: dict[str, Any] = field(default_factory=dict)  # the inventory's at start (no --set)
    policy_edit_seen: dict[str, Any] = field(default_factory=dict)  # an edit of it already recorded
    capacity: dict[str, str] = field(default_factory=dict)  # host -> tts_capacity ("3/2")
    step_switches: list[list[list[str]]] = field(default_factory=list)  # batches switched before each step
    draining: list[str] = field(default_factory=list)  # the batch being switched now (out of traffic)
    advancing: bool = False  # promotion: the stage passed, the next batch is to be switched
    capacity_wait: str = ""  # why a switch waits for the load to fit (said once)
    step_index: int = -1
    weight_set: int = 0  # canary % the controller means to have live
    weight_live: int | None = None  # canary % confirmed live (None: unknown, re-apply)
    step_started_at: float | None = None
    step_cursor: dict[str, Any] = field(default_factory=dict)  # LB log position at the step's start
    baseline_cursor: dict[str, Any] = field(default_factory=dict)  # the previous step's start
    looks: int = 0
    consecutive_fails: int = 0
    inconclusive_since: float | None = None
    batch_index: int = 0  # promotion batches switched so far
    new_hosts: list[str] = field(default_factory=list)  # hosts running the new version
    rollback_stage: str = ""  # drain | restore | readmit
    lost_hosts: list[str] = field(default_factory=list)  # unreachable when the roll back restored: kept out
    paused_phase: str | None = None
    skip_wait: bool = False  # an operator's `promote`: pass the current step without waiting
    full_promote: bool = False  # `promote --full`: every remaining step and batch now
    manual: bool = False  # `set-weight`: the operator holds the weight; analysis still watches
    listened: bool = False  # the listen-first pause (policy listen_first) has been held
    reason: str = ""
    last_verdict: dict[str, Any] | None = None
    image_digest: str = ""  # the new version's manifest digest, resolved once at preflight: hosts pull this
    stable_digest: str = ""  # the digest the stable hosts ran at preflight (a roll back restores it)
    git_revision: str = ""  # the source revision the image was built from (its OCI label)
    ignored_hosts: list[str] = field(default_factory=list)  # added to the inventory after the start
    # the stable version's golden reports from the drained canary host before its switch:
    # {"host", "reports"}; {"host": "", "why"}: to be asked of a stable host; {}: not taken yet
    golden_baseline: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = self.phase.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutState:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["phase"] = Phase(values["phase"])
        return cls(**values)

    @property
    def acting_phase(self) -> Phase:
        """The phase whose layout holds: a paused rollout keeps the one it paused in."""
        return Phase(self.paused_phase) if self.phase is Phase.PAUSED and self.paused_phase else self.phase

    @property
    def traffic_steps(self) -> list[int]:
        return [p for p in self.steps if p < 100]

    @property
    def step_weight(self) -> int:
        steps = self.traffic_steps
        return steps[self.step_index] if 0 <= self.step_index < len(steps) else 0

    @property
    def stage_name(self) -> str:
        if self.acting_phase is Phase.PROMOTING:
            batch = self.batches[self.batch_index - 1] if self.batch_index else []
            return f"promotion batch {self.batch_index}/{len(self.batches)} ({', '.join(batch)})"
        return f"step {self.step_index + 1} ({self.step_weight}%)"

    def pending_switches(self) -> list[list[str]]:
        """This step's batches still to switch to the new version before its share applies."""
        if not 0 <= self.step_index < len(self.step_switches):
            return []
        return [b for b in self.step_switches[self.step_index] if not set(b) <= set(self.new_hosts)]

    def capacities(self) -> dict[str, Fraction]:
        return {h: Fraction(self.capacity.get(h, "1")) for h in self.upstream}

    def canary_addresses(self) -> set[str]:
        return {self.upstream[h] for h in self.new_hosts or self.canary_hosts}

    def stable_addresses(self) -> set[str]:
        return {self.upstream[h] for h in self.upstream if h not in set(self.new_hosts or self.canary_hosts)}


def plan_rollout(fleet: Fleet, policy: Policy, rollout_id: str, version: str, stable_version: str) -> RolloutState:
    """The rollout's durable plan; PlanError names the step when the policy cannot be honoured."""
    hosts = [Host(n.name, n.capacity, n.canary_eligible) for n in sorted(fleet.nodes, key=lambda n: n.name)]
    stages = plan_stages(hosts, policy.steps, policy.canary_headroom, policy.batch_size, policy.canary_hosts)
    steps = [s for s in stages if not s.is_promotion]
    canaries = list(stages[0].new_hosts) if steps else list(stages[0].switch[0])
    return RolloutState(
        rollout_id=rollout_id, fleet=str(fleet.source), version=version, stable_version=stable_version,
        phase=Phase.PENDING, canary_hosts=canaries, stable_hosts=[n.name for n in fleet.nodes if n.name not in canaries],
        steps=list(policy.steps), batches=[list(s.switch[0]) for s in stages if s.is_promotion],
        upstream={n.name: n.upstream for n in fleet.nodes},
        # the notify URL is a credential: the durable state keeps its redacted form only
        # (the real one: canary.adapters.private_files, next to the state store)
        policy=stored_policy(policy), inventory_policy=stored_policy(fleet.inventory_policy or policy),
        capacity={n.name: str(n.capacity) for n in fleet.nodes},
        step_switches=[[list(b) for b in s.switch] for s in steps],
    )


def layout_servers(state: RolloutState, layout: Layout) -> tuple[list[UpstreamServer], int]:
    """The LB servers (weights by capacity) and canary share (percent) of a layout."""
    addresses, caps = state.upstream, state.capacities()
    new = {addresses[h]: state.version for h in addresses if h in layout.new}
    old = {addresses[h]: state.stable_version for h in addresses if h not in layout.new}
    servers = upstream_servers(new, old, layout.share, {addresses[h]: c for h, c in caps.items()},
                               [addresses[h] for h in layout.out])
    return servers, canary_percent_of(servers)


def _switch_share(state: RolloutState) -> Fraction:
    """While a step's hosts are switched: between the previous step's share and this one's."""
    steps = state.traffic_steps
    low = Fraction(steps[state.step_index - 1], 100) if state.step_index > 0 else Fraction(0)
    high = Fraction(steps[state.step_index], 100) if state.step_index > 0 else Fraction(0)
    share = switch_layout(state.new_hosts, state.draining, low, high, state.capacities()).share
    assert share is not None
    return share


def traffic_layout(state: RolloutState) -> tuple[list[UpstreamServer], int]:
    """The LB servers and canary share (percent) this state calls for (pure). Every weight
    follows capacity (`canary.decisions.capacity`):

    - before the canary runs the new version, and after a roll back: the old version
      everywhere; after success, the new version everywhere;
    - canary deploy and warm-up: canary hosts out of traffic, the others carry it;
    - a traffic step: its share on the new version's hosts; while the hosts it needs are
      switched, a share between the previous step's and its own, the batch out;
    - promotion: every host by capacity, whatever its version; a batch being switched out;
    - roll back: the new version's hosts out until they run the old version again.
    """
    phase = state.acting_phase
    every = frozenset(state.upstream)
    lost = frozenset(state.lost_hosts)
    if phase in (Phase.PENDING, Phase.PREFLIGHT, Phase.PREPULL, Phase.ROLLED_BACK, Phase.PREFLIGHT_FAILED):
        return layout_servers(state, Layout(frozenset(), lost))
    if phase is Phase.SUCCEEDED:
        return layout_servers(state, Layout(every))
    new = frozenset(state.new_hosts)
    if phase in (Phase.CANARY_DEPLOY, Phase.WARMUP_GATE):
        drained = frozenset(state.canary_hosts) | new
        return layout_servers(state, Layout(drained, drained, Fraction(0)))
    if phase is Phase.ROLLING_BACK:
        if state.rollback_stage == "readmit":
            return layout_servers(state, Layout(frozenset(), lost))
        if new >= every:  # nothing old left to carry traffic: keep serving from the new version
            return layout_servers(state, Layout(every))
        return layout_servers(state, Layout(new, new, Fraction(0)))
    if phase is Phase.PROMOTING:
        return layout_servers(state, Layout(new, frozenset(state.draining)))
    if state.pending_switches() or state.draining:  # TRAFFIC, hosts still being switched for this step
        return layout_servers(state, Layout(new, frozenset(state.draining), _switch_share(state)))
    return layout_servers(state, Layout(new, share=Fraction(state.weight_set, 100)))


def planned_layouts(state: RolloutState) -> list[tuple[str, Layout]]:
    """Every traffic layout the plan goes through, in order, each named (pure): the canary
    deploy, each step's switches and the step itself, each promotion batch's switch and
    the layout judged after it."""
    caps, out = state.capacities(), []
    canaries = frozenset(state.canary_hosts)
    out.append((f"canary deploy: {', '.join(state.canary_hosts)} out", Layout(canaries, canaries, Fraction(0))))
    new = list(state.canary_hosts)
    share = Fraction(0)
    for index, percent in enumerate(state.traffic_steps):
        target = Fraction(percent, 100)
        for batch in state.step_switches[index] if index else []:
            out.append((f"before step {index + 1}: {', '.join(batch)} out",
                        switch_layout(new, batch, share, target, caps)))
            new += batch
        out.append((f"step {index + 1} ({percent}%)", Layout(frozenset(new), share=target)))
        share = target
    for number, batch in enumerate(state.batches, 1):
        if set(batch) <= set(new):  # the canaries, when no step is below 100%
            continue
        out.append((f"promotion batch {number}: {', '.join(batch)} out",
                    switch_layout(new, batch, Fraction(0), Fraction(1), caps)))
        new += batch
        name = f"after promotion batch {number}" if len(new) < len(caps) else "every host on the new version"
        out.append((name, Layout(frozenset(new))))
    return out


def layout_rows(state: RolloutState, layout: Layout) -> list[dict[str, Any]]:
    """Per host: its version, expected share of the load and share of the capacity."""
    caps = state.capacities()
    total = sum(caps.values(), Fraction(0))
    ratios = load_ratios(caps, layout)
    return [{"host": host, "version": state.version if host in layout.new else state.stable_version,
             "in_service": host not in layout.out, "load_share": float(ratios.get(host, 0) * caps[host] / total),
             "capacity_share": float(caps[host] / total), "ratio": float(ratios.get(host, 0))}
            for host in state.upstream]
