"""Shared fixtures: model directories built by the real recipe, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.recipe import build

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def model_dirs(model_root: Path) -> dict[str, Path]:
    """Healthy releases and broken variants, built from their seeds."""
    dirs = {v: build(v, model_root) for v in ("v1.2.0", "v1.3.0")}
    for variant in ("silent", "nan", "slow", "flaky"):
        dirs[f"v1.3.0-{variant}"] = build("v1.3.0", model_root, variant)
    return dirs
