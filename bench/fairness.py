"""Is the canary judged fairly? Rollouts of an identical model under a new version number
must pass; a version twice as slow must fail, every time. On the 3-host sandbox under
steady load at 60% of its measured capacity, through both LBs.

    .venv/bin/python bench/fairness.py [--identical 10] [--slower 3]

Each run starts a rollout with the inventory's judge settings and the bench's short
steps, follows it until its canary step has been decided (the rollout moves on, or rolls
back), then aborts it so that the next run starts from the same fleet (v1.2.0 on every
host). The identical model is v1.2.1: v1.2.0's model byte for byte under another version
number, so each run compares two identical models, the canary freshly started against
warm hosts. Printed: each run's outcome and the latency numbers of its deciding verdict,
then the tallies.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rollout import publish, reset  # noqa: E402
from canary import DEFAULT_INVENTORY as SANDBOX_INVENTORY  # noqa: E402
from canary import REPO_ROOT  # noqa: E402
from canary.adapters import images  # noqa: E402
from canary.adapters.images import image_tag  # noqa: E402
from canary.adapters.inventory import load_fleet  # noqa: E402
from canary.adapters.store import Store  # noqa: E402
from canary.decisions.inventory import Fleet  # noqa: E402
from canary.decisions.phases import Phase  # noqa: E402
from canary.devtools import sandbox  # noqa: E402
from canary.devtools.loadgen import LoadGenerator  # noqa: E402
from canary.rollout.production import controller_for  # noqa: E402
from service.model_dir import write_manifest  # noqa: E402

# Short steps; the judge's own settings (latency_settle_s, latency_min_effect_ms, ratio)
# are the inventory's, i.e. the product's defaults.
POLICY: dict[str, Any] = {"steps": [10, 50, 100], "dwell_s": 10, "min_requests": 20, "interval_s": 5,
                          "step_max_s": 600, "consecutive_failures": 2, "batch_size": 1, "max_error_rate": 0.2}
MODELS = REPO_ROOT / "build" / "models"


def publish_renamed(fleet: Fleet, source: str, version: str) -> str:
    """`source`'s model, byte for byte, published as `version`."""
    subprocess.run([sys.executable, "-m", "models", "build", source, "--out", str(MODELS)], check=True,
                   capture_output=True, cwd=REPO_ROOT)
    target = MODELS / version
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(MODELS / source, target)
    fields = json.loads((target / "manifest.json").read_text())
    fields.pop("files")
    write_manifest(target, dict(fields, version=version))
    images.build_image(REPO_ROOT, version, image_tag(version, None), git_revision=images.git_revision(REPO_ROOT))
    images.push_image(image_tag(version, None), fleet.image(version, for_push=True))
    return version


def canary_step(fleet: Fleet, store: Store, version: str) -> dict[str, Any]:
    """Start `version`, tick until its first step is decided, abort; the deciding verdict."""
    controller = controller_for(fleet, store, log=lambda _: None)
    record = controller.start(version, fleet.policy)
    started = time.time()
    while True:
        record = controller.tick() or store.get(record.id)
        state = record.state
        decided = Phase(record.phase).terminal or record.phase == Phase.ROLLING_BACK.value or (
            record.phase in (Phase.TRAFFIC.value, Phase.PROMOTING.value) and state.get("step_index", 0) >= 1)
        if decided or time.time() - started > 900:
            break
        time.sleep(float(POLICY["interval_s"]) if record.phase == Phase.TRAFFIC.value else 1.0)
    verdicts = [e.data for e in store.events(record.id) if e.kind == "verdict"]
    passed = record.phase not in (Phase.ROLLING_BACK.value, Phase.ROLLED_BACK.value, Phase.FAILED.value)
    if not Phase(record.phase).terminal:
        controller.abort("bench: the canary step is decided")
        while not Phase(store.get(record.id).phase).terminal:
            controller.tick()
    deciding: dict[str, Any] = next((v for v in reversed(verdicts) if v.get("step") == 1), {})
    metrics: list[dict[str, Any]] = (deciding.get("verdict") or {}).get("metrics", [])
    latency: dict[str, Any] = next((m for m in metrics if m["metric"] == "latency"), {})
    return {"version": version, "passed": passed, "reason": store.get(record.id).reason if not passed else "",
            "latency": latency.get("numbers", {}), "latency_reason": latency.get("reason", "")}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--identical", type=int, default=10, help="rollouts of an identical model (default 10)")
    parser.add_argument("--slower", type=int, default=3, help="rollouts of the 2x-slower variant (default 3)")
    parser.add_argument("--load", type=float, default=0.6, help="load as a share of the fleet's capacity")
    args = parser.parse_args()
    sandbox.up(sandbox.SandboxSpec(hosts=3), SANDBOX_INVENTORY, REPO_ROOT)
    fleet = load_fleet(SANDBOX_INVENTORY, POLICY)
    publish(fleet, "v1.2.0")
    twin = publish_renamed(fleet, "v1.2.0", "v1.2.1")
    slower = publish(fleet, "v1.3.0", "halfspeed")
    store = Store(Path(tempfile.mkdtemp(prefix="voxfleet-fairness-")) / "rollouts.db")
    rps = round(args.load * sandbox.MEASURED_FLEET_RPS, 1)
    policy = fleet.policy
    print(f"\nvoxfleet judge fairness (3-host sandbox, {len(fleet.lbs)} LBs, {rps:g} req/s; latency judged "
          f"{policy.latency_settle_s} s after each stage starts, slower only beyond ×{policy.latency_max_ratio:g} "
          f"and {policy.latency_min_effect_ms} ms)\n")
    print(f"{'run':<4} {'canary':<18} {'step 1':<8} {'median':>8} {'stable':>8} {'ratio':>6} {'p':>8} {'excluded':>8}")
    results: list[tuple[str, dict[str, Any]]] = []
    reset(fleet)  # v1.2.0 everywhere, before the load (a rebuilt tag restarts every host at once)
    load = LoadGenerator(fleet.lb_public_urls, rps=rps).start(duration_s=7200)
    try:  # every run ends back on v1.2.0 everywhere (aborted, or rolled back)
        plan = [("identical", twin)] * args.identical + [("slower", slower)] * args.slower
        for i, (kind, version) in enumerate(plan, start=1):
            result = canary_step(fleet, store, version)
            n = result["latency"]
            print(f"{i:<4} {version:<18} {'pass' if result['passed'] else 'FAIL':<8} "
                  f"{n.get('median_s', float('nan')):>8.3f} {n.get('stable_median_s', float('nan')):>8.3f} "
                  f"{n.get('median_ratio', float('nan')):>6.2f} {n.get('p_value', float('nan')):>8.2g} "
                  f"{n.get('settling_excluded', 0):>8}", flush=True)
            results.append((kind, result))
    finally:
        traffic = load.stop()
    identical = [r for k, r in results if k == "identical"]
    slow = [r for k, r in results if k == "slower"]
    print(f"\nidentical model, new version number: {sum(r['passed'] for r in identical)}/{len(identical)} passed "
          f"the canary step")
    print(f"2x-slower variant: {sum(not r['passed'] for r in slow)}/{len(slow)} rolled back"
          + "".join(f"\n  {r['reason'][:160]}" for r in slow))
    print(f"clients: {traffic.summary()}")
    return 0 if all(r["passed"] for r in identical) and not any(r["passed"] for r in slow) else 1


if __name__ == "__main__":
    sys.exit(main())
