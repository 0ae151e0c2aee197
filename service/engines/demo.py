"""The demo engine: a small torch formant synthesizer that runs in real time on a CPU.

It stands in for a neural TTS model where no real weights can be had. Text becomes
a sequence of phone-like units (vowel, voiced or unvoiced consonant, pause); a tiny
seeded network (`ProsodyNet`) turns each unit into duration, pitch, formant and
noise targets; the tracks are smoothed (coarticulation) and rendered as a harmonic
source shaped by formant resonances plus shaped noise. The result has a pitch
contour, formants and syllable-rate loudness changes: speech-shaped, neither noise
nor a sine. Everything is a pure function of the weights and the request, so the
same request gives the same samples.

Test-only variants (never shipped) are expressed in the weights and config that
`models.recipe` writes: zero output gain (silent), a NaN weight, redundant
refinement passes (slow), a share of calls that fail once past its first few (flaky),
or that answer with silence past them (mute).
"""

from __future__ import annotations

import hashlib
import math
import threading

import numpy as np
import torch
from torch import nn

from service.engines.base import WARMUP_TEXT, EngineError, EngineInfo
from service.engines.weights import WeightsFormatError, read_weights
from service.model_dir import ModelManifest
from service.text_support import TextSupport

WEIGHTS_FILE = "weights.safetensors"
HOP = 256  # samples per control frame (5.8 ms at 44.1 kHz)
N_HARMONICS = 48
EMBED_DIM = 16
HIDDEN_DIM = 32
N_TARGETS = 6  # duration, pitch, F1, F2, F3 shifts, noise
_VOWELS = {  # F1, F2, F3 in Hz (adult average)
    "a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (300, 2250, 3000),
    "o": (570, 840, 2410), "u": (320, 900, 2240), "y": (300, 2000, 2700),
}
_NASALS = set("mnl r w j".replace(" ", ""))
_FRICATIVES = set("fhsxzcvq")
_PLOSIVES = set("bdgkpt")
_PAUSES = {",": 0.18, ";": 0.22, ":": 0.22, ".": 0.35, "!": 0.35, "?": 0.35,
           "，": 0.18, "。": 0.35, "！": 0.35, "？": 0.35, "、": 0.15, "\n": 0.3}
_SOUNDING = ("vowel", "nasal", "fricative", "plosive", "syllable")
# A unit's length in characters' time (a pause has its own length in seconds, `_PAUSES`).
_DURATION_FACTOR = {"vowel": 1.3, "syllable": 2.2, "plosive": 0.7, "gap": 0.6}
ESTIMATE_MARGIN = 1.25  # the prosody net stretches a unit by up to 35%; over a text, under 25% (measured)


class ProsodyNet(nn.Module):
    """Maps a unit's symbol embedding and position features to acoustic targets."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(256, EMBED_DIM)
        self.hidden = nn.Linear(EMBED_DIM + 4, HIDDEN_DIM)
        self.out = nn.Linear(HIDDEN_DIM, N_TARGETS)

    def forward(self, symbols: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.embedding(symbols), features], dim=-1)
        return torch.tanh(self.out(torch.tanh(self.hidden(x))))


def _unit_kind(ch: str) -> str:
    low = ch.lower()
    if ch in _PAUSES:
        return "pause"
    if ch.isspace():
        return "gap"
    if low in _VOWELS:
        return "vowel"
    if low in _NASALS:
        return "nasal"
    if low in _FRICATIVES:
        return "fricative"
    if low in _PLOSIVES:
        return "plosive"
    if ch.isdigit():
        return "vowel"  # digits are read as syllables
    if ord(ch) > 0x2E80:
        return "syllable"  # CJK and similar: one syllable per character
    return "gap"


def _sounds(ch: str) -> bool:
    return _unit_kind(ch) in _SOUNDING


# It reads ASCII letters and digits, and one syllable per CJK character; anything else is a gap.
TEXT_SUPPORT = TextSupport(frozenset({"LATIN", "CJK", "DIGIT"}), "Latin-script text (English), Chinese and digits",
                           _sounds)


def _collapse_pauses(units: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A run of pause marks ("!!!", "...", "?!") is one pause, the longest of them, as a
    reader makes it: otherwise a burst of punctuation is seconds of silence."""
    out: list[tuple[str, str]] = []
    for ch, kind in units:
        if kind == "pause" and out and out[-1][1] == "pause":
            if _PAUSES[ch] > _PAUSES[out[-1][0]]:
                out[-1] = (ch, kind)
            continue
        out.append((ch, kind))
    return out


