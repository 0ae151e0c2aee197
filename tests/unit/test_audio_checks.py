from __future__ import annotations

import numpy as np
import pytest

from service.audio_checks import AudioLimits, check_audio

RATE = 44_100
TEXT = "A sentence of about forty characters, ok."


def speechlike(seconds: float = 2.5) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    syllables = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))  # 4 Hz loudness changes
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    return (0.1 * syllables * voice).astype(np.float32)


def failed(report) -> set[str]:
    return {c.name for c in report.failures}


def test_speechlike_audio_passes_every_check():
    report = check_audio(speechlike(), RATE, TEXT)
    assert report.passed, report.reason()
    assert report.duration_s == pytest.approx(2.5)
    assert -30 < report.value("rms_dbfs") < -15


@pytest.mark.parametrize("name, audio, expected", [
    ("silence", np.zeros(RATE * 2, np.float32), {"silence_share", "rms_dbfs"}),
    ("nan", np.full(RATE, np.nan, np.float32), {"finite"}),
    ("inf", np.r_[speechlike(), np.float32(np.inf)], {"finite"}),
    ("empty", np.zeros(0, np.float32), {"finite", "non_empty"}),
    ("clipped", np.sign(speechlike()).astype(np.float32),
     {"clipping_share", "rms_dbfs", "peak_plateau_share", "loudness_spread_db"}),
    ("too long for the text", np.tile(speechlike(), 30), {"seconds_per_char"}),
    ("too short for the text", speechlike(0.2), {"seconds_per_char"}),
])
def test_broken_audio_fails_the_named_checks(name, audio, expected):
    report = check_audio(audio, RATE, TEXT)
    assert not report.passed
    assert failed(report) == expected, name
    assert all(c.name in report.reason() for c in report.failures)


def test_sample_rate_must_match_the_expected_rate():
    report = check_audio(speechlike(), 24_000, TEXT, AudioLimits(sample_rate=RATE))
    assert failed(report) >= {"sample_rate"}


def test_a_long_silence_inside_speech_fails_but_not_one_before_or_after_it():
    paused = np.r_[speechlike(1.0), np.zeros(RATE * 4, np.float32), speechlike(1.0)]
    assert failed(check_audio(paused, RATE, TEXT * 3)) == {"longest_pause_s"}
    framed = np.r_[np.zeros(RATE * 2, np.float32), speechlike(1.0), np.zeros(RATE * 2, np.float32)]
    assert check_audio(framed, RATE, TEXT * 3).passed


def test_soft_checks_are_reported_but_do_not_fail():
    offset = check_audio(speechlike() + np.float32(0.1), RATE, TEXT)
    dc = next(c for c in offset.checks if c.name == "dc_offset")
    assert not dc.passed and not dc.hard and "dc_offset" not in failed(offset) and offset.passed
    assert offset.as_dict()["checks"][0]["name"] == "sample_rate"
