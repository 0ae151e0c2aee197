"""The real server process, spoken to by the clients users have: openai, gradio_client, HTTP."""

from __future__ import annotations

import base64
import functools
import io
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.model_dir import read_manifest
from tests.integration.server_process import REPO, ServerProcess, free_port

pytestmark = pytest.mark.integration
SPEECH = "/v1/audio/speech"


def speak(server: ServerProcess, timeout: float = 60.0, **fields) -> httpx.Response:
    body = {"model": "tts-1", "input": "Hello from the fleet.", "voice": "alloy", "response_format": "wav"}
    body.update(fields)
    return httpx.post(server.url + SPEECH, json=body, timeout=timeout)


def ui_client(url: str):
    """gradio_client on the web UI. Its first visit builds the UI, which imports Gradio (3.6 s
    of CPU on this machine, more while the sandbox comes up beside the tests), longer than
    gradio_client's default 5 s timeout: a browser waits for it, and so does this client."""
    from gradio_client import Client

    return Client(url + "/ui/", verbose=False, httpx_kwargs={"timeout": 60})


def decode(content: bytes) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(io.BytesIO(content), dtype="float32")
    return audio, rate


def test_openai_client_gets_valid_speech(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="not-needed", max_retries=0)
    raw = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="nova", input="The canary is healthy. Promote it.", response_format="wav")
    audio, rate = decode(raw.content)
    assert rate == 44_100 and len(audio) / rate > 1.0
    assert np.isfinite(audio).all() and np.sqrt(np.mean(audio**2)) > 0.01
    assert raw.headers["x-model-version"] == "v1.3.0"
    assert raw.headers["x-served-by"] == socket.gethostname()  # TTS_NODE_NAME unset
    mp3 = client.audio.speech.create(model="voxfleet-demo", voice="alloy", input="Default format is mp3.")
    assert decode(mp3.content)[1] == 44_100


def test_openai_client_streams_raw_audio_and_sse_as_it_is_made(server):
    """The first sentence's audio reaches the client long before the last; SSE carries the
    same bytes as the raw stream (same seed, same audio)."""
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="not-needed", max_retries=0, timeout=60)
    text = "Hello there. " + "The canary speaks sentence after sentence before it is promoted. " * 15
    speech = functools.partial(client.audio.speech.with_streaming_response.create, model="tts-1", voice="alloy",
                               input=text, response_format="pcm", extra_body={"seed": 11})
    started = time.perf_counter()
    with speech(stream_format="audio") as response:
        assert response.headers["x-stream-format"] == "audio"
        parts = []
        for part in response.iter_bytes():
            parts.append((time.perf_counter() - started, part))
    first_s, total_s = parts[0][0], parts[-1][0]
    raw = b"".join(part for _, part in parts)
    assert len(parts) > 1 and first_s < total_s / 2, (first_s, total_s, len(parts))  # buffered: equal
    assert len(raw) / 2 / 44_100 > 30  # all of it arrived: ~1,000 characters of speech

    with speech(stream_format="sse") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line]
    assert [e["type"] for e in events[-2:]] == ["speech.audio.delta", "speech.audio.done"]
    assert b"".join(base64.b64decode(e["audio"]) for e in events[:-1]) == raw


def test_gradio_client_gets_valid_speech(server):
    client = ui_client(server.url)
    result = client.predict("Hello from the web UI.", "echo", 1.0, api_name="/synthesize")
    audio, rate = sf.read(result, dtype="float32")
    assert rate == 44_100 and len(audio) / rate > 0.5 and np.abs(audio).max() > 0.05
    page = httpx.get(server.url + "/ui/", timeout=10)
    assert page.status_code == 200 and "v1.3.0" in page.text


def test_gradio_ui_refuses_bad_input_by_field(server):
    from gradio_client.exceptions import AppError

    client = ui_client(server.url)
    with pytest.raises(AppError, match="input"):
        client.predict("   ", "alloy", 1.0, api_name="/synthesize")


