"""The Prometheus query adapter against real HTTP: no server, a PromQL error, an answer
of the wrong type, and a good answer (a local HTTP server speaking Prometheus' API)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from canary.adapters.prometheus import PrometheusSource, PrometheusUnavailable

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_prometheus():
    """A server answering /api/v1/query with whatever the test queues, keeping the queries."""
    answers: list[tuple[int, dict]] = []
    queries: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            queries.append(parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()))
            status, body = answers.pop(0)
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers, queries
    server.shutdown()


def vector(*series: dict) -> tuple[int, dict]:
    return 200, {"status": "success", "data": {"resultType": "vector", "result": list(series)}}


def test_no_server_is_unavailable_naming_it():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusUnavailable, match=f"Prometheus at {url} is not reachable"):
        PrometheusSource(url, timeout_s=2).totals(["v1.3.0"], 0, 60)


def test_a_promql_error_is_named_with_prometheus_words(fake_prometheus):
    url, answers, _ = fake_prometheus
    answers.append((400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 7"}))
    with pytest.raises(PrometheusUnavailable, match="refused the query: bad_data: parse error at char 7"):
        PrometheusSource(url).query("up{", 0)


def test_an_answer_of_another_type_or_without_labels_is_refused(fake_prometheus):
    url, answers, _ = fake_prometheus
    answers.append((200, {"status": "success", "data": {"resultType": "matrix", "result": []}}))
    with pytest.raises(PrometheusUnavailable, match="answered a 'matrix'"):
        PrometheusSource(url).query("up[1m]", 0)
    answers.extend([vector({"metric": {"status": "200"}, "value": [0, "3"]}), vector(), vector(), vector()])
    with pytest.raises(PrometheusUnavailable, match="a series without a 'version' label"):
        PrometheusSource(url).totals(["v1.3.0"], 0, 60)


def test_totals_ask_for_the_stage_window_at_its_end(fake_prometheus):
    url, answers, queries = fake_prometheus
    answers.append(vector({"metric": {"version": "v1.3.0", "status": "200"}, "value": [100, "41.5"]},
                          {"metric": {"version": "v1.3.0", "status": "503"}, "value": [100, "2"]}))
    for _ in ("response", "service", "first audio"):
        answers.append(vector({"metric": {"version": "v1.3.0", "le": "0.05"}, "value": [100, "30"]},
                              {"metric": {"version": "v1.3.0", "le": "+Inf"}, "value": [100, "40"]}))
    got = PrometheusSource(url).totals(["v1.3.0", "v1.2.0"], 1000.0, 1060.0, latency_since=1030.0)
    assert (got["v1.3.0"].trials, got["v1.3.0"].shed, got["v1.3.0"].successes) == (42, 2, 40)
    assert got["v1.3.0"].service_buckets == got["v1.3.0"].latency_buckets and got["v1.2.0"].trials == 0
    assert got["v1.3.0"].first_audio_buckets == got["v1.3.0"].latency_buckets
    assert [q["time"] for q in queries] == [["1060.000"]] * 4
    asked = [q["query"][0] for q in queries]
    assert "[60s]" in asked[0] and "tts_request_duration_seconds_bucket" in asked[1] and "[30s]" in asked[1]
    assert "tts_request_service_seconds_bucket" in asked[2]
    assert "tts_time_to_first_audio_service_seconds_bucket" in asked[3] and "[30s]" in asked[3]
