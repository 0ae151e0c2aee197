"""A rollout's durable state and the pure functions over it: plan and LB layout.

Everything here is data in, data out. The controller writes a `RolloutState` to the
store before each action, so these functions must give the same answer after a
restart as before it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from canary.decisions.inventory import Fleet
from canary.decisions.phases import Phase
from canary.decisions.policy import Policy
from canary.decisions.traffic import Role, State, UpstreamServer, upstream_servers


@dataclass
class RolloutState:
    rollout_id: str
    fleet: str
    version: str
    stable_version: str
    phase: Phase
    canary_hosts: list[str]
    stable_hosts: list[str]
    steps: list[int]
    batches: list[list[str]]
    upstream: dict[str, str]  # host -> address the LB uses
    policy: dict[str, Any] = field(default_factory=dict)
    step_index: int = -1
    weight_set: int = 0  # canary % the controller means to have live
    weight_live: int | None = None  # canary % confirmed live (None: unknown, re-apply)
    step_started_at: float | None = None
    step_cursor: dict[str, Any] = field(default_factory=dict)  # LB log position at the step's start
    baseline_cursor: dict[str, Any] = field(default_factory=dict)  # the previous step's start
    looks: int = 0
    consecutive_fails: int = 0
    inconclusive_since: float | None = None
    batch_index: int = 0
    new_hosts: list[str] = field(default_factory=list)  # hosts running the new version
    rollback_stage: str = ""  # drain | restore | readmit
    paused_phase: str | None = None
    skip_wait: bool = False  # an operator's `promote`: pass the current step without waiting
    full_promote: bool = False  # `promote --full`: every remaining step and batch now
    manual: bool = False  # `set-weight`: the operator holds the weight; analysis still watches
    reason: str = ""
    last_verdict: dict[str, Any] | None = None
    image_digest: str = ""
    git_revision: str = ""  # the source revision the image was built from (its OCI label)
    ignored_hosts: list[str] = field(default_factory=list)  # added to the inventory after the start

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
    def step_weight(self) -> int:
        return self.steps[self.step_index] if 0 <= self.step_index < len(self.steps) else 0

    def canary_addresses(self) -> set[str]:
        return {self.upstream[h] for h in self.new_hosts or self.canary_hosts}

    def stable_addresses(self) -> set[str]:
        return {self.upstream[h] for h in self.upstream if h not in set(self.new_hosts or self.canary_hosts)}


def choose_canaries(fleet: Fleet, policy: Policy) -> list[str]:
    if policy.canary_hosts:
        return list(policy.canary_hosts)
    return [next(n.name for n in sorted(fleet.nodes, key=lambda n: n.name) if n.canary_eligible)]


def plan_rollout(fleet: Fleet, policy: Policy, rollout_id: str, version: str, stable_version: str) -> RolloutState:
    canaries = choose_canaries(fleet, policy)
    stable = [n.name for n in fleet.nodes if n.name not in canaries]
    size = policy.batch_size
    return RolloutState(
        rollout_id=rollout_id, fleet=str(fleet.source), version=version, stable_version=stable_version,
        phase=Phase.PENDING, canary_hosts=canaries, stable_hosts=stable, steps=list(policy.steps),
        batches=[stable[i:i + size] for i in range(0, len(stable), size)],
        upstream={n.name: n.upstream for n in fleet.nodes},
        policy={k: v for k, v in asdict(policy).items() if k != "extra"},
    )


def _server(state: RolloutState, host: str, version: str, role: Role, status: State) -> UpstreamServer:
    return UpstreamServer(address=state.upstream[host], role=role, version=version, weight=1, state=status)


def traffic_layout(state: RolloutState) -> tuple[list[UpstreamServer], int]:
    """The LB servers and canary share this state calls for (pure).

    - before the canary runs the new version, and after a roll back: stable everywhere;
    - canary deploy and warm-up: canary hosts drained (`down`), stable takes 100%;
    - traffic step W: new-version hosts W%, stable 100−W% (at 100% stable is `backup`);
    - promotion: new-version hosts take everything, the batch being swapped is `down`,
      the rest of stable stays `backup` for retries.
    """
    phase = Phase(state.paused_phase) if state.phase is Phase.PAUSED and state.paused_phase else state.phase
    new = list(state.new_hosts)
    old = [h for h in state.upstream if h not in new]
    if phase in (Phase.PENDING, Phase.PREFLIGHT, Phase.PREPULL, Phase.ROLLED_BACK, Phase.PREFLIGHT_FAILED):
        return [_server(state, h, state.stable_version, "stable", "up") for h in state.upstream], 0
    if phase is Phase.SUCCEEDED:
        return [_server(state, h, state.version, "stable", "up") for h in state.upstream], 0
    if phase in (Phase.CANARY_DEPLOY, Phase.WARMUP_GATE) or (phase is Phase.ROLLING_BACK and
                                                             state.rollback_stage in ("drain", "restore")):
        drained = [h for h in state.upstream if h in new or h in state.canary_hosts]
        keep = [h for h in state.upstream if h not in drained]
        if not keep:  # nothing old left to carry traffic: keep serving from the new version
            return traffic_for_share(state, new, [], 100)
        return ([_server(state, h, state.version, "canary", "down") for h in drained]
                + [_server(state, h, state.stable_version, "stable", "up") for h in keep], 0)
    if phase is Phase.PROMOTING:
        batch = state.batches[state.batch_index] if state.batch_index < len(state.batches) else []
        servers, share = traffic_for_share(state, new, [h for h in old if h not in batch], 100)
        return servers + [_server(state, h, state.stable_version, "stable", "down") for h in batch], share
    # TRAFFIC, and ROLLING_BACK's readmit stage falls back to the stable layout above
    if phase is Phase.ROLLING_BACK:
        return [_server(state, h, state.stable_version, "stable", "up") for h in state.upstream], 0
    return traffic_for_share(state, new, old, state.weight_set)


def traffic_for_share(state: RolloutState, new: list[str], old: list[str], percent: int
                      ) -> tuple[list[UpstreamServer], int]:
    if not old:
        return [_server(state, h, state.version, "canary", "up") for h in new], 100
    servers = upstream_servers({state.upstream[h]: state.version for h in new},
                               {state.upstream[h]: state.stable_version for h in old}, percent)
    return servers, percent
