from __future__ import annotations

import json

import pytest

from service.speech_request import RequestError, RequestRules, parse_speech_request

RULES = RequestRules(models=("voxfleet-demo", "tts-1"), voices=("alloy", "nova"),
                     max_input_chars=50, max_body_bytes=2048)


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
