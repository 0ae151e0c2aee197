"""Publish a built image, keeping tags immutable.

A tag names a model version, so the model inside it can never change: pushing a tag
that the registry already holds with another model sha256 is refused. The same model
under a rebuilt service (another git revision) is re-published and said so; the same
image again is a no-op.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from canary import images, registry
from canary.release.artifact import ReleaseError

MODEL_SHA = "io.voxfleet.model.sha256"
REVISION = "org.opencontainers.image.revision"


@dataclass(frozen=True)
class Published:
    target: str
    digest: str
    action: str  # pushed | unchanged | republished
    note: str = ""


def local_labels(image: str) -> dict[str, str]:
    found = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image],
                           capture_output=True, text=True)
    if found.returncode != 0:
        version = image.rsplit(":", 1)[-1]
        raise ReleaseError(f"image {image} is not built here (run: rollout build {version})")
    return json.loads(found.stdout) or {}


def decide(version: str, target: str, ours: dict[str, str], theirs: dict[str, str] | None) -> tuple[str, str]:
    """(action, note) for pushing an image labelled `ours` over what the registry holds
    (`theirs`, None: no such tag); ReleaseError when the push must be refused (pure)."""
    if ours.get("org.opencontainers.image.version") != version:
        raise ReleaseError(f"image for {target} has version label {ours.get('org.opencontainers.image.version')!r}, "
                           f"not {version}: rebuild it with `rollout build {version}`")
    if theirs is None:
        return "pushed", ""
    if theirs.get(MODEL_SHA) != ours.get(MODEL_SHA):
        raise ReleaseError(
            f"{target} already exists with different content: model sha256 {theirs.get(MODEL_SHA)} in the "
            f"registry, {ours.get(MODEL_SHA)} here. Tags are immutable: release the new weights as a new "
            "version (e.g. bump the patch number)")
    revision = ours.get(REVISION) or ""
    if theirs.get(REVISION) == revision and not revision.endswith("-dirty"):
        return "unchanged", "already in the registry: same model, same revision"
    return "republished", f"same model, service revision {theirs.get(REVISION)} → {revision}"


def publish(version: str, local_tag: str, push_registry: str, repository: str) -> Published:
    target = f"{push_registry.rstrip('/')}/{repository}:{version}"
    action, note = decide(version, target, local_labels(local_tag),
                          registry.image_labels(push_registry, repository, version))
    if action == "unchanged":
        return Published(target, registry.tag_digest(push_registry, repository, version) or "", action, note)
    return Published(target, images.push_image(local_tag, target), action, note)
