"""Open-loop synthetic speech traffic through the LB(s), for demos, tests and benchmarks.

Requests leave at a fixed arrival rate whatever the answers do, the way independent
users arrive: a slow or overloaded fleet gets more requests in flight, not fewer, until
the bound on requests in flight (far above the fleet's queue slots). Bounded by design:
a maximum duration and request count, loopback addresses only. Each request's status,
answering version and latency is kept, so a test can count failed client requests (a
429 or 503 that reached the client is a failure), and the share each version served.

    python -m canary.devtools.loadgen --url http://127.0.0.1:18080 --rps 4 --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import httpx
import numpy as np

from service.golden import model_voice

WORDS = ("canary", "voice", "fleet", "model", "release", "steady", "signal", "quiet", "morning", "river",
         "number", "seven", "light", "window", "garden", "paper", "travel", "simple", "bright", "ocean")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SHED = (429, 503)


def text_for(i: int) -> str:
    """A short prompt (two to four words, about two seconds of speech), like a UI's."""
    words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(2 + i % 3)]
    return " ".join(words).capitalize() + "."


@dataclass
class Outcome:
    i: int
    started: float
    status: int  # 0: no response
    version: str
    latency_s: float
    error: str = ""
    retried: str = ""  # why the client sent it a second time (a keep-alive connection the LB closed)
    url: str = ""  # the LB it went through
    host: str = ""  # the host that answered (X-Served-By)
    session: str = ""  # the X-Session-Id it carried ("" none)
    streamed: bool = False  # it asked for stream_format "audio"

    @property
    def shed(self) -> bool:
        return self.status in SHED


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200]

    @property
    def shed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.shed]

    def by_version(self) -> Counter[str]:
        return Counter(o.version for o in self.outcomes if o.status == 200)

    def by_host(self) -> Counter[str]:
        return Counter(o.host for o in self.outcomes if o.status == 200)

    def versions_by_session(self) -> dict[str, list[str]]:
        """Each session key's answered requests' versions, in order."""
        heard: dict[str, list[str]] = {}
        for o in sorted(self.outcomes, key=lambda o: o.started):
            if o.session and o.status == 200:
                heard.setdefault(o.session, []).append(o.version)
        return heard

    def since(self, start: float, end: float = float("inf")) -> LoadResult:
        """The requests sent in [start, end) (time.time() seconds)."""
        return LoadResult([o for o in self.outcomes if start <= o.started < end])

    def p95_s(self) -> float:
        ok = [o.latency_s for o in self.outcomes if o.status == 200]
        return float(np.percentile(ok, 95)) if ok else float("nan")

    def summary(self) -> str:
        versions = ", ".join(f"{v} {n}" for v, n in sorted(self.by_version().items()))
        retried = sum(1 for o in self.outcomes if o.retried)
        streamed = sum(1 for o in self.outcomes if o.streamed)
        return (f"{len(self.outcomes)} requests ({streamed} streamed), {len(self.failed)} failed ({len(self.shed)} shed with 429/503), "
                f"{retried} retried on a dropped keep-alive connection; p95 {self.p95_s():.2f} s; "
                f"answered by: {versions or 'none'}")


def closed_unanswered(exc: Exception) -> bool:
    """Whether a request failed on a kept-alive connection the server closed as it went out
    (nginx closes idle ones at every reload): HTTP client libraries send it again once."""
    return isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc)


