"""An engine held to a device's speed: the sandbox's stand-in for one GPU per worker.

A sandbox host of N capacity units runs N workers on N × `cpus` CPUs. Unheld, a request
alone on a big or idle host would run faster than on a busy small one, where a GPU takes
as long for it on any host. Held, each speech call (a chunk, or the warm-up) ends no
sooner than its thread's CPU time divided by `cpus`: the speed of one unit, however idle
the host. The time counted is the calling thread's, so torch must run one thread per
process (the service sets it so with TTS_WORKER_CPUS).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from service.engines.base import Engine, EngineInfo
from service.model_dir import ModelManifest
from service.text_support import TextSupport

T = TypeVar("T")


class HeldEngine:
    def __init__(self, engine: Engine, cpus: float) -> None:
        if not cpus > 0:
            raise ValueError(f"cpus must be more than 0, got {cpus}")
        self.inner, self.cpus = engine, cpus
        self.manifest: ModelManifest = engine.manifest

    def load(self) -> None:
        self.inner.load()

    def warm_up(self) -> np.ndarray:
        return self._held(self.inner.warm_up)

    def synthesize(self, text: str, voice: str, speed: float, seed: int | None = None) -> np.ndarray:
        return self._held(lambda: self.inner.synthesize(text, voice, speed, seed))

    def describe(self) -> EngineInfo:
        return self.inner.describe()

    def estimate_audio_s(self, text: str, speed: float) -> float:
        return self.inner.estimate_audio_s(text, speed)

    def text_support(self) -> TextSupport:
        return self.inner.text_support()

    def _held(self, call: Callable[[], T]) -> T:
        cpu_at, wall_at = time.thread_time(), time.monotonic()
        try:
            return call()
        finally:  # a failed call took its device time too
            owed = (time.thread_time() - cpu_at) / self.cpus - (time.monotonic() - wall_at)
            if owed > 0:
                time.sleep(owed)
