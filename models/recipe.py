"""Build a demo model directory (weights + manifest) from a release's seed.

    python -m models build v1.3.0 --out build/models
    python -m models build v1.3.0 --variant silent --out build/models  # -> v1.3.0-silent

The weights come from a seeded torch generator and are written in a fixed byte
layout, so the same release always yields the same sha256.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from models.releases import RELEASES, VARIANTS, VOICE_TABLE, RecipeError
from service.engines.demo import WEIGHTS_FILE, ProsodyNet
from service.engines.weights import write_weights
from service.model_dir import write_manifest

MODEL_NAME = "voxfleet-demo"
SAMPLE_RATE = 44_100


def variant_version(version: str, variant: str | None) -> str:
    return f"{version}-{variant}" if variant else version


def _weights(seed: int, poison_nan: bool, output_gain: float) -> dict[str, np.ndarray]:
    gen = torch.Generator().manual_seed(seed)
    net = ProsodyNet()
    state = {}
    for name, tensor in sorted(net.state_dict().items()):
        scale = 1.0 if name.startswith("embedding") else 1.0 / max(tensor.shape[-1], 1) ** 0.5
        state[name] = (torch.randn(tensor.shape, generator=gen) * scale).numpy().astype(np.float32)
    if poison_nan:
        state["out.bias"] = state["out.bias"].copy()
        state["out.bias"][1] = np.nan  # the pitch target: every sample becomes NaN
    state["output_gain"] = np.array([output_gain], dtype=np.float32)
    return state


def build(version: str, out_root: Path, variant: str | None = None) -> Path:
    """Build the model directory `out_root/<version>[-<variant>]` and return it.

    Writes to a temporary directory first and renames, so a half-built model
    directory never exists under its final name.
    """
    if version not in RELEASES:
        raise RecipeError(f"unknown release {version!r} (known: {', '.join(sorted(RELEASES))})")
    if variant is not None and variant not in VARIANTS:
        raise RecipeError(f"unknown variant {variant!r} (known: {', '.join(sorted(VARIANTS))})")
    release = RELEASES[version]
    overrides, gain, poison = VARIANTS[variant] if variant else ({}, 1.0, False)
    full_version = variant_version(version, variant)
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    final = out_root / full_version
    staging = Path(tempfile.mkdtemp(prefix=f".{full_version}.", dir=out_root))
    try:
        write_weights(staging / WEIGHTS_FILE, _weights(release.seed, poison, gain))
        write_manifest(staging, {
            "name": MODEL_NAME,
            "version": full_version,
            "engine": "demo",
            "sample_rate": SAMPLE_RATE,
            "voices": sorted(VOICE_TABLE),
            "shipped": variant is None,
            "config": dict(release.config, **overrides, voice_table=VOICE_TABLE),
            "recipe": {"seed": release.seed, "variant": variant},
        })
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return final
