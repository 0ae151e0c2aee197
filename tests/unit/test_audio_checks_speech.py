"""The hard checks on real speech, made at test time by Debian's espeak-ng, and on copies
of it that are not speech any more: white noise, a steady tone, clipped speech, speech
with a long silence inside. Real speech passes; each copy fails, naming the check.
(Time-reversed speech keeps every measure these checks take: it is the release gate's
ASR round trip that hears it.)"""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from service.audio_checks import check_audio

RATE = 44_100
SENTENCES = {
    "en": "The canary sings at ten percent of the traffic, and the fleet listens before it promotes.",
    "zh": "你好，今天的天气很好，我们一起去公园散步吧。",
}


def espeak(text: str, voice: str) -> np.ndarray:
    """`text` spoken by espeak-ng, at 44.1 kHz mono float."""
    if shutil.which("espeak-ng") is None:  # .ci/run installs it: a machine without it is broken, not skipped
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    positions = np.linspace(0, audio.size - 1, int(audio.size * RATE / rate))
    return np.interp(positions, np.arange(audio.size), audio).astype(np.float32)


@pytest.fixture(scope="module", params=sorted(SENTENCES))
def speech(request) -> tuple[np.ndarray, str]:
    text = SENTENCES[request.param]
    return espeak(text, request.param), text


def failed(audio: np.ndarray, text: str) -> set[str]:
    return {c.name for c in check_audio(audio, RATE, text).failures}


def test_real_speech_passes(speech):
    audio, text = speech
    report = check_audio(audio, RATE, text)
    assert report.passed, report.reason()


def test_what_is_not_speech_fails_the_check_that_says_why(speech):
    audio, text = speech
    rms = float(np.sqrt(np.mean(audio**2)))
    seconds = np.arange(audio.size) / RATE
    noise = np.random.default_rng(1).standard_normal(audio.size).astype(np.float32) * rms
    tone = (np.sqrt(2) * rms * np.sin(2 * np.pi * 440 * seconds)).astype(np.float32)
    clipped = np.clip(audio * 6, -0.6, 0.6).astype(np.float32)
    half = audio.size // 2
    gap = np.concatenate([audio[:half], np.zeros(3 * RATE, np.float32), audio[half:]])
    assert "spectral_flatness" in failed(noise, text)
    assert "loudness_spread_db" in failed(tone, text)
    assert "peak_plateau_share" in failed(clipped, text)
    assert failed(gap, text + " " + text) == {"longest_pause_s"}
