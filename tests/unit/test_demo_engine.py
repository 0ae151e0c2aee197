from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from models.recipe import RecipeError, build
from service.audio_checks import check_audio
from service.engines import EngineError, create_engine
from service.model_dir import verify_model_dir
from tests.unit.signal_analysis import pitch_track, spectral_flatness, syllable_rate_share

TEXT = "The rollout moved one host at a time. Nobody noticed, which was the point!"


def engine_for(path: Path):
    engine = create_engine(verify_model_dir(path))
    engine.load()
    return engine


@pytest.fixture(scope="module")
def v13(model_dirs):
    return engine_for(model_dirs["v1.3.0"])


@pytest.fixture(scope="module")
def v12(model_dirs):
    return engine_for(model_dirs["v1.2.0"])


def test_output_is_float32_mono_at_44k1_and_deterministic(v13):
    a = v13.synthesize(TEXT, "alloy", 1.0)
    b = v13.synthesize(TEXT, "alloy", 1.0)
    assert a.dtype == np.float32 and a.ndim == 1
    assert v13.describe().sample_rate == 44_100
    assert np.array_equal(a, b)
    assert check_audio(a, 44_100, TEXT).passed


def test_audio_is_speech_shaped_not_noise_nor_sine(v13):
    audio = v13.synthesize(TEXT, "alloy", 1.0)
    assert spectral_flatness(audio, 44_100) < 0.2  # white noise is ~0.56 with this window
    pitch = pitch_track(audio, 44_100)
    assert len(pitch) > 10
    assert 80 < np.median(pitch) < 300
    assert np.std(pitch) > 3.0  # intonation moves; a sine's pitch would not
    assert syllable_rate_share(audio, 44_100) > 0.4  # loudness rises and falls with syllables


def test_white_noise_and_sine_fail_the_same_measures():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, 44_100 * 2).astype(np.float32)
    assert spectral_flatness(noise, 44_100) > 0.4
    sine = (0.3 * np.sin(2 * np.pi * 150 * np.arange(44_100 * 2) / 44_100)).astype(np.float32)
    assert np.std(pitch_track(sine, 44_100)) < 1.0
    assert syllable_rate_share(sine + noise * 0.01, 44_100) < 0.3
    assert syllable_rate_share(noise, 44_100) < 0.3


def test_versions_sound_measurably_different(v12, v13):
    a, b = v12.synthesize(TEXT, "alloy", 1.0), v13.synthesize(TEXT, "alloy", 1.0)
    pitch_ratio = np.median(pitch_track(b, 44_100)) / np.median(pitch_track(a, 44_100))
    assert pitch_ratio > 1.1
    level_a = check_audio(a, 44_100, TEXT).value("rms_dbfs")
    level_b = check_audio(b, 44_100, TEXT).value("rms_dbfs")
    assert abs(level_b - level_a) > 1.5


def test_voices_and_speed_change_the_output(v13):
    alloy = v13.synthesize(TEXT, "alloy", 1.0)
    onyx = v13.synthesize(TEXT, "onyx", 1.0)
    assert np.median(pitch_track(onyx, 44_100)) < 0.85 * np.median(pitch_track(alloy, 44_100))
    fast = v13.synthesize(TEXT, "alloy", 2.0)
    assert 0.4 < fast.size / alloy.size < 0.65


def test_chinese_and_numbers_are_spoken(v13):
    for text in ("你好，世界。今天天气很好。", "Call 555 0199 at 10 30."):
        assert check_audio(v13.synthesize(text, "nova", 1.0), 44_100, text).passed


def test_unknown_voice_is_an_engine_error(v13):
    with pytest.raises(EngineError, match="unknown voice 'bogus'"):
        v13.synthesize("hi", "bogus", 1.0)


def test_recipe_rebuilds_bit_identically(tmp_path, model_dirs):
    again = build("v1.3.0", tmp_path)
    for name in ("manifest.json", "weights.safetensors"):
        assert hashlib.sha256((again / name).read_bytes()).digest() == \
            hashlib.sha256((model_dirs["v1.3.0"] / name).read_bytes()).digest()


