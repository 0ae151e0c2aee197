"""The model runtime: a verified model, its engines, and the inference threads that drive them.

One inference worker per device (`TTS_WORKERS`: one per GPU the container was given,
one on a CPU host), each with its own engine and bounded queue; a request goes to the
worker with the least work. Start-up order: the model directory is verified
synchronously (a missing or corrupt file stops the server before it listens), then load
and warm-up run on every inference thread while the HTTP server already answers
/healthz. The runtime is ready only after every worker's warm-up audio passed the hard
audio checks.
"""

from __future__ import annotations

import enum
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from service.audio_budget import CHUNK_GAP_S, chunk_chars_at
from service.audio_checks import AudioLimits, AudioReport, check_audio
from service.config import Settings
from service.engines import Engine, EngineError, create_engine
from service.engines.base import MAX_SEED, WARMUP_TEXT, synthesis_seed
from service.engines.held import HeldEngine
from service.metrics import ServiceMetrics
from service.model_dir import ModelManifest, verify_model_dir
from service.text import split_first_sentence
from service.text_support import speakable_chunks, unspeakable
from service.worker import InferenceWorker, Job, QueueFullError

__all__ = ["CHUNK_GAP_S", "AudioSink", "BadAudioError", "ModelRuntime", "NotReadyError", "Synthesis"]

# Called on the inference thread with each piece of a streamed answer as soon as it passed
# the checks (the gap before a sentence is part of that sentence's piece).
AudioSink = Callable[[np.ndarray], None]


class Phase(enum.Enum):
    STARTING = "starting"
    LOADING = "loading model"
    WARMING = "warming up"
    READY = "ready"
    FAILED = "failed"


def worker_devices(workers: int) -> list[str]:
    """One device per inference worker: the GPUs this process sees, or the CPU."""
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        gpus = 0
    count = workers or max(gpus, 1)
    return [f"cuda:{i % gpus}" if gpus else "cpu" for i in range(count)]


class NotReadyError(RuntimeError):
    """The model is not loaded and warmed up (yet, or at all)."""


class BadAudioError(RuntimeError):
    """The engine produced audio that fails the hard checks."""

    def __init__(self, report: AudioReport) -> None:
        super().__init__(f"synthesized audio failed checks: {report.reason()}")
        self.report = report


@dataclass(frozen=True)
class Synthesis:
    audio: np.ndarray
    sample_rate: int
    synth_seconds: float
    report: AudioReport
    queue_wait_s: float = 0.0  # how long it waited for a worker before synthesis began
    seed: int = 0  # what seeded it (the client's, or the request's own): the same seed, the same audio

    @property
    def duration_s(self) -> float:
        return self.audio.size / self.sample_rate