@pytest.mark.parametrize("fmt, rate", [("wav", 44_100), ("flac", 44_100), ("mp3", 44_100), ("opus", 48_000)])
def test_every_container_format_decodes(server, fmt, rate):
    response = speak(server, response_format=fmt)
    assert response.status_code == 200, response.text
    audio, decoded_rate = decode(response.content)
    assert decoded_rate == rate and abs(len(audio) / rate - float(response.headers["x-audio-duration"])) < 0.1


def test_pcm_is_raw_16_bit_at_the_reported_rate(server):
    response = speak(server, response_format="pcm")
    assert response.headers["content-type"] == "audio/pcm"
    samples = len(response.content) // 2
    assert samples / int(response.headers["x-sample-rate"]) == pytest.approx(
        float(response.headers["x-audio-duration"]), abs=0.01)


def test_long_input_is_split_and_over_the_limit_is_refused(server):
    sentence = "Every host gets the new voice only after the canary has proven itself. "
    long_text = sentence * 12  # about 860 characters, three chunks of TTS_CHUNK_CHARS (300), a minute of audio
    response = speak(server, input=long_text, timeout=120)
    assert response.status_code == 200, response.text
    assert float(response.headers["x-audio-duration"]) > 50
    too_long = speak(server, input="x" * 4097)
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "input"


@pytest.mark.parametrize("content, headers, status, param", [
    (json.dumps({"model": "tts-1", "input": ""}), None, 400, "input"),
    (json.dumps({"model": "tts-1", "input": "hi", "voice": "darth"}), None, 400, "voice"),
    (json.dumps({"model": "whisper-1", "input": "hi"}), None, 400, "model"),
    (json.dumps({"model": "tts-1", "input": "hi", "response_format": "aac"}), None, 400, "response_format"),
    (json.dumps({"model": "tts-1", "input": "hi", "speed": 9}), None, 400, "speed"),
    ('{"model": "tts-1", "input": "hi"', None, 400, "body"),
    (b'{"model": "tts-1", "input": "\xc3\x28"}', None, 400, "body"),
    (json.dumps({"model": "tts-1", "input": "hi"}), {"content-type": "text/plain"}, 415, "content-type"),
])
def test_bad_input_gets_a_4xx_naming_the_field(server, content, headers, status, param):
    response = httpx.post(server.url + SPEECH, content=content,
                          headers=headers or {"content-type": "application/json"}, timeout=10)
    assert response.status_code == status
    assert response.json()["error"]["param"] == param
    assert speak(server).status_code == 200  # still serving