def test_releases_differ_and_variants_are_never_shipped(model_dirs):
    m12, m13 = verify_model_dir(model_dirs["v1.2.0"]), verify_model_dir(model_dirs["v1.3.0"])
    assert m12.sha256 != m13.sha256 and m12.shipped and m13.shipped
    for variant in ("silent", "nan", "slow", "flaky"):
        manifest = verify_model_dir(model_dirs[f"v1.3.0-{variant}"])
        assert manifest.version == f"v1.3.0-{variant}" and not manifest.shipped


def test_unknown_release_or_variant_is_refused(tmp_path):
    with pytest.raises(RecipeError, match="v9.9.9"):
        build("v9.9.9", tmp_path)
    with pytest.raises(RecipeError, match="loud"):
        build("v1.3.0", tmp_path, "loud")


def test_silent_and_nan_variants_fail_the_hard_audio_checks(model_dirs):
    silent = engine_for(model_dirs["v1.3.0-silent"]).synthesize(TEXT, "alloy", 1.0)
    report = check_audio(silent, 44_100, TEXT)
    assert not report.passed and {c.name for c in report.failures} >= {"silence_share", "rms_dbfs"}
    nan = engine_for(model_dirs["v1.3.0-nan"]).synthesize(TEXT, "alloy", 1.0)
    assert [c.name for c in check_audio(nan, 44_100, TEXT).failures] == ["finite"]


def test_flaky_variant_is_healthy_at_first_then_fails_a_share_of_calls(model_dirs):
    engine = engine_for(model_dirs["v1.3.0-flaky"])
    outcomes = []
    for i in range(59):
        try:
            engine.synthesize(f"Request number {i}.", "alloy", 1.0)
            outcomes.append(True)
        except EngineError:
            outcomes.append(False)
    assert all(outcomes[:9])  # warm-up, deploy probe and golden prompts pass
    assert outcomes[9:].count(False) == 15  # then exactly 30% of the next 50 fail, spread evenly


def test_slow_variant_does_redundant_passes_with_the_same_output(model_dirs, v13):
    slow = engine_for(model_dirs["v1.3.0-slow"])
    assert slow.refine_passes == 40
    assert np.array_equal(slow.synthesize("Slow.", "alloy", 1.0), v13.synthesize("Slow.", "alloy", 1.0))


def test_corrupt_weights_name_the_file(tmp_path, model_dirs):
    # The manifest check would catch this first; the engine must still say which file.
    manifest = dataclasses.replace(verify_model_dir(model_dirs["v1.3.0"]), directory=tmp_path)
    (tmp_path / "weights.safetensors").write_bytes(b"\x00\x01")
    with pytest.raises(EngineError, match="weights.safetensors"):
        create_engine(manifest).load()
    (tmp_path / "weights.safetensors").unlink()
    with pytest.raises(EngineError, match="weights.safetensors: weights file is missing"):
        create_engine(manifest).load()


@pytest.mark.parametrize("text", ["Wow!!!!!!", "No!!!", "What?!?!", "Hmm...", "Yes!!!!!!!!!!!!", "So... yes."])
@pytest.mark.parametrize("speed", [0.25, 1.0, 4.0])
def test_a_burst_of_punctuation_is_one_pause_not_seconds_of_silence(v13, text, speed):
    assert check_audio(v13.synthesize(text, "alloy", speed), 44_100, text).passed


@pytest.mark.parametrize("text", ["b", "t", "Hi", "1"])
def test_one_short_sound_at_the_fastest_speed_is_still_speech(v13, text):
    audio = v13.synthesize(text, "alloy", 4.0)  # once too short for the noise source's STFT
    assert audio.size > 0 and np.isfinite(audio).all()


def test_runs_of_pause_marks_collapse_and_everything_else_is_kept(v13):
    assert [ch for ch, _ in v13._units("Wow,!?!.")] == list("Wow!")
    text = "Hello, world. It costs 19 dollars; ok?"
    assert [ch for ch, _ in v13._units(text)] == list(text)


def test_the_text_it_can_speak_is_what_makes_a_sound(v13):
    support = v13.text_support()
    assert all(support.speaks(ch) for ch in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789你好")
    assert not any(support.speaks(ch) for ch in "ñé—.😀 Жα")