class ModelRuntime:
    def __init__(self, settings: Settings, metrics: ServiceMetrics | None = None,
                 manifest: ModelManifest | None = None) -> None:
        self.settings = settings
        # `manifest`: a model already verified (service.model_source), so large weights are hashed once.
        self.manifest: ModelManifest = manifest if manifest is not None else verify_model_dir(settings.model_dir)
        devices = worker_devices(settings.workers)
        self.engines: list[Engine] = [create_engine(self.manifest, device) for device in devices]
        if settings.worker_cpus:  # the sandbox: each worker one unit's speed, as a GPU would be
            self.engines = [HeldEngine(engine, settings.worker_cpus) for engine in self.engines]
        self.engine = self.engines[0]
        self.metrics = metrics or ServiceMetrics()
        self.workers = [InferenceWorker(settings.max_queue, name=f"inference-{i}", on_drop=self._dropped)
                        for i in range(len(devices))]
        self._loaded = 0
        self.limits = AudioLimits(sample_rate=self.manifest.sample_rate)
        self._phase = Phase.STARTING
        self._reason = "model load not started"
        self._lock = threading.Lock()
        self.warmup_report: AudioReport | None = None
        self.ready_at: float | None = None
        self._avg_synth_s = 1.0
        self.metrics.bind(
            queued=lambda: sum(w.queued for w in self.workers),
            ready=lambda: 1.0 if self.ready else 0.0,
            model_labels={"version": self.manifest.version, "sha256": self.manifest.sha256,
                          "engine": self.manifest.engine, "name": self.manifest.name},
        )

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> list[Future[None]]:
        """Load and warm up on every inference thread; returns when that is queued."""
        return [w.submit(functools.partial(self._load_and_warm_up, engine))
                for w, engine in zip(self.workers, self.engines)]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def _set(self, phase: Phase, reason: str) -> None:
        with self._lock:
            if self._phase is not Phase.FAILED:  # one worker's failure is the runtime's
                self._phase, self._reason = phase, reason

    def _load_and_warm_up(self, engine: Engine) -> None:
        try:
            self._set(Phase.LOADING, "loading model")
            engine.load()
            self._set(Phase.WARMING, "warming up")
            started = time.perf_counter()
            audio = engine.warm_up()
            elapsed = time.perf_counter() - started
            report = check_audio(audio, engine.describe().sample_rate, WARMUP_TEXT, self.limits)
            self.warmup_report = report
            if not report.passed:
                self._set(Phase.FAILED, f"warm-up audio failed checks: {report.reason()}")
                return
            self._avg_synth_s = max(elapsed, 0.01)
            with self._lock:
                self._loaded += 1
                if self._loaded < len(self.engines) or self._phase is Phase.FAILED:
                    return
            self.ready_at = time.time()
            self._set(Phase.READY, "ready")
        except EngineError as exc:
            self._set(Phase.FAILED, f"model load failed: {exc}")
        except Exception as exc:  # an engine bug must still show in /readyz
            self._set(Phase.FAILED, f"model load failed: {type(exc).__name__}: {exc}")

    @property
    def ready(self) -> bool:
        return self._phase is Phase.READY

    def readiness(self) -> tuple[bool, str]:
        with self._lock:
            return self._phase is Phase.READY, self._reason

    @property
    def device(self) -> str:
        return self.engine.describe().device

    def _dropped(self, reason: str) -> None:
        self.metrics.dropped.labels(reason).inc()

    def retry_after_s(self) -> int:
        """How long a refused client should wait: the shortest queue ahead at recent speed."""
        return max(1, int(round((min(w.queued for w in self.workers) + 1) * self._avg_synth_s)))

    # -- synthesis ---------------------------------------------------------------
    def submit(self, text: str, voice: str, speed: float, seed: int | None = None,
               sink: AudioSink | None = None) -> Job[Synthesis]:
        """Queue a synthesis. Raises NotReadyError, or QueueFullError when full.

        The job is dropped if it waits longer than `queue_deadline_s` before it starts;
        `Job.abandon()` drops it from the queue, or stops it at the next chunk. With a
        `sink`, the answer is streamed: its first sentence is a chunk of its own, and each
        chunk goes to the sink as soon as it passed the checks."""
        ready, reason = self.readiness()
        if not ready:
            raise NotReadyError(reason)
        expires_at = time.monotonic() + self.settings.queue_deadline_s
        for worker, engine in sorted(zip(self.workers, self.engines), key=lambda we: we[0].load):
            try:
                return worker.submit_job(functools.partial(self._synthesize, engine, text, voice, speed, seed,
                                                           sink), expires_at)
            except QueueFullError:
                continue
        raise QueueFullError(f"inference queue is full ({self.settings.max_queue} waiting on each of "
                             f"{len(self.workers)} workers)")

    def synthesize(self, text: str, voice: str, speed: float, seed: int | None = None) -> Synthesis:
        """Blocking form of submit(), for callers on their own threads (the UI)."""
        job = self.submit(text, voice, speed, seed)
        try:
            return job.result(timeout=self.settings.request_timeout_s)
        finally:
            job.abandon()  # a no-op once done; after a timeout, nobody waits for it

    def _chunks(self, engine: Engine, text: str, speed: float, first_sentence_alone: bool = False) -> list[str]:
        """The chunks to synthesize: shorter at low speed, so one engine call's audio (and memory) stays bounded."""
        support, chunk_chars = engine.text_support(), self.settings.chunk_chars
        chunks = (speakable_chunks(text, support, chunk_chars_at(chunk_chars, speed))
                  or speakable_chunks(text, support, chunk_chars))  # the request rules checked these
        if first_sentence_alone and chunks:
            first = split_first_sentence(chunks[0])
            if all(unspeakable(part, support) is None for part in first):
                chunks[:1] = first
        return chunks

    def _synthesize(self, engine: Engine, text: str, voice: str, speed: float, seed: int | None,
                    sink: AudioSink | None, job: Job[Synthesis]) -> Synthesis:
        """`seed` (None: from the request) seeds each chunk, the i-th with seed + i."""
        seed = synthesis_seed(text, voice, speed) if seed is None else seed
        waited = job.queue_wait_s
        started = time.perf_counter()
        rate = engine.describe().sample_rate
        gap = np.zeros(int(CHUNK_GAP_S * rate), dtype=np.float32)
        parts: list[np.ndarray] = []
        chunks = self._chunks(engine, text, speed, first_sentence_alone=sink is not None)
        for i, chunk in enumerate(chunks):  # the request rules made sure there is one; the others are skipped
            job.stop_if_abandoned()  # the client left or timed out: not one more chunk for nobody
            if parts:
                parts.append(gap)
            audio = np.asarray(engine.synthesize(chunk, voice, speed, (seed + i) & MAX_SEED), dtype=np.float32)
            chunk_report = check_audio(audio, rate, chunk, self.limits)
            if not chunk_report.passed:  # one silent sentence must not hide in a long answer
                raise BadAudioError(chunk_report)
            parts.append(audio)
            if sink is not None:
                sink(np.concatenate([gap, audio]) if i else audio)
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        parts.clear()  # one copy of the request's audio from here on
        elapsed = time.perf_counter() - started
        report = chunk_report if len(chunks) == 1 else check_audio(audio, rate, " ".join(chunks), self.limits)
        if not report.passed:
            raise BadAudioError(report)
        self._avg_synth_s = 0.8 * self._avg_synth_s + 0.2 * elapsed
        self.metrics.observe_synthesis(audio.size / rate, elapsed)
        return Synthesis(audio, rate, elapsed, report, waited, seed)
