"""Capacity of the sandbox fleet, and of one of its hosts, measured the same way.

    .venv/bin/python bench/capacity.py [--step-s 30]

Capacity is the highest steady request rate (open-loop arrivals) at which p95 latency
stays within 2× the unloaded p95 with no failed request. Printed side by side: the whole
3-host fleet, one host alone (the others out of traffic), their ratio (each host's
service has a fixed CPU quota, so three hosts should serve about three times one), and
the figure per unit of capacity to put in `rollout_policy.capacity_unit_rps`. Leaves the
sandbox running v1.2.0 with traffic spread by capacity.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from canary import DEFAULT_INVENTORY as SANDBOX_INVENTORY  # noqa: E402
from canary import REPO_ROOT  # noqa: E402
from canary.adapters import fleet as fleet_ops  # noqa: E402
from canary.adapters import images  # noqa: E402
from canary.adapters.images import image_tag  # noqa: E402
from canary.adapters.inventory import load_fleet  # noqa: E402
from canary.devtools import sandbox  # noqa: E402
from canary.devtools.capacity import measure_capacity  # noqa: E402
from models.recipe import build as build_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step-s", type=float, default=30.0, help="seconds at each rate")
    args = parser.parse_args()
    spec = sandbox.SandboxSpec(hosts=3)
    sandbox.up(spec, SANDBOX_INVENTORY, REPO_ROOT)
    fleet = load_fleet(SANDBOX_INVENTORY)
    build_model("v1.2.0", REPO_ROOT / "build" / "models")
    images.build_image(REPO_ROOT, "v1.2.0", image_tag("v1.2.0", None), git_revision=images.git_revision(REPO_ROOT))
    images.push_image(image_tag("v1.2.0", None), fleet.image("v1.2.0", for_push=True))
    fleet_ops.deploy(fleet, "v1.2.0")
    everyone = {n.name: "v1.2.0" for n in fleet.nodes}

    fleet_ops.set_traffic(fleet, {}, everyone, None)
    whole = measure_capacity(fleet.lb_public_urls, start_rps=2.0, step_s=args.step_s)
    first = fleet.nodes[0].name
    fleet_ops.set_traffic(fleet, {}, everyone, None, out=[n for n in everyone if n != first])
    one = measure_capacity(fleet.lb_public_urls, start_rps=1.0, step_s=args.step_s)
    fleet_ops.set_traffic(fleet, {}, everyone, None)

    units = float(sum(n.capacity for n in fleet.nodes))
    print(f"\nvoxfleet sandbox capacity ({len(fleet.nodes)} hosts, {spec.cpus_per_unit:g} CPU per unit of "
          f"capacity; p95 within 2× unloaded, no failure)\n")
    print(f"whole fleet ({units:g} units):")
    print("\n".join(whole.table()))
    print(f"\none host ({first}, 1 unit):")
    print("\n".join(one.table()))
    ratio = whole.rps / one.rps if one.rps else float("nan")
    print(f"\n{'':<22} {'fleet':>8} {'one host':>9} {'ratio':>6}")
    print(f"{'capacity, req/s':<22} {whole.rps:>8.1f} {one.rps:>9.1f} {ratio:>6.2f}")
    print(f"{'unloaded p95, s':<22} {whole.unloaded_p95_s:>8.3f} {one.unloaded_p95_s:>9.3f}")
    print(f"\ncapacity_unit_rps for this machine: {whole.rps / units:.2f} (fleet) / {one.rps:.2f} (one host)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
