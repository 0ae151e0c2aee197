"""`rollout release` refusals on the sandbox: a gate failure, a re-tag with other weights,
tags that are not versions. (A release that ships: tests/e2e/test_release_day.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from canary.adapters import images, registry
from canary.adapters.images import image_tag
from service.model_dir import read_manifest, write_manifest
from tests.e2e.helpers import start, versions
from tests.sandbox_fleet import REPO, rollout

pytestmark = pytest.mark.sandbox
MODELS = REPO / "build" / "models"
NEW = "v1.4.0"  # a demo release nothing else publishes


def build_model(version: str, variant: str | None = None) -> None:
    cmd = [sys.executable, "-m", "models", "build", version, "--out", str(MODELS)]
    subprocess.run(cmd + (["--variant", variant] if variant else []), check=True, cwd=REPO, capture_output=True)


def in_registry(fleet, tag: str) -> str | None:
    return registry.tag_digest(fleet.registry_push, fleet.repository, tag, fleet.registry_insecure)


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


def test_a_tag_pushed_with_another_versions_image_is_refused_at_preflight(stable_fleet, state_dir):
    """v1.3.0's image pushed by hand under another tag: the rollout stops at preflight,
    naming the label, before any host pulls it."""
    mislabelled = "v1.3.99"
    images.push_image(image_tag("v1.3.0", None), stable_fleet.image(mislabelled, for_push=True))
    refused = start(mislabelled, state_dir)
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    (record,) = json.loads(rollout("history", "--json", env=state_dir).stdout)
    assert record["phase"] == "PREFLIGHT_FAILED", record
    assert (f"carries model version v1.3.0 (label io.voxfleet.model.version), not {mislabelled}"
            in record["reason"]), record["reason"]
    assert set(versions(stable_fleet).values()) == {"v1.2.0"}
