"""`make demo`: the whole product on the local sandbox fleet, start to finish.

Brings the sandbox up, builds and publishes v1.2.0 and v1.3.0, puts v1.2.0 on every
host, starts steady synthetic traffic through the LB, then rolls v1.3.0 out with
short demo timings (canary at 10%, judged, 50%, 100%, promoted host by host) and
shows it reach every host with the clients' view of it.

Long builds write to build/logs/ (their last lines are shown when they fail); the
rollout is recorded in the state store every `rollout` command reads, so `rollout
status` and `rollout history` show it afterwards.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from canary import DEFAULT_INVENTORY, REPO_ROOT
from canary.adapters import fleet as fleet_ops
from canary.adapters import images
from canary.adapters.images import image_tag
from canary.adapters.inventory import load_fleet
from canary.adapters.store import Store
from canary.decisions.phases import EXIT_SUCCEEDED
from canary.devtools import sandbox
from canary.devtools.loadgen import LoadGenerator
from canary.rollout.production import controller_for, follow, state_path
from models.recipe import build as build_model

DEMO_POLICY = {"steps": [10, 50, 100], "dwell_s": 15, "min_requests": 20, "interval_s": 5,
               "step_max_s": 300, "consecutive_failures": 2, "batch_size": 1,
               "max_error_rate": 0.2,  # with no errors, a 20% cap is proven after 14 canary requests
               "latency_settle_s": 10}  # short steps: a shorter settling time than production's 30 s
LOGS = REPO_ROOT / "build" / "logs"
T = TypeVar("T")


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def say(text: str) -> None:
    print(f"  {text}", flush=True)


@contextmanager
def ticking(what: str, every_s: float = 15.0) -> Iterator[None]:
    """Print that `what` is still going every `every_s` seconds until the block ends."""
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not done.wait(every_s):
            say(f"… {what} ({time.monotonic() - started:.0f} s)")
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def logged(what: str, name: str, step: Callable[..., T], *args: object) -> T:
    """Run a build step with its output in build/logs/NAME.log, shown (the end) on failure."""
    LOGS.mkdir(parents=True, exist_ok=True)
    path = LOGS / f"{name}.log"
    with open(path, "w") as log, ticking(what):
        try:
            return step(*args, log=log)
        except Exception:
            say(f"{what} failed; the whole log is in {path}")
            raise


LOAD_SHARE = 0.6  # of the sandbox's measured capacity: a fleet near its capacity, as in production


def main() -> int:
    banner("sandbox fleet: registry, 3 GPU-host stand-ins, nginx LB")
    spec = sandbox.SandboxSpec(hosts=3)
    for name, what in logged("bringing the sandbox up", "sandbox-up", sandbox.up, spec, DEFAULT_INVENTORY,
                             REPO_ROOT).items():
        say(f"{name:<20} {what}")
    fleet = load_fleet(DEFAULT_INVENTORY, DEMO_POLICY)

    banner(f"build and publish v1.2.0 and v1.3.0 (build output: {LOGS}/)")
    for version in ("v1.2.0", "v1.3.0"):
        build_model(version, REPO_ROOT / "build" / "models")
        logged(f"building the {version} image", f"build-{version}", images.build_image, REPO_ROOT, version,
               image_tag(version, None), images.DEFAULT_BASE_IMAGE, images.git_revision(REPO_ROOT))
        digest = images.push_image(image_tag(version, None), fleet.image(version, for_push=True))
        say(f"{fleet.image(version)}  {digest}")

    banner("v1.2.0 on every host, traffic spread evenly")
    with ticking("deploying v1.2.0"):
        fleet_ops.deploy(fleet, "v1.2.0", on_event=fleet_ops.milestones(say, "v1.2.0"))
    fleet_ops.set_traffic(fleet, canary={}, stable={n.name: "v1.2.0" for n in fleet.nodes}, canary_percent=0)

    store = Store(state_path())
    controller = controller_for(fleet, store, log=say)
    if store.active(controller.fleet_key):
        follow(controller, controller.abort("a previous demo was interrupted"))

    units = float(sum(n.capacity for n in fleet.nodes))
    rps = round(LOAD_SHARE * units * sandbox.MEASURED_UNIT_RPS, 1)
    banner(f"steady traffic through the LBs ({', '.join(fleet.lb_public_urls)}): {rps:g} req/s, {LOAD_SHARE:.0%} of what the "
           f"sandbox serves; then: rollout start v1.3.0")
    load = LoadGenerator(fleet.lb_public_urls, rps=rps).start(duration_s=1800)
    began = time.time()
    try:
        record = controller.start("v1.3.0", fleet.policy)
        code = follow(controller, record)
    finally:
        traffic = load.stop()
    seconds = max(time.time() - began, 1.0)

    banner("result")
    for host, state in sorted(fleet_ops.facts(fleet).items()):
        say(f"{host}: {state.version} ({state.health}) image {state.image_digest or state.image}")
    say(f"clients: {traffic.summary()}")
    served = traffic.by_host()
    for node in fleet.nodes:
        can = float(node.capacity) * sandbox.MEASURED_UNIT_RPS
        say(f"{node.name}: served {served.get(node.name, 0) / seconds:.1f} req/s on average, capacity {can:.1f} "
            f"req/s ({float(node.capacity):g} unit{'s' if node.capacity != 1 else ''})")
    say("next: rollout status | rollout history | rollout show " + record.id + " | rollout sandbox status")
    say("      rollout sandbox down (removes the sandbox)")
    return 0 if code == EXIT_SUCCEEDED and not traffic.failed else 1


if __name__ == "__main__":
    sys.exit(main())
