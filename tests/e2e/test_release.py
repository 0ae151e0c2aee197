"""Part 5 end to end: `rollout release` from a model version to every sandbox host, and
the refusals on the way (a gate failure, a re-tag with other weights)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from canary.adapters import registry
from canary.devtools.loadgen import LoadGenerator
from service.model_dir import read_manifest, write_manifest
from tests.e2e.helpers import DEMO_POLICY, LOAD_RPS, versions
from tests.sandbox_fleet import REPO, rollout

pytestmark = pytest.mark.sandbox
MODELS = REPO / "build" / "models"
NEW = "v1.4.0"  # a demo release nothing else publishes


def build_model(version: str, variant: str | None = None) -> None:
    cmd = [sys.executable, "-m", "models", "build", version, "--out", str(MODELS)]
    subprocess.run(cmd + (["--variant", variant] if variant else []), check=True, cwd=REPO, capture_output=True)


def in_registry(fleet, tag: str) -> str | None:
    return registry.tag_digest(fleet.registry_push, fleet.repository, tag)


def test_a_healthy_tag_goes_through_release_to_every_host(stable_fleet, state_dir, tmp_path):
    shutil.rmtree(MODELS / NEW, ignore_errors=True)  # release builds a demo model from its recipe
    load = LoadGenerator(stable_fleet.lb_public_url, rps=LOAD_RPS).start(duration_s=1200)
    try:
        result = rollout("release", NEW, *DEMO_POLICY, "--report", str(tmp_path), check=False, env=state_dir)
    finally:
        traffic = load.stop()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for step in ("1/5 model check", "2/5 build", "3/5 gate", "4/5 publish", "5/5 rollout start"):
        assert step in result.stdout
    report = json.loads((tmp_path / f"gate-{NEW}.json").read_text())
    assert report["passed"] and report["baseline"] == "v1.2.0" and len(report["rows"]) == 5
    assert "| prompt |" in (tmp_path / f"gate-{NEW}.md").read_text()
    assert set(versions(stable_fleet).values()) == {NEW}
    assert not traffic.failed, traffic.summary()

    # traceability: the fleet view agrees with each node's /version, history names what shipped
    fleet_view = json.loads(rollout("fleet", "--json").stdout)
    digest = in_registry(stable_fleet, NEW)
    assert all(r["served_version"] == NEW and r["problem"] is None for r in fleet_view)
    assert all(r["image_digest"].endswith(digest) for r in fleet_view)
    shipped = json.loads(rollout("history", "--json", env=state_dir).stdout)[0]
    assert shipped["image_digest"] == digest and shipped["git_revision"] == fleet_view[0]["git_revision"]
    assert shipped["stable_version"] == "v1.2.0" and shipped["result"] == "succeeded"


def test_a_tag_whose_model_fails_the_gate_is_never_pushed(sandbox, state_dir, tmp_path):
    slow = "v1.3.0-slow"
    build_model("v1.3.0", "slow")
    refused = rollout("release", slow, "--allow-unshipped", "--baseline", "v1.3.0", "--report", str(tmp_path),
                      check=False, env=state_dir)
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert f"{slow} failed the release gate" in refused.stderr
    assert "real-time factor" in refused.stderr or "latency" in refused.stderr
    assert "4/5 publish" not in refused.stdout
    assert in_registry(sandbox, slow) is None
    assert not json.loads((tmp_path / f"gate-{slow}.json").read_text())["passed"]
    assert not (Path(state_dir["VOXFLEET_STATE_DIR"]) / "rollouts.db").exists()  # nothing started


def test_re_releasing_an_existing_tag_with_other_weights_is_refused(sandbox, state_dir, tmp_path):
    build_model(NEW)
    rollout("build", NEW)
    rollout("publish", NEW)  # the genuine v1.4.0 (unchanged when already there)
    before = in_registry(sandbox, NEW)
    impostor = MODELS / NEW
    try:
        shutil.rmtree(impostor)
        shutil.copytree(MODELS / "v1.3.0", impostor)  # other weights, relabelled as v1.4.0
        fields = json.loads((impostor / "manifest.json").read_text())
        fields.pop("files")
        write_manifest(impostor, dict(fields, version=NEW))
        assert read_manifest(impostor).version == NEW
        refused = rollout("release", NEW, "--baseline", "none", "--report", str(tmp_path), check=False,
                          env=state_dir)
    finally:
        shutil.rmtree(impostor, ignore_errors=True)
        build_model(NEW)
        rollout("build", NEW)  # the local image back to the genuine weights
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    assert "already exists with different content" in refused.stderr and "Tags are immutable" in refused.stderr
    assert in_registry(sandbox, NEW) == before
    assert not (Path(state_dir["VOXFLEET_STATE_DIR"]) / "rollouts.db").exists()


def test_version_rules_refuse_before_building(state_dir):
    bad = rollout("release", "1.4", check=False, env=state_dir)
    assert bad.returncode == 1 and "'1.4' is not a semantic version tag" in bad.stderr
    missing = rollout("release", "v9.9.9", check=False, env=state_dir)
    assert missing.returncode == 1 and f"{MODELS / 'v9.9.9'} is missing" in missing.stderr