def test_bad_input_is_not_logged_as_a_crash(server):
    httpx.post(server.url + SPEECH, content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert "Traceback" not in server.log()


def speech_body(**fields) -> bytes:
    return json.dumps({"model": "tts-1", "voice": "alloy", "response_format": "wav", **fields}).encode()


def metric(server: ServerProcess, series: str) -> float:
    """One series' value in /metrics (0 when it is not there yet)."""
    for line in httpx.get(server.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(series + " "):
            return float(line.split(" ")[1])
    return 0.0


def speech_5xx(server: ServerProcess) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return sum(float(line.split(" ")[1]) for line in text.splitlines()
               if line.startswith('tts_requests_total{route="speech",status="5'))


HEAD = b'{"model": "tts-1", "input": "Hello there.", "response_format": "wav", '
ODD_INPUTS = [  # each once answered 500 (plain text, no version header, missing from /metrics)
    pytest.param(speech_body(input="..."), "input", id="punctuation-only"),
    pytest.param(speech_body(input="ñ"), "input", id="lone-n-tilde"),
    pytest.param(speech_body(input="—"), "input", id="lone-em-dash"),
    pytest.param(speech_body(input="Привет, как дела?"), "input", id="cyrillic"),
    pytest.param(speech_body(input="Γειά σου κόσμε"), "input", id="greek"),
    pytest.param(speech_body(input="مرحبا بالعالم"), "input", id="arabic"),
    pytest.param(speech_body(input="שלום עולם"), "input", id="hebrew"),
    pytest.param(speech_body(input="नमस्ते दुनिया"), "input", id="devanagari"),
    pytest.param(speech_body(input="สวัสดีชาวโลก"), "input", id="thai"),
    pytest.param(HEAD + b'"speed": 1' + b"0" * 309 + b"}", "speed", id="speed-above-1e308"),
    pytest.param(HEAD + b'"user": ' + b"[" * 1500 + b"]" * 1500 + b"}", "body", id="nested-1500-deep"),
    pytest.param(HEAD + b'"speed": ' + b"7" * 4301 + b"}", "body", id="integer-of-4301-digits"),
]


@pytest.mark.parametrize("content, param", ODD_INPUTS)
def test_input_the_engine_cannot_speak_is_a_counted_4xx_never_a_500(server, content, param):
    rejected = 'tts_rejected_requests_total{reason="invalid"}'
    invalid_before, errors_before = metric(server, rejected), speech_5xx(server)
    response = httpx.post(server.url + SPEECH, content=content, headers={"content-type": "application/json"},
                          timeout=30)
    assert response.status_code == 400, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["param"] == param and response.json()["error"]["message"]
    assert response.headers["x-model-version"] == "v1.3.0"
    assert metric(server, rejected) == invalid_before + 1
    assert speech_5xx(server) == errors_before
    assert "Traceback" not in server.log()


def test_a_script_the_model_does_not_speak_is_named(server):
    response = httpx.post(server.url + SPEECH, content=speech_body(input="Привет, как дела?"),
                          headers={"content-type": "application/json"}, timeout=30)
    assert response.json()["error"]["message"] == \
        "'input' is Cyrillic text; this model speaks Latin-script text (English), Chinese and digits"


@pytest.mark.parametrize("text", ["Hello — world 😀", "Wow!!!!!!", "The canary, мой друг, is healthy."])
def test_english_with_an_odd_symbol_or_word_is_still_spoken(server, text):
    assert speak(server, input=text).status_code == 200


def test_version_and_metrics_describe_the_model(server):
    manifest = read_manifest(server.model_dir)
    version = httpx.get(server.url + "/version").json()
    assert version["model_version"] == "v1.3.0" and version["model_sha256"] == manifest.sha256
    assert (version["engine"], version["device"]) == ("demo", "cpu")
    assert (version["image_tag"], version["git_revision"]) == ("registry.local/tts:v1.3.0", "abc1234")
    speak(server)
    speak(server, voice="nobody")
    metrics = httpx.get(server.url + "/metrics").text
    assert 'tts_requests_total{route="speech",status="200"}' in metrics
    assert 'tts_requests_total{route="speech",status="400"}' in metrics
    assert 'tts_request_duration_seconds_bucket{le="60.0",outcome="2xx",route="speech"}' in metrics
    assert f'sha256="{manifest.sha256}"' in metrics and 'version="v1.3.0"' in metrics
    for name in ("tts_audio_seconds_total", "tts_real_time_factor_count", "tts_in_flight_requests",
                 "tts_queued_requests", "tts_ready 1.0"):
        assert name in metrics


def test_readyz_turns_200_only_after_warm_up(start_server):
    slow = start_server("v1.3.0-slow", wait="listening", TTS_UI="0", TTS_MAX_QUEUE="2")
    early = speak(slow)
    assert early.status_code in (200, 503)
    slow.wait_ready()
    statuses = [status for status, _ in slow.readiness_seen]
    reasons = {reason for status, reason in slow.readiness_seen if status == 503}
    assert statuses[0] == 503 and statuses[-1] == 200
    assert reasons <= {"model load not started", "loading model", "warming up"} and "warming up" in reasons
    assert 503 not in statuses[statuses.index(200):]
    if early.status_code == 503:
        assert early.json()["error"]["code"] == "not_ready" and "Retry-After" in early.headers
    ready = httpx.get(slow.url + "/readyz").json()
    assert ready["warmup"]["passed"] is True


def test_a_burst_beyond_the_queue_is_refused_and_the_server_stays_healthy(start_server):
    slow = start_server("v1.3.0-slow", TTS_UI="0", TTS_MAX_QUEUE="2")
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda i: speak(slow, input=f"Burst request {i}.", timeout=120), range(12)))
    codes = sorted(r.status_code for r in responses)
    refused = [r for r in responses if r.status_code in (429, 503)]
    assert codes.count(200) >= 3 and len(refused) >= 6, codes
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert all(r.json()["error"]["code"] == "queue_full" for r in refused)
    assert httpx.get(slow.url + "/healthz").status_code == 200
    assert httpx.get(slow.url + "/readyz").status_code == 200
    assert speak(slow, timeout=120).status_code == 200
    assert 'tts_rejected_requests_total{reason="queue_full"}' in httpx.get(slow.url + "/metrics").text


