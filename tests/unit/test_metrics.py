from __future__ import annotations

import pytest

from service.metrics import ServiceMetrics

SHA = "ab" * 32


@pytest.fixture
def text() -> str:
    m = ServiceMetrics()
    m.bind(queued=lambda: 3, ready=lambda: 1, model_labels={"version": "v1.3.0", "sha256": SHA})
    m.requests.labels(route="speech", status="200").inc()
    m.latency.labels(route="speech", outcome="2xx").observe(0.3)
    m.observe_synthesis(audio_seconds=2.0, synth_seconds=0.5)
    m.observe_synthesis(audio_seconds=0.0, synth_seconds=0.1)  # no audio: counted, no RTF sample
    m.in_flight.inc()
    return m.exposition().decode()


def sample(text: str, series: str) -> float:
    """The value of the one line that starts with `series` followed by a space."""
    [line] = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize("series, value", [
    ('tts_requests_total{route="speech",status="200"}', 1),
    ('tts_request_duration_seconds_bucket{le="0.25",outcome="2xx",route="speech"}', 0),
    ('tts_request_duration_seconds_bucket{le="0.5",outcome="2xx",route="speech"}', 1),
    ('tts_request_duration_seconds_bucket{le="60.0",outcome="2xx",route="speech"}', 1),
    ('tts_request_duration_seconds_bucket{le="+Inf",outcome="2xx",route="speech"}', 1),
    ("tts_audio_seconds_total", 2.0),
    ("tts_real_time_factor_count", 1),
    ("tts_real_time_factor_sum", 0.25),
    ("tts_in_flight_requests", 1),
    ("tts_queued_requests", 3),
    ("tts_ready", 1),
    (f'tts_model_info{{sha256="{SHA}",version="v1.3.0"}}', 1),
])
def test_exposition_has_the_series(text, series, value):
    assert sample(text, series) == pytest.approx(value)


def test_latency_buckets_reach_a_minute_and_no_created_series(text):
    buckets = [line for line in text.splitlines() if line.startswith("tts_request_duration_seconds_bucket")]
    assert [b.split('le="')[1].split('"')[0] for b in buckets][-2:] == ["60.0", "+Inf"]
    assert "_created" not in text


def test_each_instance_has_its_own_registry():
    a, b = ServiceMetrics(), ServiceMetrics()
    a.audio_seconds.inc(5)
    assert sample(b.exposition().decode(), "tts_audio_seconds_total") == 0
