"""Parsing and validating a `POST /v1/audio/speech` body (OpenAI-compatible).

Works on the raw bytes so that every way a body can be wrong (content type, size,
encoding, JSON syntax, a field's type or range) gets its own error naming the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from service.encoding import ENCODINGS
from service.text import normalize

MIN_SPEED, MAX_SPEED = 0.25, 4.0
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
# Accepted for client compatibility; they do not change the demo or VoxCPM output.
IGNORED_FIELDS = ("instructions", "user")


class RequestError(ValueError):
    """A client error: HTTP status, message, and the field (`param`) at fault."""

    def __init__(self, status: int, message: str, param: str | None, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": "invalid_request_error",
                          "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class SpeechRequest:
    model: str
    input: str
    voice: str
    response_format: str
    speed: float


@dataclass(frozen=True)
class RequestRules:
    models: tuple[str, ...]
    voices: tuple[str, ...]
    max_input_chars: int
    max_body_bytes: int


def _invalid(param: str, message: str, code: str = "invalid_value") -> RequestError:
    return RequestError(400, message, param, code)


def _string(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if value is None:
        raise _invalid(name, f"'{name}' is required", "missing_field")
    if not isinstance(value, str):
        raise _invalid(name, f"'{name}' must be a string, got {type(value).__name__}", "invalid_type")
    return value


def _json_object(body: bytes, content_type: str | None, rules: RequestRules) -> dict[str, Any]:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise RequestError(415, f"content type must be application/json, got {content_type or 'none'!r}",
                           "content-type", "unsupported_media_type")
    if len(body) > rules.max_body_bytes:
        raise RequestError(413, f"request body is {len(body)} bytes, the limit is {rules.max_body_bytes}",
                           "body", "body_too_large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid("body", f"request body is not valid UTF-8 (byte {exc.start})", "invalid_encoding") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid("body", f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       "invalid_json") from None
    if not isinstance(data, dict):
        raise _invalid("body", "request body must be a JSON object", "invalid_json")
    return data


def _model(data: dict[str, Any], rules: RequestRules) -> str:
    model = _string(data, "model")
    if model not in rules.models:
        raise _invalid("model", f"unknown model {model!r}; this server serves {', '.join(rules.models)}",
                       "model_not_found")
    return model


def _input(data: dict[str, Any], rules: RequestRules) -> str:
    raw_input = _string(data, "input")
    if len(raw_input) > rules.max_input_chars:
        raise _invalid("input", f"'input' is {len(raw_input)} characters, the limit is {rules.max_input_chars}",
                       "input_too_long")
    speech_text = normalize(raw_input)
    if not speech_text:
        raise _invalid("input", "'input' is empty", "empty_input")
    return speech_text


def _voice(data: dict[str, Any], rules: RequestRules) -> str:
    voice = _string(data, "voice", rules.voices[0])
    if voice not in rules.voices:
        raise _invalid("voice", f"unknown voice {voice!r}; available: {', '.join(rules.voices)}", "voice_not_found")
    return voice


def _format(data: dict[str, Any]) -> str:
    fmt = _string(data, "response_format", "mp3")
    if fmt not in ENCODINGS:
        known = fmt in OPENAI_FORMATS
        raise _invalid("response_format",
                       f"response_format {fmt!r} is {'not supported by this server' if known else 'unknown'}; "
                       f"use one of {', '.join(ENCODINGS)}", "unsupported_format")
    return fmt


def _speed(data: dict[str, Any]) -> float:
    speed = data.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed):
        raise _invalid("speed", f"'speed' must be a number, got {speed!r}", "invalid_type")
    if not MIN_SPEED <= float(speed) <= MAX_SPEED:
        raise _invalid("speed", f"'speed' {speed} is out of range [{MIN_SPEED}, {MAX_SPEED}]", "out_of_range")
    return float(speed)


def _stream_format(data: dict[str, Any]) -> str:
    stream_format = data.get("stream_format", "audio")
    if stream_format != "audio":
        raise _invalid("stream_format", f"stream_format {stream_format!r} is not supported; use 'audio'",
                       "unsupported_stream_format")
    return str(stream_format)


def parse_speech_request(body: bytes, content_type: str | None, rules: RequestRules) -> SpeechRequest:
    """The request, or a RequestError for the first field at fault (checked in this order)."""
    data = _json_object(body, content_type, rules)
    model, text, voice = _model(data, rules), _input(data, rules), _voice(data, rules)
    fmt, speed = _format(data), _speed(data)
    _stream_format(data)
    return SpeechRequest(model, text, voice, fmt, speed)
