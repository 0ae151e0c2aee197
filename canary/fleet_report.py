"""`rollout fleet`: which model is live on each host, since when, built from what.

Read from the hosts themselves (image labels, container state) and from each
service's own `/version`; a host where the two disagree is flagged, and so is one that
could not be read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from canary import fleet as fleet_ops
from canary.inventory import load_fleet


def rows(states: dict[str, fleet_ops.NodeState], hosts: list[str]) -> list[dict[str, Any]]:
    out = []
    for host in hosts:
        state = states.get(host)
        if state is None:
            out.append({"host": host, "problem": "unreachable or unreadable"})
            continue
        served = state.served or {}
        problems = state.disagreements()
        if state.container_state == "running" and "error" in served:
            problems.append(f"/version did not answer: {served['error']}")
        out.append({"host": host, "version": state.version, "image_digest": state.image_digest,
                    "git_revision": state.git_revision,
                    "model_sha256": served.get("model_sha256") or state.model_sha256,
                    "model_source": served.get("model_source"),
                    "started_at": state.started_at, "container": state.container_state, "health": state.health,
                    "served_version": served.get("model_version"), "problem": "; ".join(problems) or None})
    return out


def _short(value: str | None, keep: int = 12) -> str:
    if not value:
        return "-"
    return value.split("@")[-1].removeprefix("sha256:")[:keep]


def cmd_fleet(args: argparse.Namespace) -> int:
    fleet = load_fleet(Path(args.inventory))
    table = rows(fleet_ops.facts(fleet), [n.name for n in fleet.nodes])
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        print(f"{'host':<10} {'version':<10} {'digest':<13} {'revision':<13} {'model':<13} {'started':<20} "
              f"{'health':<10} /version")
        for r in table:
            if "version" not in r:
                print(f"{r['host']:<10} ? {r['problem']}")
                continue
            agree = "agrees" if not r["problem"] else f"MISMATCH: {r['problem']}"
            agree = agree if r["container"] == "running" else f"({r['container']})"
            print(f"{r['host']:<10} {r['version'] or '-':<10} {_short(r['image_digest']):<13} "
                  f"{_short(r['git_revision']):<13} {_short(r['model_sha256']):<13} "
                  f"{(r['started_at'] or '-')[:19]:<20} {r['health'] or '-':<10} {agree}")
    return 1 if any(r["problem"] for r in table) else 0


def register(sub: argparse._SubParsersAction, inventory_default: str) -> None:
    parser = sub.add_parser("fleet", help="per host: version, image digest, git revision, model, health")
    parser.add_argument("-i", "--inventory", default=inventory_default)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=cmd_fleet)
