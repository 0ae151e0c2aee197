"""The load generator counts failures the way a client sees them: a keep-alive
connection dropped before any response is retried once (and recorded), nothing else."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from canary.devtools.loadgen import LoadGenerator

pytestmark = pytest.mark.integration
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Model-Version: v1.3.0\r\n\r\nok"


def read_request(conn: socket.socket) -> bytes:
    """Read the whole request, headers and body, which may come in several segments:
    closing a socket with unread bytes sends a reset, not the quiet close under test."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536) or pytest.fail(f"client closed mid-request: {data!r}")
    head, body = data.split(b"\r\n\r\n", 1)
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(65536) or pytest.fail(f"client closed mid-body: {body!r}")
    return body


def serve(answers: list[bytes | None], bodies: list[bytes] | None = None) -> str:
    """A one-connection-at-a-time server: each accepted connection gets the next answer
    (None: read the request, then close without a word); `bodies` gets each request's body."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        for answer in answers:
            conn, _ = listener.accept()
            with conn:
                body = read_request(conn)
                if bodies is not None:
                    bodies.append(body)
                if answer is not None:
                    conn.sendall(answer)
                    conn.shutdown(socket.SHUT_WR)
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_dropped_connection_is_retried_once_and_recorded():
    result = LoadGenerator(serve([None, OK]), rps=1, max_in_flight=1, voice="alloy").run(duration_s=0.5, max_requests=1)
    (outcome,) = result.outcomes
    assert outcome.status == 200 and outcome.version == "v1.3.0"
    assert "RemoteProtocolError" in outcome.retried and not result.failed
    assert "0 failed (0 shed with 429/503), 1 retried" in result.summary()


def keep_alive_server(first_answer_delay_s: float) -> str:
    """Answers the first request on each connection (the first connection's after a delay,
    so the next request opens a second one) and keeps it open; a later request on a used
    connection is read and dropped unanswered, as a reload's old nginx worker does."""
    listener = socket.create_server(("127.0.0.1", 0))

    def handle(conn: socket.socket, delay_s: float) -> None:
        with conn:
            read_request(conn)
            time.sleep(delay_s)
            conn.sendall(OK)
            try:
                read_request(conn)  # the next request on this connection: no answer
            except BaseException:  # noqa: BLE001 (pytest.fail's exception: the client went away)
                pass

    def run() -> None:
        for n in range(8):
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn, first_answer_delay_s if n == 0 else 0.0), daemon=True).start()

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_the_retry_takes_a_new_connection_not_another_idle_one_the_server_closed():
    # requests at 0, 0.25 and 0.5 s: the first two on two connections, idle by 0.5 s; the
    # third is dropped on one of them, and its retry must not go out on the other
    result = LoadGenerator(keep_alive_server(0.4), rps=4, max_in_flight=4, voice="alloy").run(duration_s=5,
                                                                                             max_requests=3)
    assert [o.status for o in sorted(result.outcomes, key=lambda o: o.i)] == [200, 200, 200], result.summary()
    assert result.outcomes[-1].retried and not result.failed


def test_a_second_drop_is_a_failure():
    result = LoadGenerator(serve([None, None]), rps=1, max_in_flight=1, voice="alloy").run(duration_s=0.5, max_requests=1)
    (outcome,) = result.outcomes
    assert outcome.status == 0 and outcome.retried and result.failed == [outcome]


def test_an_error_status_is_a_failure_without_retry():
    answer = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
    result = LoadGenerator(serve([answer, OK]), rps=1, max_in_flight=1, voice="alloy").run(duration_s=0.5, max_requests=1)
    assert [o.status for o in result.outcomes] == [503] and not result.outcomes[0].retried


def test_a_response_cut_short_is_a_failure_without_retry():
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
    result = LoadGenerator(serve([cut, OK]), rps=1, max_in_flight=1, voice="alloy").run(duration_s=0.5, max_requests=1)
    (outcome,) = result.outcomes
    assert outcome.status == 0 and not outcome.retried and "RemoteProtocolError" in outcome.error


def slow_server(delay_s: float) -> str:
    """An HTTP server that answers every request after `delay_s`, many at once."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(delay_s)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.send_header("X-Model-Version", "v1.3.0")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_requests_leave_at_the_arrival_rate_however_slow_the_answers():
    result = LoadGenerator(slow_server(1.5), rps=20, max_in_flight=256, voice="alloy").run(duration_s=1.0)
    assert len(result.outcomes) == 20 and not result.failed, result.summary()
    starts = sorted(o.started for o in result.outcomes)
    assert starts[-1] - starts[0] < 1.3  # all sent within the second, none waited for an answer
    assert min(o.latency_s for o in result.outcomes) >= 1.4


def test_the_bound_on_requests_in_flight_is_a_counted_failure():
    result = LoadGenerator(slow_server(1.0), rps=20, max_in_flight=5, voice="alloy").run(duration_s=0.5)
    refused = [o for o in result.outcomes if "requests in flight already" in o.error]
    assert len(result.outcomes) == 10 and len(refused) == 5 and len(result.failed) == 5


def test_every_fourth_request_asks_for_its_audio_streamed():
    bodies: list[bytes] = []
    result = LoadGenerator(serve([OK] * 8, bodies), rps=5, max_in_flight=8, voice="alloy").run(duration_s=10,
                                                                                               max_requests=8)
    asked = [json.loads(body).get("stream_format") for body in bodies]
    assert asked.count("audio") == 2 and asked.count(None) == 6 and not result.failed, (asked, result.summary())
    assert [o.i for o in result.outcomes if o.streamed] == [3, 7]
    assert "8 requests (2 streamed), 0 failed" in result.summary()
