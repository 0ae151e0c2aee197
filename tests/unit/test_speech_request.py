from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.engines.demo import TEXT_SUPPORT
from service.speech_request import RequestError, RequestRules, parse_speech_request
from service.text_support import speakable_chunks

RULES = RequestRules(models=("voxfleet-demo", "tts-1"), voices=("alloy", "nova"),
                     max_input_chars=50, max_body_bytes=2048, text_support=TEXT_SUPPORT, chunk_chars=300)


def parse(body, content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_speech_request(raw, content_type, RULES)


def test_a_valid_request_with_defaults():
    req = parse({"model": "tts-1", "input": "  Hello\u0000 world  "})
    assert (req.model, req.input, req.voice, req.response_format, req.speed) == \
        ("tts-1", "Hello world", "alloy", "mp3", 1.0)


def test_a_full_openai_request():
    req = parse({"model": "voxfleet-demo", "input": "Hi", "voice": "nova", "response_format": "flac",
                 "speed": 2, "instructions": "cheerful", "stream_format": "audio"})
    assert (req.voice, req.response_format, req.speed) == ("nova", "flac", 2.0)


@pytest.mark.parametrize("body, content_type, status, param, code", [
    ({"model": "tts-1", "input": ""}, None, 400, "input", "empty_input"),
    ({"model": "tts-1", "input": "   \t"}, None, 400, "input", "empty_input"),
    ({"model": "tts-1", "input": "x" * 51}, None, 400, "input", "input_too_long"),
    ({"model": "tts-1"}, None, 400, "input", "missing_field"),
    ({"model": "tts-1", "input": 5}, None, 400, "input", "invalid_type"),
    ({"input": "hi"}, None, 400, "model", "missing_field"),
    ({"model": "gpt-9", "input": "hi"}, None, 400, "model", "model_not_found"),
    ({"model": "tts-1", "input": "hi", "voice": "bogus"}, None, 400, "voice", "voice_not_found"),
    ({"model": "tts-1", "input": "hi", "response_format": "aac"}, None, 400, "response_format", "unsupported_format"),
    ({"model": "tts-1", "input": "hi", "response_format": "ogg"}, None, 400, "response_format", "unsupported_format"),
    ({"model": "tts-1", "input": "hi", "speed": 0.1}, None, 400, "speed", "out_of_range"),
    ({"model": "tts-1", "input": "hi", "speed": 4.5}, None, 400, "speed", "out_of_range"),
    ({"model": "tts-1", "input": "hi", "speed": "fast"}, None, 400, "speed", "invalid_type"),
    ({"model": "tts-1", "input": "hi", "speed": True}, None, 400, "speed", "invalid_type"),
    ({"model": "tts-1", "input": "hi", "stream_format": "sse"}, None, 400, "stream_format", "unsupported_stream_format"),
    (b'{"model": "tts-1", "input": ', None, 400, "body", "invalid_json"),
    (b'["tts-1"]', None, 400, "body", "invalid_json"),
    (b'{"model": "tts-1", "input": "\xff\xfe"}', None, 400, "body", "invalid_encoding"),
    (b"x" * 3000, None, 413, "body", "body_too_large"),
    ({"model": "tts-1", "input": "hi"}, "text/plain", 415, "content-type", "unsupported_media_type"),
    ({"model": "tts-1", "input": "hi"}, "", 415, "content-type", "unsupported_media_type"),
])
def test_bad_requests_name_the_field(body, content_type, status, param, code):
    with pytest.raises(RequestError) as info:
        parse(body, content_type if content_type is not None else "application/json")
    err = info.value
    assert (err.status, err.param, err.code) == (status, param, code)
    assert err.body()["error"]["param"] == param
    assert err.message


def test_content_type_parameters_are_accepted():
    assert parse({"model": "tts-1", "input": "hi"}, "application/json; charset=utf-8").input == "hi"


# -- input the engine cannot speak, and bodies that crashed the JSON parser -----------------
@pytest.mark.parametrize("text, says", [
    ("...", "has nothing to speak"),
    ("ñ", "has nothing to speak"),
    ("—", "has nothing to speak"),
    ("Привет, мир", "is Cyrillic text; this model speaks Latin-script text (English), Chinese and digits"),
    ("Γειά σου", "is Greek text"),
    ("مرحبا", "is Arabic text"),
    ("שלום", "is Hebrew text"),
    ("नमस्ते", "is Devanagari text"),
    ("สวัสดี", "is Thai text"),
])
def test_text_the_engine_cannot_speak_is_refused_by_name(text, says):
    with pytest.raises(RequestError) as info:
        parse({"model": "tts-1", "input": text})
    err = info.value
    assert (err.status, err.param, err.code) == (400, "input", "unspeakable_input")
    assert err.message.startswith(f"'input' {says}")


def test_english_with_an_odd_symbol_or_foreign_word_is_accepted_as_sent():
    assert parse({"model": "tts-1", "input": "Hello — world 😀, and мир"}).input == "Hello — world 😀, and мир"


RULES_64K = RequestRules(RULES.models, RULES.voices, 50, 65_536, RULES.text_support, 300)  # the server's body limit


def deep(levels: int) -> bytes:
    return b'{"model": "tts-1", "input": "hi", "user": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize("raw, param, code", [
    (b'{"model": "tts-1", "input": "hi", "speed": 1' + b"0" * 309 + b"}", "speed", "out_of_range"),  # > 1e308
    (b'{"model": "tts-1", "input": "hi", "speed": -1' + b"0" * 400 + b"}", "speed", "out_of_range"),
    (b'{"model": "tts-1", "input": "hi", "speed": 1e400}', "speed", "invalid_type"),  # inf
    (b'{"model": "tts-1", "input": "hi", "speed": NaN}', "speed", "invalid_type"),
    (deep(1200), "body", "json_too_deep"),  # a RecursionError in the parser
    (b"[" * 1900, "body", "json_too_deep"),
    (b'{"model": "tts-1", "input": "hi", "speed": ' + b"1" * 4301 + b"}", "body", "number_too_long"),
    (b'{"model": "tts-1", "input": "hi", "user": ' + b"1" * 1001 + b"}", "body", "number_too_long"),
    (b'{"model": "tts-1", "input": "hi", "user": 0.' + b"1" * 1001 + b"}", "body", "number_too_long"),
])
def test_bodies_that_crashed_the_json_parser_are_client_errors(raw, param, code):
    with pytest.raises(RequestError) as info:
        parse_speech_request(raw, "application/json", RULES_64K)
    assert (info.value.status, info.value.param, info.value.code) == (400, param, code)
    assert len(info.value.message) < 200  # a client's huge value is not echoed back whole


