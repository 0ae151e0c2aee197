"""Several inference workers in one process (one per GPU on a multi-GPU host): each has
its engine and queue, requests go to the least busy, readiness waits for all of them."""

from __future__ import annotations

import threading
import time

import pytest

from service.config import Settings
from service.runtime import ModelRuntime, worker_devices
from service.worker import Abandoned, QueueFullError, QueueTimeoutError


def ready_runtime(model_dir, workers: int, max_queue: int = 2) -> ModelRuntime:
    runtime = ModelRuntime(Settings(model_dir=model_dir, workers=workers, max_queue=max_queue))
    for future in runtime.start():
        future.result(timeout=120)
    assert runtime.readiness() == (True, "ready")
    return runtime


def test_one_worker_per_gpu_and_one_on_a_cpu_host():
    assert worker_devices(0) == ["cpu"]  # no GPU here
    assert worker_devices(3) == ["cpu", "cpu", "cpu"]


def test_requests_spread_over_the_workers_and_each_queue_is_bounded(model_dirs):
    runtime = ready_runtime(model_dirs["v1.3.0"], workers=2, max_queue=1)
    try:
        threads: set[str] = set()
        gate = threading.Event()
        def hold() -> None:
            threads.add(threading.current_thread().name)
            gate.wait(30)

        for worker in runtime.workers:  # hold both workers busy
            worker.submit(hold)
        time.sleep(0.2)
        queued = [runtime.submit("Hello there.", "alloy", 1.0) for _ in range(2)]  # one waits on each
        assert sorted(w.queued for w in runtime.workers) == [1, 1]
        with pytest.raises(QueueFullError, match="on each of 2 workers"):
            runtime.submit("One too many.", "alloy", 1.0)
        gate.set()
        assert all(f.result(timeout=60).audio.size > 0 for f in queued)
        assert threads == {"inference-0", "inference-1"}
    finally:
        runtime.stop()


def test_a_synthesis_nobody_waits_for_stops_at_the_next_chunk_and_queued_ones_never_start(model_dirs):
    runtime = ready_runtime(model_dirs["v1.3.0"], workers=1, max_queue=4)
    engine, calls = runtime.engines[0], []
    first_chunk, go_on = threading.Event(), threading.Event()
    real = engine.synthesize

    def slow_chunks(text: str, voice: str, speed: float, seed: int | None = None):
        calls.append(text)
        first_chunk.set()
        go_on.wait(30)
        return real(text, voice, speed, seed)

    engine.synthesize = slow_chunks  # type: ignore[method-assign]
    try:
        running = runtime.submit("Every host waits for the canary. " * 40, "alloy", 1.0)  # 5 chunks
        queued = [runtime.submit(f"Queued request {i}.", "alloy", 1.0) for i in range(3)]
        assert first_chunk.wait(30)
        for job in (running, *queued):
            job.abandon()  # their clients left
        go_on.set()
        assert isinstance(running.exception(30), Abandoned)
        assert len(calls) == 1 and all(job.cancelled() for job in queued)
        exposition = runtime.metrics.exposition().decode()
        assert 'tts_dropped_requests_total{reason="stopped"} 1.0' in exposition
        assert 'tts_dropped_requests_total{reason="cancelled"} 3.0' in exposition
        assert runtime.submit("Still serving.", "alloy", 1.0).result(60).audio.size > 0
    finally:
        go_on.set()
        runtime.stop()


def test_a_synthesis_that_waited_past_the_queue_deadline_is_dropped(model_dirs):
    runtime = ModelRuntime(Settings(model_dir=model_dirs["v1.3.0"], workers=1, max_queue=2, queue_timeout_s=1))
    for future in runtime.start():
        future.result(timeout=120)
    gate = threading.Event()
    try:
        runtime.workers[0].submit(lambda: gate.wait(30))  # the worker is busy for 1.5 s
        stale = runtime.submit("Nobody waits this long.", "alloy", 1.0)
        time.sleep(1.5)
        gate.set()
        assert isinstance(stale.exception(30), QueueTimeoutError)
        assert 'tts_dropped_requests_total{reason="expired"} 1.0' in runtime.metrics.exposition().decode()
    finally:
        gate.set()
        runtime.stop()



def test_held_workers_count_their_hold_in_the_synthesis_time(model_dirs, monkeypatch):
    """TTS_WORKER_CPUS (the sandbox's GPU stand-in): each worker's engine is held, and the
    synthesis time reported (X-Synthesis-Seconds, the real-time factor) includes the hold."""
    from service.engines import held

    holds: list[float] = []
    real_sleep = time.sleep
    def recorded_sleep(seconds: float) -> None:
        holds.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(held.time, "sleep", recorded_sleep)
    runtime = ModelRuntime(Settings(model_dir=model_dirs["v1.3.0"], workers=2, worker_cpus=0.05))
    try:
        for future in runtime.start():
            future.result(timeout=120)
        assert all(isinstance(engine, held.HeldEngine) for engine in runtime.engines)
        holds.clear()
        result = runtime.synthesize("Hello there.", runtime.manifest.voices[0], 1.0)
        assert holds and result.synth_seconds >= sum(holds), (holds, result.synth_seconds)
    finally:
        runtime.stop()
