"""The VoxCPM adapter's error paths and call contract, without the `voxcpm` package.

Where a test needs the import to succeed, a tiny fake `voxcpm` package is written
to tmp_path and put first on sys.path; it is removed from sys.modules afterwards.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.engines import create_engine
from service.engines import voxcpm as voxcpm_engine
from service.engines.base import EngineError
from service.engines.voxcpm import VoxCPMEngine
from service.model_dir import read_manifest, write_manifest

RATE = 44100
WEIGHT_FILES = {"config.json": b'{"architecture": "voxcpm"}', "tokenizer.json": b"{}",
                "model.safetensors": b"weights", "audiovae.pth": b"vae"}

FAKE_VOXCPM = '''
import json
import os
import numpy as np

SAMPLE_RATE = {rate}
FAIL_LOAD = {fail_load}
OFFLINE_AT_IMPORT = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
calls = []


def _tone(seconds=0.5):
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)


# The model-level prompt cache, with voxcpm 2.0.3's signatures (model/voxcpm.py for 1.x,
# model/voxcpm2.py for 2): a cache is built from prompt audio once, then used per call.
class _TTSModel:
    sample_rate = SAMPLE_RATE

    def __init__(self, arch):
        self.arch = arch

    def build_prompt_cache(self, prompt_text=None, prompt_wav_path=None, reference_wav_path=None,
                           trim_silence_vad=False):
        if self.arch != "voxcpm2" and (reference_wav_path is not None or trim_silence_vad):
            raise TypeError("build_prompt_cache() got an unexpected keyword argument")  # 1.x: text and wav only
        if self.arch != "voxcpm2" and (prompt_text is None or prompt_wav_path is None):
            raise TypeError("build_prompt_cache() missing required positional arguments")
        for path in (prompt_wav_path, reference_wav_path):
            if path is not None and not os.path.exists(path):
                raise FileNotFoundError(path)
        calls.append(("build_prompt_cache", dict(prompt_text=prompt_text, prompt_wav_path=prompt_wav_path,
                                                 reference_wav_path=reference_wav_path)))
        return dict(prompt_text=prompt_text, mode="reference" if prompt_text is None else "continuation")

    def generate_with_prompt_cache(self, target_text, prompt_cache, min_len=2, max_len=2000, inference_timesteps=10,
                                   cfg_value=2.0, retry_badcase=False, retry_badcase_max_times=3,
                                   retry_badcase_ratio_threshold=6.0):
        import torch

        if not isinstance(prompt_cache, dict):
            raise TypeError("prompt_cache must be the dict build_prompt_cache returns")
        calls.append(("generate_with_prompt_cache", dict(target_text=target_text, prompt_cache=prompt_cache,
                                                         max_len=max_len, cfg_value=cfg_value,
                                                         inference_timesteps=inference_timesteps,
                                                         retry_badcase=retry_badcase)))
        return torch.from_numpy(_tone()).unsqueeze(0), torch.zeros(3), torch.zeros(3)


# The signatures and the argument checks below are voxcpm 2.0.3's (src/voxcpm/core.py),
# without **kwargs where it has none: a call the real package refuses is refused here.
class VoxCPM:
    def __init__(self, voxcpm_model_path, zipenhancer_model_path="iic/speech_zipenhancer_ans_multiloss_16k_base",
                 enable_denoiser=True, optimize=True, device=None, lora_config=None, lora_weights_path=None):
        with open(os.path.join(voxcpm_model_path, "config.json"), encoding="utf-8") as f:
            arch = json.load(f).get("architecture", "voxcpm").lower()
        if arch not in ("voxcpm", "voxcpm2"):
            raise ValueError(f"Unsupported architecture: {{arch}}")
        if FAIL_LOAD:
            raise RuntimeError("size mismatch for base_lm.embed_tokens.weight")
        self.tts_model = _TTSModel(arch)
        self.arch = arch

    @classmethod
    def from_pretrained(cls, hf_model_id="openbmb/VoxCPM2", load_denoiser=True,
                        zipenhancer_model_id="iic/speech_zipenhancer_ans_multiloss_16k_base", cache_dir=None,
                        local_files_only=False, optimize=True, device=None, lora_config=None,
                        lora_weights_path=None, **kwargs):
        calls.append(("from_pretrained", hf_model_id, dict(load_denoiser=load_denoiser, optimize=optimize, **kwargs)))
        if not os.path.isdir(hf_model_id):
            raise RuntimeError(f"would download {{hf_model_id}} from the hub")
        return cls(voxcpm_model_path=hf_model_id, zipenhancer_model_path=zipenhancer_model_id if load_denoiser else None,
                   enable_denoiser=load_denoiser, optimize=optimize, device=device, lora_config=lora_config,
                   lora_weights_path=lora_weights_path, **kwargs)

    def generate(self, *args, **kwargs):
        return self._generate(*args, streaming=False, **kwargs)

    def _generate(self, text, prompt_wav_path=None, prompt_text=None, reference_wav_path=None, cfg_value=2.0,
                  inference_timesteps=10, min_len=2, max_len=4096, normalize=False, denoise=False,
                  retry_badcase=True, retry_badcase_max_times=3, retry_badcase_ratio_threshold=6.0,
                  streaming=False):
        calls.append(("generate", dict(text=text, prompt_wav_path=prompt_wav_path, prompt_text=prompt_text,
                                       reference_wav_path=reference_wav_path, cfg_value=cfg_value,
                                       inference_timesteps=inference_timesteps)))
        if not isinstance(text, str) or not text.strip():
            raise ValueError("target text must be a non-empty string")
        if prompt_wav_path is not None and not os.path.exists(prompt_wav_path):
            raise FileNotFoundError(f"prompt_wav_path does not exist: {{prompt_wav_path}}")
        if (prompt_wav_path is None) != (prompt_text is None):
            raise ValueError("prompt_wav_path and prompt_text must both be provided or both be None")
        if reference_wav_path is not None and self.arch != "voxcpm2":
            raise ValueError("reference_wav_path is only supported with VoxCPM2 models")
        return _tone()
'''


def make_model_dir(root: Path, config: dict[str, Any] | None = None, skip: tuple[str, ...] = (),
                   weights_config: dict[str, Any] | None = None, rate: int = RATE) -> Path:
    """A model directory; `weights_config`: its config.json (default: VoxCPM 1.x's architecture)."""
    directory = root / "voxcpm-1.5"
    directory.mkdir()
    for name, data in WEIGHT_FILES.items():
        if name not in skip:
            (directory / name).write_bytes(data)
    if weights_config is not None and "config.json" not in skip:
        (directory / "config.json").write_text(json.dumps(weights_config))
    voices = ["default", *((config or {}).get("voice_prompts") or {})]
    write_manifest(directory, {"name": "voxcpm-1.5", "version": "v1.5.0", "engine": "voxcpm",
                               "sample_rate": rate, "voices": voices, "config": config or {}})
    return directory


@pytest.fixture(autouse=True)
def offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # load() sets these in os.environ; setenv here makes monkeypatch restore them after.
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(voxcpm_engine, "_cuda_available", lambda: False)


@pytest.fixture
def no_voxcpm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "voxcpm", None)  # makes `import voxcpm` fail even if installed