class LoadGenerator:
    def __init__(self, url: str | Sequence[str], rps: float = 4.0, max_in_flight: int = 256,
                 timeout_s: float = 60.0, voice: str | None = None, sessions: int = 0,
                 stream_every: int = 4) -> None:
        """`sessions` > 0: request i carries X-Session-Id s<i mod sessions>, as that many
        clients each keeping one session would, each round of keys through the next LB.
        `stream_every` > 0: every such request asks for its audio streamed, as a voice
        assistant's client would (the canary's time to first audio is judged from them)."""
        self.urls = [url] if isinstance(url, str) else list(url)
        for target in self.urls:
            host = httpx.URL(target).host
            if host not in LOOPBACK:
                raise ValueError(f"load generator targets loopback only, not {host}")
        self.urls = [u.rstrip("/") for u in self.urls]
        self.rps, self.max_in_flight, self.timeout_s = rps, max_in_flight, timeout_s
        self.voice = voice or model_voice(self.urls[0])  # the model's first voice, as its /version says
        self.sessions, self.stream_every = sessions, stream_every
        self.result = LoadResult()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def _one(self, client: httpx.AsyncClient, i: int, url: str) -> None:
        """One request, as an HTTP client library sends it: a keep-alive connection that
        the server closed just as the request went out (nginx closes idle connections on
        every reload) is retried once on a new connection, like urllib3 and the OpenAI
        SDK do; the retry is recorded. Synthesis has no side effects. The retry opens a
        connection of its own: the pool's other idle ones may have been closed by the same
        reload, their close not yet seen."""
        started = time.time()
        body = {"model": "tts-1", "input": text_for(i), "voice": self.voice, "response_format": "pcm"}
        streamed = bool(self.stream_every) and i % self.stream_every == self.stream_every - 1
        if streamed:
            body["stream_format"] = "audio"
        session = f"s{i % self.sessions}" if self.sessions else ""
        headers = {"X-Session-Id": session} if session else {}
        retried = ""
        for attempt in (1, 2):
            try:
                if attempt == 1:
                    response = await client.post(f"{url}/v1/audio/speech", json=body, headers=headers,
                                                 timeout=self.timeout_s)
                else:
                    async with httpx.AsyncClient() as fresh:
                        response = await fresh.post(f"{url}/v1/audio/speech", json=body, headers=headers,
                                                    timeout=self.timeout_s)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                if attempt == 1 and closed_unanswered(exc):  # not a response cut short: that is a failure
                    retried = error
                    continue
                status, version, host = 0, "", ""
            else:
                status, version = response.status_code, response.headers.get("x-model-version", "")
                host = response.headers.get("x-served-by", "")
                error = "" if status == 200 else response.text[:200]
            break
        self.result.outcomes.append(Outcome(i, started, status, version, time.time() - started, error, retried, url,
                                            host, session, streamed))

    async def _run(self, duration_s: float, max_requests: int) -> None:
        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight)
        async with httpx.AsyncClient(limits=limits) as client:
            loop = asyncio.get_running_loop()
            begin = loop.time()
            in_flight: set[asyncio.Task[None]] = set()
            i = 0
            while not self._stop.is_set() and i < max_requests and i / self.rps < duration_s:
                await asyncio.sleep(max(0.0, begin + i / self.rps - loop.time()))
                if len(in_flight) >= self.max_in_flight:  # the generator's own bound: a failure to count
                    self.result.outcomes.append(Outcome(i, time.time(), 0, "", 0.0,
                                                        f"{self.max_in_flight} requests in flight already"))
                else:
                    lb = (i + i // self.sessions) if self.sessions else i
                    task = asyncio.create_task(self._one(client, i, self.urls[lb % len(self.urls)]))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                i += 1
            if in_flight:
                await asyncio.wait(in_flight, timeout=self.timeout_s + 5)

    def run(self, duration_s: float, max_requests: int = 100_000) -> LoadResult:
        asyncio.run(self._run(duration_s, max_requests))
        return self.result

    def start(self, duration_s: float, max_requests: int = 100_000) -> LoadGenerator:
        self._thread = threading.Thread(target=self.run, args=(duration_s, max_requests), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        if self._thread:
            self._thread.join(self.timeout_s + 10)
        return self.result


def sandbox_lb_urls() -> list[str]:
    """Every LB of the sandbox (its inventory's lb_public_url), or the first LB's default port."""
    from canary import DEFAULT_INVENTORY
    from canary.adapters.inventory import load_fleet
    from canary.decisions.inventory import InventoryError

    try:
        return list(load_fleet(DEFAULT_INVENTORY).lb_public_urls) or ["http://127.0.0.1:18080"]
    except InventoryError:
        return ["http://127.0.0.1:18080"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canary.devtools.loadgen")
    parser.add_argument("--url", action="append", help="an LB's URL (repeat for several; default the sandbox's)")
    parser.add_argument("--rps", type=float, default=4.0, help="arrival rate, requests per second")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=10_000)
    parser.add_argument("--max-in-flight", type=int, default=256)
    parser.add_argument("--sessions", type=int, default=0, help="send X-Session-Id from this many clients")
    parser.add_argument("--out", help="write one JSON line per request here")
    args = parser.parse_args(argv)
    generator = LoadGenerator(args.url or sandbox_lb_urls(), args.rps, args.max_in_flight, sessions=args.sessions)
    result = generator.run(args.duration, args.max_requests)
    if args.out:
        with open(args.out, "w") as handle:
            for outcome in result.outcomes:
                handle.write(json.dumps(asdict(outcome)) + "\n")
    print(result.summary())
    return 0 if not result.failed else 1


if __name__ == "__main__":
    sys.exit(main())