def test_json_within_the_limits_is_parsed():
    assert parse(deep(30)).input == "hi"
    assert parse({"model": "tts-1", "input": "a[[[[{{{{" * 5}).input.startswith("a[[[[")  # brackets in strings
    assert parse(b'{"model": "tts-1", "input": "hi", "user": ' + b"9" * 1000 + b"}").input == "hi"


def test_the_nesting_scan_takes_one_pass_over_a_body_of_escaped_quotes():
    raw = b'{"model": "tts-1", "input": "' + b'\\"' * 30_000  # unterminated: a backtracking scan is quadratic
    started = time.perf_counter()
    with pytest.raises(RequestError) as info:
        parse_speech_request(raw, "application/json", RULES_64K)
    assert info.value.code == "invalid_json" and time.perf_counter() - started < 1.0


def test_a_lone_surrogate_in_a_field_can_be_answered_in_utf_8():
    with pytest.raises(RequestError) as info:
        parse(b'{"model": "\\ud800", "input": "hi"}')
    json.dumps(info.value.body(), ensure_ascii=False).encode("utf-8")


# -- property: whatever the body, a SpeechRequest or a RequestError, never another exception ------
def answer(raw: bytes, content_type: str | None = "application/json", rules: RequestRules = RULES) -> None:
    """Parse; a refusal must be a 4xx whose body the API can send as UTF-8 JSON."""
    try:
        parse_speech_request(raw, content_type, rules)
    except RequestError as err:
        assert 400 <= err.status < 500 and err.param
        json.dumps(err.body(), ensure_ascii=False).encode("utf-8")


HUGE = st.integers(min_value=10**309, max_value=10**1500)  # past float range, under the int-string limit
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | HUGE | HUGE.map(lambda n: -n) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(["model", "input", "voice", "response_format", "speed", "stream_format", "user"])


@settings(max_examples=300)
@given(st.binary(max_size=3000), st.sampled_from(["application/json", "application/json; charset=utf-8", None]))
def test_arbitrary_bytes_are_parsed_or_refused(raw, content_type):
    answer(raw, content_type)


@settings(max_examples=300)
@given(JSON_VALUES)
def test_an_arbitrary_json_body_is_parsed_or_refused(value):
    answer(json.dumps(value).encode())


@settings(max_examples=400)
@given(FIELDS, st.one_of(HUGE, HUGE.map(lambda n: -n), JSON_VALUES))  # numbers past float range, often
def test_an_arbitrary_json_value_in_any_field_is_parsed_or_refused(field, value):
    answer(json.dumps({"model": "tts-1", "input": "Hello.", field: value}).encode())


@settings(max_examples=200)
@given(st.sampled_from(["speed", "user", "input"]), st.sampled_from(["", "-"]),
       st.builds(str.__mul__, st.sampled_from("123456789"), st.integers(min_value=1, max_value=6000)),
       st.sampled_from(["", ".5", "e400", "e-400"]))
def test_a_number_of_any_length_is_parsed_or_refused(field, sign, digits, tail):
    answer(f'{{"model": "tts-1", "input": "Hello.", "{field}": {sign}{digits}{tail}}}'.encode(), rules=RULES_64K)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_accepted_text_always_leaves_the_runtime_something_to_say(text):
    try:
        req = parse({"model": "tts-1", "input": text})
    except RequestError as err:
        assert err.param == "input"
        return
    assert speakable_chunks(req.input, RULES.text_support, RULES.chunk_chars)


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=5000), st.sampled_from(["[", "{\"a\":", "[1,"]), st.booleans())
def test_nesting_of_any_depth_is_parsed_or_refused(levels, opener, closed):
    closing = "".join("]" if "[" in opener else "}" for _ in range(levels)) if closed else ""
    answer(f'{{"model": "tts-1", "input": "Hello.", "user": {opener * levels}0{closing}}}'.encode(), rules=RULES_64K)