@pytest.mark.parametrize("variant, failing_check", [("silent", "silence_share"), ("nan", "finite")])
def test_broken_audio_never_becomes_ready(start_server, variant, failing_check):
    broken = start_server(f"v1.3.0-{variant}", wait="listening", TTS_UI="0")
    broken._poll(lambda r: r is not None and "failed" in r.json()["reason"], 60, "report the failed warm-up")
    ready = httpx.get(broken.url + "/readyz")
    assert ready.status_code == 503 and failing_check in ready.json()["reason"]
    assert httpx.get(broken.url + "/healthz").status_code == 200
    refused = speak(broken)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "not_ready"


def test_engine_failures_are_server_errors_and_serving_goes_on(start_server):
    flaky = start_server("v1.3.0-flaky", TTS_UI="0")
    responses = [speak(flaky, input=f"Request number {i}.") for i in range(20)]
    failed = [r for r in responses if r.status_code == 500]
    assert failed and len(failed) < 20
    assert all(r.json()["error"]["code"] == "engine_error" for r in failed)
    assert all(decode(r.content)[1] == 44_100 for r in responses if r.status_code == 200)


def test_synthesis_past_the_request_timeout_is_a_504_and_serving_goes_on(start_server):
    slow = start_server("v1.3.0-slow", TTS_UI="0", TTS_REQUEST_TIMEOUT_S="1")
    timed_out = speak(slow, input="A long answer that takes the slow model many seconds. " * 12)
    assert timed_out.status_code == 504, timed_out.text
    error = timed_out.json()["error"]
    assert (error["code"], error["type"]) == ("timeout", "server_error") and "1s" in error["message"]
    assert timed_out.headers["x-model-version"] == "v1.3.0-slow"
    assert httpx.get(slow.url + "/readyz", timeout=5).status_code == 200
    metrics = httpx.get(slow.url + "/metrics").text
    assert 'tts_requests_total{route="speech",status="504"} 1.0' in metrics


def test_audio_that_fails_the_hard_checks_is_a_500_never_a_200(start_server):
    mute = start_server("v1.3.0-mute", TTS_UI="0")  # spoke through its warm-up, silent since
    responses = [speak(mute, input=f"Request number {i}.") for i in range(3)]
    assert [r.status_code for r in responses] == [500, 500, 500]
    error = responses[0].json()["error"]
    assert error["code"] == "bad_audio" and "silence_share" in error["message"]
    assert "synthesized audio failed checks" in mute.log()
    metrics = httpx.get(mute.url + "/metrics").text
    assert 'tts_requests_total{route="speech",status="500"} 3.0' in metrics