@pytest.fixture
def fake_voxcpm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    def install(rate: int = RATE, fail_load: bool = False) -> None:
        package = tmp_path / "site" / "voxcpm"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(textwrap.dedent(FAKE_VOXCPM.format(rate=rate, fail_load=fail_load)))
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        importlib.invalidate_caches()

    monkeypatch.delitem(sys.modules, "voxcpm", raising=False)
    yield install
    sys.modules.pop("voxcpm", None)


def engine_for(directory: Path) -> VoxCPMEngine:
    engine = create_engine(read_manifest(directory))
    assert isinstance(engine, VoxCPMEngine)
    return engine


def test_missing_package_names_it_and_the_install_hint(tmp_path: Path, no_voxcpm: None) -> None:
    engine = engine_for(make_model_dir(tmp_path))
    with pytest.raises(EngineError, match="voxcpm") as info:
        engine.load()
    assert "pip install 'voxfleet[voxcpm]'" in str(info.value)
    assert "pip install voxcpm" in str(info.value)


def test_missing_model_directory_is_named_before_the_import(tmp_path: Path, no_voxcpm: None) -> None:
    directory = make_model_dir(tmp_path)
    engine = engine_for(directory)
    shutil.rmtree(directory)
    with pytest.raises(EngineError, match="does not exist") as info:
        engine.load()
    assert str(directory) in str(info.value)


@pytest.mark.parametrize("missing", ["config.json", "tokenizer.json", "model.safetensors", "audiovae.pth"])
def test_missing_required_file_is_named(tmp_path: Path, no_voxcpm: None, missing: str) -> None:
    directory = make_model_dir(tmp_path, skip=(missing,))
    with pytest.raises(EngineError, match="missing") as info:
        engine_for(directory).load()
    assert str(directory / missing) in str(info.value)


