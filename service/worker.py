"""One dedicated inference thread with a bounded queue in front of it.

Every engine call (load, warm-up, synthesis) runs on this thread, which is what
CUDA-graph engines need and keeps GPU memory use flat. When the queue is full,
`submit` refuses at once, so the API can answer 429 instead of piling up memory or
leaving a client hanging.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class QueueFullError(RuntimeError):
    """The inference queue is at capacity."""


class InferenceWorker:
    def __init__(self, max_queue: int, name: str = "inference") -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.max_queue = max_queue
        self._jobs: queue.Queue[tuple[Future, Callable[[], Any]] | None] = queue.Queue(maxsize=max_queue)
        self._busy = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return self._jobs.qsize()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    @property
    def load(self) -> int:
        """Work ahead of a new job: the waiting ones and the running one."""
        return self.queued + (1 if self.busy else 0)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        if self._stopped:
            raise RuntimeError("inference worker is stopped")
        future: Future[T] = Future()
        try:
            self._jobs.put_nowait((future, fn))
        except queue.Full:
            raise QueueFullError(f"inference queue is full ({self.max_queue} waiting)") from None
        return future

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped = True
        try:
            self._jobs.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn = job
            if not future.set_running_or_notify_cancel():
                continue
            self._busy.set()
            try:
                future.set_result(fn())
            except BaseException as exc:  # delivered to the waiting request
                future.set_exception(exc)
            finally:
                self._busy.clear()
