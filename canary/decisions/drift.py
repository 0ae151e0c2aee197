"""Inventory drift: the fleet an operator edited while a rollout runs (pure).

A rollout is planned from the inventory at `rollout start`; its hosts, their LB
addresses and its canary live in the rollout's state from then on. When the inventory
changes under it, the controller does not guess what the operator meant:

- a host added: ignored by this rollout (it joins the next release), noted once;
- a host removed, or its LB address changed: the rollout pauses with a message that
  names the hosts; the operator puts the inventory back and resumes, or aborts, and
  the roll back then works on the hosts still listed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from canary.decisions.inventory import Fleet
from canary.decisions.plan import RolloutState

WAY_OUT = "put the inventory back and `rollout resume`, or `rollout abort` to roll back on the hosts still listed"


@dataclass(frozen=True)
class InventoryDrift:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()  # same name, another LB address

    @property
    def blocking(self) -> bool:
        """The rollout cannot act on the hosts it planned with."""
        return bool(self.removed or self.moved)

    def describe(self, state: RolloutState, source: str) -> str:
        parts = []
        if self.removed:
            roles = [f"{h} ({'canary' if h in state.canary_hosts else 'stable'})" for h in self.removed]
            parts.append(f"host(s) {', '.join(roles)} removed")
        if self.moved:
            parts.append(f"host(s) {', '.join(self.moved)} changed address")
        if self.added:
            parts.append(f"host(s) {', '.join(self.added)} added (not part of this rollout)")
        return f"inventory {source} changed during rollout {state.rollout_id}: " + "; ".join(parts)


def inventory_drift(state: RolloutState, fleet: Fleet) -> InventoryDrift:
    listed = {n.name: n.upstream for n in fleet.nodes}
    return InventoryDrift(
        added=tuple(sorted(set(listed) - set(state.upstream))),
        removed=tuple(h for h in state.upstream if h not in listed),
        moved=tuple(h for h, address in state.upstream.items() if h in listed and listed[h] != address),
    )


def on_listed_hosts(state: RolloutState, fleet: Fleet) -> RolloutState:
    """`state` with only the hosts still listed, at their listed addresses (for a roll back
    after drift): the LB stops routing to removed hosts, no action targets them."""
    listed = {n.name: n.upstream for n in fleet.nodes}

    def keep(hosts: list[str]) -> list[str]:
        return [h for h in hosts if h in listed]

    return replace(state, upstream={h: listed[h] for h in state.upstream if h in listed},
                   canary_hosts=keep(state.canary_hosts), stable_hosts=keep(state.stable_hosts),
                   new_hosts=keep(state.new_hosts), batches=[keep(b) for b in state.batches])
