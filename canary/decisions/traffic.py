"""The nginx upstream's server lines for a traffic layout: pure, no I/O.

Each server's weight is proportional to the load the layout gives its host
(`canary.decisions.capacity`): by capacity within its side, the new version's side
(`canary`) carrying its share and the old version's (`stable`) the rest. With equal
capacities, C canary and S stable servers at W% get weights W·S and (100−W)·C reduced
by their gcd. nginx rejects weight=0: a server given no load is `down` on the new side
and `backup` on the old (it takes no traffic but still catches retries of a failing
canary); a drained server is `down`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal

from canary.decisions.capacity import Layout, PlanError, effective_share, weights

Role = Literal["canary", "stable"]
State = Literal["up", "down", "backup"]
# A version reaches the LB's config (a comment after each server): semantic version
# characters only, so no newline or `;` can inject a directive. roles/nginx_lb asserts the same.
VERSION = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?")


def check_version(version: str) -> str:
    """`version`, or ValueError naming it when it is not a semantic version (v1.2.3, v1.2.3-rc.1)."""
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise ValueError(f"version {version!r} is not a semantic version like v1.2.3 or v1.2.3-rc.1: "
                         "refused before it reaches the LB's config")
    return version


@dataclass(frozen=True)
class UpstreamServer:
    """One `server` line of the upstream; the fields are the nginx_lb role's nginx_lb_servers items.
    `version` is a semantic version, or "" while not yet known (a rollout before its preflight)."""

    address: str
    role: Role
    version: str
    weight: int
    state: State

    def __post_init__(self) -> None:
        if self.version != "":
            check_version(self.version)


def _check_addresses(canary: list[str], stable: list[str]) -> None:
    for name, addresses in (("canary", canary), ("stable", stable)):
        blank = [a for a in addresses if not isinstance(a, str) or not a.strip()]
        if blank:
            raise ValueError(f"{name} list has an empty or non-string address: {blank!r}")
    both = sorted(set(canary) & set(stable))
    if both:
        raise ValueError(f"{', '.join(both)} listed as both canary and stable")


def _share(canary_percent: int | Fraction | None) -> Fraction | None:
    if canary_percent is None or isinstance(canary_percent, Fraction):
        return canary_percent
    if isinstance(canary_percent, bool) or not isinstance(canary_percent, int):
        raise ValueError(f"canary_percent must be an int, got {canary_percent!r}")
    if not 0 <= canary_percent <= 100:
        raise ValueError(f"canary_percent must be within 0..100, got {canary_percent}")
    return Fraction(canary_percent, 100)


def upstream_servers(canary: Mapping[str, str], stable: Mapping[str, str], canary_percent: int | Fraction | None,
                     capacity: Mapping[str, Fraction] | None = None, out: Collection[str] = ()
                     ) -> list[UpstreamServer]:
    """The upstream's servers, canary first, every weight a positive int.

    `canary`/`stable`: address -> version; `canary_percent`: the canary side's share (an
    int percent or a fraction; None: every server by capacity); `capacity`: address ->
    capacity (default 1 each); `out`: addresses drained (`down`, no load)."""
    _check_addresses(list(canary), list(stable))
    share = _share(canary_percent)
    caps = {a: (capacity or {}).get(a, Fraction(1)) for a in [*canary, *stable]}
    if not caps:
        raise ValueError("no stable servers to carry the traffic")
    layout = Layout(frozenset(canary), frozenset(out), share)
    for side, side_share in (("stable", 1 - effective_share(caps, layout)), ("canary", effective_share(caps, layout))):
        serving = [a for a in (stable if side == "stable" else canary) if a not in layout.out]
        if side_share > 0 and not serving:
            raise ValueError(f"no {side} servers to carry {float(side_share * 100):g}% of traffic")
    try:
        ints = weights(caps, layout)
    except PlanError as exc:
        raise ValueError(str(exc)) from exc
    sides: tuple[tuple[Mapping[str, str], Role, State], ...] = ((canary, "canary", "down"),
                                                                 (stable, "stable", "backup"))
    servers = []
    for addresses, role, idle in sides:
        for address, version in addresses.items():
            state: State = idle
            if address in layout.out:
                state = "down"
            elif address in ints:
                state = "up"
            servers.append(UpstreamServer(address, role, version, ints.get(address, 1), state))
    return servers


def canary_percent_of(servers: Iterable[UpstreamServer]) -> int:
    """The canary side's share of the up servers' weight, in whole percent the nginx_lb role
    accepts: 0 only without a canary server up, 100 only without a stable one."""
    up = [s for s in servers if s.state == "up"]
    canary = sum(s.weight for s in up if s.role == "canary")
    total = sum(s.weight for s in up)
    if not canary or not total:
        return 0
    if canary == total:
        return 100
    return min(99, max(1, round(100 * canary / total)))


def expected_share(servers: Iterable[UpstreamServer]) -> dict[str, float]:
    """Fraction of requests each version receives from smooth weighted round robin over the `up` servers."""
    totals: Counter[str] = Counter()
    for server in servers:
        if server.state == "up":
            totals[server.version] += server.weight
    total = sum(totals.values())
    return {version: weight / total for version, weight in totals.items()} if total else {}


def host_of(address: str) -> str:
    """The host part of `host:port`."""
    return address.rsplit(":", 1)[0]


def by_address_book(servers: Iterable[UpstreamServer], book: Mapping[str, str], lb: str) -> list[UpstreamServer]:
    """The servers with each host name replaced by its address in `book` (name -> IP as
    the LB sees it), so the LB's config names no host to resolve. A drained server whose
    name the LB never resolved is left out (nothing is sent to it); any other such server
    is refused, naming the LB and the name."""
    resolved = []
    for server in servers:
        host = host_of(server.address)
        if host in book:
            resolved.append(replace(server, address=f"{book[host]}:{server.address.rsplit(':', 1)[1]}"))
        elif server.state != "down":
            raise ValueError(f"LB {lb} cannot resolve {host} ({server.address}, {server.role} {server.version}): "
                             "fix the name or the LB's DNS")
    return resolved
