"""The Prometheus evidence source's pure half: its PromQL, reading answers back, and the
judge on totals (error rate and shed from counts, latency from histograms)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from canary.decisions.policy import parse_policy
from canary.decisions.prometheus_evidence import (
    PrometheusDataError,
    VersionTotals,
    both,
    first_audio_query,
    judge_totals,
    latency_query,
    quantile,
    status_query,
    totals_from,
    unavailable,
)
from service.metrics import LATENCY_BUCKETS

POLICY = parse_policy({"min_requests": 50, "latency_settle_s": 0})


def histogram(samples: list[float]) -> tuple[tuple[float, float], ...]:
    return tuple((le, float(sum(s <= le for s in samples))) for le in (*LATENCY_BUCKETS, math.inf))


def totals(version: str, ok: int, errors: int = 0, shed: int = 0, bad_input: int = 0,
           latency_s: float = 0.045) -> VersionTotals:
    spread = [latency_s * (0.8 + 0.4 * i / max(1, ok - 1)) for i in range(ok)]
    return VersionTotals(version, {200: ok, 500: errors, 429: shed, 400: bad_input}, histogram(spread))


def test_queries_join_each_process_to_the_version_it_serves():
    q = status_query(["v1.3.0", "v1.2.0"], 12.2)
    assert q.startswith('sum by (version, status) (increase(tts_requests_total{route="speech"}[13s])')
    assert 'group_left (version) max by (instance, version) (tts_model_info{version=~"v1\\\\.3\\\\.0|v1\\\\.2\\\\.0"})' in q
    assert 'outcome="2xx"' in latency_query(["v1.3.0"], 60) and "[60s]" in latency_query(["v1.3.0"], 60)


def test_answers_are_read_into_totals_and_a_silent_version_has_none():
    status = [{"metric": {"version": "v1.3.0", "status": "200"}, "value": [1, "40.2"]},
              {"metric": {"version": "v1.3.0", "status": "500"}, "value": [1, "2"]},
              {"metric": {"version": "v1.3.0", "status": "429"}, "value": [1, "1"]},
              {"metric": {"version": "v1.3.0", "status": "415"}, "value": [1, "7"]}]
    latency = [{"metric": {"version": "v1.3.0", "le": le}, "value": [1, v]}
               for le, v in (("0.05", "30"), ("0.1", "39.6"), ("+Inf", "40.2"))]
    got = totals_from(status, latency, ["v1.3.0", "v1.2.0"])
    new = got["v1.3.0"]
    assert (new.trials, new.errors, new.shed, new.client_faults, new.successes) == (42, 2, 1, 7, 40)
    assert new.latency_buckets == ((0.05, 30.0), (0.1, 39.6), (math.inf, 40.2))
    assert got["v1.2.0"].trials == 0 and got["v1.2.0"].latency_buckets == ()


def test_an_answer_without_the_labels_it_needs_is_refused_by_name():
    with pytest.raises(PrometheusDataError, match="'version' label"):
        totals_from([{"metric": {"status": "200"}, "value": [1, "3"]}], [], ["v1.3.0"])


def test_quantiles_interpolate_inside_buckets_as_histogram_quantile_does():
    buckets = ((0.1, 50.0), (0.2, 100.0), (math.inf, 100.0))
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.5, ((0.1, 0.0), (math.inf, 0.0))) is None


def test_a_version_twice_as_slow_fails_on_its_histogram_and_an_equal_one_passes():
    stable = totals("v1.2.0", 400)
    slow = judge_totals(totals("v1.3.0", 60, latency_s=0.09), stable, POLICY)
    assert slow.verdict == "fail" and "canary slower" in slow.summary and slow.summary.startswith("fail (prometheus)")
    same = judge_totals(totals("v1.3.0", 60), stable, POLICY)
    assert same.verdict == "pass", same.summary


def test_errors_fail_and_client_faults_neither_fail_nor_dilute():
    stable = totals("v1.2.0", 400)
    assert judge_totals(totals("v1.3.0", 40, errors=20), stable, POLICY).verdict == "fail"
    flooded = judge_totals(totals("v1.3.0", 60, bad_input=5000), stable, POLICY)
    assert flooded.verdict == "pass" and flooded.canary_n == 60


def test_no_data_is_never_a_pass():
    assert judge_totals(totals("v1.3.0", 0), totals("v1.2.0", 400), POLICY).verdict == "inconclusive"
    assert judge_totals(totals("v1.3.0", 60), totals("v1.2.0", 0), POLICY).verdict == "inconclusive"
    down = unavailable("no Prometheus evidence: Prometheus at http://p:9090 is not reachable")
    assert down.verdict == "inconclusive" and "http://p:9090" in down.summary


def test_both_sources_a_fail_from_either_fails_and_a_pass_needs_both():
    stable = totals("v1.2.0", 400)
    passing, failing = judge_totals(totals("v1.3.0", 60), stable, POLICY), judge_totals(
        totals("v1.3.0", 60, latency_s=0.2), stable, POLICY)
    down = unavailable("no Prometheus evidence")
    assert both(passing, failing).verdict == "fail"
    assert both(passing, down).verdict == "inconclusive"
    assert both(passing, passing).verdict == "pass"
    assert any(m.metric == "prometheus latency" for m in both(passing, failing).metrics)


def test_a_canary_busier_than_stable_is_compared_by_time_in_service():
    stable = totals("v1.2.0", 400)
    queued = totals("v1.3.0", 60, latency_s=0.2)  # what clients waited: four times stable's...
    busy = VersionTotals("v1.3.0", queued.by_status, queued.latency_buckets, totals("v1.3.0", 60).latency_buckets)
    verdict = judge_totals(busy, stable, POLICY)  # ...but the same time in service
    assert verdict.verdict == "pass" and "median in service" in verdict.summary, verdict.summary
    assert judge_totals(queued, stable, POLICY).verdict == "fail"  # no service histogram: response times


def test_streamed_answers_first_audio_is_judged_from_its_histogram_once_there_are_enough():
    def with_first_audio(version: str, answers: int, seconds: float) -> VersionTotals:
        spread = [seconds * (0.8 + 0.4 * i / max(1, answers - 1)) for i in range(answers)]
        return replace(totals(version, 200), first_audio_buckets=histogram(spread))

    stable = with_first_audio("v1.2.0", 200, 0.05)
    later = judge_totals(with_first_audio("v1.3.0", 40, 0.2), stable, POLICY)
    first_audio = next(m for m in later.metrics if m.metric == "first_audio")
    assert later.verdict == "fail" and first_audio.verdict == "fail", later.summary
    assert "first audio later" in first_audio.reason and first_audio.numbers["median_ratio"] > 3
    same = judge_totals(with_first_audio("v1.3.0", 40, 0.05), stable, POLICY)
    assert next(m for m in same.metrics if m.metric == "first_audio").verdict == "pass"
    few = judge_totals(with_first_audio("v1.3.0", 10, 0.9), stable, POLICY)
    assert "first_audio" not in {m.metric for m in few.metrics}  # not judged yet; the rest as before
    assert "tts_time_to_first_audio_service_seconds_bucket[60s]" in first_audio_query(["v1.3.0"], 60)
