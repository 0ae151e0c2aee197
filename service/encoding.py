"""Audio container encoding for the speech API's `response_format`."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf


@dataclass(frozen=True)
class Encoding:
    container: str | None  # soundfile format; None = raw PCM
    subtype: str
    media_type: str
    rate: int | None = None  # fixed output rate, when the codec requires one


# aac is part of the OpenAI API but has no encoder in libsndfile; it is refused by name.
ENCODINGS: dict[str, Encoding] = {
    "wav": Encoding("WAV", "PCM_16", "audio/wav"),
    "flac": Encoding("FLAC", "PCM_16", "audio/flac"),
    "mp3": Encoding("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "opus": Encoding("OGG", "OPUS", "audio/ogg", rate=48_000),
    "pcm": Encoding(None, "PCM_16", "audio/pcm"),
}


def resample_linear(audio: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst or audio.size == 0:
        return audio
    n_out = int(round(audio.size * dst / src))
    positions = np.arange(n_out) * (src / dst)
    return np.interp(positions, np.arange(audio.size), audio).astype(np.float32)


def pcm16(audio: np.ndarray) -> bytes:
    """Raw little-endian signed 16-bit mono samples (`pcm`, and a WAV's data)."""
    return (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> tuple[bytes, str, int]:
    """Return (bytes, media type, sample rate of the bytes). `fmt` must be in ENCODINGS."""
    spec = ENCODINGS[fmt]
    rate = spec.rate or sample_rate
    audio = resample_linear(np.asarray(audio, dtype=np.float32), sample_rate, rate)
    if spec.container is None:
        return pcm16(audio), spec.media_type, rate
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=spec.container, subtype=spec.subtype)
    return buffer.getvalue(), spec.media_type, rate
