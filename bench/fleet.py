"""Fleet benchmark on the sandbox: deploy times and how fast new LB weights go live.

    .venv/bin/python bench/fleet.py [--skip-6]

Prints, side by side: time to deploy a version to 3 and to 6 hosts with the image
pre-pulled and not; and the time from "set weight" to the new weights answering
through the LB (target: under 3 s), split into the playbook's own time and the
reload-to-traffic delay. Uses the product's own code paths (canary.adapters.fleet over
ansible-runner and SSH). Leaves the sandbox at 3 hosts running v1.2.0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path[:] = [p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from canary import DEFAULT_INVENTORY as SANDBOX_INVENTORY  # noqa: E402
from canary import REPO_ROOT  # noqa: E402
from canary.adapters import fleet as fleet_ops  # noqa: E402
from canary.adapters.inventory import load_fleet  # noqa: E402
from canary.decisions.inventory import Fleet  # noqa: E402
from canary.devtools import sandbox  # noqa: E402


def fleet_of(hosts: int) -> Fleet:
    sandbox.up(sandbox.SandboxSpec(hosts=hosts), SANDBOX_INVENTORY, REPO_ROOT)
    return load_fleet(SANDBOX_INVENTORY)


def drop_image(fleet: Fleet, version: str) -> None:
    for node in fleet.nodes:
        container = fleet.hostvars[node.name]["sandbox_container"]
        subprocess.run(["docker", "exec", container, "docker", "rmi", "-f", fleet.image(version)],
                       capture_output=True)


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def deploy_times(fleet: Fleet) -> tuple[float, float, float]:
    """(cold deploy, pre-pull alone, deploy after pre-pull) of v1.3.0 over v1.2.0 on every host."""
    fleet_ops.deploy(fleet, "v1.2.0")
    drop_image(fleet, "v1.3.0")
    cold = timed(lambda: fleet_ops.deploy(fleet, "v1.3.0"))
    fleet_ops.deploy(fleet, "v1.2.0")
    drop_image(fleet, "v1.3.0")
    prepull = timed(lambda: fleet_ops.deploy(fleet, "v1.3.0", pull_only=True))
    warm = timed(lambda: fleet_ops.deploy(fleet, "v1.3.0"))
    fleet_ops.deploy(fleet, "v1.2.0")
    return cold, prepull, warm


def weight_live_times(fleet: Fleet, rounds: int = 3) -> list[tuple[float, float]]:
    """(playbook seconds, seconds from the call until every LB answer comes from the canary)."""
    fleet_ops.deploy(fleet, "v1.3.0", ["node1"])
    canary = {"node1": "v1.3.0"}
    stable = {n.name: "v1.2.0" for n in fleet.nodes if n.name != "node1"}
    out = []
    with httpx.Client(timeout=10) as client:
        for _ in range(rounds):
            fleet_ops.set_traffic(fleet, canary, stable, 0)
            started = time.perf_counter()
            fleet_ops.set_traffic(fleet, canary, stable, 100)
            playbook = time.perf_counter() - started
            streak = 0
            while streak < 5 and time.perf_counter() - started < 60:
                version = client.get(f"{fleet.lb_public_url}/version").json().get("model_version")
                streak = streak + 1 if version == "v1.3.0" else 0
            out.append((playbook, time.perf_counter() - started))
    fleet_ops.set_traffic(fleet, {}, {n.name: "v1.2.0" for n in fleet.nodes}, 0)
    fleet_ops.deploy(fleet, "v1.2.0", ["node1"])
    fleet_ops.set_traffic(fleet, {}, {n.name: "v1.2.0" for n in fleet.nodes}, 0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-6", action="store_true", help="only the 3-host figures")
    args = parser.parse_args()
    rows = []
    for hosts in (3,) if args.skip_6 else (3, 6):
        fleet = fleet_of(hosts)
        cold, prepull, warm = deploy_times(fleet)
        rows.append((hosts, cold, prepull, warm))
    fleet = fleet_of(3)
    live = weight_live_times(fleet)

    print("\nvoxfleet fleet benchmark (sandbox: DinD GPU-host stand-ins on one 2-core machine)\n")
    print(f"{'hosts':>5}  {'deploy, not pre-pulled':>22}  {'pre-pull':>9}  {'deploy, pre-pulled':>18}  "
          f"{'cold/warm':>9}  {'per host (cold)':>15}")
    for hosts, cold, prepull, warm in rows:
        print(f"{hosts:>5}  {cold:>20.1f} s  {prepull:>7.1f} s  {warm:>16.1f} s  {cold / warm:>8.2f}x  "
              f"{cold / hosts:>13.1f} s")
    if len(rows) == 2:
        print(f"\n6 vs 3 hosts: cold {rows[1][1] / rows[0][1]:.2f}x, pre-pulled {rows[1][3] / rows[0][3]:.2f}x")
    print("\nset weight 0% → 100% canary, until 5 LB answers in a row come from the canary (target < 3 s)")
    for i, (playbook, total) in enumerate(live, 1):
        print(f"  round {i}: playbook {playbook:.2f} s, live through the LB {total:.2f} s "
              f"(after the playbook: {total - playbook:.2f} s)")
    print(f"  median live: {sorted(t for _, t in live)[len(live) // 2]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
