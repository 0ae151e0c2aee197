"""Speech faster or slower at the same pitch (pure numpy): WSOLA, waveform-similarity
overlap-add. The output is built from 40 ms frames, half overlapping; each frame is taken
from the input near where the speed puts it, shifted by up to 10 ms to where it best
continues the frame before it, so periodic sound (voiced speech) keeps its period: the
pitch does not move, as it would if the audio were simply resampled."""

from __future__ import annotations

import numpy as np

FRAME_S = 0.040
TOLERANCE_S = 0.010


def time_stretch(audio: np.ndarray, speed: float, sample_rate: int) -> np.ndarray:
    """`audio` (mono float) played `speed` times as fast: about len/speed samples, same pitch."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    target = max(1, int(round(audio.size / speed)))
    frame = max(2, int(FRAME_S * sample_rate)) // 2 * 2
    hop_out, tolerance = frame // 2, int(TOLERANCE_S * sample_rate)
    if speed == 1.0 or audio.size < frame + 2 * tolerance:
        return audio.astype(np.float32, copy=False) if speed == 1.0 else _resample(audio, target)
    hop_in = hop_out * speed
    padded = np.concatenate([np.zeros(tolerance, np.float32), audio.astype(np.float32),
                             np.zeros(frame + 2 * tolerance + hop_out, np.float32)])
    frames = int(np.ceil(target / hop_out)) + 1
    window = np.hanning(frame).astype(np.float32)
    out = np.zeros(frames * hop_out + frame, np.float32)
    weight = np.zeros_like(out)
    previous = tolerance  # where in `padded` the last frame was taken from
    for k in range(frames):
        nominal = tolerance + int(round(k * hop_in))
        if k == 0:
            start = nominal
        else:
            follows = padded[previous + hop_out: previous + hop_out + frame]  # what would continue it
            region = padded[nominal - tolerance: nominal + tolerance + frame]
            if region.size < frame + 2 * tolerance:
                break
            start = nominal - tolerance + int(np.argmax(np.correlate(region, follows, mode="valid")))
        out[k * hop_out: k * hop_out + frame] += padded[start: start + frame] * window
        weight[k * hop_out: k * hop_out + frame] += window
        previous = start
    stretched = out / np.maximum(weight, 1e-3)
    return stretched[:target].astype(np.float32)


def _resample(audio: np.ndarray, n_out: int) -> np.ndarray:
    """Too short to stretch (a few frames): plain linear resampling."""
    positions = np.linspace(0.0, max(audio.size - 1, 0), n_out)
    return np.interp(positions, np.arange(audio.size), audio).astype(np.float32)
