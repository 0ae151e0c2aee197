"""Parsing and validating a `POST /v1/audio/speech` body (OpenAI-compatible).

Works on the raw bytes so that every way a body can be wrong (content type, size,
encoding, JSON syntax, a field's type or range) gets its own error naming the field.
The JSON parser has limits (body size, nesting depth, digits in a number), so no body
can make it crash, and text the engine cannot speak is refused here, before synthesis.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from service.audio_budget import Estimate, over_budget
from service.encoding import ENCODINGS
from service.engines.base import MAX_SEED
from service.text import normalize
from service.text_support import TextSupport, refusal

MIN_SPEED, MAX_SPEED = 0.25, 4.0
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
STREAM_FORMATS = ("audio", "sse")
# What can leave sentence by sentence: raw samples, and WAV behind a header of unknown length.
STREAMED_FORMATS = ("pcm", "wav")
# Accepted for client compatibility; they do not change the demo or VoxCPM output.
IGNORED_FIELDS = ("instructions", "user")
# A speech request is one flat object; Python's parser recurses per level (about 1,000 is
# a RecursionError) and int() refuses more than 4,300 digits, so both are limited well below.
MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 1000
SHOWN_CHARS = 80  # of a client's value quoted back in an error
# A string (to its closing quote, or the end when there is none) or a bracket: one pass, no backtracking.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


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
    seed: int | None = None  # the client's; None: derived from the request (`synthesis_seed`)
    # None: the client named no stream_format and gets the whole answer in one body, its
    # status true to the end. "audio": raw audio sent as each sentence is ready (pcm, wav);
    # "sse": `speech.audio.delta` events. Streamed, a failure after the first audio can no
    # longer change the status: it ends the stream (an `error` event, or a cut connection).
    stream_format: str | None = None

    @property
    def streamed(self) -> bool:
        return self.stream_format == "sse" or (self.stream_format == "audio"
                                               and self.response_format in STREAMED_FORMATS)


@dataclass(frozen=True)
class RequestRules:
    models: tuple[str, ...]
    voices: tuple[str, ...]
    max_input_chars: int
    max_body_bytes: int
    text_support: TextSupport  # what the engine can speak (`Engine.text_support()`)
    chunk_chars: int  # the runtime synthesizes chunks of at most this many characters
    estimate_audio_s: Estimate | None = None  # the engine's (text, speed) -> seconds; None: no cap
    max_audio_s: float = 300.0  # the most audio one request may ask for


def request_schema(rules: RequestRules) -> dict[str, Any]:
    """The request body as JSON Schema, for /openapi.json: what parse_speech_request accepts
    field by field (the audio-length cap and the text's script are checked beyond it)."""
    return {
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string", "enum": list(rules.models)},
            "input": {"type": "string", "minLength": 1, "maxLength": rules.max_input_chars},
            "voice": {"type": "string", "enum": list(rules.voices), "default": rules.voices[0]},
            "response_format": {"type": "string", "enum": [f for f in OPENAI_FORMATS if f != "aac"],
                                "default": "mp3"},
            "speed": {"type": "number", "minimum": MIN_SPEED, "maximum": MAX_SPEED, "default": 1.0},
            "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED,
                     "description": "repeatable synthesis (default: from the request); answered in X-Seed"},
            "stream_format": {"type": "string", "enum": list(STREAM_FORMATS),
                              "description": "absent: one body; 'audio': pcm and wav stream sentence by "
                                             "sentence; 'sse': speech.audio.delta events (pcm or wav)"},
            **{name: {"type": "string", "description": "accepted, ignored"} for name in IGNORED_FIELDS},
        },
    }


def _invalid(param: str, message: str, code: str = "invalid_value") -> RequestError:
    return RequestError(400, message, param, code)


