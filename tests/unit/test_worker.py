from __future__ import annotations

import functools
import threading
import time

import pytest

from service.worker import Abandoned, InferenceWorker, Job, QueueFullError, QueueTimeoutError

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


# ---- work nobody waits for is not done -----------------------------------------------------


def recording_worker(max_queue: int = 3) -> tuple[InferenceWorker, list[str]]:
    drops: list[str] = []
    return InferenceWorker(max_queue=max_queue, on_drop=drops.append), drops


def test_an_abandoned_queued_job_never_runs_and_frees_its_place_at_once():
    worker, drops = recording_worker()
    ran: list[int] = []
    running, release = hold(worker)
    gone = [worker.submit(functools.partial(ran.append, i)) for i in range(worker.max_queue)]
    for job in gone:
        job.abandon()  # the clients gave up
    assert worker.queued == 0
    live = [worker.submit(functools.partial(ran.append, 10 + i)) for i in range(worker.max_queue)]  # no 429
    release.set()
    for job in live:
        job.result(WAIT)
    worker.stop(timeout=WAIT)
    assert ran == [10, 11, 12] and all(job.cancelled() for job in gone)
    assert drops == ["cancelled"] * 3


def test_a_job_that_waited_past_its_deadline_is_dropped_unstarted():
    worker, drops = recording_worker()
    ran: list[str] = []
    running, release = hold(worker)
    stale = worker.submit(lambda: ran.append("stale"), expires_at=time.monotonic() + 0.05)
    fresh = worker.submit(lambda: ran.append("fresh"), expires_at=time.monotonic() + WAIT)
    time.sleep(0.1)
    release.set()
    with pytest.raises(QueueTimeoutError):
        stale.result(WAIT)
    fresh.result(WAIT)
    worker.stop(timeout=WAIT)
    assert ran == ["fresh"] and drops == ["expired"]


def test_expired_jobs_do_not_hold_places_in_a_full_queue():
    worker, drops = recording_worker(max_queue=2)
    running, release = hold(worker)
    stale = [worker.submit(lambda: "stale", expires_at=time.monotonic() + 0.05) for _ in range(2)]
    time.sleep(0.1)
    fresh = worker.submit(lambda: "fresh")  # the queue held two, both past their deadline
    release.set()
    assert fresh.result(WAIT) == "fresh"
    assert all(isinstance(job.exception(WAIT), QueueTimeoutError) for job in stale)
    worker.stop(timeout=WAIT)
    assert drops == ["expired", "expired"]


def test_an_abandoned_running_job_stops_at_its_next_step():
    worker, drops = recording_worker()
    steps: list[int] = []
    first_step_done, go_on = threading.Event(), threading.Event()

    def chunked(job: Job[str]) -> str:
        for i in range(10):
            job.stop_if_abandoned()
            steps.append(i)
            first_step_done.set()
            assert go_on.wait(WAIT)
        return "all ten"

    job = worker.submit_job(chunked)
    assert first_step_done.wait(WAIT)
    job.abandon()
    go_on.set()
    with pytest.raises(Abandoned):
        job.result(WAIT)
    assert worker.submit(lambda: "next").result(WAIT) == "next"
    worker.stop(timeout=WAIT)
    assert steps == [0] and drops == ["stopped"]
