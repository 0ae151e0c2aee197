from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.decisions.access_log import Attempt, attempts_to, parse_lines
from canary.decisions.judge import (
    betainc,
    clopper_pearson,
    cp_lower,
    cp_upper,
    judge,
    latency_alpha,
    mann_whitney_greater,
    normal_sf,
    requests_to_clear,
    sprt_error_attribution,
)
from canary.decisions.policy import Policy

CANARY, STABLE = "10.0.0.2:6006", "10.0.0.3:6006"
T0 = datetime(2025, 11, 25, 18, 0, tzinfo=UTC)
POLICY = Policy()  # min_requests 200, max_error_rate 5%, max_p95_ms 30 s, latency_max_ratio 1.5


def attempt(address: str, status: int | None, seconds: float | None, i: int = 0) -> Attempt:
    is_error = status is None or status >= 500
    return Attempt(f"r{i}", T0, address, status, seconds, is_error, True, "/v1/audio/speech", shed=status == 429)


def sample(seed: int, address: str, n: int, errors: int = 0, error_rate: float = 0.0,
           median_s: float = 0.4, sigma: float = 0.3) -> list[Attempt]:
    """n attempts: `errors` 502s (or each a 502 with probability error_rate), the rest
    200s with log-normal latency."""
    rng = np.random.default_rng(seed)
    failed = np.zeros(n, dtype=bool)
    failed[:errors] = True
    failed |= rng.random(n) < error_rate
    rng.shuffle(failed)
    times = median_s * np.exp(sigma * rng.standard_normal(n))
    return [attempt(address, 502 if bad else 200, 0.01 if bad else round(float(t), 3), i)
            for i, (bad, t) in enumerate(zip(failed, times))]


def metric(verdict, name: str):
    return next(m for m in verdict.metrics if m.metric == name)


# ---- special functions against known values -------------------------------------------


def test_clopper_pearson_known_values():
    # Two-sided 95% exact interval for 5/100 (textbook value).
    assert clopper_pearson(5, 100) == pytest.approx((0.0164, 0.1128), abs=1e-4)
    # 0/300: two-sided 95% upper bound 1 - 0.025^(1/300) ≈ 0.0122; the one-sided 95% bound
    # that the judge uses for "pass" is 1 - 0.05^(1/300) ≈ 0.00994 ≈ 3/300 (rule of three).
    assert clopper_pearson(0, 300) == pytest.approx((0.0, 0.01222), abs=1e-5)
    assert cp_upper(0, 300, 0.05) == pytest.approx(1 - 0.05 ** (1 / 300), rel=1e-9)
    assert cp_upper(0, 300, 0.05) < 0.01
    # n/n: the one-sided 99% lower bound is 0.01^(1/n).
    assert cp_lower(5, 5, 0.01) == pytest.approx(0.01 ** (1 / 5), rel=1e-9)
    assert clopper_pearson(31, 100) == pytest.approx((0.2213, 0.4103), abs=1e-4)


@pytest.mark.parametrize(("k", "n", "p"), [(0, 5, 0.5), (3, 20, 0.1), (10, 50, 0.3), (40, 100, 0.45),
                                           (7, 1000, 0.005), (480, 1000, 0.5)])
def test_betainc_matches_the_binomial_cdf(k: int, n: int, p: float):
    cdf = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))
    assert 1 - betainc(k + 1, n - k, p) == pytest.approx(cdf, rel=1e-9, abs=1e-15)


def test_bounds_are_fast_and_sane_for_large_n():
    lo, hi = clopper_pearson(500, 100_000)
    assert 0.0045 < lo < 0.005 < hi < 0.0055


def test_normal_tail():
    assert normal_sf(1.959964) == pytest.approx(0.025, rel=1e-5)
    assert normal_sf(-2.326348) == pytest.approx(0.99, rel=1e-6)
    assert normal_sf(10) == pytest.approx(7.6199e-24, rel=1e-4)


def test_mann_whitney_matches_the_textbook_example():
    # SciPy's documentation example: U = 17, asymptotic two-sided p = 0.1113 → one-sided 0.0557.
    u, z, p = mann_whitney_greater([19, 22, 16, 29, 24], [20, 11, 17, 12])
    assert u == 17 and z == pytest.approx(1.5922, abs=1e-4) and p == pytest.approx(0.11134688653314041 / 2, rel=1e-9)
    u, _, p = mann_whitney_greater([1.0, 1.0, 1.0], [1.0, 1.0])
    assert (u, p) == (3.0, 1.0)


