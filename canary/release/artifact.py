"""Version rules and the model artifact a release ships (pure checks over files)."""

from __future__ import annotations

from pathlib import Path

from canary.adapters.images import ImageBuildError, model_manifest
from service.model_dir import VERSION_PATTERN, ModelManifest


class ReleaseError(RuntimeError):
    """A release step refused or failed; the message names the version, file or image."""


def check_version_tag(version: str) -> None:
    if not VERSION_PATTERN.fullmatch(version):
        raise ReleaseError(f"version {version!r} is not a semantic version tag like v1.3.0 or v1.3.0-rc.1")


def check_artifact(repo_root: Path, version: str, allow_unshipped: bool = False) -> ModelManifest:
    """build/models/<version>: manifest present, every file's sha256 as listed, the
    manifest's version equal to the tag, and not a test-only variant."""
    check_version_tag(version)
    try:
        manifest = model_manifest(repo_root, version)
    except ImageBuildError as exc:
        raise ReleaseError(str(exc)) from exc
    if not manifest.shipped and not allow_unshipped:
        raise ReleaseError(f"{manifest.directory / 'manifest.json'}: marked `shipped: false` (a test-only variant); "
                           "releases refuse it")
    return manifest
