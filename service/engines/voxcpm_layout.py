"""Which VoxCPM a model directory holds, read from its files and config.json before the
`voxcpm` package is imported (a real load takes minutes; a wrong directory is named at once).

Upstream (voxcpm 2.0.3, src/voxcpm/core.py and model/voxcpm*.py `from_local`): config.json's
`architecture` picks the model class, "voxcpm" (the default: VoxCPM 0.5B and 1.5) or
"voxcpm2"; the tokenizer is tokenizer.json (a Llama fast tokenizer); the weights are
model.safetensors, else pytorch_model.bin; the audio VAE is audiovae.safetensors, else
audiovae.pth. A directory with both files of a pair would load one and silently ignore the
other, so it is refused. Weights load with strict=False (missing tensors stay random
without an error), which no file check can catch: the warm-up's audio checks do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.engines.base import EngineError

ARCHITECTURES = {"voxcpm": "VoxCPM 1.x (0.5B, 1.5)", "voxcpm2": "VoxCPM 2"}
TOKENIZERS = ("tokenizer.json", "tokenizer.model")
WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # upstream's order of preference
AUDIO_VAES = ("audiovae.safetensors", "audiovae.pth")


@dataclass(frozen=True)
class VoxCPMLayout:
    architecture: str  # a key of ARCHITECTURES
    weights: Path
    audio_vae: Path
    output_rate: int | None  # what config.json says its audio VAE makes; None: not stated there

    @property
    def generation(self) -> str:
        return ARCHITECTURES[self.architecture]

    @property
    def takes_reference_audio(self) -> bool:
        """VoxCPM 2 clones a voice from reference audio alone (no transcript)."""
        return self.architecture == "voxcpm2"


def _config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise EngineError(f"{path}: file VoxCPM needs is missing")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EngineError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise EngineError(f"{path}: must be a JSON object, got {type(config).__name__}")
    return config


def _architecture(path: Path, config: dict[str, Any]) -> str:
    raw = config.get("architecture", "voxcpm")
    architecture = raw.lower() if isinstance(raw, str) else raw
    if architecture not in ARCHITECTURES:
        known = ", ".join(f"{name!r} ({what})" for name, what in ARCHITECTURES.items())
        raise EngineError(f"{path}: architecture {raw!r} is not one the voxcpm package loads: {known}")
    return str(architecture)


def _one_of(directory: Path, names: tuple[str, ...], what: str, exclusive: bool = True) -> Path:
    present = [directory / name for name in names if (directory / name).is_file()]
    if not present:
        raise EngineError(f"{' or '.join(str(directory / name) for name in names)}: {what} VoxCPM needs is missing")
    if exclusive and len(present) > 1:
        raise EngineError(f"{directory}: both {names[0]} and {names[1]} ({what}): the voxcpm package loads "
                          f"{names[0]} and ignores {names[1]}; keep one")
    return present[0]


def _output_rate(config: dict[str, Any], architecture: str) -> int | None:
    vae = config.get("audio_vae_config")
    key = "out_sample_rate" if architecture == "voxcpm2" else "sample_rate"
    rate = vae.get(key) if isinstance(vae, dict) else None
    return rate if isinstance(rate, int) and not isinstance(rate, bool) else None


def read_layout(weights_dir: Path) -> VoxCPMLayout:
    """The layout of a VoxCPM weights directory; EngineError naming the file that is
    missing, unreadable or one too many."""
    if not weights_dir.is_dir():
        raise EngineError(f"{weights_dir}: VoxCPM weights directory does not exist")
    config_path = weights_dir / "config.json"
    config = _config(config_path)
    architecture = _architecture(config_path, config)
    _one_of(weights_dir, TOKENIZERS, "the tokenizer", exclusive=False)  # hub repositories often ship both
    weights = _one_of(weights_dir, WEIGHTS, "the model weights")
    audio_vae = _one_of(weights_dir, AUDIO_VAES, "the audio VAE")
    return VoxCPMLayout(architecture, weights, audio_vae, _output_rate(config, architecture))


def check_sample_rate(layout: VoxCPMLayout, manifest_path: Path, manifest_rate: int, config_path: Path) -> None:
    """The manifest's sample rate must be what the model makes, when config.json says it."""
    if layout.output_rate is not None and layout.output_rate != manifest_rate:
        key = "out_sample_rate" if layout.architecture == "voxcpm2" else "sample_rate"
        raise EngineError(f"{manifest_path}: sample_rate {manifest_rate}, but {config_path} says this "
                          f"{layout.generation} model makes {layout.output_rate} Hz (audio_vae_config.{key})")