def run_server_until_exit(model_dir: Path) -> subprocess.CompletedProcess:
    env = {"MODEL_DIR": str(model_dir), "PORT": str(free_port()), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "service"], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_missing_or_corrupt_model_stops_the_server_naming_the_file(tmp_path, model_dirs):
    import shutil

    missing = run_server_until_exit(tmp_path / "nowhere")
    assert missing.returncode == 2 and f"{tmp_path / 'nowhere'} does not exist" in missing.stderr
    corrupt = tmp_path / "corrupt"
    shutil.copytree(model_dirs["v1.3.0"], corrupt)
    with open(corrupt / "weights.safetensors", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x00\x00\x00")
    result = run_server_until_exit(corrupt)
    assert result.returncode == 2
    assert f"{corrupt / 'weights.safetensors'}: sha256 mismatch" in result.stderr
    (corrupt / "weights.safetensors").unlink()
    result = run_server_until_exit(corrupt)
    assert result.returncode == 2 and "weights.safetensors: file listed in the manifest is missing" in result.stderr


LONG_SENTENCE = "Every host gets the new voice only after the canary has proven itself. "  # 71 characters


@pytest.mark.parametrize("text, speed, param", [
    (LONG_SENTENCE * 57, 1.0, "input"),  # 4,047 characters: about 7 minutes even at normal speed
    (LONG_SENTENCE * 12, 0.25, "speed"),  # 852 characters: over 5 minutes only at a quarter speed
])
def test_a_request_for_more_audio_than_the_cap_is_refused_before_synthesis(server, text, speed, param):
    rejected = 'tts_rejected_requests_total{reason="invalid"}'
    invalid_before, audio_before = metric(server, rejected), metric(server, "tts_audio_seconds_total")
    response = speak(server, input=text, speed=speed, timeout=10)
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, "audio_too_long")
    assert "s of audio; the limit is 300 s" in error["message"]
    assert response.headers["x-model-version"] == "v1.3.0"
    assert metric(server, rejected) == invalid_before + 1
    assert metric(server, "tts_audio_seconds_total") == audio_before  # nothing was synthesized


def give_up_after(server: ServerProcess, text: str, seconds: float) -> str:
    try:
        return str(speak(server, input=text, timeout=seconds).status_code)
    except httpx.TimeoutException:
        return "gave up"


def dropped(server: ServerProcess) -> float:
    return sum(metric(server, f'tts_dropped_requests_total{{reason="{reason}"}}') for reason in ("cancelled", "stopped"))


def test_clients_that_give_up_leave_no_work_behind_them(start_server):
    busy = start_server("v1.3.0", TTS_UI="0", TTS_MAX_QUEUE="4")
    long_text = LONG_SENTENCE * 28  # about 2,000 characters: seconds of synthesis each
    with ThreadPoolExecutor(max_workers=4) as impatient:  # four clients, three tries each, 0.3 s of patience
        outcomes = list(impatient.map(lambda i: give_up_after(busy, long_text, 0.3), range(12)))
    assert outcomes.count("gave up") >= 8, outcomes
    started = time.monotonic()
    answers = [speak(busy, input=f"A patient client, request {i}.", timeout=30) for i in range(5)]
    elapsed = time.monotonic() - started
    assert [r.status_code for r in answers] == [200] * 5  # no 429 storm
    assert elapsed < 8, f"5 short requests took {elapsed:.1f} s behind abandoned work"
    assert dropped(busy) >= outcomes.count("gave up") - 1  # the last may have finished in between
    assert metric(busy, 'tts_requests_total{route="speech",status="499"}') >= 1
    assert metric(busy, 'tts_rejected_requests_total{reason="queue_full"}') <= 8


def _closed_within(conn: socket.socket, seconds: float) -> bool:
    """Whether the server closes `conn` within `seconds` (an answer before the close is allowed)."""
    conn.settimeout(seconds)
    try:
        while conn.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_connections_that_send_nothing_half_a_request_or_a_trickle_are_closed(start_server):
    srv = start_server("v1.3.0", TTS_READ_TIMEOUT_S="2", TTS_UI="0")
    address = ("127.0.0.1", srv.port)
    idle = socket.create_connection(address)
    half = socket.create_connection(address)
    half.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: tts\r\nContent-Length: 100\r\n\r\n{\"inp")
    trickle = socket.create_connection(address)
    sent = 0
    for byte in b"GET /healthz HTTP/1.1\r\nHost: tts\r\n":  # a byte every 0.2 s: 7 s for the header
        try:
            trickle.send(bytes([byte]))
        except OSError:
            break
        sent += 1
        time.sleep(0.2)
    assert sent < 20  # cut off after about 2 s (a send or two may still go out after the close)
    assert all(_closed_within(conn, 6) for conn in (idle, half, trickle))
    # a whole request, even on a connection that idled longer than the read deadline between
    # requests (within the 5 s keep-alive), is answered
    with httpx.Client(base_url=srv.url) as client:
        assert client.get("/healthz").status_code == 200
        time.sleep(3)
        assert client.get("/healthz").status_code == 200
    # a second request pipelined behind the first, its body never sent: cut off too
    piped = socket.create_connection(address)
    piped.sendall(b"GET /healthz HTTP/1.1\r\nHost: tts\r\n\r\n"
                  b"POST /v1/audio/speech HTTP/1.1\r\nHost: tts\r\nContent-Length: 100\r\n\r\n{")
    assert _closed_within(piped, 6)


