"""Prometheus metrics of one server process, on a registry of its own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # the *_created series only add noise to every scrape

# Speech takes from tens of milliseconds (a word on a GPU) to a minute (4,096
# characters on a busy host); the buckets span that, finely at the short end, where a
# canary's median is compared with stable's from these buckets (evidence: prometheus).
LATENCY_BUCKETS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75,
                   1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("tts_requests", "HTTP requests by route and status", ["route", "status"], registry=r)
        self.latency = Histogram("tts_request_duration_seconds", "Speech request latency by status class "
                                 "(2xx, 4xx, 5xx)", ["route", "outcome"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.service = Histogram("tts_request_service_seconds", "Speech request latency less the time it waited "
                                 "in the inference queue: the version's own cost, whatever the host's load",
                                 ["route", "outcome"], buckets=LATENCY_BUCKETS, registry=r)
        self.first_audio = Histogram("tts_time_to_first_audio_seconds", "Streamed speech: from the request's "
                                     "arrival to its first audio ready to send (queue wait included)",
                                     buckets=LATENCY_BUCKETS, registry=r)
        self.first_audio_service = Histogram("tts_time_to_first_audio_service_seconds", "Streamed speech's time "
                                             "to first audio less its wait in the inference queue: the version's "
                                             "own, whatever the host's load", buckets=LATENCY_BUCKETS, registry=r)
        self.audio_seconds = Counter("tts_audio_seconds", "Seconds of audio produced", registry=r)
        self.rtf = Histogram("tts_real_time_factor", "Synthesis time divided by audio duration",
                             buckets=RTF_BUCKETS, registry=r)
        self.in_flight = Gauge("tts_in_flight_requests", "Speech requests being handled", registry=r)
        self.queued = Gauge("tts_queued_requests", "Speech requests waiting for the engine", registry=r)
        self.rejected = Counter("tts_rejected_requests", "Requests refused before synthesis", ["reason"], registry=r)
        self.dropped = Counter("tts_dropped_requests", "Accepted requests whose synthesis was dropped because "
                               "nobody waited for it: cancelled (never started), stopped (at a chunk "
                               "boundary), expired (waited in the queue past its deadline)", ["reason"], registry=r)
        self.ready = Gauge("tts_ready", "1 once the model is loaded and warm-up passed", registry=r)
        self.model = Info("tts_model", "The model this process serves", registry=r)

    def bind(self, queued: Callable[[], float], ready: Callable[[], float], model_labels: dict[str, str]) -> None:
        self.queued.set_function(queued)
        self.ready.set_function(ready)
        self.model.info(model_labels)

    def observe_synthesis(self, audio_seconds: float, synth_seconds: float) -> None:
        self.audio_seconds.inc(audio_seconds)
        if audio_seconds > 0:
            self.rtf.observe(synth_seconds / audio_seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
