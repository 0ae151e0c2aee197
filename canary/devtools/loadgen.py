"""Steady synthetic speech traffic through the LB, for demos, tests and benchmarks.

Bounded by design: a fixed rate, a maximum duration and a maximum request count,
loopback addresses only. Each request's status, answering version and latency is
kept, so a test can count failed client requests and the share each version served.

    python -m canary.devtools.loadgen --url http://127.0.0.1:18080 --rps 4 --duration 60
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import httpx

WORDS = ("canary", "voice", "fleet", "model", "release", "steady", "signal", "quiet", "morning", "river",
         "number", "seven", "light", "window", "garden", "paper", "travel", "simple", "bright", "ocean")


def text_for(i: int) -> str:
    words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(4 + i % 5)]
    return f"Request {i}: " + " ".join(words).capitalize() + "."


@dataclass
class Outcome:
    i: int
    started: float
    status: int  # 0: no response
    version: str
    latency_s: float
    error: str = ""
    retried: str = ""  # why the client sent it a second time (a keep-alive connection the LB closed)


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200]

    def by_version(self) -> Counter[str]:
        return Counter(o.version for o in self.outcomes if o.status == 200)

    def summary(self) -> str:
        versions = ", ".join(f"{v} {n}" for v, n in sorted(self.by_version().items()))
        retried = sum(1 for o in self.outcomes if o.retried)
        return (f"{len(self.outcomes)} requests, {len(self.failed)} failed, {retried} retried on a dropped "
                f"keep-alive connection; answered by: {versions or 'none'}")


class LoadGenerator:
    def __init__(self, url: str, rps: float = 4.0, concurrency: int = 8, timeout_s: float = 60.0,
                 voice: str = "alloy") -> None:
        host = httpx.URL(url).host
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"load generator targets loopback only, not {host}")
        self.url, self.rps, self.concurrency, self.timeout_s, self.voice = url.rstrip("/"), rps, concurrency, \
            timeout_s, voice
        self.result = LoadResult()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _one(self, client: httpx.Client, i: int) -> None:
        """One request, as an HTTP client library sends it: a keep-alive connection that
        the server closed just as the request went out (nginx closes idle connections on
        every reload) is retried once on a new connection, like urllib3 and the OpenAI
        SDK do; the retry is recorded. Synthesis has no side effects."""
        started = time.time()
        body = {"model": "tts-1", "input": text_for(i), "voice": self.voice, "response_format": "pcm"}
        retried = ""
        for attempt in (1, 2):
            try:
                response = client.post(f"{self.url}/v1/audio/speech", json=body, timeout=self.timeout_s)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                unanswered = isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc)
                if attempt == 1 and unanswered:  # not a response cut short: that is a failure
                    retried = error
                    continue
                status, version = 0, ""
            else:
                status, version = response.status_code, response.headers.get("x-model-version", "")
                error = "" if status == 200 else response.text[:200]
            break
        self.result.outcomes.append(Outcome(i, started, status, version, time.time() - started, error, retried))

    def run(self, duration_s: float, max_requests: int = 100_000) -> LoadResult:
        deadline = time.monotonic() + duration_s
        with httpx.Client() as client, ThreadPoolExecutor(self.concurrency) as pool:
            i = 0
            next_at = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < deadline and i < max_requests:
                pool.submit(self._one, client, i)
                i += 1
                next_at += 1.0 / self.rps
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        return self.result

    def start(self, duration_s: float, max_requests: int = 100_000) -> LoadGenerator:
        self._thread = threading.Thread(target=self.run, args=(duration_s, max_requests), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        if self._thread:
            self._thread.join(self.timeout_s + 5)
        return self.result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canary.devtools.loadgen")
    parser.add_argument("--url", default="http://127.0.0.1:18080")
    parser.add_argument("--rps", type=float, default=4.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=10_000)
    parser.add_argument("--out", help="write one JSON line per request here")
    args = parser.parse_args(argv)
    generator = LoadGenerator(args.url, args.rps)
    result = generator.run(args.duration, args.max_requests)
    if args.out:
        with open(args.out, "w") as handle:
            for outcome in result.outcomes:
                handle.write(json.dumps(asdict(outcome)) + "\n")
    print(result.summary())
    return 0 if not result.failed else 1


if __name__ == "__main__":
    sys.exit(main())
