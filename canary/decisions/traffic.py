"""Canary weight arithmetic for the nginx upstream: pure functions, no I/O.

With C canary and S stable servers and a canary share of W percent, each canary server
gets weight W*S and each stable server (100-W)*C, both divided by their gcd, so the
canary servers together carry exactly W% of the weight. nginx rejects weight=0: at 0%
the canary servers are marked `down`, at 100% the stable servers become `backup`
(weight 1), which takes no traffic but still catches retries of a failing canary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from math import gcd
from typing import Literal

Role = Literal["canary", "stable"]
State = Literal["up", "down", "backup"]

# nginx documents no upper bound for `weight=`; it parses the number with ngx_atoi and
# keeps it in an ngx_int_t, so 2**31 - 1 is the largest value every platform accepts.
# Weights here never exceed 100 * max(C, S).
NGINX_MAX_WEIGHT = 2**31 - 1


@dataclass(frozen=True)
class UpstreamServer:
    """One `server` line of the upstream; the fields are the nginx_lb role's nginx_lb_servers items."""

    address: str
    role: Role
    version: str
    weight: int
    state: State


def _check_addresses(canary: list[str], stable: list[str]) -> None:
    for name, addresses in (("canary", canary), ("stable", stable)):
        blank = [a for a in addresses if not isinstance(a, str) or not a.strip()]
        if blank:
            raise ValueError(f"{name} list has an empty or non-string address: {blank!r}")
        repeated = sorted(a for a, n in Counter(addresses).items() if n > 1)
        if repeated:
            raise ValueError(f"{name} list names {', '.join(repeated)} more than once")
    both = sorted(set(canary) & set(stable))
    if both:
        raise ValueError(f"{', '.join(both)} listed as both canary and stable")


def split_weights(canary: list[str], stable: list[str], canary_percent: int) -> tuple[int, int]:
    """(weight of each canary server, weight of each stable server), gcd-reduced.

    A side that gets no traffic by weight (canary at 0%, stable at 100%) gets 0 here;
    upstream_servers() turns that into `down` / `backup`.
    """
    if isinstance(canary_percent, bool) or not isinstance(canary_percent, int):
        raise ValueError(f"canary_percent must be an int, got {canary_percent!r}")  # noqa: TRY004 (one error type)
    if not 0 <= canary_percent <= 100:
        raise ValueError(f"canary_percent must be within 0..100, got {canary_percent}")
    _check_addresses(canary, stable)
    if not stable and canary_percent < 100:
        raise ValueError(f"no stable servers to carry {100 - canary_percent}% of traffic")
    if not canary and canary_percent > 0:
        raise ValueError(f"no canary servers to carry {canary_percent}% of traffic")
    if not canary:  # only stable servers (at 0%): plain round robin
        return 0, 1
    if not stable:  # only canary servers (at 100%)
        return 1, 0
    canary_weight = canary_percent * len(stable)
    stable_weight = (100 - canary_percent) * len(canary)
    divisor = gcd(canary_weight, stable_weight)
    return canary_weight // divisor, stable_weight // divisor


def upstream_servers(canary: dict[str, str], stable: dict[str, str], canary_percent: int) -> list[UpstreamServer]:
    """The upstream's servers (address -> version maps in), canary first, every weight a positive int."""
    canary_weight, stable_weight = split_weights(list(canary), list(stable), canary_percent)
    servers = [
        UpstreamServer(address, "canary", version, canary_weight or 1, "up" if canary_weight else "down")
        for address, version in canary.items()
    ]
    servers += [
        UpstreamServer(address, "stable", version, stable_weight or 1, "up" if stable_weight else "backup")
        for address, version in stable.items()
    ]
    return servers


def expected_share(servers: Iterable[UpstreamServer]) -> dict[str, float]:
    """Fraction of requests each version receives from smooth weighted round robin over the `up` servers."""
    weights: Counter[str] = Counter()
    for server in servers:
        if server.state == "up":
            weights[server.version] += server.weight
    total = sum(weights.values())
    return {version: weight / total for version, weight in weights.items()} if total else {}
