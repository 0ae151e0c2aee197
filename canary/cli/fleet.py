"""The fleet verbs: `rollout fleet` (which model is live on each host, since when, built
from what) and `rollout inventory check`.

Read from the hosts themselves (image labels, container state) and from each
service's own `/version`; a host where the two disagree is flagged, and so is one that
could not be read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from canary.adapters import fleet as fleet_ops
from canary.adapters.inventory import load_fleet
from canary.cli.common import EXIT_OK, Subcommands, add_group, add_verb
from canary.decisions.fleet_state import fleet_rows


def _short(value: str | None, keep: int = 12) -> str:
    if not value:
        return "-"
    return value.split("@")[-1].removeprefix("sha256:")[:keep]


def cmd_fleet(args: argparse.Namespace) -> int:
    fleet = load_fleet(Path(args.inventory))
    table = fleet_rows(fleet_ops.facts(fleet), [n.name for n in fleet.nodes])
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


def cmd_inventory_check(args: argparse.Namespace) -> int:
    fleet = load_fleet(Path(args.inventory))
    print(f"inventory {fleet.source}: ok")
    for node in fleet.nodes:
        print(f"  {node.name:<10} {node.upstream:<24} gpus={node.gpu_count} "
              f"{'canary-eligible' if node.canary_eligible else ''}")
    print(f"  lb: {', '.join(fleet.lbs)}   registry: {fleet.registry}   steps: {list(fleet.policy.steps)}")
    return EXIT_OK


def register(sub: Subcommands) -> None:
    fleet = add_verb(sub, "fleet", cmd_fleet, "per host: version, image digest, git revision, model, health")
    fleet.add_argument("--json", action="store_true")
    inventory = add_group(sub, "inventory", "inventory tools")
    add_verb(inventory, "check", cmd_inventory_check, "validate an inventory and name each mistake")
