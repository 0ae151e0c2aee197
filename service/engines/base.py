"""The one interface every speech engine implements.

An engine is created for a verified model directory, then driven by the server's
inference worker thread only: `load`, `warm_up` and every `synthesize` run on that
thread, so engines that capture CUDA graphs (VoxCPM with optimize=True) stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from service.model_dir import ModelManifest
from service.text_support import TextSupport

WARMUP_TEXT = "Warm-up: the quick brown fox jumps over the lazy dog."


class EngineError(RuntimeError):
    """The engine could not load or could not synthesize this input."""


@dataclass(frozen=True)
class EngineInfo:
    engine: str
    version: str
    sample_rate: int
    device: str
    voices: tuple[str, ...]


class Engine(Protocol):
    manifest: ModelManifest

    def load(self) -> None:
        """Load weights onto the device. Raises EngineError naming what is missing."""

    def warm_up(self) -> np.ndarray:
        """Synthesize WARMUP_TEXT with the first voice so later requests are fast;
        returns its audio, which the server checks before it reports ready."""

    def synthesize(self, text: str, voice: str, speed: float) -> np.ndarray:
        """Return mono float32 audio at `manifest.sample_rate` for one text chunk."""

    def describe(self) -> EngineInfo:
        """What runs: engine, version, sample rate, device, voices."""

    def text_support(self) -> TextSupport:
        """What text it can speak; pure and usable before `load`. The server refuses text
        `service.text_support.unspeakable` finds unspeakable, so `synthesize` never gets it."""
