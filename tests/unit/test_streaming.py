"""Streamed speech (`stream_format`): the first sentence's audio leaves first, a failure
before it is still an honest status, a failure after it ends the stream where the client
sees it and is counted as a server error."""

from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import pytest
import soundfile as sf

from service.runtime import BadAudioError
from service.streaming import UNKNOWN_LENGTH
from tests.unit.service_client import ready_client

TEXT = "Hello there. " + "The canary speaks for a while before it is promoted, sentence after sentence. " * 6


@pytest.fixture(scope="module")
def client(model_dirs):
    with ready_client(model_dirs["v1.3.0"], raise_server_exceptions=False) as served:
        yield served


def speech(test_client, **fields) -> httpx.Response:
    body = {"model": "tts-1", "input": TEXT, "response_format": "pcm", "seed": 7, **fields}
    return test_client.post("/v1/audio/speech", json=body)


def sse_events(response: httpx.Response) -> list[dict]:
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in response.text.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames), frames[:3]
    return [json.loads(f.removeprefix("data: ")) for f in frames]


def metric(test_client, line_start: str) -> float:
    lines = [line for line in test_client.get("/metrics").text.splitlines() if line.startswith(line_start)]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_raw_audio_streams_its_first_sentence_alone_and_says_so(client):
    test_client, runtime = client
    chunks: list[list[str]] = []
    original = runtime._chunks

    def recorded(*args, **kwargs) -> list[str]:
        chunks.append(original(*args, **kwargs))
        return chunks[-1]

    runtime._chunks = recorded
    try:
        streamed, whole = speech(test_client, stream_format="audio"), speech(test_client)
    finally:
        runtime._chunks = original
    assert streamed.status_code == whole.status_code == 200
    assert chunks[0][0] == "Hello there." and chunks[1][0].startswith("Hello there. The canary")
    assert streamed.headers["x-stream-format"] == "audio" and "x-stream-format" not in whole.headers
    assert streamed.headers["x-accel-buffering"] == "no"
    assert streamed.headers["content-type"] == whole.headers["content-type"] == "audio/pcm"
    assert streamed.headers["x-seed"] == whole.headers["x-seed"] == "7"
    assert float(streamed.headers["x-first-audio-seconds"]) >= 0
    # the same speech, one more sentence gap (the first sentence is a chunk of its own)
    gap_s = abs(len(streamed.content) - len(whole.content)) / 2 / int(streamed.headers["x-sample-rate"])
    assert len(streamed.content) > len(whole.content) and gap_s < 0.2


def test_a_streamed_wav_has_a_header_of_unknown_length_that_players_read_to_the_end(client):
    test_client, _ = client
    response = speech(test_client, stream_format="audio", response_format="wav")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    header = response.content[:44]
    assert header[:4] == b"RIFF" and int.from_bytes(header[4:8], "little") == UNKNOWN_LENGTH
    assert int.from_bytes(header[40:44], "little") == UNKNOWN_LENGTH
    audio, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate == 44_100 and len(audio) == (len(response.content) - 44) // 2 and np.abs(audio).max() > 0.05


def test_sse_sends_the_raw_streams_bytes_as_deltas_then_done_with_usage(client):
    test_client, _ = client
    events = sse_events(speech(test_client, stream_format="sse"))
    raw = speech(test_client, stream_format="audio")
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) >= 2 and events[-1]["type"] == "speech.audio.done"
    assert b"".join(base64.b64decode(e["audio"]) for e in deltas) == raw.content
    said = len(TEXT.strip())  # the input as normalized
    assert events[-1]["usage"] == {"input_tokens": said, "output_tokens": len(deltas),
                                   "total_tokens": said + len(deltas)}


@pytest.mark.parametrize("fields, code", [
    ({"stream_format": "sse", "response_format": "mp3"}, "unsupported_stream_format"),
    ({"stream_format": "chunked"}, "unsupported_stream_format"),
    ({"stream_format": 1}, "invalid_type"),
])
def test_what_cannot_be_streamed_is_refused_naming_stream_format(client, fields, code):
    response = speech(client[0], **fields)
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream_format"
    assert response.json()["error"]["code"] == code


def test_audio_stream_format_for_a_container_format_is_one_body(client):
    response = speech(client[0], stream_format="audio", response_format="flac")
    assert response.status_code == 200 and "x-stream-format" not in response.headers
    assert sf.read(io.BytesIO(response.content))[1] == 44_100


def test_a_failure_before_the_first_audio_is_an_honest_status(client, monkeypatch):
    test_client, runtime = client
    engine = runtime.engines[0]
    monkeypatch.setattr(engine, "synthesize", lambda *a, **k: np.zeros(44_100, dtype=np.float32))
    for stream_format in ("audio", "sse"):
        response = speech(test_client, stream_format=stream_format)
        assert response.status_code == 500 and response.json()["error"]["code"] == "bad_audio", stream_format


def failing_after_the_first_sentence(engine, monkeypatch):
    real, calls = engine.synthesize, []

    def synthesize(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs) if len(calls) == 1 else np.zeros(44_100, dtype=np.float32)

    monkeypatch.setattr(engine, "synthesize", synthesize)
    return calls


def test_sse_failing_after_its_first_audio_ends_with_an_error_event_counted_as_a_500(client, monkeypatch):
    test_client, runtime = client
    errors_before = metric(test_client, 'tts_requests_total{route="speech",status="500"}')
    calls = failing_after_the_first_sentence(runtime.engines[0], monkeypatch)
    response = speech(test_client, stream_format="sse")
    events = sse_events(response)
    assert response.status_code == 200 and len(calls) == 2  # the status left with the first audio
    assert [e["type"] for e in events] == ["speech.audio.delta", "error"]
    assert events[-1]["error"]["code"] == "bad_audio" and "silence_share" in events[-1]["error"]["message"]
    assert metric(test_client, 'tts_requests_total{route="speech",status="500"}') == errors_before + 1


def test_raw_audio_failing_after_its_first_audio_cuts_the_connection(model_dirs, monkeypatch):
    # raise_server_exceptions: the in-process transport hands the client what cut the response
    with ready_client(model_dirs["v1.3.0"]) as (test_client, runtime):
        failing_after_the_first_sentence(runtime.engines[0], monkeypatch)
        with pytest.raises(BadAudioError, match="silence_share"):
            speech(test_client, stream_format="audio")
        assert metric(test_client, 'tts_requests_total{route="speech",status="500"}') == 1


def test_time_to_first_audio_is_a_histogram_of_streamed_answers_only(client):
    test_client, _ = client
    counts = ("tts_time_to_first_audio_seconds_count", "tts_time_to_first_audio_service_seconds_count")
    before = [metric(test_client, name) for name in counts]
    speech(test_client, stream_format="sse")
    speech(test_client)
    assert [metric(test_client, name) for name in counts] == [n + 1 for n in before]
