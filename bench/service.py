"""Benchmark the TTS service end to end and print one side-by-side table.

What it measures, in one run:

* cold start to ready: spawns `python -m service` (MODEL_DIR, HOST=127.0.0.1, a free
  PORT), polls GET /readyz every 50 ms and reports the time from spawn to the first
  answer of any status (listening) and to the first 200 (model loaded and warmed up),
  with the Gradio UI disabled (TTS_UI=0) and enabled (the default);
* API latency: POST /v1/audio/speech (response_format "wav") for English-like inputs
  of 20, 200 and 1,000 characters at client concurrency 1 and 4; per row p50/p95/mean
  latency, requests per second, audio seconds per request and two real-time factors
  (server: X-Synthesis-Seconds / X-Audio-Duration; wall: client latency / audio);
* time to first audio: the same sizes with stream_format "audio" (pcm), one at a time,
  timed to the first audio bytes and the last, next to the unstreamed p50;
* HTTP overhead: the same concurrency-1 texts synthesized by a direct in-process
  engine call (create_engine(verify_model_dir(dir)), .load(), .synthesize(text,
  "alloy", 1.0)), each paired with its API request (back to back, so both see the same
  background load), and the API/direct ratio of the p50s.

Every request gets a different deterministic text (a fixed word list and seeded
generators), so nothing can be served from a cache. Only 127.0.0.1 is contacted, the
server subprocess is always stopped, and every request has a timeout. It reports
numbers; it asserts nothing about speed.

Run from the repository root:

    .venv/bin/python bench/service.py                     # defaults, ~2 min on 2 cores
    .venv/bin/python bench/service.py --quick             # ~30 s smoke run
    .venv/bin/python bench/service.py --model-dir build/models/v1.3.0 --requests 40

Build the model directory first if needed: `python -m models build v1.3.0 --out build/models`.
Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder is sys.path[0], and this file is called
# service.py: it would shadow the `service` package. Put the repository first instead.
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:
    from service.engines import Engine

HOST = "127.0.0.1"
POLL_INTERVAL_S = 0.05
VOICE = "alloy"
SPEECH_PATH = "/v1/audio/speech"
DEFAULT_MODEL_DIR = "build/models/v1.3.0"
DEFAULT_LENGTHS = (20, 200, 1000)
DEFAULT_CONCURRENCY = (1, 4)
LONG_INPUT_CHARS = 1000  # inputs this long get half the requests per row (they are slow)

# Every length from 1 to 9 is present, so a text can be filled to an exact length.
WORDS = (
    "a I an to of in it is on we be as at by or the and for was are you but not all can had her "
    "one our out day get has him his how man new now old see two way who boy did its let put say "
    "she too use time when word more them been call find long down come made part over such take "
    "only little small large water sound place after thing great where right three before answer "
    "people number should country between another picture mountain together children sentence "
    "important different question remember beautiful yesterday afternoon carefully something "
    "lighthouse harbour evening morning kitchen window garden weather station village river "
    "quietly slowly bright yellow orange silver wooden ancient gentle"
).split()
_BY_LENGTH: dict[int, list[str]] = {}
for _word in WORDS:
    _BY_LENGTH.setdefault(len(_word), []).append(_word)
MAX_FILL_LENGTH = 9
if any(n not in _BY_LENGTH for n in range(1, MAX_FILL_LENGTH + 1)):
    raise RuntimeError("WORDS must contain a word of every length from 1 to 9")


# -- texts ---------------------------------------------------------------------------
def make_text(n_chars: int, rng: random.Random) -> str:
    """An English-like text of exactly `n_chars` characters: capitalized sentences of
    5-12 words, an occasional comma, a final period."""
    if n_chars < 2:
        raise ValueError("texts need at least 2 characters")
    text, words_in_sentence, sentence_length = "", 0, rng.randint(5, 12)
    while True:
        room = n_chars - len(text) - (1 if text else 0) - 1  # longest last word that still fits
        if room <= MAX_FILL_LENGTH:
            word = rng.choice(_BY_LENGTH[room])
            word = word.capitalize() if words_in_sentence == 0 else word
            return f"{text} {word}." if text else f"{word}."
        word = rng.choice([w for w in WORDS if len(w) <= room - 3])  # leaves room for punctuation
        word = word.capitalize() if words_in_sentence == 0 else word
        words_in_sentence += 1
        if words_in_sentence >= sentence_length:
            word, words_in_sentence, sentence_length = word + ".", 0, rng.randint(5, 12)
        elif words_in_sentence > 2 and rng.random() < 0.08:
            word += ","
        text = f"{text} {word}" if text else word


class TextSource:
    """Deterministic texts, never the same one twice in a run."""

    def __init__(self, seed: str = "voxfleet-bench") -> None:
        self.seed = seed
        self.seen: set[str] = set()

    def texts(self, n_chars: int, count: int, label: str) -> list[str]:
        out: list[str] = []
        index = 0
        while len(out) < count:
            text = make_text(n_chars, random.Random(f"{self.seed}/{label}/{n_chars}/{index}"))
            index += 1
            if text not in self.seen:
                self.seen.add(text)
                out.append(text)
        return out


# -- server process --------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class ColdStart:
    ui: bool
    listening_s: float  # spawn -> first HTTP answer of /readyz (any status)
    ready_s: float  # spawn -> first /readyz 200


class ServerError(RuntimeError):
    """The server exited or did not become ready; the message carries its log tail."""


@dataclass
class ServerProcess:
    model_dir: Path
    ui: bool
    log_dir: Path
    max_queue: int = 64
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    spawned_at: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"server-{self.port}.log"

    def start(self) -> None:
        env = dict(os.environ, MODEL_DIR=str(self.model_dir), HOST=HOST, PORT=str(self.port),
                   TTS_MAX_QUEUE=str(self.max_queue), TTS_UI="1" if self.ui else "0",
                   GRADIO_ANALYTICS_ENABLED="False")
        with open(self.log_path, "wb") as log:  # the child keeps its own descriptor
            self.spawned_at = time.perf_counter()
            self.process = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO, env=env,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def wait_ready(self, timeout_s: float) -> ColdStart:
        """Poll /readyz every 50 ms from spawn; return when it first answers 200."""
        assert self.process is not None
        listening_s: float | None = None
        deadline = self.spawned_at + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise ServerError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    status = client.get(f"{self.url}/readyz").status_code
                except httpx.TransportError:
                    status = None
                now = time.perf_counter() - self.spawned_at
                if status is not None and listening_s is None:
                    listening_s = now
                if status == 200:
                    return ColdStart(self.ui, listening_s or now, now)
                time.sleep(POLL_INTERVAL_S)
        raise ServerError(f"server not ready within {timeout_s:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the server's process group (it was started in its own session), then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait_s)
                return
            except subprocess.TimeoutExpired:
                continue


def measure_cold_starts(model_dir: Path, runs: int, log_dir: Path, timeout_s: float,
                        keep_last: bool) -> tuple[list[ColdStart], ServerProcess | None]:
    """Alternate UI off / UI on `runs` times each. With keep_last, the last server (UI
    on, the production default) is left running and returned for the latency runs."""
    results: list[ColdStart] = []
    plan = [ui for _ in range(runs) for ui in (False, True)]
    for i, ui in enumerate(plan):
        server = ServerProcess(model_dir, ui, log_dir)
        try:
            server.start()
            results.append(server.wait_ready(timeout_s))
        except BaseException:
            server.stop()
            raise
        progress(f"cold start {i + 1}/{len(plan)} (UI {'on' if ui else 'off'}): "
                 f"ready after {results[-1].ready_s:.2f} s")
        if keep_last and i == len(plan) - 1:
            return results, server
        server.stop()
    return results, None


# -- API requests ------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    latency_s: float
    ok: bool
    audio_s: float = 0.0
    synth_s: float = 0.0
    error: str = ""
    model_version: str = ""  # the X-Model-Version response header


@dataclass(frozen=True)
class Row:
    mode: str  # "api" or "direct"
    chars: int
    concurrency: int
    samples: tuple[Sample, ...]
    wall_s: float

    @property
    def good(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def errors(self) -> list[str]:
        return [s.error for s in self.samples if not s.ok]

    def latencies_ms(self) -> list[float]:
        return [s.latency_s * 1000.0 for s in self.good]

    def throughput(self) -> float:
        return len(self.good) / self.wall_s if self.wall_s > 0 else float("nan")


def speak(client: httpx.Client, base_url: str, model: str, text: str) -> Sample:
    body = {"model": model, "input": text, "voice": VOICE, "response_format": "wav", "speed": 1.0}
    started = time.perf_counter()
    try:
        response = client.post(f"{base_url}{SPEECH_PATH}", json=body)
    except httpx.HTTPError as exc:
        return Sample(time.perf_counter() - started, False, error=type(exc).__name__)
    latency = time.perf_counter() - started
    if response.status_code != 200:
        return Sample(latency, False, error=f"HTTP {response.status_code}")
    if not response.content.startswith(b"RIFF"):
        return Sample(latency, False, error="not a WAV body")
    try:
        audio_s = float(response.headers["X-Audio-Duration"])
        synth_s = float(response.headers["X-Synthesis-Seconds"])
    except (KeyError, ValueError):
        return Sample(latency, False, error="missing or bad X-Audio-Duration/X-Synthesis-Seconds")
    return Sample(latency, True, audio_s, synth_s, model_version=response.headers.get("X-Model-Version", "?"))


def run_api_row(base_url: str, model: str, texts: Sequence[str], concurrency: int, timeout_s: float) -> Row:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(timeout=timeout_s, limits=limits) as client:  # httpx.Client is thread-safe
        call: Callable[[str], Sample] = lambda text: speak(client, base_url, model, text)  # noqa: E731
        started = time.perf_counter()
        if concurrency == 1:
            samples = [call(text) for text in texts]
        else:
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="client") as pool:
                samples = list(pool.map(call, texts))
        wall = time.perf_counter() - started
    return Row("api", len(texts[0]), concurrency, tuple(samples), wall)


@dataclass(frozen=True)
class StreamSample:
    ok: bool
    first_audio_s: float = 0.0  # from sending the request to holding the first audio bytes
    total_s: float = 0.0  # ... to holding the last
    error: str = ""


def speak_streamed(client: httpx.Client, base_url: str, model: str, text: str) -> StreamSample:
    """One request with stream_format "audio" (pcm), timed to its first audio byte and its last."""
    body = {"model": model, "input": text, "voice": VOICE, "response_format": "pcm", "stream_format": "audio"}
    started, first = time.perf_counter(), None
    try:
        with client.stream("POST", f"{base_url}{SPEECH_PATH}", json=body) as response:
            if response.status_code != 200:
                return StreamSample(False, error=f"HTTP {response.status_code}")
            for part in response.iter_bytes():
                if part and first is None:
                    first = time.perf_counter() - started
    except httpx.HTTPError as exc:
        return StreamSample(False, error=type(exc).__name__)
    if first is None:
        return StreamSample(False, error="no audio")
    return StreamSample(True, first, time.perf_counter() - started)


def run_stream_rows(base_url: str, model: str, source: TextSource, lengths: Sequence[int], per_row: int,
                    timeout_s: float) -> dict[int, list[StreamSample]]:
    """Per input size, streamed requests one at a time (as the concurrency-1 API rows)."""
    rows: dict[int, list[StreamSample]] = {}
    with httpx.Client(timeout=timeout_s) as client:
        for chars in lengths:
            n = requests_for(chars, per_row)
            progress(f"API streamed: {chars} chars x {n} at concurrency 1")
            rows[chars] = [speak_streamed(client, base_url, model, text)
                           for text in source.texts(chars, n, "streamed")]
    return rows


def streaming_table(streamed: dict[int, list[StreamSample]], rows: Sequence[Row]) -> str:
    body = []
    for chars, samples in streamed.items():
        good = [s for s in samples if s.ok]
        first = [s.first_audio_s * 1000 for s in good]
        total = [s.total_s * 1000 for s in good]
        whole = find_row(rows, "api", chars, 1)
        whole_p50 = percentile(whole.latencies_ms(), 50) if whole else float("nan")
        body.append([str(chars), f"{len(good)}/{len(samples)}", fmt(percentile(first, 50)), fmt(percentile(first, 95)),
                     fmt(percentile(total, 50)), fmt(ratio(percentile(first, 50), percentile(total, 50)), 3),
                     fmt(whole_p50), fmt(ratio(whole_p50, percentile(first, 50)), 1)])
    headers = ["chars", "ok/n", "first audio p50 ms", "first audio p95 ms", "total p50 ms", "first/total",
               "unstreamed p50 ms", "unstreamed/first"]
    return format_table(headers, body, left=1)


def warm_api(base_url: str, model: str, source: TextSource, lengths: Sequence[int], timeout_s: float) -> None:
    """One untimed request per input size, so lazy imports and first-call costs (such as
    the first large allocations) stay out of the rows."""
    with httpx.Client(timeout=timeout_s) as client:
        for text in (source.texts(chars, 1, "warm-api")[0] for chars in lengths):
            sample = speak(client, base_url, model, text)
            if not sample.ok:
                raise ServerError(f"warm-up request failed: {sample.error}")


def server_info(base_url: str) -> dict[str, object]:
    return dict(httpx.get(f"{base_url}/version", timeout=10.0).json())


# -- direct engine ------------------------------------------------------------------------------
def _load_engine(model_dir: Path) -> Engine:
    from service.engines import create_engine
    from service.model_dir import verify_model_dir

    engine = create_engine(verify_model_dir(model_dir))
    engine.load()
    engine.warm_up()
    return engine


def _timed_synthesis(engine: Engine, text: str) -> Sample:
    started = time.perf_counter()
    audio = engine.synthesize(text, VOICE, 1.0)
    elapsed = time.perf_counter() - started
    return Sample(elapsed, True, audio.size / engine.describe().sample_rate, elapsed)


class DirectEngine:
    """The engine loaded in this process. Load and every call run on one dedicated
    thread, the server's own InferenceWorker, as in the server (from the main thread a
    short synthesis measured ~1.4x slower on a 2-core VM)."""

    def __init__(self, model_dir: Path) -> None:
        from service.worker import InferenceWorker

        self.model_dir = model_dir
        self.worker = InferenceWorker(max_queue=1, name="bench-direct")
        self.engine: Engine | None = None

    def load(self) -> None:
        self.engine = self.worker.submit(lambda: _load_engine(self.model_dir)).result()

    def synthesize(self, text: str) -> Sample:
        engine = self.engine
        if engine is None:
            raise RuntimeError("DirectEngine.load() first")
        return self.worker.submit(lambda: _timed_synthesis(engine, text)).result()

    def stop(self) -> None:
        self.worker.stop()


def run_paired_rows(base_url: str, model: str, texts: Sequence[str], direct: DirectEngine,
                    timeout_s: float) -> tuple[Row, Row]:
    """Concurrency 1: each text goes to the API and to the direct engine back to back,
    alternating which goes first, so both see the same background load. The rows'
    wall time is the sum of their own latencies (the calls are sequential)."""
    api: list[Sample] = []
    local: list[Sample] = []
    with httpx.Client(timeout=timeout_s) as client:
        for i, text in enumerate(texts):
            if i % 2 == 0:
                api.append(speak(client, base_url, model, text))
                local.append(direct.synthesize(text))
            else:
                local.append(direct.synthesize(text))
                api.append(speak(client, base_url, model, text))
    chars = len(texts[0])
    return (Row("api", chars, 1, tuple(api), sum(x.latency_s for x in api)),
            Row("direct", chars, 1, tuple(local), sum(x.latency_s for x in local)))


# -- statistics and formatting -------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else float("nan")


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"  # NaN check without math import


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Aligned plain-text table: the first `left` columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) if i < left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def cold_start_table(results: Sequence[ColdStart]) -> str:
    rows = []
    for ui in (False, True):
        runs = [r for r in results if r.ui == ui]
        if not runs:
            continue
        ready = [r.ready_s for r in runs]
        rows.append([f"UI {'on ' if ui else 'off'} (TTS_UI={'1' if ui else '0'})", str(len(runs)),
                     fmt(median([r.listening_s for r in runs]), 2), fmt(min(ready), 2),
                     fmt(median(ready), 2), fmt(max(ready), 2)])
    headers = ["server", "runs", "listening s (med)", "ready s (min)", "ready s (med)", "ready s (max)"]
    return format_table(headers, rows)


def latency_table(rows: Sequence[Row]) -> str:
    body = []
    for row in rows:
        good, lat = row.good, row.latencies_ms()
        rtf_server = mean([s.synth_s / s.audio_s for s in good if s.audio_s > 0]) if row.mode == "api" else float("nan")
        rtf_wall = mean([s.latency_s / s.audio_s for s in good if s.audio_s > 0])
        body.append([row.mode, str(row.chars), str(row.concurrency), f"{len(good)}/{len(row.samples)}",
                     fmt(percentile(lat, 50)), fmt(percentile(lat, 95)), fmt(mean(lat)),
                     fmt(row.throughput(), 2), fmt(mean([s.audio_s for s in good]), 2),
                     fmt(rtf_server, 3), fmt(rtf_wall, 3)])
    headers = ["mode", "chars", "conc", "ok/n", "p50 ms", "p95 ms", "mean ms", "req/s", "audio s/req",
               "RTF server", "RTF wall"]
    return format_table(headers, body, left=1)


def find_row(rows: Sequence[Row], mode: str, chars: int, concurrency: int) -> Row | None:
    return next((r for r in rows if (r.mode, r.chars, r.concurrency) == (mode, chars, concurrency)), None)


def ratio(a: float, b: float) -> float:
    return a / b if b and b == b and a == a else float("nan")


def ratios_section(cold: Sequence[ColdStart], rows: Sequence[Row], lengths: Sequence[int],
                   concurrencies: Sequence[int]) -> str:
    out: list[str] = []
    on = [r.ready_s for r in cold if r.ui]
    off = [r.ready_s for r in cold if not r.ui]
    if on and off:
        out.append(f"cold start, UI on / UI off (median ready): {fmt(ratio(median(on), median(off)), 2)}x "
                   f"(+{fmt(median(on) - median(off), 2)} s for the Gradio UI)")
        out.append("")
    low, high = min(concurrencies), max(concurrencies)
    body = []
    for chars in lengths:
        base, busy, direct = (find_row(rows, "api", chars, low), find_row(rows, "api", chars, high),
                              find_row(rows, "direct", chars, 1))
        cells = [str(chars)]
        if base and busy and high != low:
            cells += [fmt(ratio(busy.throughput(), base.throughput()), 2),
                      fmt(ratio(percentile(busy.latencies_ms(), 50), percentile(base.latencies_ms(), 50)), 2)]
        else:
            cells += ["n/a", "n/a"]
        if base and direct and low == 1:
            api_p50 = percentile(base.latencies_ms(), 50)
            synth_p50 = percentile([s.synth_s * 1000.0 for s in base.good], 50)
            direct_p50 = percentile(direct.latencies_ms(), 50)
            outside = percentile([(s.latency_s - s.synth_s) * 1000.0 for s in base.good], 50)
            cells += [fmt(ratio(api_p50, direct_p50), 2), fmt(ratio(synth_p50, direct_p50), 2), fmt(outside, 1)]
        else:
            cells += ["n/a", "n/a", "n/a"]
        body.append(cells)
    headers = ["chars", f"req/s c{high}/c{low}", f"p50 c{high}/c{low}", "API/direct p50",
               "server synth/direct p50", "API - synth p50 ms"]
    out.append(format_table(headers, body, left=0))
    return "\n".join(out)


FOOTNOTES = """\
Notes
 [1] API latency is measured by the client from sending the request to having the whole body. It includes
     JSON parsing, waiting on the server's single inference thread, splitting the text into sentence chunks
     of at most TTS_CHUNK_CHARS (300) characters that are synthesized one by one with 0.12 s of silence in
     between, the hard audio checks, WAV (PCM_16) encoding and the HTTP transfer (~88 kB per audio second).
     The direct call is one engine.synthesize() on the whole text in this process, on a dedicated thread
     like the server's inference thread: no chunking, no checks, no encoding, no HTTP. "server synth/direct"
     isolates chunking (+ the 0.12 s gaps); "API - synth" is the rest (HTTP, parsing, queue wait, the audio
     checks, encoding, transfer).
 [2] RTF server = X-Synthesis-Seconds / X-Audio-Duration (synthesis only); RTF wall = client latency /
     audio duration (includes queueing at concurrency > 1). Below 1 is faster than real time.
 [3] p50/p95 are linearly interpolated over the ok requests of a row; with 20 or fewer requests the p95
     is close to the maximum. req/s = ok requests / row wall time. At concurrency 1 every API request is
     paired with a direct call on the same text right before or after it (alternating), so API/direct
     compares like with like under changing background load; there req/s = requests / summed latency.
 [4] The server runs all synthesis on one inference thread, so concurrent requests queue: concurrency
     raises throughput only by overlapping HTTP, encoding and transfer with synthesis. The client, the
     server and the in-process engine share this machine's CPU cores (only one of them works at a time
     in the concurrency-1 rows).
 [5] Streamed: the client's time to the first audio bytes and to the last. The server synthesizes the
     first sentence on its own and sends it as soon as it passed the audio checks; "unstreamed" is the
     concurrency-1 API row's p50 for the same input size (the whole WAV body)."""


