from __future__ import annotations

import functools
import threading

import pytest

from service.worker import InferenceWorker, QueueFullError

WAIT = 10  # seconds; a safety net against hanging, never a timing assertion


@pytest.fixture
def worker():
    w = InferenceWorker(max_queue=3)
    yield w
    w.stop()


def hold(worker: InferenceWorker):
    """Submit a job that blocks the worker; returns (future, release event) once it runs."""
    started, release = threading.Event(), threading.Event()

    def job():
        started.set()
        assert release.wait(WAIT)
        return "held"

    future = worker.submit(job)
    assert started.wait(WAIT)
    return future, release


def test_results_are_delivered(worker):
    assert worker.submit(lambda: 6 * 7).result(WAIT) == 42


def test_exceptions_are_delivered_and_the_worker_keeps_going(worker):
    def boom():
        raise KeyError("no such voice")

    with pytest.raises(KeyError, match="no such voice"):
        worker.submit(boom).result(WAIT)
    assert worker.submit(lambda: "still alive").result(WAIT) == "still alive"


def test_jobs_run_in_submission_order_on_one_thread_that_is_not_the_caller():
    worker = InferenceWorker(max_queue=20)
    runs: list[tuple[int, int]] = []
    def record(i: int) -> None:
        runs.append((i, threading.get_ident()))

    futures = [worker.submit(functools.partial(record, i)) for i in range(20)]
    for f in futures:
        f.result(WAIT)
    worker.stop()
    assert [i for i, _ in runs] == list(range(20))
    threads = {ident for _, ident in runs}
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_the_queue_refuses_at_exactly_max_queue_waiting_jobs(worker):
    running, release = hold(worker)
    assert worker.busy
    waiting = [worker.submit(lambda i=i: i) for i in range(worker.max_queue)]
    assert worker.queued == worker.max_queue
    with pytest.raises(QueueFullError, match="3 waiting"):
        worker.submit(lambda: "one too many")
    release.set()
    assert running.result(WAIT) == "held"
    assert [f.result(WAIT) for f in waiting] == [0, 1, 2]
    assert worker.submit(lambda: "room again").result(WAIT) == "room again"


def test_stop_finishes_queued_jobs_and_ends_the_thread():
    worker = InferenceWorker(max_queue=2)
    thread = worker.submit(threading.current_thread).result(WAIT)
    running, release = hold(worker)
    queued = worker.submit(lambda: "queued")
    release.set()
    worker.stop(timeout=WAIT)
    assert not thread.is_alive()
    assert (running.result(0), queued.result(0)) == ("held", "queued")


@pytest.mark.parametrize("max_queue", [0, -1])
def test_max_queue_must_be_positive(max_queue):
    with pytest.raises(ValueError, match="max_queue"):
        InferenceWorker(max_queue=max_queue)
