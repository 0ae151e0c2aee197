"""Serves the controller's metrics (canary.decisions.controller_metrics) for Prometheus to
scrape: every GET /metrics reads the state store afresh, so ticks and foreground
rollouts in other processes show as soon as they have written."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve_metrics(render: Callable[[], str], bind: str, port: int) -> ThreadingHTTPServer:
    """A server (not yet serving: call serve_forever) answering GET /metrics with `render()`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            try:
                body = render().encode()
            except Exception as exc:  # the store unreadable: say so, as a scrape error
                self.send_error(500, f"reading the state store failed: {exc}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # scrapes every few seconds: not worth a line each
            return

    return ThreadingHTTPServer((bind, port), Handler)