class DemoEngine:
    """Engine for manifests with `engine: demo`. Not thread-safe by design: the server
    calls it from its single inference thread."""

    def __init__(self, manifest: ModelManifest) -> None:
        self.manifest = manifest
        self.sample_rate = manifest.sample_rate
        cfg = manifest.config
        self.base_f0 = float(cfg.get("base_f0", 120.0))
        self.formant_scale = float(cfg.get("formant_scale", 1.0))
        self.chars_per_second = float(cfg.get("chars_per_second", 12.0))
        self.breathiness = float(cfg.get("breathiness", 0.05))
        self.target_rms_db = float(cfg.get("target_rms_db", -20.0))
        self.refine_passes = int(cfg.get("refine_passes", 0))
        self.fail_share = float(cfg.get("fail_share", 0.0))
        self.fail_after = int(cfg.get("fail_after", 0))
        self.fail_mode = str(cfg.get("fail_mode", "error"))  # error: raise; silence: return zeros
        self._calls = 0
        self.voice_table: dict[str, tuple[float, float]] = {
            name: (float(v[0]), float(v[1])) for name, v in (cfg.get("voice_table") or {}).items()
        }
        self.net: ProsodyNet | None = None
        self.output_gain = 1.0
        self._thread: int | None = None

    # -- Engine interface ---------------------------------------------------------
    def load(self) -> None:
        path = self.manifest.path(WEIGHTS_FILE)
        if not path.is_file():
            raise EngineError(f"{path}: weights file is missing")
        try:
            tensors = read_weights(path)
        except WeightsFormatError as exc:
            raise EngineError(str(exc)) from exc
        net = ProsodyNet()
        state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items() if k != "output_gain"}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise EngineError(f"{path}: weights do not fit the demo model ({exc})") from exc
        net.eval()
        self.net = net
        self.output_gain = float(tensors.get("output_gain", np.ones(1, np.float32))[0])
        self._thread = threading.get_ident()

    def warm_up(self) -> np.ndarray:
        return self.synthesize(WARMUP_TEXT, self.manifest.voices[0], 1.0)

    def describe(self) -> EngineInfo:
        return EngineInfo("demo", self.manifest.version, self.sample_rate, "cpu", self.manifest.voices)

    def text_support(self) -> TextSupport:
        return TEXT_SUPPORT

    def estimate_audio_s(self, text: str, speed: float) -> float:
        """The units' nominal lengths, as `_render` sets them before the prosody net's stretch."""
        base = ESTIMATE_MARGIN / (self.chars_per_second * speed)
        min_unit = 2 * HOP / self.sample_rate
        return sum(_PAUSES[ch] / speed if kind == "pause" else max(min_unit, base * _DURATION_FACTOR.get(kind, 1.0))
                   for ch, kind in self._units(text))

    def synthesize(self, text: str, voice: str, speed: float, seed: int | None = None) -> np.ndarray:
        if self.net is None:
            raise EngineError("demo engine: synthesize called before load")
        if voice not in self.manifest.voices:
            raise EngineError(f"demo engine: unknown voice {voice!r}")
        digest = hashlib.sha256(f"{text}\0{voice}\0{speed:.4f}".encode()).digest()
        self._calls += 1
        if self._degraded():
            if self.fail_mode == "silence":
                return np.zeros(int(self.sample_rate * max(len(text), 1) / (self.chars_per_second * speed)),
                                dtype=np.float32)
            raise EngineError("demo engine: synthesis failed (flaky variant)")
        if seed is None:
            seed = int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF
        with torch.inference_mode():
            audio = self._render(text, voice, speed, seed)
            for _ in range(self.refine_passes):  # the "slow" variant's redundant work
                audio = self._render(text, voice, speed, seed)
        return audio.numpy().astype(np.float32, copy=False)

    def _degraded(self) -> bool:
        """The flaky variant: healthy for its first `fail_after` calls (warm-up, probes,
        golden prompts), then an even `fail_share` of calls fail, like a model that
        breaks under real traffic."""
        served = self._calls - self.fail_after
        return self.fail_share > 0 and served > 0 and int(served * self.fail_share) > int((served - 1) * self.fail_share)

    # -- synthesis ----------------------------------------------------------------
    def _units(self, text: str) -> list[tuple[str, str]]:
        units = _collapse_pauses([(ch, _unit_kind(ch)) for ch in text])
        return units or [(" ", "gap")]

    def _render(self, text: str, voice: str, speed: float, seed: int) -> torch.Tensor:
        assert self.net is not None
        sr = self.sample_rate
        f0_scale, voice_formant = self.voice_table.get(voice, (1.0, 1.0))
        units = self._units(text)
        n = len(units)
        symbols = torch.tensor([ord(ch) % 256 for ch, _ in units])
        pos = torch.arange(n, dtype=torch.float32) / max(n - 1, 1)
        features = torch.stack([pos, torch.sin(pos * math.pi), torch.cos(pos * 7.0),
                                torch.full((n,), 1.0 / speed)], dim=-1)
        targets = self.net(symbols, features)  # (n, 6) in [-1, 1]

        frames_per_sec = sr / HOP
        base_dur = 1.0 / (self.chars_per_second * speed)
        f0_list, form_list, voiced_list, noise_list, amp_list = [], [], [], [], []
        for i, (ch, kind) in enumerate(units):
            t = targets[i]
            dur = base_dur * (1.0 + 0.35 * float(t[0])) * _DURATION_FACTOR.get(kind, 1.0)
            voiced, noise, amp = 1.0, self.breathiness, 1.0
            formants = (500.0, 1500.0, 2500.0)
            if kind == "vowel":
                formants = _VOWELS.get(ch.lower(), (600.0, 1300.0, 2450.0))
            elif kind == "syllable":
                formants = list(_VOWELS.values())[ord(ch) % len(_VOWELS)]
            elif kind == "nasal":
                formants, amp = (300.0, 1200.0, 2500.0), 0.55
            elif kind == "fricative":
                voiced, noise, amp, formants = 0.1, 0.9, 0.35, (2500.0, 4500.0, 6500.0)
            elif kind == "plosive":
                voiced, noise, amp = 0.3, 0.6, 0.4
            elif kind == "gap":
                voiced, noise, amp = 0.0, 0.0, 0.0
            else:  # pause
                voiced, noise, amp, dur = 0.0, 0.0, 0.0, _PAUSES[ch] / speed
            frames = max(2, int(round(dur * frames_per_sec)))
            shift = self.formant_scale * voice_formant
            f = [formants[j] * shift * (1.0 + 0.08 * float(t[2 + j])) for j in range(3)]
            f0 = self.base_f0 * f0_scale * (1.0 + 0.12 * float(t[1]))
            f0_list.append(torch.full((frames,), f0))
            form_list.append(torch.tensor(f).expand(frames, 3))
            voiced_list.append(torch.full((frames,), voiced))
            noise_list.append(torch.full((frames,), noise * (1.0 + 0.3 * float(t[5]))))
            amp_list.append(torch.full((frames,), amp))

        f0_track = torch.cat(f0_list)
        n_frames = f0_track.shape[0]
        # Declining intonation over the utterance and coarticulation between units.
        frame_t = torch.arange(n_frames, dtype=torch.float32) / frames_per_sec
        f0_track = f0_track * torch.linspace(1.1, 0.85, n_frames) * (1.0 + 0.02 * torch.sin(2 * math.pi * 5.0 * frame_t))
        f0_track, voiced_track, noise_track, amp_track = (
            _smooth(x, 9) for x in (f0_track, torch.cat(voiced_list), torch.cat(noise_list), torch.cat(amp_list)))
        formant_tracks = torch.cat(form_list)
        formant_tracks = torch.stack([_smooth(formant_tracks[:, j], 7) for j in range(3)], dim=-1)

        harmonic = self._harmonic_source(f0_track, formant_tracks, voiced_track * amp_track)
        aspiration = self._noise_source(formant_tracks, noise_track * amp_track, seed, harmonic.shape[0])
        audio = harmonic + aspiration
        audio = audio * _fade(audio.shape[0], int(0.01 * sr))
        rms = torch.sqrt(torch.mean(audio**2) + 1e-12)
        audio = audio * (10 ** (self.target_rms_db / 20.0) / rms) * self.output_gain
        return torch.clamp(audio, -0.99, 0.99).to(torch.float32)

    def _harmonic_source(self, f0: torch.Tensor, formants: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        sr = self.sample_rate
        k = torch.arange(1, N_HARMONICS + 1, dtype=torch.float32)
        freqs = f0[:, None] * k[None, :]  # (frames, K)
        bandwidth = torch.tensor([90.0, 110.0, 170.0])
        peaks = torch.exp(-(((freqs[:, :, None] - formants[:, None, :]) / bandwidth) ** 2))
        envelope = (peaks * torch.tensor([1.0, 0.6, 0.3])).sum(-1) + 0.02 / k  # spectral tilt
        envelope = envelope * (freqs < sr / 2 - 1000).float() * gain[:, None]
        n_samples = f0.shape[0] * HOP
        f0_s = _upsample(f0, n_samples)
        env_s = _upsample(envelope.T.contiguous(), n_samples)  # (K, samples)
        phase = torch.cumsum(2 * math.pi * f0_s / sr, dim=0)
        return _harmonic_sum(env_s, phase)

    def _noise_source(self, formants: torch.Tensor, gain: torch.Tensor, seed: int, n_samples: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        n_fft = 4 * HOP
        white = torch.randn(max(n_samples, n_fft), generator=gen)  # the STFT pads n_fft // 2 on each side
        window = torch.hann_window(n_fft)
        spec = torch.stft(white, n_fft, HOP, window=window, return_complex=True)  # (bins, frames)
        bins = torch.linspace(0, self.sample_rate / 2, spec.shape[0])
        frames = spec.shape[1]
        idx = torch.clamp(torch.arange(frames), max=formants.shape[0] - 1)
        centre = formants[idx, 1][None, :]
        shape = torch.exp(-(((bins[:, None] - centre) / 2500.0) ** 2)) * gain[idx][None, :]
        return torch.istft(spec * shape, n_fft, HOP, window=window, length=white.shape[0])[:n_samples] * 0.5


def _harmonic_sum(envelopes: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """sum over k of envelopes[k - 1] * sin(k * phase), by the recurrence
    sin((k + 1)x) = 2 cos(x) sin(kx) - sin((k - 1)x): two sines in all instead of one per
    harmonic and sample, which made this model cost most of a sandbox host's CPU quota
    (and no less exact: sin(k * phase) in float32 loses the phase at large k)."""
    twice_cos = 2 * torch.cos(phase)
    before, current = torch.zeros_like(phase), torch.sin(phase)
    total = envelopes[0] * current
    for envelope in envelopes[1:]:
        before, current = current, twice_cos * current - before
        total.addcmul_(envelope, current)
    return total


def _smooth(x: torch.Tensor, width: int) -> torch.Tensor:
    kernel = torch.ones(1, 1, width) / width
    padded = torch.nn.functional.pad(x[None, None, :], (width // 2, width // 2), mode="replicate")
    return torch.nn.functional.conv1d(padded, kernel)[0, 0]


def _upsample(x: torch.Tensor, n_samples: int) -> torch.Tensor:
    rows = x if x.dim() == 2 else x[None, :]
    out = torch.nn.functional.interpolate(rows[None], size=n_samples, mode="linear", align_corners=False)[0]
    return out if x.dim() == 2 else out[0]


def _fade(n: int, width: int) -> torch.Tensor:
    ramp = torch.ones(n)
    width = min(width, n // 2)
    if width > 0:
        edge = torch.linspace(0.0, 1.0, width)
        ramp[:width] = edge
        ramp[-width:] = edge.flip(0)
    return ramp
