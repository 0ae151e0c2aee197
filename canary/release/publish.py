"""Publish a built image, keeping tags immutable.

A tag names a model version, so the model inside it can never change: pushing a tag
that the registry already holds with another model sha256 is refused. The same image
again is a no-op; the same model in a rebuilt image (new service code, another base)
is re-published and said so.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from canary.adapters import images, registry
from canary.release.artifact import ReleaseError


@dataclass(frozen=True)
class Published:
    target: str
    digest: str
    action: str  # pushed | unchanged | republished
    note: str = ""


def local_image(image: str) -> registry.ImageConfig:
    found = images.local_image_labels(image)
    if found is None:
        version = image.rsplit(":", 1)[-1]
        raise ReleaseError(f"image {image} is not built here (run: rollout build {version})")
    return registry.ImageConfig(*found)


def decide(version: str, target: str, ours: registry.ImageConfig, theirs: registry.ImageConfig | None
           ) -> tuple[str, str]:
    """(action, note) for pushing our image over what the registry holds (`theirs`,
    None: no such tag); ReleaseError when the push must be refused (pure)."""
    label = ours.labels.get(images.VERSION_LABEL)
    if label != version:
        raise ReleaseError(f"image for {target} has version label {label!r}, not {version}: "
                           f"rebuild it with `rollout build {version}`")
    if theirs is None:
        return "pushed", ""
    ours_model, theirs_model = ours.labels.get(images.MODEL_SHA_LABEL), theirs.labels.get(images.MODEL_SHA_LABEL)
    if theirs_model != ours_model:
        raise ReleaseError(
            f"{target} already exists with different content: model sha256 {theirs_model} in the registry, "
            f"{ours_model} here. Tags are immutable: release the new weights as a new version (e.g. bump the "
            "patch number)")
    if theirs.digest == ours.digest:
        return "unchanged", "already in the registry: the same image"
    revisions = (theirs.labels.get(images.REVISION_LABEL), ours.labels.get(images.REVISION_LABEL))
    return "republished", f"same model in a rebuilt image (service revision {revisions[0]} → {revisions[1]})"


def publish(version: str, local_tag: str, push_registry: str, repository: str,
            insecure: Collection[str] = ()) -> Published:
    target = f"{push_registry.rstrip('/')}/{repository}:{version}"
    theirs = registry.image_config(push_registry, repository, version, insecure)
    action, note = decide(version, target, local_image(local_tag), theirs)
    if action == "unchanged" and theirs is not None:
        return Published(target, theirs.manifest_digest, action, note)
    return Published(target, images.push_image(local_tag, target), action, note)
