"""`make demo`: the whole product on the local sandbox fleet, start to finish.

Brings the sandbox up, builds and publishes v1.2.0 and v1.3.0, puts v1.2.0 on every
host, starts steady synthetic traffic through the LB, then rolls v1.3.0 out with
short demo timings (canary at 10%, judged, 50%, 100%, promoted host by host) and
shows it reach every host with the clients' view of it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from canary import DEFAULT_INVENTORY as SANDBOX_INVENTORY
from canary import REPO_ROOT
from canary.adapters import fleet as fleet_ops
from canary.adapters import images
from canary.adapters.images import image_tag
from canary.adapters.inventory import load_fleet
from canary.adapters.store import Store
from canary.decisions.phases import EXIT_SUCCEEDED
from canary.devtools import sandbox
from canary.devtools.loadgen import LoadGenerator
from canary.rollout.production import controller_for, follow
from models.recipe import build as build_model

DEMO_POLICY = {"steps": [10, 50, 100], "dwell_s": 15, "min_requests": 20, "interval_s": 5,
               "step_max_s": 300, "consecutive_failures": 2, "batch_size": 1,
               "max_error_rate": 0.2}  # with no errors, a 20% cap is proven after 14 canary requests


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def main() -> int:
    banner("sandbox fleet: registry, 3 GPU-host stand-ins, nginx LB")
    spec = sandbox.SandboxSpec(hosts=3)
    for name, what in sandbox.up(spec, SANDBOX_INVENTORY, REPO_ROOT).items():
        print(f"  {name:<20} {what}")
    fleet = load_fleet(SANDBOX_INVENTORY, DEMO_POLICY)

    banner("build and publish v1.2.0 and v1.3.0")
    for version in ("v1.2.0", "v1.3.0"):
        build_model(version, REPO_ROOT / "build" / "models")
        images.build_image(REPO_ROOT, version, image_tag(version, None), git_revision=images.git_revision(REPO_ROOT))
        digest = images.push_image(image_tag(version, None), fleet.image(version, for_push=True))
        print(f"  {fleet.image(version)}  {digest}")

    banner("v1.2.0 on every host, traffic spread evenly")
    fleet_ops.deploy(fleet, "v1.2.0")
    fleet_ops.set_traffic(fleet, canary={}, stable={n.name: "v1.2.0" for n in fleet.nodes}, canary_percent=0)

    store = Store(Path(os.environ.get("VOXFLEET_STATE_DIR", REPO_ROOT / "build" / "demo-state")) / "rollouts.db")
    controller = controller_for(fleet, store, log=lambda line: print(f"  {line}", flush=True))
    if store.active(controller.fleet_key):
        follow(controller, controller.abort("a previous demo was interrupted"))

    banner(f"steady traffic through the LB ({fleet.lb_public_url}), then: rollout start v1.3.0")
    load = LoadGenerator(fleet.lb_public_url, rps=3).start(duration_s=1800)
    try:
        record = controller.start("v1.3.0", fleet.policy)
        code = follow(controller, record)
    finally:
        traffic = load.stop()

    banner("result")
    for host, state in sorted(fleet_ops.facts(fleet).items()):
        print(f"  {host}: {state.version} ({state.health}) image {state.image_digest or state.image}")
    print(f"  clients: {traffic.summary()}")
    print("  more: rollout status | rollout history | rollout sandbox status | rollout sandbox down")
    return 0 if code == EXIT_SUCCEEDED and not traffic.failed else 1


if __name__ == "__main__":
    sys.exit(main())
