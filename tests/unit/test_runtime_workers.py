"""Several inference workers in one process (one per GPU on a multi-GPU host): each has
its engine and queue, requests go to the least busy, readiness waits for all of them."""

from __future__ import annotations

import threading
import time

import pytest

from service.config import Settings
from service.runtime import ModelRuntime, worker_devices
from service.worker import QueueFullError


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