def test_sprt_boundaries_and_direction():
    result = sprt_error_attribution(30, 100, 5, 1000)
    assert result is not None and result.decision == "h1"
    assert result.upper == pytest.approx(math.log(0.95 / 0.01)) and result.lower == pytest.approx(math.log(0.05 / 0.99))
    assert result.pi == pytest.approx(100 / 1100) and result.pi1 == pytest.approx(2 * result.pi / (1 + result.pi))
    assert sprt_error_attribution(30, 2000, 30, 2000).decision == "h0"  # type: ignore[union-attr]
    assert sprt_error_attribution(1, 10, 0, 0) is None


def test_rule_of_three():
    assert requests_to_clear(0, 0.01) == 299  # 0 errors in 299 requests: one-sided 95% upper < 1%
    assert requests_to_clear(0, 0.05) == 59
    needed = requests_to_clear(3, 0.05)
    assert needed is not None and cp_upper(3, needed, 0.05) <= 0.05 < cp_upper(3, needed - 1, 0.05)
    assert requests_to_clear(0, 0.0) is None


def test_latency_alpha_spends_at_most_alpha_over_any_number_of_looks():
    assert latency_alpha(0) == latency_alpha(1) == 0.005
    assert latency_alpha(2) < latency_alpha(1)
    assert sum(latency_alpha(k) for k in range(1, 10_000)) < 0.01


# ---- verdicts -----------------------------------------------------------------------------


def test_clear_fail():
    verdict = judge(sample(1, CANARY, 100, errors=30), sample(2, STABLE, 1000, errors=5), POLICY)
    assert verdict.verdict == "fail" and (verdict.canary_n, verdict.stable_n) == (100, 1000)
    errors = metric(verdict, "error_rate")
    assert errors.verdict == "fail" and errors.numbers["sprt_decision"] == "h1"
    assert errors.numbers["lower_bound_99"] > POLICY.max_error_rate
    assert verdict.summary.startswith("fail: canary error rate 30.0% (30/100, 95% CI 21.2–40.0%) > cap 5.0%")
    assert "(99% lower bound 19.8%); and exceeds stable's 0.50% (5/1000): SPRT log-LR" in verdict.summary


def test_canary_worse_than_stable_fails_even_under_the_cap():
    verdict = judge(sample(3, CANARY, 2000, errors=60), sample(4, STABLE, 20_000, errors=40), POLICY)
    errors = metric(verdict, "error_rate")
    assert verdict.verdict == "fail" and errors.numbers["lower_bound_99"] < POLICY.max_error_rate
    assert errors.reason.startswith("canary error rate 3.0% (60/2000, 95% CI 2.3–3.8%) exceeds stable's 0.20% "
                                    "(40/20000): SPRT log-LR")


def test_clear_pass():
    canary = sample(5, CANARY, 2000, error_rate=0.005)
    stable = sample(6, STABLE, 2000, error_rate=0.005)
    verdict = judge(canary, stable, POLICY, looks=10)
    assert verdict.verdict == "pass", verdict.summary
    assert all(m.verdict == "pass" for m in verdict.metrics)
    assert metric(verdict, "error_rate").numbers["more_requests_needed"] == 0
    latency = metric(verdict, "latency")
    assert 0.9 < latency.numbers["median_ratio"] < 1.1 and latency.numbers["p_value"] > 0.01
    assert verdict.summary.startswith("pass: canary error rate")


def test_too_little_data_is_inconclusive():
    verdict = judge(sample(7, CANARY, 10), sample(8, STABLE, 1000), POLICY)
    errors = metric(verdict, "error_rate")
    assert verdict.verdict == "inconclusive" and errors.verdict == "inconclusive"
    assert "min_requests 200" in errors.reason and errors.numbers["more_requests_needed"] == 190
    assert "min_requests" in verdict.summary


def test_needed_requests_follow_the_rule_of_three():
    policy = Policy(max_error_rate=0.01, min_requests=50)
    verdict = judge(sample(9, CANARY, 100), sample(10, STABLE, 1000), policy)
    errors = metric(verdict, "error_rate")
    assert errors.verdict == "inconclusive" and errors.numbers["more_requests_needed"] == 199
    assert "needs 199 more requests" in errors.reason


