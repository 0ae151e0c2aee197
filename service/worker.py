"""One dedicated inference thread with a bounded queue in front of it.

Every engine call (load, warm-up, synthesis) runs on this thread, which is what
CUDA-graph engines need and keeps GPU memory use flat. When the queue is full,
`submit` refuses at once, so the API can answer 429 instead of piling up memory or
leaving a client hanging.

Work nobody waits for is not done: a job whose client left (`Job.abandon`) is dropped
if it has not started, and told to stop if it has (the job checks `Job.abandoned`
between its steps); a job that waited in the queue past its deadline is dropped when
its turn comes. Abandoned and expired jobs leave the queue at once, so they never hold
a place that a live request is refused (429) for.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
DropHook = Callable[[str], None]  # called with "cancelled", "expired" or "stopped"


class QueueFullError(RuntimeError):
    """The inference queue is at capacity."""


class QueueTimeoutError(RuntimeError):
    """The job waited in the queue past its deadline and was dropped, never started."""


class Abandoned(RuntimeError):
    """Raised by a running job that stopped early because nobody waits for it any more."""


class Job(Future[T]):
    """A queued call's future, plus what the worker needs to skip or stop it."""

    def __init__(self, expires_at: float | None = None) -> None:
        super().__init__()
        self.expires_at = expires_at  # time.monotonic() after which it is not started
        self.queued_at = time.monotonic()
        self.started_at: float | None = None  # time.monotonic() when the worker began it
        self._abandoned = threading.Event()

    def abandon(self) -> None:
        """Nobody waits for the result: drop it if queued, stop it at its next step if running."""
        self._abandoned.set()
        self.cancel()  # succeeds only while it is still queued

    @property
    def abandoned(self) -> bool:
        return self._abandoned.is_set()

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now > self.expires_at

    @property
    def queue_wait_s(self) -> float:
        """How long it waited for the worker (so far, while it still waits)."""
        return max(0.0, (self.started_at or time.monotonic()) - self.queued_at)

    def stop_if_abandoned(self) -> None:
        """For the job's own code, between steps (chunks)."""
        if self.abandoned:
            raise Abandoned("the client no longer waits for this synthesis")


class InferenceWorker:
    def __init__(self, max_queue: int, name: str = "inference", on_drop: DropHook | None = None) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.max_queue = max_queue
        self._jobs: collections.deque[tuple[Job[Any], Callable[[Job[Any]], Any]] | None] = collections.deque()
        self._ready = threading.Condition()
        self._busy = threading.Event()
        self._stopped = False
        self._on_drop = on_drop or (lambda reason: None)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        """Jobs waiting that someone still waits for."""
        with self._ready:
            return sum(1 for job in self._jobs if job is not None and not job[0].abandoned)

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    @property
    def load(self) -> int:
        """Work ahead of a new job: the waiting ones and the running one."""
        return self.queued + (1 if self.busy else 0)

    def submit(self, fn: Callable[[], T], expires_at: float | None = None) -> Job[T]:
        return self.submit_job(lambda _job: fn(), expires_at)

    def submit_job(self, fn: Callable[[Job[T]], T], expires_at: float | None = None) -> Job[T]:
        """Queue `fn(job)`; `fn` may call `job.stop_if_abandoned()` between its steps."""
        if self._stopped:
            raise RuntimeError("inference worker is stopped")
        job: Job[T] = Job(expires_at)
        with self._ready:
            self._drop_dead_locked(time.monotonic())
            if len(self._jobs) >= self.max_queue:
                raise QueueFullError(f"inference queue is full ({self.max_queue} waiting)")
            self._jobs.append((job, fn))
            self._ready.notify()
        return job

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped = True
        with self._ready:
            self._jobs.append(None)
            self._ready.notify()
        self._thread.join(timeout)

    def _drop_dead_locked(self, now: float) -> None:
        """Take abandoned and expired jobs out of the queue (the lock is held)."""
        live: collections.deque[tuple[Job[Any], Callable[[Job[Any]], Any]] | None] = collections.deque()
        for entry in self._jobs:
            if entry is not None and self._dropped(entry[0], now):
                continue
            live.append(entry)
        self._jobs = live

    def _dropped(self, job: Job[Any], now: float) -> bool:
        """Whether `job` is not to run (and is now settled); reports why."""
        if job.abandoned:
            self._on_drop("cancelled")
            return True
        if job.expired(now):
            if job.set_running_or_notify_cancel():
                job.set_exception(QueueTimeoutError("waited in the inference queue past its deadline"))
            self._on_drop("expired")
            return True
        return False

    def _next(self) -> tuple[Job[Any], Callable[[Job[Any]], Any]] | None:
        with self._ready:
            while not self._jobs:
                self._ready.wait()
            return self._jobs.popleft()

    def _run(self) -> None:
        while True:
            entry = self._next()
            if entry is None:
                return
            job, fn = entry
            if self._dropped(job, time.monotonic()) or not job.set_running_or_notify_cancel():
                continue
            self._busy.set()
            job.started_at = time.monotonic()
            try:
                job.set_result(fn(job))
            except Abandoned as exc:
                self._on_drop("stopped")
                job.set_exception(exc)
            except BaseException as exc:  # delivered to the waiting request
                job.set_exception(exc)
            finally:
                self._busy.clear()
