"""Start the real server (`python -m service`) as a subprocess on a free local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    model_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    readiness_seen: list[tuple[int, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = dict(os.environ, MODEL_DIR=str(self.model_dir), PORT=str(self.port), HOST="127.0.0.1",
                   PYTHONPATH=str(REPO), **self.env)
        self.log_path = self.log_path or Path(f"/tmp/voxfleet-test-server-{self.port}.log")
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO, env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def wait_listening(self, timeout: float = 90.0) -> None:
        self._poll(lambda r: r is not None, timeout, "listen")

    def wait_ready(self, timeout: float = 120.0) -> None:
        self._poll(lambda r: r is not None and r.status_code == 200, timeout, "become ready")

    def _poll(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=2.0)
                self.readiness_seen.append((response.status_code, response.json()["reason"]))
            except httpx.TransportError:
                response = None
            if done(response):
                return
            time.sleep(0.05)
        raise AssertionError(f"server did not {what} within {timeout}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
