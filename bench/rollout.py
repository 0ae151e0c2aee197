"""Rollout benchmark on the sandbox: what each plan does to the busiest host, the
controller's own overhead, and how fast it backs out.

    .venv/bin/python bench/rollout.py [--plans-only | --rollouts-only] [--stage-s 40] [--load 0.6]

First the old plan (a fixed canary cohort) and the capacity-true plan side by side under
the same load (bench/plans.py). Then three rollouts on the 3-host sandbox under steady load through its LBs, with the
product's controller (the same code as `rollout start`):
- healthy v1.3.0: wall time minus the configured dwell times = the controller's
  overhead (preflight, pre-pull, deploys, reloads, analysis), split by phase;
- v1.3.0-flaky (fails ~30% of inputs): time from the failing verdict to zero traffic on
  the new version on every LB (the reloads that drain it);
- v1.3.0-silent (broken audio): caught at the warm-up gate, before any traffic;
- v1.3.0 aborted at its 10% step by `rollout abort` (a second process, as an operator
  runs it, while the first one waits in the step): time from the command to zero
  traffic on the new version on every LB;
and the failed client requests during each, side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.plans import compare  # noqa: E402
from canary import DEFAULT_INVENTORY as SANDBOX_INVENTORY  # noqa: E402
from canary import REPO_ROOT  # noqa: E402
from canary.adapters import fleet as fleet_ops  # noqa: E402
from canary.adapters import images  # noqa: E402
from canary.adapters.images import image_tag  # noqa: E402
from canary.adapters.inventory import load_fleet  # noqa: E402
from canary.adapters.store import Store  # noqa: E402
from canary.decisions.inventory import Fleet  # noqa: E402
from canary.devtools import sandbox  # noqa: E402
from canary.devtools.loadgen import LoadGenerator  # noqa: E402
from canary.rollout.production import controller_for, follow  # noqa: E402

FLEET_CAPACITY_RPS = sandbox.MEASURED_FLEET_RPS  # the 3-host sandbox, measured with bench/capacity.py

POLICY: dict[str, Any] = {"steps": [10, 50, 100], "dwell_s": 10, "min_requests": 15, "interval_s": 4, "step_max_s": 300,
          "consecutive_failures": 2, "batch_size": 1, "max_error_rate": 0.2}


def publish(fleet: Fleet, version: str, variant: str | None = None) -> str:
    full = f"{version}-{variant}" if variant else version
    subprocess.run([sys.executable, "-m", "models", "build", version, *(["--variant", variant] if variant else []),
                    "--out", str(REPO_ROOT / "build" / "models")], check=True, capture_output=True, cwd=REPO_ROOT)
    images.build_image(REPO_ROOT, full, image_tag(full, None), git_revision=images.git_revision(REPO_ROOT))
    images.push_image(image_tag(full, None), fleet.image(full, for_push=True))
    return full


def reset(fleet: Fleet) -> None:
    fleet_ops.deploy(fleet, "v1.2.0")
    fleet_ops.set_traffic(fleet, {}, {n.name: "v1.2.0" for n in fleet.nodes}, 0)


def run_scenario(fleet: Fleet, store: Store, version: str, rps: float) -> dict:
    reset(fleet)
    controller = controller_for(fleet, store, log=lambda _: None)
    load = LoadGenerator(fleet.lb_public_urls, rps=rps).start(duration_s=1800)
    started = time.time()
    try:
        record = controller.start(version, fleet.policy)
        follow(controller, record)
    finally:
        traffic = load.stop()
    wall = time.time() - started
    events = store.events(record.id)
    final = store.get(record.id)
    phases = [(e.at, e.kind.removeprefix("enter ")) for e in events if e.kind.startswith("enter ")]
    durations: dict[str, float] = {}
    for (at, phase), (next_at, _) in zip(phases, phases[1:]):
        durations[phase] = durations.get(phase, 0.0) + next_at - at
    rollback_at = next((e.at for e in events if e.kind == "enter ROLLING_BACK"), None)
    drained_at = next((e.at for e in events if e.kind == "traffic off new version"), None)
    return {"version": version, "result": final.result, "wall_s": wall, "phases": durations,
            "fail_to_zero_s": drained_at - rollback_at if rollback_at and drained_at else None,
            "requests": len(traffic.outcomes), "failed": len(traffic.failed), "shed": len(traffic.shed),
            "new_version_answers": traffic.by_version().get(version, 0), "reason": final.reason or ""}


def run_abort(fleet: Fleet, version: str, rps: float) -> dict:
    """`rollout start` in one process; at its 10% step, `rollout abort` in another."""
    reset(fleet)
    state_dir = Path(tempfile.mkdtemp(prefix="voxfleet-bench-abort-"))
    env = dict(os.environ, VOXFLEET_STATE_DIR=str(state_dir))
    rollout = str(Path(sys.executable).with_name("rollout"))
    overrides = [arg for key, value in {**POLICY, "dwell_s": 600, "step_max_s": 1200}.items()
                 for arg in ("--set", f"{key}={json.dumps(value)}")]
    load = LoadGenerator(fleet.lb_public_urls, rps=rps).start(duration_s=1800)
    started = time.time()
    first = subprocess.Popen([rollout, "start", version, *overrides], env=env, cwd=REPO_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            time.sleep(0.5)
            with Store(state_dir / "rollouts.db", create_if_missing=True) as store:
                active = store.history(limit=1)
                if active and active[0].state.get("weight_live") == 10:
                    break
            if first.poll() is not None or time.time() - started > 900:
                raise RuntimeError(f"{version} never reached its 10% step")
        aborted = time.time()
        abort = subprocess.run([rollout, "abort", "--reason", "bench"], env=env, cwd=REPO_ROOT, capture_output=True,
                               text=True)
        if abort.returncode != 3:  # it follows the roll back to its end: 3, rolled back
            raise RuntimeError(f"rollout abort exited {abort.returncode}: {abort.stdout}{abort.stderr}")
        first.wait(600)
    finally:
        first.kill()
        traffic = load.stop()
    with Store(state_dir / "rollouts.db") as store:
        record = store.history(limit=1)[0]
        drained = next(e.at for e in store.events(record.id) if e.kind == "traffic off new version")
    return {"version": f"{version} abort", "result": record.result, "wall_s": time.time() - started, "phases": {},
            "fail_to_zero_s": drained - aborted, "requests": len(traffic.outcomes), "failed": len(traffic.failed),
            "shed": len(traffic.shed), "new_version_answers": traffic.by_version().get(version, 0),
            "reason": record.reason or ""}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans-only", action="store_true", help="only the old and new plans side by side")
    parser.add_argument("--rollouts-only", action="store_true", help="only the rollouts (and their drain times)")
    parser.add_argument("--stage-s", type=float, default=40.0, help="seconds of load at each plan stage")
    parser.add_argument("--load", type=float, default=0.6, help="load as a share of the fleet's capacity")
    args = parser.parse_args()
    sandbox.up(sandbox.SandboxSpec(hosts=3), SANDBOX_INVENTORY, REPO_ROOT)
    fleet = load_fleet(SANDBOX_INVENTORY, POLICY)
    versions = [publish(fleet, "v1.2.0")]
    print("\nvoxfleet rollout benchmark (3-host sandbox)\n")
    if not args.rollouts_only:
        print("\n".join(compare(fleet, args.load, FLEET_CAPACITY_RPS, args.stage_s)))
    if args.plans_only:
        return 0
    versions += [publish(fleet, "v1.3.0"), publish(fleet, "v1.3.0", "flaky"), publish(fleet, "v1.3.0", "silent")]
    store = Store(Path(tempfile.mkdtemp(prefix="voxfleet-bench-")) / "rollouts.db")
    rps = round(args.load * FLEET_CAPACITY_RPS, 1)
    results = [run_scenario(fleet, store, v, rps) for v in versions[1:]]
    results.append(run_abort(fleet, versions[1], rps))
    reset(fleet)

    dwell_total = POLICY["dwell_s"] * len(POLICY["steps"])
    print(f"\nrollouts under steady load {rps:g} req/s through {len(fleet.lbs)} LBs\n")
    print(f"{'scenario':<16} {'result':<12} {'wall s':>7} {'overhead s':>10} {'→0% s':>9} "
          f"{'requests':>8} {'failed':>6} {'429/503':>7} {'answered by new':>15}")
    for r in results:
        overhead = r["wall_s"] - dwell_total if r["result"] == "succeeded" else None
        print(f"{r['version']:<16} {r['result']:<12} {r['wall_s']:>7.1f} "
              f"{overhead if overhead is not None else float('nan'):>10.1f} "
              f"{r['fail_to_zero_s'] if r['fail_to_zero_s'] is not None else float('nan'):>9.2f} "
              f"{r['requests']:>8} {r['failed']:>6} {r['shed']:>7} {r['new_version_answers']:>15}")
    healthy = results[0]
    print(f"\nhealthy rollout, time per phase (configured dwell {POLICY['dwell_s']} s × {len(POLICY['steps'])} steps "
          f"= {dwell_total} s; overhead share {1 - dwell_total / healthy['wall_s']:.0%}):")
    for phase, seconds in healthy["phases"].items():
        print(f"  {phase:<14} {seconds:>7.1f} s")
    for r in results[1:]:
        print(f"{r['version']}: {r['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