def test_alternative_weight_file_names_are_accepted(tmp_path: Path, no_voxcpm: None) -> None:
    directory = make_model_dir(tmp_path, skip=("model.safetensors", "audiovae.pth"))
    (directory / "pytorch_model.bin").write_bytes(b"w")
    (directory / "audiovae.safetensors").write_bytes(b"v")
    with pytest.raises(EngineError, match="pip install"):  # got past the file check to the import
        engine_for(directory).load()


def test_missing_weights_subdir_is_named(tmp_path: Path, no_voxcpm: None) -> None:
    directory = make_model_dir(tmp_path, config={"weights_subdir": "hf"})
    with pytest.raises(EngineError, match="does not exist") as info:
        engine_for(directory).load()
    assert str(directory / "hf") in str(info.value)


def test_loads_local_dir_offline_and_synthesizes_on_cpu(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm()
    directory = make_model_dir(tmp_path, config={"cfg_value": 1.5, "inference_timesteps": 6})
    engine = engine_for(directory)
    assert engine.describe().sample_rate == RATE  # manifest's rate before load
    engine.load()
    fake = sys.modules["voxcpm"]
    assert fake.OFFLINE_AT_IMPORT == ("1", "1")
    assert fake.calls == [("from_pretrained", str(directory), {"load_denoiser": False, "optimize": False})]

    audio = engine.synthesize("Hello there.", "default", 1.0)
    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size == RATE // 2
    assert np.max(np.abs(audio)) == pytest.approx(0.3, abs=1e-3)
    assert fake.calls[-1] == ("generate", {"text": "Hello there.", "prompt_wav_path": None, "prompt_text": None,
                                           "reference_wav_path": None,
                                           "cfg_value": 1.5, "inference_timesteps": 6})
    info = engine.describe()
    assert (info.engine, info.version, info.sample_rate, info.device, info.voices) == (
        "voxcpm", "v1.5.0", RATE, "cpu", ("default",))


def test_optimize_defaults_on_with_cuda(tmp_path: Path, fake_voxcpm, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_voxcpm()
    monkeypatch.setattr(voxcpm_engine, "_cuda_available", lambda: True)
    engine = engine_for(make_model_dir(tmp_path))
    engine.load()
    assert sys.modules["voxcpm"].calls[0][2]["optimize"] is True
    assert engine.describe().device == "cuda"


def test_warm_up_returns_audio(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm()
    engine = engine_for(make_model_dir(tmp_path))
    engine.load()
    audio = engine.warm_up()
    assert audio.dtype == np.float32 and audio.size > 0


def test_sample_rate_mismatch_raises_naming_both(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm(rate=24000)
    engine = engine_for(make_model_dir(tmp_path))
    engine.load()
    assert engine.describe().sample_rate == 24000  # the model's real rate once loaded
    with pytest.raises(EngineError, match="44100") as info:
        engine.warm_up()
    assert "24000" in str(info.value)


def test_unknown_voice(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm()
    engine = engine_for(make_model_dir(tmp_path))
    engine.load()
    with pytest.raises(EngineError, match="unknown voice 'alloy'"):
        engine.synthesize("Hi.", "alloy", 1.0)


def test_a_voices_prompt_cache_is_built_once_at_load_and_used_by_every_synthesis(tmp_path: Path, fake_voxcpm,
                                                                                no_cuda: None) -> None:
    fake_voxcpm()
    config = {"voice_prompts": {"anna": {"prompt_wav": "anna.wav", "prompt_text": "I am Anna."}}}
    directory = make_model_dir(tmp_path, config=config)
    (directory / "anna.wav").write_bytes(b"RIFF")
    engine = engine_for(directory)
    engine.load()
    for text in ("Hello.", "And again."):
        audio = engine.synthesize(text, "anna", 1.0)
        assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size == RATE // 2
    calls = sys.modules["voxcpm"].calls
    built = [c[1] for c in calls if c[0] == "build_prompt_cache"]
    assert built == [{"prompt_text": "I am Anna.", "prompt_wav_path": str(directory / "anna.wav"),
                      "reference_wav_path": None}]  # once, at load: the prompt audio is not encoded per call
    used = [c[1] for c in calls if c[0] == "generate_with_prompt_cache"]
    assert [u["target_text"] for u in used] == ["Hello.", "And again."]
    assert all(u["prompt_cache"]["prompt_text"] == "I am Anna." and u["retry_badcase"] for u in used)
    assert not [c for c in calls if c[0] == "generate"]  # the default voice alone goes through generate()


def test_missing_voice_prompt_file_is_named(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm()
    config = {"voice_prompts": {"anna": {"prompt_wav": "anna.wav", "prompt_text": "I am Anna."}}}
    directory = make_model_dir(tmp_path, config=config)
    with pytest.raises(EngineError, match="anna") as info:
        engine_for(directory).load()
    assert str(directory / "anna.wav") in str(info.value)


def test_speed_changes_the_duration_not_the_pitch(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm()
    engine = engine_for(make_model_dir(tmp_path))
    engine.load()
    normal = engine.synthesize("Hi.", "default", 1.0)
    fast = engine.synthesize("Hi.", "default", 2.0)
    slow = engine.synthesize("Hi.", "default", 0.5)
    assert fast.dtype == np.float32 and fast.size == normal.size // 2
    assert slow.size == normal.size * 2

    def tone_hz(audio: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
        return float(np.fft.rfftfreq(audio.size, 1 / RATE)[np.argmax(spectrum)])

    assert tone_hz(fast) == pytest.approx(tone_hz(normal), rel=0.03)  # the fake's 220 Hz, not 440
    assert tone_hz(slow) == pytest.approx(tone_hz(normal), rel=0.03)
    with pytest.raises(EngineError, match="speed"):
        engine.synthesize("Hi.", "default", 0.0)


def test_load_failure_is_wrapped_naming_the_dir(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm(fail_load=True)
    directory = make_model_dir(tmp_path)
    with pytest.raises(EngineError, match="size mismatch") as info:
        engine_for(directory).load()
    assert str(directory) in str(info.value)


def test_generate_failure_is_wrapped(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm()
    directory = make_model_dir(tmp_path)
    engine = engine_for(directory)
    engine.load()
    with pytest.raises(EngineError, match="non-empty") as info:
        engine.synthesize("   ", "default", 1.0)
    assert str(directory) in str(info.value)


def test_synthesize_before_load_and_from_another_thread(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm()
    engine = engine_for(make_model_dir(tmp_path))
    with pytest.raises(EngineError, match="before load"):
        engine.synthesize("Hi.", "default", 1.0)
    engine.load()
    errors: list[Exception] = []
    thread = threading.Thread(target=lambda: _capture(errors, engine))
    thread.start()
    thread.join()
    assert len(errors) == 1 and "thread" in str(errors[0])


def _capture(errors: list[Exception], engine: VoxCPMEngine) -> None:
    try:
        engine.synthesize("Hi.", "default", 1.0)
    except EngineError as exc:
        errors.append(exc)


def test_the_fake_refuses_what_the_real_package_refuses(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    """The fake is only worth its tests if calls the real package rejects fail here too."""
    fake_voxcpm()
    directory = make_model_dir(tmp_path)
    from voxcpm import VoxCPM

    with pytest.raises(TypeError):
        VoxCPM.from_pretrained(str(directory), load_denoiser=False, optimise=False)  # misspelt keyword
    model = VoxCPM.from_pretrained(str(directory), load_denoiser=False, optimize=False)
    with pytest.raises(TypeError):
        model.generate(text="Hi.", speed=2.0)  # voxcpm has no speed argument
    with pytest.raises(ValueError, match="both be provided"):
        model.generate(text="Hi.", prompt_text="only the transcript")
    with pytest.raises(FileNotFoundError):
        model.generate(text="Hi.", prompt_wav_path=str(tmp_path / "none.wav"), prompt_text="x")
    with pytest.raises(ValueError, match="only supported with VoxCPM2"):
        model.generate(text="Hi.", reference_wav_path=str(directory / "config.json"))
    with pytest.raises(TypeError):  # VoxCPM 1.x builds a cache from a prompt and its transcript only
        model.tts_model.build_prompt_cache(prompt_text="x", prompt_wav_path=str(directory / "config.json"),
                                           reference_wav_path=str(directory / "config.json"))
    with pytest.raises(TypeError):
        model.tts_model.generate_with_prompt_cache(target_text="Hi.", prompt_cache={}, speed=2.0)


def test_each_synthesis_seeds_torch_with_its_seed(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    import torch

    from service.engines.base import synthesis_seed

    fake_voxcpm()
    engine = engine_for(make_model_dir(tmp_path))
    engine.load()
    engine.synthesize("Hi.", "default", 1.0, seed=1234)
    assert torch.initial_seed() == 1234
    engine.synthesize("Hi.", "default", 1.0)
    assert torch.initial_seed() == synthesis_seed("Hi.", "default", 1.0)


# ---- layouts: VoxCPM 1.x and 2 directories, or a refusal naming the file ---------------------

VOXCPM2 = {"architecture": "voxcpm2", "lm_config": {}, "audio_vae_config": {"out_sample_rate": 48000}}


def test_a_voxcpm2_directory_loads_as_voxcpm2(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm(rate=48000)
    engine = engine_for(make_model_dir(tmp_path, weights_config=VOXCPM2, rate=48000))
    engine.load()
    assert engine.layout is not None and engine.layout.generation == "VoxCPM 2"
    assert engine.warm_up().size > 0 and engine.describe().sample_rate == 48000


@pytest.mark.parametrize("weights_config, named", [
    ({"architecture": "voxcpm3"}, "architecture 'voxcpm3' is not one the voxcpm package loads"),
    ([1, 2], "must be a JSON object"),
    ({**VOXCPM2, "audio_vae_config": {"out_sample_rate": 24000}}, "makes 24000 Hz (audio_vae_config.out_sample_rate)"),
])
def test_a_config_json_voxcpm_cannot_load_is_refused_before_the_import(tmp_path: Path, no_voxcpm: None,
                                                                       weights_config: Any, named: str) -> None:
    directory = make_model_dir(tmp_path, weights_config=weights_config)
    with pytest.raises(EngineError) as info:
        engine_for(directory).load()
    assert named in str(info.value) and str(directory / "config.json") in str(info.value)
    assert "pip install" not in str(info.value)  # refused before the package was looked for


def test_unreadable_config_json_is_named(tmp_path: Path, no_voxcpm: None) -> None:
    directory = make_model_dir(tmp_path)
    (directory / "config.json").write_bytes(b"{not json")
    with pytest.raises(EngineError, match="not readable JSON") as info:
        engine_for(directory).load()
    assert str(directory / "config.json") in str(info.value)


@pytest.mark.parametrize("extra, pair", [("pytorch_model.bin", "model.safetensors and pytorch_model.bin"),
                                         ("audiovae.safetensors", "audiovae.safetensors and audiovae.pth")])
def test_a_second_file_of_a_pair_is_refused_naming_both(tmp_path: Path, no_voxcpm: None, extra: str,
                                                        pair: str) -> None:
    directory = make_model_dir(tmp_path)
    (directory / extra).write_bytes(b"other weights")
    with pytest.raises(EngineError, match=f"both {pair}") as info:
        engine_for(directory).load()
    assert str(directory) in str(info.value) and "keep one" in str(info.value)


def test_reference_audio_voices_are_voxcpm2s(tmp_path: Path, fake_voxcpm, no_cuda: None) -> None:
    fake_voxcpm(rate=48000)
    voices = {"voice_prompts": {"ben": {"reference_wav": "ben.wav"}}}
    directory = make_model_dir(tmp_path, config=voices, weights_config=VOXCPM2, rate=48000)
    (directory / "ben.wav").write_bytes(b"RIFF")
    engine = engine_for(directory)
    engine.load()
    engine.synthesize("Hello.", "ben", 1.0)
    built = next(c[1] for c in sys.modules["voxcpm"].calls if c[0] == "build_prompt_cache")
    assert (built["reference_wav_path"], built["prompt_wav_path"]) == (str(directory / "ben.wav"), None)
    assert sys.modules["voxcpm"].calls[-1][0] == "generate_with_prompt_cache"


def test_reference_audio_on_voxcpm_1_is_refused_naming_the_voice(tmp_path: Path, no_voxcpm: None) -> None:
    directory = make_model_dir(tmp_path, config={"voice_prompts": {"ben": {"reference_wav": "ben.wav"}}})
    (directory / "ben.wav").write_bytes(b"RIFF")
    with pytest.raises(EngineError, match="voice 'ben' has reference_wav, which only VoxCPM 2 takes"):
        engine_for(directory).load()


def test_a_prompt_without_its_transcript_is_refused(tmp_path: Path, no_voxcpm: None) -> None:
    directory = make_model_dir(tmp_path, config={"voice_prompts": {"anna": {"prompt_wav": "anna.wav"}}})
    (directory / "anna.wav").write_bytes(b"RIFF")
    with pytest.raises(EngineError, match="voice 'anna' needs both prompt_wav and prompt_text"):
        engine_for(directory).load()
