"""What a request waited in the inference queue is reported (X-Queue-Seconds, for the
LB's log) and kept out of the time-in-service histogram the judge compares versions by."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.service_client import ready_client


@pytest.fixture(scope="module")
def client(model_dirs):
    with ready_client(model_dirs["v1.3.0"]) as served:
        yield served


def sums(text: str) -> dict[str, float]:
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.endswith("_sum") and s.labels.get("outcome") == "2xx"}


def test_a_request_queued_behind_another_says_how_long_and_is_judged_without_it(client):
    test_client, runtime = client
    alone = test_client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello there."})
    assert alone.status_code == 200 and float(alone.headers["x-queue-seconds"]) < 0.2
    runtime.workers[0].submit(lambda: time.sleep(1.0))  # the only worker is busy for a second
    queued = test_client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello there."})
    assert queued.status_code == 200 and float(queued.headers["x-queue-seconds"]) >= 0.8
    got = sums(test_client.get("/metrics").text)
    whole, in_service = got["tts_request_duration_seconds_sum"], got["tts_request_service_seconds_sum"]
    assert whole - in_service >= 0.8, got