# -- driver ---------------------------------------------------------------------------------------------
def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def requests_for(chars: int, per_row: int) -> int:
    return max(1, per_row // 2) if chars >= LONG_INPUT_CHARS else per_row


def resolve_model_dir(raw: str) -> Path:
    path = Path(raw)
    if not path.is_absolute() and not path.exists():
        path = REPO / path
    return path.resolve()


def parse_ints(raw: str) -> tuple[int, ...]:
    return tuple(int(x) for x in raw.split(",") if x.strip())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=DEFAULT_MODEL_DIR, help="model directory (default %(default)s)")
    parser.add_argument("--requests", type=int, default=None,
                        help="requests per row (inputs of 1,000+ chars get half); default 20, 5 with --quick")
    parser.add_argument("--quick", action="store_true", help="fewer requests and one cold start per config (~30 s)")
    parser.add_argument("--cold-runs", type=int, default=None,
                        help="cold starts per server config (default 3, 1 with --quick)")
    parser.add_argument("--lengths", type=parse_ints, default=DEFAULT_LENGTHS, help="input sizes, e.g. 20,200,1000")
    parser.add_argument("--concurrency", type=parse_ints, default=DEFAULT_CONCURRENCY, help="e.g. 1,4")
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout in seconds")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds a server may take to be ready")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 5 if args.quick else 20
    if args.cold_runs is None:
        args.cold_runs = 1 if args.quick else 3
    if args.requests < 1 or args.cold_runs < 1 or not args.lengths or not args.concurrency:
        parser.error("--requests, --cold-runs, --lengths and --concurrency must be positive")
    if min(args.lengths) < 2 or max(args.lengths) > 4096:
        parser.error("--lengths must lie in [2, 4096] (the server's default TTS_MAX_INPUT_CHARS)")
    if min(args.concurrency) < 1:
        parser.error("--concurrency values must be at least 1")
    return args