def test_all_errors_fail_below_min_requests():
    verdict = judge(sample(11, CANARY, 5, errors=5), sample(12, STABLE, 50), POLICY)
    assert verdict.verdict == "fail" and metric(verdict, "error_rate").verdict == "fail"
    lenient = Policy(max_error_rate=0.9)  # a cap the bound cannot clear yet: all-errors still fails
    assert judge(sample(11, CANARY, 5, errors=5), [], lenient).verdict == "fail"
    assert judge(sample(13, CANARY, 4, errors=4), sample(14, STABLE, 50), POLICY).verdict == "inconclusive"


def test_no_canary_traffic_is_inconclusive():
    verdict = judge([], sample(15, STABLE, 1000), POLICY)
    assert verdict.verdict == "inconclusive" and verdict.canary_n == 0
    assert metric(verdict, "error_rate").reason == "no canary requests"
    assert "no canary requests" in verdict.summary
    shed_only = [attempt(CANARY, 429, 0.001, i) for i in range(30)]
    assert metric(judge(shed_only, [], POLICY), "error_rate").reason == "no canary requests (30 shed with 429)"


def test_latency_regression_fails():
    canary = sample(16, CANARY, 300, median_s=1.2)
    verdict = judge(canary, sample(17, STABLE, 300, median_s=0.4), POLICY, looks=20)
    latency = metric(verdict, "latency")
    assert verdict.verdict == "fail" and latency.verdict == "fail"
    assert latency.numbers["median_ratio"] == pytest.approx(3.0, rel=0.15)
    assert latency.numbers["p_value"] < latency.numbers["alpha"] == latency_alpha(20)
    assert latency.numbers["common_language_effect"] > 0.95
    assert "canary slower" in latency.reason and "Mann–Whitney" in verdict.summary


def test_small_latency_difference_within_the_ratio_passes():
    verdict = judge(sample(18, CANARY, 2000, median_s=0.48), sample(19, STABLE, 2000, median_s=0.4), POLICY)
    latency = metric(verdict, "latency")
    assert latency.numbers["p_value"] < 1e-6 and latency.verdict == "pass"


def test_slower_but_not_significant_is_inconclusive():
    verdict = judge(sample(20, CANARY, 25, median_s=0.8, sigma=1.5), sample(21, STABLE, 25, median_s=0.4, sigma=1.5),
                    Policy(min_requests=20), looks=30)
    latency = metric(verdict, "latency")
    assert latency.numbers["median_ratio"] > 1.5 and latency.verdict == "inconclusive"
    assert "not significant" in latency.reason


def test_p95_cap():
    policy = Policy(max_p95_ms=1000)
    canary = sample(22, CANARY, 300, median_s=0.4) + [attempt(CANARY, 200, 4.0, i) for i in range(30)]
    stable = sample(23, STABLE, 300, median_s=0.4) + [attempt(STABLE, 200, 4.0, i) for i in range(30)]
    latency = metric(judge(canary, stable, policy), "latency")
    assert latency.verdict == "fail" and latency.numbers["p95_s"] == 4.0
    assert "canary p95 4.000 s > cap 1.000 s" in latency.reason
    # p95 needs 20 samples; fewer is inconclusive, not a fail on one slow request.
    few = [attempt(CANARY, 200, 4.0)] + sample(24, CANARY, 10)
    assert metric(judge(few, stable, policy), "latency").verdict == "inconclusive"


def test_no_baseline_latency_is_inconclusive():
    verdict = judge(sample(25, CANARY, 500), sample(26, STABLE, 10), POLICY)
    latency = metric(verdict, "latency")
    assert latency.verdict == "inconclusive" and latency.reason.startswith("no baseline")
    assert verdict.verdict == "inconclusive"


def test_retried_canary_failures_from_the_log_count_against_the_canary():
    rows = []
    for i in range(300):
        failed = i % 10 == 0  # the canary fails 10% of its attempts; nginx retries them on stable
        rows.append(json.dumps({
            "time": "2025-11-25T18:01:02+00:00", "request_id": f"id{i}", "method": "POST",
            "uri": "/v1/audio/speech", "status": 200, "request_time": 0.3,
            "upstream_addr": f"{CANARY}, {STABLE}" if failed else (CANARY if i % 2 else STABLE),
            "upstream_status": "502, 200" if failed else "200",
            "upstream_response_time": "0.010, 0.300" if failed else "0.300", "model_version": "v1.2.0"}))
    requests, malformed = parse_lines(rows)
    assert malformed == 0 and not any(r.client_error for r in requests)
    verdict = judge(attempts_to(requests, [CANARY]), attempts_to(requests, [STABLE]), Policy(min_requests=50))
    errors = metric(verdict, "error_rate")
    assert (errors.numbers["n"], errors.numbers["errors"], errors.numbers["stable_errors"]) == (180, 30, 0)
    assert verdict.verdict == "fail"


