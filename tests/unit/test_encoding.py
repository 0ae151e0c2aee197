from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from service.encoding import ENCODINGS, encode, resample_linear

RATE = 24_000


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    """One second of a gliding, amplitude-modulated tone (not periodic, so a shift would show)."""
    t = np.arange(RATE) / RATE
    return (0.5 * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * (220 + 200 * t) * t)).astype(np.float32)


def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32767.0, RATE
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    return audio, rate


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size)
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


@pytest.mark.parametrize("fmt, media_type, rate", [
    ("wav", "audio/wav", RATE),
    ("flac", "audio/flac", RATE),
    ("mp3", "audio/mpeg", RATE),
    ("opus", "audio/ogg", 48_000),
    ("pcm", "audio/pcm", RATE),
])
def test_each_format_decodes_at_its_rate_and_length(tone, fmt, media_type, rate):
    data, got_type, got_rate = encode(tone, RATE, fmt)
    audio, decoded_rate = decode(data, fmt)
    assert (got_type, got_rate, decoded_rate) == (media_type, rate, rate)
    assert audio.ndim == 1
    assert audio.size == pytest.approx(tone.size * rate / RATE, rel=0.03)


@pytest.mark.parametrize("fmt", ["wav", "flac", "pcm"])
def test_lossless_formats_keep_the_signal(tone, fmt):
    audio, _ = decode(encode(tone, RATE, fmt)[0], fmt)
    assert audio.size == tone.size
    assert correlation(audio, tone) > 0.999
    assert np.max(np.abs(audio - tone)) < 1e-3


def test_pcm_is_little_endian_int16_two_bytes_per_sample():
    samples = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0], dtype=np.float32)
    data, _, _ = encode(samples, RATE, "pcm")
    assert len(data) == 2 * samples.size
    assert np.frombuffer(data, dtype="<i2").tolist() == [0, 16383, -16383, 32767, -32767, 32767, -32767]
    assert data[6:8] == b"\xff\x7f"  # 32767, low byte first


@pytest.mark.parametrize("src, dst, n, expected", [
    (24_000, 48_000, 24_000, 48_000),
    (44_100, 48_000, 44_100, 48_000),
    (48_000, 16_000, 1_000, 333),
    (22_050, 48_000, 7, 15),
    (24_000, 24_000, 123, 123),
    (24_000, 48_000, 0, 0),
])
def test_resample_linear_length(src, dst, n, expected):
    out = resample_linear(np.linspace(-1, 1, n, dtype=np.float32), src, dst)
    assert out.size == expected


def test_resample_linear_keeps_the_shape_of_the_signal(tone):
    up = resample_linear(tone, RATE, 2 * RATE)
    assert up.dtype == np.float32
    assert correlation(up[::2], tone) > 0.999


def test_every_format_is_listed():
    assert set(ENCODINGS) == {"wav", "flac", "mp3", "opus", "pcm"}