def _shown(value: object) -> str:
    """A client's value as quoted in an error: repr (which escapes lone surrogates), cut short."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}… ({len(text)} characters)"


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
    data = _json_loads(text)
    if not isinstance(data, dict):
        raise _invalid("body", "request body must be a JSON object", "invalid_json")
    return data


def _json_depth(text: str) -> int:
    """How deeply arrays and objects nest, brackets inside strings not counted."""
    depth = deepest = 0
    for token in _JSON_TOKEN.findall(text):
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest


def _number(literal: str) -> str:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _invalid("body", f"a number in the body has {len(literal)} characters, the limit is {MAX_NUMBER_CHARS}",
                       "number_too_long")
    return literal


def _json_loads(text: str) -> Any:
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise _invalid("body", f"JSON nests {depth} levels deep, the limit is {MAX_JSON_DEPTH}", "json_too_deep")
    try:
        # A float past 1e308 is inf, which the fields refuse; an int of any size compares exactly.
        return json.loads(text, parse_int=lambda s: int(_number(s)), parse_float=lambda s: float(_number(s)))
    except json.JSONDecodeError as exc:
        raise _invalid("body", f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       "invalid_json") from None


def _model(data: dict[str, Any], rules: RequestRules) -> str:
    model = _string(data, "model")
    if model not in rules.models:
        raise _invalid("model", f"unknown model {_shown(model)}; this server serves {', '.join(rules.models)}",
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
    reason = refusal(speech_text, rules.text_support, rules.chunk_chars)
    if reason is not None:
        raise _invalid("input", f"'input' {reason}", "unspeakable_input")
    return speech_text


def _voice(data: dict[str, Any], rules: RequestRules) -> str:
    voice = _string(data, "voice", rules.voices[0])
    if voice not in rules.voices:
        raise _invalid("voice", f"unknown voice {_shown(voice)}; available: {', '.join(rules.voices)}",
                       "voice_not_found")
    return voice


def _format(data: dict[str, Any]) -> str:
    fmt = _string(data, "response_format", "mp3")
    if fmt not in ENCODINGS:
        known = fmt in OPENAI_FORMATS
        raise _invalid("response_format",
                       f"response_format {_shown(fmt)} is {'not supported by this server' if known else 'unknown'}; "
                       f"use one of {', '.join(ENCODINGS)}", "unsupported_format")
    return fmt


def _is_number(value: Any) -> bool:
    """A JSON number: an int of any size or a finite float; not a bool, NaN or Infinity."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _seed(data: dict[str, Any]) -> int | None:
    seed = data.get("seed")
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise _invalid("seed", f"'seed' must be an integer in [0, {MAX_SEED}], got {_shown(seed)}")
    return seed


def _speed(data: dict[str, Any]) -> float:
    speed = data.get("speed", 1.0)
    if not _is_number(speed):
        raise _invalid("speed", f"'speed' must be a number, got {_shown(speed)}", "invalid_type")
    if not MIN_SPEED <= speed <= MAX_SPEED:  # an int compares exactly, however large: no float() overflow
        raise _invalid("speed", f"'speed' {_shown(speed)} is out of range [{MIN_SPEED}, {MAX_SPEED}]",
                       "out_of_range")
    return float(speed)


def _stream_format(data: dict[str, Any], fmt: str) -> str | None:
    if data.get("stream_format") is None:
        return None
    stream_format = _string(data, "stream_format")
    if stream_format not in STREAM_FORMATS:
        raise _invalid("stream_format", f"stream_format {_shown(stream_format)} is unknown; use one of "
                       f"{', '.join(STREAM_FORMATS)}", "unsupported_stream_format")
    if stream_format == "sse" and fmt not in STREAMED_FORMATS:
        raise _invalid("stream_format", f"stream_format 'sse' sends {' or '.join(STREAMED_FORMATS)} audio; "
                       f"response_format {fmt!r} cannot be streamed (ask for it without stream_format)",
                       "unsupported_stream_format")
    return stream_format


def _audio_budget(text: str, speed: float, rules: RequestRules) -> None:
    """Refuse, before synthesis, text that at `speed` would make more audio than allowed."""
    if rules.estimate_audio_s is None:
        return
    refused = over_budget(text, speed, rules.estimate_audio_s, rules.chunk_chars, rules.max_audio_s)
    if refused is not None:
        raise _invalid(refused[0], refused[1], "audio_too_long")


def parse_speech_request(body: bytes, content_type: str | None, rules: RequestRules) -> SpeechRequest:
    """The request, or a RequestError for the first field at fault (checked in this order;
    the audio it asks for last, as it needs both `input` and `speed`)."""
    data = _json_object(body, content_type, rules)
    model, text, voice = _model(data, rules), _input(data, rules), _voice(data, rules)
    fmt, speed, seed = _format(data), _speed(data), _seed(data)
    stream_format = _stream_format(data, fmt)
    _audio_budget(text, speed, rules)
    return SpeechRequest(model, text, voice, fmt, speed, seed, stream_format)