# ---- properties ---------------------------------------------------------------------------

statuses = st.sampled_from([200, 200, 200, 200, 201, 400, 429, 500, 502, 504, None])
observations = st.lists(st.tuples(statuses, st.floats(0.0, 40.0, allow_nan=False)), max_size=250)


def as_attempts(address: str, rows: list[tuple[int | None, float]]) -> list[Attempt]:
    return [attempt(address, status, round(seconds, 3), i) for i, (status, seconds) in enumerate(rows)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([200, 200, 200, 429, 502, None]), st.floats(0.0, 29.0)), max_size=400),
       st.integers(1, 300), st.integers(1, 20))
def test_identical_samples_never_fail(rows: list[tuple[int | None, float]], min_requests: int, looks: int):
    policy = Policy(min_requests=min_requests)
    canary, stable = as_attempts(CANARY, rows), as_attempts(STABLE, rows)
    verdict = judge(canary, stable, policy, looks)
    errors = metric(verdict, "error_rate")
    assert errors.numbers.get("sprt_decision") != "h1" and metric(verdict, "latency").verdict != "fail"
    error_rate = errors.numbers["errors"] / max(1, errors.numbers["n"])
    if error_rate <= policy.max_error_rate:  # within the absolute cap: nothing may fail
        assert verdict.verdict != "fail", verdict.summary


@settings(max_examples=200, deadline=None)
@given(observations, observations, st.integers(1, 400), st.integers(0, 50))
def test_never_pass_below_min_requests(canary_rows, stable_rows, min_requests: int, looks: int):
    verdict = judge(as_attempts(CANARY, canary_rows), as_attempts(STABLE, stable_rows),
                    Policy(min_requests=min_requests), looks)
    for outcome in (verdict.verdict, *(m.verdict for m in verdict.metrics)):
        assert outcome != "pass" or verdict.canary_n >= min_requests
    assert verdict.canary_n <= len(canary_rows)


@settings(max_examples=200, deadline=None)
@given(observations, observations, st.integers(0, 50))
def test_numbers_are_json_serialisable(canary_rows, stable_rows, looks: int):
    verdict = judge(as_attempts(CANARY, canary_rows), as_attempts(STABLE, stable_rows), Policy(min_requests=20), looks)
    for m in verdict.metrics:
        json.dumps(m.numbers, allow_nan=False)
        assert all(isinstance(v, (int, float, str, type(None))) and not isinstance(v, np.generic)
                   for v in m.numbers.values())
    assert verdict.summary.startswith(f"{verdict.verdict}: ") and "\n" not in verdict.summary


def shedding(address: str, n: int, shed_every: int | None) -> list[Attempt]:
    return [attempt(address, 429 if shed_every and i % shed_every == 0 else 200, 0.2, i) for i in range(n)]


def test_a_canary_that_sheds_more_at_the_same_load_fails():
    verdict = judge(shedding(CANARY, 400, 5), shedding(STABLE, 400, None), POLICY, load_ratio=1.0)
    shed = metric(verdict, "shed")
    assert verdict.verdict == "fail" and shed.verdict == "fail"
    assert "canary shed 20.0% (80/400), stable 0.0% (0/400)" in shed.reason and "×1.00" in shed.reason


def test_a_canary_that_sheds_more_under_more_load_is_only_inconclusive():
    shed = metric(judge(shedding(CANARY, 400, 5), shedding(STABLE, 400, None), POLICY, load_ratio=1.5), "shed")
    assert shed.verdict == "inconclusive" and "under ×1.50 stable's load per unit of capacity" in shed.reason


def test_shedding_like_stable_passes_and_too_few_is_inconclusive():
    assert metric(judge(shedding(CANARY, 400, 20), shedding(STABLE, 400, 20), POLICY), "shed").verdict == "pass"
    few = metric(judge(shedding(CANARY, 10, None), shedding(STABLE, 400, None), POLICY), "shed")
    assert few.verdict == "inconclusive" and "only 10 canary attempts" in few.reason


# ---- client faults never count against (or for) a version ---------------------------------

