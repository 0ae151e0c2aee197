"""The cap on the audio one request asks for: predicted from text and speed, refused before synthesis."""

from __future__ import annotations

import json

import pytest

from service.audio_budget import CHUNK_GAP_S, chunk_chars_at, over_budget, predicted_audio_s
from service.engines import create_engine
from service.engines.base import estimate_speech_s
from service.model_dir import verify_model_dir
from service.speech_request import RequestError, RequestRules, parse_speech_request
from service.text_support import TextSupport

SENTENCE = "Every host gets the new voice only after the canary has proven itself. "  # 71 characters


def ten_per_second(text: str, speed: float) -> float:
    return len(text) / (10.0 * speed)


def rules(max_audio_s: float = 300.0) -> RequestRules:
    return RequestRules(("tts-1",), ("alloy",), 4096, 65_536, TextSupport(frozenset({"LATIN"}), "English"), 300,
                        ten_per_second, max_audio_s)


def parse(text: str, speed: float, max_audio_s: float = 300.0):
    body = json.dumps({"model": "tts-1", "input": text, "speed": speed}).encode()
    return parse_speech_request(body, "application/json", rules(max_audio_s))


def test_chunks_shrink_with_speed_so_each_chunk_renders_as_much_audio():
    assert [chunk_chars_at(300, s) for s in (4.0, 1.0, 0.5, 0.25)] == [300, 300, 150, 75]
    assert chunk_chars_at(40, 0.25) == 20  # never below the smallest chunk


def test_the_prediction_is_each_chunks_estimate_plus_the_gaps():
    text = (SENTENCE * 10).strip()  # 709 characters: 3 chunks of at most 300 at speed 1
    assert predicted_audio_s(text, 1.0, ten_per_second, 300) == pytest.approx((709 - 2) / 10 + 2 * CHUNK_GAP_S)
    slow = predicted_audio_s(text, 0.25, ten_per_second, 300)  # 10 chunks of one sentence each
    assert slow == pytest.approx((709 - 9) / 2.5 + 9 * CHUNK_GAP_S)


def test_4096_characters_at_quarter_speed_are_refused_naming_input_with_the_seconds():
    refused = over_budget("x" * 4096, 0.25, ten_per_second, 300, 300)
    assert refused is not None
    param, message = refused
    assert param == "input"  # 411 s even at speed 1: shorter input is the only way
    assert "about 1645 s of audio" in message and "the limit is 300 s" in message


def test_text_that_fits_at_normal_speed_is_refused_naming_speed():
    refused = over_budget("x" * 2000, 0.25, ten_per_second, 300, 300)  # 800 s; 200 s at speed 1
    assert refused is not None and refused[0] == "speed" and "raise 'speed'" in refused[1]


def test_text_within_the_cap_is_accepted():
    assert over_budget("x" * 2000, 1.0, ten_per_second, 300, 300) is None
    assert parse("x" * 2000, 1.0).input == "x" * 2000


def test_the_request_rules_refuse_over_the_cap_with_a_400_before_synthesis():
    with pytest.raises(RequestError) as refused:
        parse("x" * 4000, 1.0, max_audio_s=300)
    error = refused.value
    assert (error.status, error.param, error.code) == (400, "input", "audio_too_long")
    assert "about 402 s" in error.message and "300 s" in error.message
    with pytest.raises(RequestError, match="speed") as slow:
        parse("x" * 1000, 0.25, max_audio_s=300)
    assert slow.value.param == "speed"


def test_the_default_estimate_errs_long_and_counts_a_chinese_character_as_a_syllable():
    assert estimate_speech_s("x" * 100, 1.0) == pytest.approx(10.0)  # 10 characters a second: slow speech
    assert estimate_speech_s("你好", 0.5) == pytest.approx(2 * 3.0 / 5.0)


@pytest.mark.parametrize("version", ["v1.2.0", "v1.3.0"])
def test_the_demo_engines_estimate_is_never_short_of_what_it_renders(model_dirs, version):
    engine = create_engine(verify_model_dir(model_dirs[version]), "cpu")
    engine.load()
    for text in (SENTENCE.strip(), "a" * 150, "a. " * 40, "1234567890 " * 10, "你好世界。" * 6):
        for speed in (0.25, 1.0, 4.0):
            rendered = engine.synthesize(text, "alloy", speed).size / engine.describe().sample_rate
            assert rendered <= engine.estimate_audio_s(text, speed), (text[:20], speed)


def test_the_demo_engine_predicts_a_4096_character_request_at_quarter_speed_far_over_the_cap(model_dirs):
    engine = create_engine(verify_model_dir(model_dirs["v1.3.0"]), "cpu")  # no load needed: pure
    predicted = predicted_audio_s(("x" * 4096), 0.25, engine.estimate_audio_s, 300)
    assert predicted > 25 * 60  # the "about 50 minutes"
    assert over_budget("x" * 4096, 0.25, engine.estimate_audio_s, 300, 300) is not None
