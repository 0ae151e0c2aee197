"""Probes speak with the model's own voices: the golden prompts (the warm-up gate's and
the release gate's) and the load generator ask the service which voices its model has,
never assume one name for every model."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from canary.devtools.loadgen import LoadGenerator
from service.golden import model_voice, run_golden


@pytest.fixture
def service() -> Iterator[tuple[str, list[str]]]:
    """A stand-in service whose model has the voices `default` and `anna`; it notes the voice of every request."""
    heard: list[str] = []
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(np.arange(22_050) / 10)).astype(np.float32), 44_100, format="WAV")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self._answer(200, json.dumps({"model_version": "v9.0.0", "voices": ["default", "anna"]}).encode(),
                         "application/json")

        def do_POST(self) -> None:  # noqa: N802
            heard.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["voice"])
            self._answer(200, buffer.getvalue(), "audio/wav")

        def _answer(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("X-Model-Version", "v9.0.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", heard
    server.shutdown()


def test_golden_prompts_and_the_load_generator_speak_in_the_models_first_voice(service):
    url, heard = service
    assert model_voice(url) == "default"
    reports = run_golden(url)
    assert len(reports) == len(heard) >= 5 and set(heard) == {"default"}
    heard.clear()
    result = LoadGenerator(url, rps=20).run(duration_s=1, max_requests=4)
    assert len(result.outcomes) == 4 and set(heard) == {"default"}


def test_a_service_that_does_not_say_its_voices_is_named():
    with pytest.raises(RuntimeError, match=r"http://127.0.0.1:9/version did not say the model's voices"):
        model_voice("http://127.0.0.1:9", timeout_s=2)