CLIENT_FAULTS = (400, 413, 415, 422)


def hostile(address: str, n: int) -> list[Attempt]:
    """n fast refusals of one client's bad input: 400, 413, 415, 422 in turn."""
    return [attempt(address, CLIENT_FAULTS[i % len(CLIENT_FAULTS)], 0.002, 10_000 + i) for i in range(n)]


def test_a_hostile_stream_of_4xx_on_the_canary_never_fails_it():
    canary = sample(1, CANARY, 400) + hostile(CANARY, 2000)
    verdict = judge(canary, sample(2, STABLE, 400), POLICY)
    errors = metric(verdict, "error_rate")
    assert (errors.numbers["n"], errors.numbers["errors"]) == (400, 0)  # the 4xx are neither errors nor trials
    assert metric(verdict, "shed").numbers["n"] == 400
    assert verdict.verdict == "pass", verdict.summary


def test_a_canary_that_only_saw_bad_input_is_inconclusive_never_failed_nor_passed():
    verdict = judge(hostile(CANARY, 2000), sample(2, STABLE, 400), POLICY)
    assert verdict.verdict == "inconclusive", verdict.summary
    assert metric(verdict, "error_rate").reason == "no canary requests"


def test_4xx_padding_cannot_dilute_a_broken_canarys_errors():
    canary = sample(3, CANARY, 200, errors=30) + hostile(CANARY, 5000)  # 15% 502s, hidden in 5,200 attempts
    errors = metric(judge(canary, sample(4, STABLE, 400), POLICY), "error_rate")
    assert (errors.numbers["n"], errors.numbers["errors"]) == (200, 30)
    assert errors.verdict == "fail"


def test_client_faults_from_the_access_log_are_not_errors():
    statuses = ["400", "413", "415", "422", "499", "429", "502", "-"]
    rows = [json.dumps({"request_id": f"r{i}", "time": T0.isoformat(), "uri": "/v1/audio/speech", "method": "POST",
                        "status": int(code) if code != "-" else 502, "upstream_addr": CANARY,
                        "upstream_status": code, "upstream_response_time": "0.004"})
            for i, code in enumerate(statuses)]
    requests, malformed = parse_lines(rows)
    assert malformed == 0
    faults = [(a.status, a.client_fault, a.is_error, a.shed) for r in requests for a in r.attempts]
    assert faults == [(400, True, False, False), (413, True, False, False), (415, True, False, False),
                      (422, True, False, False), (499, True, False, False), (429, False, False, True),
                      (502, False, True, False), (None, False, True, False)]


def at(attempts: list[Attempt], seconds: float) -> list[Attempt]:
    """The same attempts, made `seconds` after T0."""
    return [replace(a, time=T0 + timedelta(seconds=seconds)) for a in attempts]


def test_a_fresh_canarys_slow_first_answers_are_not_judged_for_latency_but_its_errors_are():
    # a cold start: the first 300 answers x4 slower and 3 of them failed; afterwards as fast as stable
    cold = at(sample(30, CANARY, 300, errors=3, median_s=0.4), 5)
    warm = at(sample(31, CANARY, 250, median_s=0.1), 40)
    stable = at(sample(32, STABLE, 600, median_s=0.1), 5) + at(sample(33, STABLE, 600, median_s=0.1), 40)
    settle = T0 + timedelta(seconds=30)
    judged = judge(cold + warm, stable, POLICY, looks=5, canary_from=settle, stable_from=settle)
    latency, errors = metric(judged, "latency"), metric(judged, "error_rate")
    assert latency.verdict == "pass" and latency.numbers["settling_excluded"] == 300
    assert latency.numbers["n"] == 250 and latency.numbers["stable_n"] == 600
    assert errors.numbers["n"] == 550 and errors.numbers["errors"] == 3  # every request counts for errors
    unsettled = judge(cold + warm, stable, POLICY, looks=5)
    assert metric(unsettled, "latency").verdict == "fail"  # the same answers, judged from the first
    early = metric(judge(cold, stable, POLICY, looks=1, canary_from=settle, stable_from=settle), "latency")
    assert early.verdict == "inconclusive" and early.reason.startswith("the stage is settling")


