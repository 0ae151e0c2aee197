"""An engine held to a device's speed (the sandbox's stand-in for one GPU per worker)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from service.engines.held import HeldEngine


class BusyEngine:
    """Burns `cpu_s` of the calling thread's CPU per call; records what it was asked."""

    manifest = None

    def __init__(self, cpu_s: float, fails: bool = False) -> None:
        self.cpu_s, self.fails = cpu_s, fails
        self.burned: list[float] = []
        self.loaded = False

    def _burn(self) -> np.ndarray:
        began = time.thread_time()
        while time.thread_time() - began < self.cpu_s:
            pass
        self.burned.append(time.thread_time() - began)
        if self.fails:
            raise RuntimeError("engine failed")
        return np.zeros(10, dtype=np.float32)

    def load(self) -> None:
        self.loaded = True

    def warm_up(self) -> np.ndarray:
        return self._burn()

    def synthesize(self, text: str, voice: str, speed: float, seed: int | None = None) -> np.ndarray:
        return self._burn()


def timed(call) -> float:
    began = time.monotonic()
    try:
        call()
    except RuntimeError:
        pass
    return time.monotonic() - began


@pytest.mark.parametrize("fails", [False, True])
def test_each_speech_call_takes_its_cpu_time_at_the_held_speed(fails):
    inner = BusyEngine(0.05, fails=fails)
    held = HeldEngine(inner, cpus=0.25)  # type: ignore[arg-type]
    took = timed(lambda: held.synthesize("Hello.", "default", 1.0))
    assert took >= inner.burned[-1] / 0.25  # 4x its CPU time, however idle this machine is (a failure too)
    took = timed(held.warm_up)
    assert took >= inner.burned[-1] / 0.25


def test_loading_is_not_held_and_the_rest_is_the_inner_engines():
    inner = BusyEngine(0.0)
    held = HeldEngine(inner, cpus=0.001)  # type: ignore[arg-type]
    held.load()
    assert inner.loaded


def test_a_speed_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="cpus"):
        HeldEngine(BusyEngine(0.0), cpus=0)  # type: ignore[arg-type]
