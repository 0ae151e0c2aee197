"""The one interface every speech engine implements.

An engine is created for a verified model directory, then driven by the server's
inference worker thread only: `load`, `warm_up` and every `synthesize` run on that
thread, so engines that capture CUDA graphs (VoxCPM with optimize=True) stay valid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from service.model_dir import ModelManifest
from service.text_support import TextSupport

WARMUP_TEXT = "Warm-up: the quick brown fox jumps over the lazy dog."
# For engines that cannot predict their own output: slow speech (English is read at about
# 14 characters a second), and a Chinese character a syllable, about three letters' time.
DEFAULT_CHARS_PER_SECOND = 10.0
CJK_CHAR_WEIGHT = 3.0


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

    def synthesize(self, text: str, voice: str, speed: float, seed: int | None = None) -> np.ndarray:
        """Return mono float32 audio at `manifest.sample_rate` for one text chunk; the same
        `seed` (None: one derived from the arguments) gives the same audio."""

    def describe(self) -> EngineInfo:
        """What runs: engine, version, sample rate, device, voices."""

    def estimate_audio_s(self, text: str, speed: float) -> float:
        """About how many seconds of audio `synthesize(text, voice, speed)` returns, without
        synthesizing; pure, usable before `load`, erring long (the server caps requests by it)."""

    def text_support(self) -> TextSupport:
        """What text it can speak; pure and usable before `load`. The server refuses text
        `service.text_support.unspeakable` finds unspeakable, so `synthesize` never gets it."""


MAX_SEED = 2**31 - 1  # seeds are 31-bit: any engine's RNG takes them


def synthesis_seed(text: str, voice: str, speed: float) -> int:
    """The seed of a request that names none: from its content, so the same request is
    the same audio (every engine, every host)."""
    digest = hashlib.sha256(f"{text}\0{voice}\0{speed:.4f}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & MAX_SEED


def estimate_speech_s(text: str, speed: float, chars_per_second: float = DEFAULT_CHARS_PER_SECOND) -> float:
    """A conservative length for speech of `text` at `speed`, for engines with no better estimate."""
    weight = sum(CJK_CHAR_WEIGHT if "\u3000" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" else 1.0
                 for ch in text)
    return weight / (chars_per_second * speed)