def test_a_slower_median_fails_only_when_it_is_also_slower_in_absolute_terms():
    canary, stable = sample(34, CANARY, 400, median_s=0.016, sigma=0.1), sample(35, STABLE, 400, median_s=0.01,
                                                                               sigma=0.1)
    tiny = metric(judge(canary, stable, POLICY, looks=5), "latency")  # x1.6, but 6 ms
    assert tiny.numbers["median_ratio"] > POLICY.latency_max_ratio and tiny.verdict == "pass"
    assert "within 20 ms of stable's" in tiny.reason
    strict = replace(POLICY, latency_min_effect_ms=0)
    assert metric(judge(canary, stable, strict, looks=5), "latency").verdict == "fail"


def queued(attempts: list[Attempt], wait_s: float) -> list[Attempt]:
    """The same answers, each having waited `wait_s` of its response time in its server's queue."""
    return [replace(a, response_time_s=(a.response_time_s or 0) + wait_s, queue_wait_s=wait_s) for a in attempts]


def test_latency_compares_time_in_service_so_a_busier_canary_host_is_not_called_slower():
    canary, stable = sample(36, CANARY, 400, median_s=0.05, sigma=0.1), sample(37, STABLE, 400, median_s=0.05,
                                                                               sigma=0.1)
    busy = metric(judge(queued(canary, 0.1), queued(stable, 0.01), POLICY, looks=5), "latency")
    assert busy.verdict == "pass" and busy.numbers["median_ratio"] < 1.2, busy.reason
    assert busy.numbers["response_median_s"] > 0.14  # what its clients waited, queue included
    assert "median in service" in busy.reason
    slow = sample(38, CANARY, 400, median_s=0.1, sigma=0.1)  # twice the work per request, no queue
    assert metric(judge(queued(slow, 0.0), queued(stable, 0.05), POLICY, looks=5), "latency").verdict == "fail"
    # the p95 cap is on the whole response time: a long queue is still what clients wait
    capped = metric(judge(queued(canary, 40.0), stable, POLICY, looks=5), "latency")
    assert capped.verdict == "fail" and "p95" in capped.reason


# ---- time to first audio of streamed answers ------------------------------------------


def streamed(attempts: list[Attempt], first_audio_s: float, every: int = 1) -> list[Attempt]:
    """Every `every`-th answer streamed, its first audio after about `first_audio_s`."""
    return [replace(a, first_audio_s=round(first_audio_s * (0.8 + 0.4 * (i % 7) / 6), 3))
            if i % every == 0 and a.is_success else a for i, a in enumerate(attempts)]


def test_a_later_first_audio_fails_though_the_whole_answers_are_as_fast():
    canary = streamed(sample(40, CANARY, 400, median_s=0.8), first_audio_s=0.3, every=4)
    stable = streamed(sample(41, STABLE, 2000, median_s=0.8), first_audio_s=0.1, every=4)
    verdict = judge(canary, stable, POLICY, looks=3)
    first_audio = metric(verdict, "first_audio")
    assert verdict.verdict == "fail" and first_audio.verdict == "fail", verdict.summary
    assert metric(verdict, "latency").verdict == "pass"
    assert first_audio.numbers["median_ratio"] == pytest.approx(3.0, rel=0.1)
    assert "first audio later" in verdict.summary


def test_first_audio_as_stable_passes_and_queue_wait_is_not_the_versions():
    canary = streamed(sample(42, CANARY, 400), first_audio_s=0.1, every=4)
    canary = [replace(a, first_audio_s=a.first_audio_s + 2.0, queue_wait_s=2.0) if a.first_audio_s else a
              for a in canary]  # the canary's host was busier: its answers queued, then were as quick
    stable = streamed(sample(43, STABLE, 2000), first_audio_s=0.1, every=4)
    first_audio = metric(judge(canary, stable, POLICY, looks=3), "first_audio")
    assert first_audio.verdict == "pass" and first_audio.numbers["n"] == 100, first_audio.reason


def test_first_audio_is_not_judged_until_the_canary_has_enough_streamed_answers():
    stable = streamed(sample(44, STABLE, 2000), first_audio_s=0.1, every=4)
    few = streamed(sample(45, CANARY, 400), first_audio_s=5.0, every=25)  # 16 streamed answers
    assert "first_audio" not in {m.metric for m in judge(few, stable, POLICY).metrics}
    unstreamed_stable = sample(46, STABLE, 2000)
    enough = streamed(sample(45, CANARY, 400), first_audio_s=0.1, every=4)
    no_baseline = metric(judge(enough, unstreamed_stable, POLICY), "first_audio")
    assert no_baseline.verdict == "inconclusive" and "only 0 streamed stable answers" in no_baseline.reason