def run_rows(server: ServerProcess, model: str, source: TextSource, args: argparse.Namespace,
             direct: DirectEngine) -> list[Row]:
    rows: list[Row] = []
    for chars in args.lengths:
        for concurrency in args.concurrency:
            n = requests_for(chars, args.requests)
            texts = source.texts(chars, n, f"c{concurrency}")
            if concurrency == 1:
                progress(f"API + direct engine, paired: {chars} chars x {n} at concurrency 1")
                rows.extend(run_paired_rows(server.url, model, texts, direct, args.timeout))
            else:
                progress(f"API: {chars} chars x {n} at concurrency {concurrency}")
                rows.append(run_api_row(server.url, model, texts, concurrency, args.timeout))
            errors = [e for r in rows[-2:] for e in r.errors] if concurrency == 1 else rows[-1].errors
            if errors:
                progress(f"  {len(errors)} failed: {sorted(set(errors))}")
    return rows


def load_average() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def report(args: argparse.Namespace, model_dir: Path, info: dict[str, object], cold: list[ColdStart],
           rows: list[Row], streamed: dict[int, list[StreamSample]], elapsed_s: float, load_before: str) -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    per_row = ", ".join(f"{c} chars: {requests_for(c, args.requests)}" for c in args.lengths)
    versions = sorted({s.model_version for r in rows if r.mode == "api" for s in r.good})
    lines = [
        "voxfleet TTS service benchmark",
        f"model     {info.get('name')} {info.get('model_version')} (sha256 {str(info.get('model_sha256'))[:12]}, "
        f"engine {info.get('engine')}, device {info.get('device')}, {info.get('sample_rate')} Hz) from {model_dir}",
        f"machine   {platform.node()}, {cpus} CPU cores usable, Python {platform.python_version()}, "
        f"{platform.platform(terse=True)}",
        f"load avg  1/5/15 min: {load_before} at start, {load_average()} at end "
        "(load from other processes skews every figure)",
        f"settings  127.0.0.1, TTS_MAX_QUEUE=64, response_format wav, voice {VOICE}, "
        f"requests per row ({per_row}), timeout {args.timeout:.0f} s{', --quick' if args.quick else ''}",
        f"answers   X-Model-Version seen: {', '.join(versions) or 'none'}",
        "",
        f"Cold start: spawn of `python -m service` to /readyz (polled every {POLL_INTERVAL_S * 1000:.0f} ms)",
        cold_start_table(cold),
        "",
        "Latency and throughput (API rows: server with the UI on, the default; direct: in-process engine) [1-4]",
        latency_table(rows),
        "",
        "Streamed (stream_format \"audio\", pcm, concurrency 1): time to first audio next to the whole answer [5]",
        streaming_table(streamed, rows),
        "",
        "Ratios",
        ratios_section(cold, rows, args.lengths, args.concurrency),
        "",
        FOOTNOTES,
        "",
        f"total benchmark time {elapsed_s:.1f} s",
    ]
    failures = [(r, e) for r in rows for e in r.errors]
    if failures:
        lines.insert(-1, f"FAILED requests: {len(failures)} "
                         f"({', '.join(sorted({f'{r.chars}c/c{r.concurrency}: {e}' for r, e in failures}))})")
    return "\n".join(lines)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the finally that stops the server


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    model_dir = resolve_model_dir(args.model_dir)
    if not (model_dir / "manifest.json").is_file():
        print(f"error: {model_dir} is not a model directory; build one with "
              f"`python -m models build v1.3.0 --out build/models`", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    started, load_before = time.perf_counter(), load_average()
    source = TextSource()
    server: ServerProcess | None = None
    direct = DirectEngine(model_dir)
    with tempfile.TemporaryDirectory(prefix="voxfleet-bench-") as log_dir:
        try:
            cold, server = measure_cold_starts(model_dir, args.cold_runs, Path(log_dir), args.start_timeout,
                                               keep_last=True)
            assert server is not None
            info = server_info(server.url)
            progress("loading the direct engine; untimed warm-up calls (API and direct, one per size)")
            direct.load()
            warm_api(server.url, str(info["name"]), source, args.lengths, args.timeout)
            for chars in args.lengths:
                direct.synthesize(source.texts(chars, 1, "warm-direct")[0])
            rows = run_rows(server, str(info["name"]), source, args, direct)
            streamed = run_stream_rows(server.url, str(info["name"]), source, args.lengths, args.requests,
                                       args.timeout)
        except ServerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            if server is not None:
                server.stop()
            direct.stop()
    rows.sort(key=lambda r: (r.chars, r.mode != "api", r.concurrency))
    print(report(args, model_dir, info, cold, rows, streamed, time.perf_counter() - started, load_before))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM; the server was stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
