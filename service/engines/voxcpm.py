"""The VoxCPM engine (VoxCPM 1.5 and 2): OpenBMB's `voxcpm` package on weights in the model directory.

`voxcpm` is an optional extra (`pip install 'voxfleet[voxcpm]'`), imported only in
`load()`, so the service and its tests run without it. Weights come from the local
model directory only, never from a hub; which VoxCPM they are, and whether every file
is there, is read first (`voxcpm_layout`).

Upstream facts this adapter relies on (OpenBMB/VoxCPM, src/voxcpm/core.py and
src/voxcpm/model/voxcpm.py): `VoxCPM.from_pretrained(path, load_denoiser=..., optimize=...)`
uses `path` as-is when it is a directory (no `snapshot_download`); `from_local` reads
config.json, a Llama tokenizer, model.safetensors or pytorch_model.bin, and
audiovae.safetensors or audiovae.pth; `generate(text=, prompt_wav_path=, prompt_text=,
cfg_value=, inference_timesteps=)` returns a 1-D float32 numpy array at
`tts_model.sample_rate` (44.1 kHz for 1.5, 48 kHz for 2); `reference_wav_path=` (VoxCPM 2
only) clones a voice from reference audio without a transcript.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from service.engines.base import WARMUP_TEXT, EngineError, EngineInfo, estimate_speech_s, synthesis_seed
from service.engines.voxcpm_layout import VoxCPMLayout, check_sample_rate, read_layout
from service.model_dir import ModelManifest
from service.text_support import TextSupport
from service.time_stretch import time_stretch

INSTALL_HINT = "install it with `pip install 'voxfleet[voxcpm]'` (or `pip install voxcpm`)"
DEFAULT_VOICE = "default"
# VoxCPM 1.5 is trained on Chinese and English; its tokenizer reads any letter of those scripts.
TEXT_SUPPORT = TextSupport(frozenset({"LATIN", "CJK", "DIGIT"}), "Chinese and English (and digits)")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class VoxCPMEngine:
    """Engine for manifests with `engine: voxcpm`.

    Not thread-safe, by contract: the server calls `load`, `warm_up` and every
    `synthesize` on one dedicated inference thread. With `optimize=True` VoxCPM
    compiles with torch.compile(mode="reduce-overhead"), whose CUDA graphs break when
    called from another thread, so calls from a thread other than the loading one are
    refused.

    Manifest `config` keys: `weights_subdir` (default: the model directory itself),
    `cfg_value` (2.0), `inference_timesteps` (10), `optimize` (default: True only when
    CUDA is present) and `voice_prompts`: {voice: {"prompt_wav": file in the model
    directory, "prompt_text": its transcript}} for zero-shot cloning, and/or (VoxCPM 2)
    {"reference_wav": file} to clone a voice from audio alone. The voice "default" uses
    no prompt.
    """

    def __init__(self, manifest: ModelManifest, device: str | None = None) -> None:
        self.manifest = manifest
        self.requested_device = device  # cuda:N for one of several workers; None: VoxCPM chooses
        cfg = manifest.config
        self.weights_dir = manifest.directory / str(cfg.get("weights_subdir") or ".")
        self.cfg_value = float(cfg.get("cfg_value", 2.0))
        self.inference_timesteps = int(cfg.get("inference_timesteps", 10))
        self.optimize: bool | None = None if cfg.get("optimize") is None else bool(cfg["optimize"])
        self.voice_prompts: dict[str, dict[str, Any]] = dict(cfg.get("voice_prompts") or {})
        self.model: Any = None
        self._prompt_caches: dict[str, Any] = {}  # voice -> the model's prompt cache (built once, at load)
        self.device: str | None = None
        self.layout: VoxCPMLayout | None = None
        self._thread: int | None = None

    # -- Engine interface ---------------------------------------------------------
    def load(self) -> None:
        if not self.manifest.directory.is_dir():
            raise EngineError(f"model directory {self.manifest.directory} does not exist")
        layout = read_layout(self.weights_dir)
        check_sample_rate(layout, self.manifest.path("manifest.json"), self.manifest.sample_rate,
                          self.weights_dir / "config.json")
        prompts = {voice: self._prompt_for(voice, layout) for voice in self.manifest.voices}
        cuda = _cuda_available()
        optimize = cuda if self.optimize is None else self.optimize
        # Belt and braces: a directory path never reaches the hub, but transformers or
        # huggingface_hub must not try either (no network on these hosts).
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            from voxcpm import VoxCPM
        except ImportError as exc:
            if exc.name == "voxcpm":
                raise EngineError(f"the VoxCPM engine needs the optional package 'voxcpm': {INSTALL_HINT}") from exc
            raise EngineError(f"package 'voxcpm' failed to import ({exc}); {INSTALL_HINT}") from exc
        try:
            model = VoxCPM.from_pretrained(str(self.weights_dir), load_denoiser=False, optimize=optimize,
                                           device=self.requested_device)
        except Exception as exc:
            raise EngineError(f"{self.weights_dir}: VoxCPM failed to load ({type(exc).__name__}: {exc})") from exc
        try:  # each voice's prompt audio is encoded once here, not again on every chunk
            caches = {voice: model.tts_model.build_prompt_cache(**args) for voice, args in prompts.items() if args}
        except Exception as exc:
            raise EngineError(f"{self.weights_dir}: VoxCPM could not read a voice's prompt audio "
                              f"({type(exc).__name__}: {exc})") from exc
        self.model, self.layout = model, layout
        self._prompt_caches = caches
        self.device = str(getattr(model.tts_model, "device", "cuda" if cuda else "cpu"))
        self._thread = threading.get_ident()

    def warm_up(self) -> np.ndarray:
        rate = self._model_rate()
        if rate != self.manifest.sample_rate:
            raise EngineError(
                f"{self.manifest.path('manifest.json')}: sample_rate {self.manifest.sample_rate} "
                f"but the VoxCPM model in {self.weights_dir} produces {rate} Hz"
            )
        return self.synthesize(WARMUP_TEXT, self.manifest.voices[0], 1.0)

    def synthesize(self, text: str, voice: str, speed: float, seed: int | None = None) -> np.ndarray:
        if self.model is None:
            raise EngineError("voxcpm engine: synthesize called before load")
        if threading.get_ident() != self._thread:
            raise EngineError("voxcpm engine: called from a thread other than the one that loaded it")
        if voice not in self.manifest.voices:
            raise EngineError(f"voxcpm engine: unknown voice {voice!r} (known: {', '.join(self.manifest.voices)})")
        if not np.isfinite(speed) or speed <= 0:
            raise EngineError(f"voxcpm engine: speed must be a positive number, got {speed!r}")
        import torch  # present wherever voxcpm is (its dependency); seeded here, on the one inference thread

        torch.manual_seed(synthesis_seed(text, voice, speed) if seed is None else seed)
        try:
            wav = self._generate(text, self._prompt_caches.get(voice))
        except Exception as exc:
            raise EngineError(f"{self.weights_dir}: VoxCPM generate failed ({type(exc).__name__}: {exc})") from exc
        audio = np.asarray(wav, dtype=np.float32).reshape(-1)
        if audio.size == 0:
            raise EngineError(f"{self.weights_dir}: VoxCPM returned no audio for this input")
        return time_stretch(audio, float(speed), self._model_rate())

    def describe(self) -> EngineInfo:
        rate = self._model_rate() if self.model is not None else self.manifest.sample_rate
        device = self.device or ("cuda" if _cuda_available() else "cpu")
        return EngineInfo("voxcpm", self.manifest.version, rate, device, self.manifest.voices)

    def text_support(self) -> TextSupport:
        return TEXT_SUPPORT

    def estimate_audio_s(self, text: str, speed: float) -> float:
        return estimate_speech_s(text, speed)  # VoxCPM has no duration control; `time_stretch` scales by 1/speed

    # -- helpers ------------------------------------------------------------------
    def _generate(self, text: str, prompt_cache: Any) -> Any:
        """generate() for the default voice; a voice's prompt cache goes to the model-level
        call VoxCPM.generate itself makes (core.py), with the same arguments it passes."""
        if prompt_cache is None:
            return self.model.generate(text=text, cfg_value=self.cfg_value,
                                       inference_timesteps=self.inference_timesteps)
        wav, _, _ = self.model.tts_model.generate_with_prompt_cache(
            target_text=" ".join(text.split()), prompt_cache=prompt_cache, min_len=2, max_len=4096,
            inference_timesteps=self.inference_timesteps, cfg_value=self.cfg_value, retry_badcase=True)
        return wav.squeeze(0).cpu().numpy()

    def _model_rate(self) -> int:
        return int(self.model.tts_model.sample_rate)

    def _prompt_for(self, voice: str, layout: VoxCPMLayout) -> dict[str, str]:
        """The generate() arguments for a voice; checks its prompt files exist."""
        if voice == DEFAULT_VOICE:
            return {}
        spec = self.voice_prompts.get(voice)
        where = self.manifest.path("manifest.json")
        wanted = "prompt_wav and prompt_text" + (" (or reference_wav)" if layout.takes_reference_audio else "")
        if not isinstance(spec, dict) or not (spec.get("prompt_wav") or spec.get("prompt_text")
                                              or spec.get("reference_wav")):
            raise EngineError(f"{where}: voice {voice!r} needs config.voice_prompts.{voice} with {wanted}")
        args: dict[str, str] = {}
        if spec.get("prompt_wav") or spec.get("prompt_text"):
            if not (spec.get("prompt_wav") and spec.get("prompt_text")):
                raise EngineError(f"{where}: voice {voice!r} needs both prompt_wav and prompt_text (the transcript "
                                  "of the prompt audio)")
            args["prompt_wav_path"] = self._voice_file(voice, "prompt_wav", spec)
            args["prompt_text"] = str(spec["prompt_text"])
        if spec.get("reference_wav"):
            if not layout.takes_reference_audio:
                raise EngineError(f"{where}: voice {voice!r} has reference_wav, which only VoxCPM 2 takes; "
                                  f"{self.weights_dir} holds {layout.generation} (give it prompt_wav and prompt_text)")
            args["reference_wav_path"] = self._voice_file(voice, "reference_wav", spec)
        return args

    def _voice_file(self, voice: str, key: str, spec: dict[str, Any]) -> str:
        relative = Path(str(spec[key]))
        if relative.is_absolute() or ".." in relative.parts:
            raise EngineError(f"{self.manifest.path('manifest.json')}: {key} {relative} of voice {voice!r} must stay "
                              "inside the model directory")
        wav = self.manifest.directory / relative
        if not wav.is_file():
            raise EngineError(f"{wav}: {key} audio of voice {voice!r} is missing")
        return str(wav)