def test_the_ui_takes_no_uploads_and_cleans_its_cache(start_server, tmp_path):
    cache = tmp_path / "gradio"
    srv = start_server("v1.3.0", GRADIO_TEMP_DIR=str(cache), TTS_UI_CACHE_MAX_AGE_S="2")
    upload = httpx.post(srv.url + "/ui/gradio_api/upload", files={"files": ("a.bin", b"x" * 1000)}, timeout=10)
    assert upload.status_code == 413, upload.text
    ui_client(srv.url).predict("Hello there.", "echo", 1.0, api_name="/synthesize")
    written = [p for p in cache.rglob("*") if p.is_file()]
    assert written, "the UI's answer was not cached where expected"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(p.exists() for p in written):
        time.sleep(0.5)
    assert not any(p.exists() for p in written), [str(p) for p in written if p.exists()]


def _rss_bytes(srv: ServerProcess) -> int:
    assert srv.process is not None
    status = Path(f"/proc/{srv.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) * 1024


HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=False), st.text(max_size=50), st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _field_values(schema: dict) -> st.SearchStrategy:
    """A value the schema allows (short: a fuzz run has to be quick), or anything else JSON."""
    if "enum" in schema:
        allowed = st.sampled_from(schema["enum"])
    elif schema["type"] == "number":
        allowed = st.floats(schema["minimum"], schema["maximum"])
    else:  # text: mostly English words (what the engine speaks), sometimes any characters at all
        allowed = st.one_of(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ,.", min_size=1, max_size=40),
                            st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
    return st.one_of(allowed, allowed, allowed, HOSTILE_VALUES)


def test_the_request_body_is_described_in_openapi(server):
    body = httpx.get(server.url + "/openapi.json", timeout=10).json()["paths"]["/v1/audio/speech"]["post"]
    schema = body["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) >= {"model", "input", "voice", "response_format", "speed"}
    assert schema["properties"]["input"]["maxLength"] == 4096 and "echo" in schema["properties"]["voice"]["enum"]


def test_schema_based_fuzz_no_5xx_no_hang_bounded_memory(server):
    spec = httpx.get(server.url + "/openapi.json", timeout=10).json()
    schema = spec["paths"]["/v1/audio/speech"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    fields = {name: _field_values(prop) for name, prop in schema["properties"].items()}
    bodies = st.fixed_dictionaries({name: fields.pop(name) for name in schema["required"]}, optional=fields)
    seen: list[int] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def post(body: dict) -> None:
        # encoded as Python does (httpx refuses to send an infinity; a client may: `Infinity`)
        answer = httpx.post(server.url + "/v1/audio/speech", content=json.dumps(body), timeout=60,  # a hang fails here
                            headers={"content-type": "application/json"})
        seen.append(answer.status_code)
        assert answer.status_code < 500, (body, answer.status_code, answer.text[:300])

    post()
    assert any(s == 200 for s in seen) and any(400 <= s < 500 for s in seen), seen  # both sides were tried
    assert _rss_bytes(server) < 1.5 * 2**30


def test_the_hostile_corpus_is_refused_with_a_4xx(server):
    from tests.hostile import CORPUS

    for what, body, content_type in CORPUS:
        answer = httpx.post(server.url + "/v1/audio/speech", content=body, headers={"Content-Type": content_type},
                            timeout=30)
        assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text[:300])
        assert answer.json()["error"]["param"], what
    assert _rss_bytes(server) < 1.5 * 2**30
