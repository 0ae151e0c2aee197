"""Speed without a pitch change: WSOLA keeps a voice's period where resampling moves it."""

from __future__ import annotations

import numpy as np
import pytest

from service.time_stretch import time_stretch

SR = 44_100


def voiced(seconds: float = 1.0, f0: float = 150.0) -> np.ndarray:
    """A buzz like a vowel: a 150 Hz pulse train through two formant resonances."""
    n = int(seconds * SR)
    pulses = np.zeros(n, np.float32)
    pulses[:: int(SR / f0)] = 1.0
    out = pulses
    for formant in (700.0, 1200.0):
        r, theta = 0.98, 2 * np.pi * formant / SR
        y = np.zeros(n, np.float32)
        for i in range(2, n):
            y[i] = out[i] + 2 * r * np.cos(theta) * y[i - 1] - r * r * y[i - 2]
        out = y
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def period_hz(audio: np.ndarray) -> float:
    """The fundamental, from the autocorrelation's highest peak between 60 and 400 Hz."""
    x = audio[SR // 10: -SR // 10] - audio.mean()
    ac = np.correlate(x[:8192], x[:8192], mode="full")[8191:]
    lo, hi = SR // 400, SR // 60
    return SR / (lo + int(np.argmax(ac[lo:hi])))


@pytest.mark.parametrize("speed", [0.5, 0.8, 1.25, 2.0])
def test_the_length_follows_the_speed_and_the_pitch_stays(speed):
    voice = voiced()
    stretched = time_stretch(voice, speed, SR)
    assert stretched.size == round(voice.size / speed) and stretched.dtype == np.float32
    assert period_hz(stretched) == pytest.approx(period_hz(voice), rel=0.03)
    assert np.sqrt(np.mean(stretched ** 2)) == pytest.approx(np.sqrt(np.mean(voice ** 2)), rel=0.25)
    resampled = np.interp(np.linspace(0, voice.size - 1, stretched.size), np.arange(voice.size), voice)
    assert period_hz(resampled) == pytest.approx(period_hz(voice) * speed, rel=0.05)  # what a tape would do


def test_speed_one_and_tiny_inputs_pass_through_and_nonsense_is_refused():
    voice = voiced(0.2)
    assert np.array_equal(time_stretch(voice, 1.0, SR), voice)
    assert time_stretch(voice[:100], 2.0, SR).size == 50
    with pytest.raises(ValueError, match="speed must be positive"):
        time_stretch(voice, 0.0, SR)

