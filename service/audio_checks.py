"""Offline checks that synthesized audio is speech, not garbage.

Pure functions of a float32 array. Readiness runs them on the warm-up audio, every
synthesis runs the hard checks before answering, and the rollout's quality gate
reuses the measurements to compare a canary's voice with stable's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

FRAME_SECONDS = 0.02
SILENCE_DBFS = -50.0
CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class AudioLimits:
    sample_rate: int = 44_100
    max_silence_share: float = 0.85
    max_clipping_share: float = 0.01
    min_rms_dbfs: float = -45.0
    max_rms_dbfs: float = -3.0
    min_seconds_per_char: float = 0.01
    max_seconds_per_char: float = 1.0
    max_longest_pause_s: float = 2.0  # silence inside the speech (not before or after it)
    max_dc_offset: float = 0.05
    # Not speech: noise has a flat spectrum (median spectral flatness of the sounding
    # frames: white noise about 0.56, voiced speech under 0.05); a steady tone keeps one
    # loudness (the spread of its 20 ms levels, judged once there are a few seconds of
    # sound: speech varies by 3 to 12 dB); clipped audio sits at its peak for many samples.
    max_spectral_flatness: float = 0.4
    min_loudness_spread_db: float = 1.0
    loudness_spread_from_s: float = 1.5
    max_peak_plateau_share: float = 0.005


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: str
    passed: bool
    hard: bool = True

    def describe(self) -> str:
        return f"{self.name}={self.value:.4g} (limit {self.limit})"


@dataclass(frozen=True)
class AudioReport:
    duration_s: float
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks if c.hard)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.hard and not c.passed]

    def value(self, name: str) -> float:
        return next(c.value for c in self.checks if c.name == name)

    def reason(self) -> str:
        return "; ".join(c.describe() for c in self.failures) or "ok"

    def as_dict(self) -> dict:
        return {"duration_s": self.duration_s, "passed": self.passed,
                "checks": [asdict(c) for c in self.checks]}


def _frame_rms_dbfs(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    size = max(1, int(sample_rate * FRAME_SECONDS))
    usable = len(audio) // size * size
    if usable == 0:
        return np.array([20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) + 1e-12)])
    frames = audio[:usable].astype(np.float64).reshape(-1, size)
    return 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-12)


def _spectral_flatness(audio: np.ndarray) -> float:
    """Median flatness (geometric over arithmetic mean of the power spectrum) of the
    sounding 2048-sample frames; 0.0 when none sounds."""
    size, frames_judged = 2048, 16  # evenly spread frames: a median needs no more, and every synthesis pays
    if audio.size < size:
        return 0.0
    starts = np.linspace(0, audio.size - size, min(frames_judged, audio.size // size)).astype(int)
    frames = np.stack([audio[s: s + size] for s in starts]).astype(np.float64)
    loud = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-12) >= SILENCE_DBFS
    if not loud.any():
        return 0.0
    power = np.abs(np.fft.rfft(frames[loud] * np.hanning(size), axis=1)) ** 2 + 1e-20
    return float(np.median(np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)))


def _peak_plateau(audio: np.ndarray) -> float:
    """The share of samples within 0.1% of the loudest: a few in speech, many in clipped audio."""
    peak = float(np.max(np.abs(audio)))
    return float(np.mean(np.abs(audio) >= 0.999 * peak)) if peak > 0 else 0.0


def _inner_pause_frames(silent: np.ndarray) -> int:
    """The longest run of silent frames between the first and the last sounding one."""
    sounding = np.flatnonzero(~silent)
    return _longest_run(silent[sounding[0]: sounding[-1] + 1]) if sounding.size else 0


def _longest_run(mask: np.ndarray) -> int:
    best = run = 0
    for silent in mask:
        run = run + 1 if silent else 0
        best = max(best, run)
    return best


def check_audio(audio: np.ndarray, sample_rate: int, text: str, limits: AudioLimits | None = None) -> AudioReport:
    """Measure `audio` (mono float) synthesized for `text` against `limits`."""
    limits = limits or AudioLimits(sample_rate=sample_rate)
    audio = np.asarray(audio)
    n = int(audio.size)
    duration = n / sample_rate if sample_rate > 0 else 0.0
    finite = bool(np.isfinite(audio).all()) if n else False
    checks = [
        Check("sample_rate", float(sample_rate), f"== {limits.sample_rate}", sample_rate == limits.sample_rate),
        Check("finite", 1.0 if finite else 0.0, "all samples finite", finite),
        Check("non_empty", float(n), "> 0 samples", n > 0),
    ]
    if not finite or n == 0:
        return AudioReport(duration, tuple(checks))
    frame_db = _frame_rms_dbfs(audio, sample_rate)
    silent = frame_db < SILENCE_DBFS
    silence_share = float(silent.mean())
    clipping = float(np.mean(np.abs(audio) >= CLIP_LEVEL))
    rms_db = float(20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) + 1e-12))
    chars = max(1, len(text.strip()))
    per_char = duration / chars
    pause = _inner_pause_frames(silent) * FRAME_SECONDS
    dc = float(abs(np.mean(audio)))
    flatness = _spectral_flatness(audio)
    sounding_db = _frame_rms_dbfs(audio - np.mean(audio), sample_rate)[~silent]  # a DC offset is no loudness
    spread = float(np.std(sounding_db)) if sounding_db.size else 0.0
    steady_judged = sounding_db.size * FRAME_SECONDS >= limits.loudness_spread_from_s
    plateau = _peak_plateau(audio)
    checks += [
        Check("silence_share", silence_share, f"<= {limits.max_silence_share}", silence_share <= limits.max_silence_share),
        Check("clipping_share", clipping, f"<= {limits.max_clipping_share}", clipping <= limits.max_clipping_share),
        Check("rms_dbfs", rms_db, f"in [{limits.min_rms_dbfs}, {limits.max_rms_dbfs}]",
              limits.min_rms_dbfs <= rms_db <= limits.max_rms_dbfs),
        Check("seconds_per_char", per_char, f"in [{limits.min_seconds_per_char}, {limits.max_seconds_per_char}]",
              limits.min_seconds_per_char <= per_char <= limits.max_seconds_per_char),
        Check("longest_pause_s", pause, f"<= {limits.max_longest_pause_s}", pause <= limits.max_longest_pause_s),
        Check("spectral_flatness", flatness, f"<= {limits.max_spectral_flatness}",
              flatness <= limits.max_spectral_flatness),
        Check("loudness_spread_db", spread, f">= {limits.min_loudness_spread_db} over "
              f"{limits.loudness_spread_from_s} s of sound", not steady_judged or spread >= limits.min_loudness_spread_db),
        Check("peak_plateau_share", plateau, f"<= {limits.max_peak_plateau_share}",
              plateau <= limits.max_peak_plateau_share),
        Check("dc_offset", dc, f"<= {limits.max_dc_offset}", dc <= limits.max_dc_offset, hard=False),
    ]
    return AudioReport(duration, tuple(checks))
