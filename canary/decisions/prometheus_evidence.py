"""The Prometheus evidence source's pure half: the PromQL it asks, the totals it reads back,
and the same judge's verdict on those totals.

Every service process counts its requests by route and status (`tts_requests_total`) and
times its speech requests by outcome, whole (`tts_request_duration_seconds{outcome}`) and
less their wait in the inference queue (`tts_request_service_seconds`), and
`tts_model_info{version}` names the version it serves. Joined on the scrape target
(`instance`), they give each version's totals over a window, wherever its processes run.

What the access log sees and Prometheus does not: attempts that never reached a process
(connection refused, an LB timeout, a host that is gone). `evidence: both` judges both.
Latency from Prometheus is a histogram, not samples: medians and p95 are interpolated
within buckets (as `histogram_quantile` does), and there is no rank test; a slower median
must also clear `latency_min_effect_ms`, and the controller's `consecutive_failures`
confirms it. Streamed answers' time to first audio less the queue wait
(`tts_time_to_first_audio_service_seconds`) is judged like latency, once the canary has
LATENCY_MIN_N of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canary.decisions.access_log import SHED_STATUSES
from canary.decisions.judge import (
    LATENCY_MIN_N,
    MetricVerdict,
    Verdict,
    judge_error_counts,
    judge_shed_counts,
    overall,
)
from canary.decisions.policy import Policy

SPEECH_ROUTE = "speech"  # the service's route label for /v1/audio/speech


class PrometheusDataError(ValueError):
    """Prometheus answered something this module cannot read; the message says what."""


def _window(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))}s"


def status_query(versions: Sequence[str], window_s: float) -> str:
    """Speech requests by version and status code over the last `window_s` seconds."""
    return (f'sum by (version, status) (increase(tts_requests_total{{route="{SPEECH_ROUTE}"}}[{_window(window_s)}]) '
            f'{_by_version(versions)})')


RESPONSE_HISTOGRAM = "tts_request_duration_seconds"
SERVICE_HISTOGRAM = "tts_request_service_seconds"  # less the queue wait: compared across versions
FIRST_AUDIO_HISTOGRAM = "tts_time_to_first_audio_service_seconds"  # streamed answers, less the queue wait


def latency_query(versions: Sequence[str], window_s: float, histogram: str = RESPONSE_HISTOGRAM) -> str:
    """Successful (2xx) speech requests' `histogram` buckets by version over the window."""
    return (f'sum by (version, le) (increase({histogram}_bucket{{route="{SPEECH_ROUTE}",'
            f'outcome="2xx"}}[{_window(window_s)}]) {_by_version(versions)})')


def first_audio_query(versions: Sequence[str], window_s: float) -> str:
    """Streamed answers' time to first audio (less the queue wait) buckets by version over the window."""
    return (f'sum by (version, le) (increase({FIRST_AUDIO_HISTOGRAM}_bucket[{_window(window_s)}]) '
            f'{_by_version(versions)})')


def _by_version(versions: Sequence[str]) -> str:
    """The join that labels each process's series with the version it serves."""
    # version names are tags ([A-Za-z0-9_.-]): only the dots need escaping in the regex
    wanted = "|".join(v.replace(".", "\\\\.") for v in versions)
    return f'* on (instance) group_left (version) max by (instance, version) (tts_model_info{{version=~"{wanted}"}})'


@dataclass(frozen=True)
class VersionTotals:
    """One version's speech requests over a window: count by status code, and its successful
    answers' histograms as (upper bound, cumulative count), +Inf last: response time, and
    time in service (less the queue wait)."""

    version: str
    by_status: Mapping[int, float]
    latency_buckets: tuple[tuple[float, float], ...] = ()
    service_buckets: tuple[tuple[float, float], ...] = ()
    first_audio_buckets: tuple[tuple[float, float], ...] = ()  # streamed answers only

    def _count(self, wanted: Iterable[int]) -> int:
        codes = set(wanted)
        return round(sum(n for code, n in self.by_status.items() if code in codes))

    @property
    def shed(self) -> int:
        return self._count(SHED_STATUSES)

    @property
    def client_faults(self) -> int:
        return self._count(c for c in self.by_status if 400 <= c < 500 and c not in SHED_STATUSES)

    @property
    def errors(self) -> int:
        return self._count(c for c in self.by_status if c >= 500 and c not in SHED_STATUSES)

    @property
    def trials(self) -> int:
        """Answers that say something about correctness: not shed, not the client's fault."""
        return self._count(c for c in self.by_status if c not in SHED_STATUSES and not 400 <= c < 500)

    @property
    def successes(self) -> int:
        return round(self.latency_buckets[-1][1]) if self.latency_buckets else 0


def totals_from(status_result: Sequence[Mapping[str, Any]], latency_result: Sequence[Mapping[str, Any]],
                versions: Sequence[str], service_result: Sequence[Mapping[str, Any]] = (),
                first_audio_result: Sequence[Mapping[str, Any]] = ()) -> dict[str, VersionTotals]:
    """Each of `versions`' totals from the queries' instant-vector results (a version with
    no series gets empty totals: no data, never a pass)."""
    statuses: dict[str, dict[int, float]] = {v: {} for v in versions}
    for series in status_result:
        version, status = _label(series, "version"), _label(series, "status")
        if version in statuses and status.isdigit():
            statuses[version][int(status)] = statuses[version].get(int(status), 0.0) + _value(series)
    latency, service = _histograms(latency_result, versions), _histograms(service_result, versions)
    first_audio = _histograms(first_audio_result, versions)
    return {v: VersionTotals(v, statuses[v], latency[v], service[v], first_audio[v]) for v in versions}


def _histograms(result: Sequence[Mapping[str, Any]],
                versions: Sequence[str]) -> dict[str, tuple[tuple[float, float], ...]]:
    buckets: dict[str, dict[float, float]] = {v: {} for v in versions}
    for series in result:
        version = _label(series, "version")
        if version in buckets:
            buckets[version][_bound(_label(series, "le"))] = _value(series)
    return {v: _cumulative(buckets[v]) for v in versions}


def _label(series: Mapping[str, Any], name: str) -> str:
    try:
        return str(series["metric"][name])
    except (KeyError, TypeError):
        raise PrometheusDataError(f"a series without a {name!r} label: {str(series)[:200]}") from None


def _value(series: Mapping[str, Any]) -> float:
    try:
        value = float(series["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise PrometheusDataError(f"a series without a numeric value: {str(series)[:200]}") from None
    return 0.0 if math.isnan(value) else max(0.0, value)


def _bound(le: str) -> float:
    try:
        return float(le)  # "+Inf" parses as inf
    except ValueError:
        raise PrometheusDataError(f"a histogram bucket with le={le!r}") from None


def _cumulative(by_bound: Mapping[float, float]) -> tuple[tuple[float, float], ...]:
    """Buckets in order, counts made non-decreasing (increase() extrapolates each bucket
    on its own, so neighbours can disagree by a fraction)."""
    out: list[tuple[float, float]] = []
    running = 0.0
    for bound in sorted(by_bound):
        running = max(running, by_bound[bound])
        out.append((bound, running))
    return tuple(out) if out and math.isinf(out[-1][0]) else ()


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """`histogram_quantile`: linear interpolation inside the bucket holding the q-th answer
    (from 0 in the first bucket; the last finite bound when it falls in +Inf)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return bound if inside <= 0 else lower + (bound - lower) * (rank - below) / inside
        lower, below = bound, count
    return lower


def judge_latency_histograms(canary: VersionTotals, stable: VersionTotals, policy: Policy) -> MetricVerdict:
    cap_s, max_ratio = policy.max_p95_ms / 1000.0, policy.latency_max_ratio
    min_effect_s = policy.latency_min_effect_ms / 1000.0
    n, ns = canary.successes, stable.successes
    numbers: dict[str, Any] = {"n": n, "stable_n": ns, "p95_cap_s": cap_s, "max_ratio": max_ratio,
                               "min_effect_s": min_effect_s, "from": "histogram"}
    if n < LATENCY_MIN_N:
        return MetricVerdict("latency", "inconclusive", f"only {n} successful canary responses in Prometheus; "
                             f"latency is judged from {LATENCY_MIN_N}", numbers)
    # medians of time in service are compared (queueing is the host's load, not the version);
    # the p95 cap is on the whole response time
    compared, stable_compared = canary.service_buckets or canary.latency_buckets, \
        stable.service_buckets or stable.latency_buckets
    median, p95 = quantile(0.5, compared), quantile(0.95, canary.latency_buckets)
    assert median is not None and p95 is not None  # n > 0
    numbers.update(median_s=median, p95_s=p95)
    if p95 > cap_s:
        return MetricVerdict("latency", "fail", f"canary p95 {p95:.3f} s > cap {cap_s:.3f} s "
                             f"({n} responses, from Prometheus' histogram)", numbers)
    if ns < LATENCY_MIN_N:
        return MetricVerdict("latency", "inconclusive", f"no baseline: only {ns} successful stable responses "
                             "in Prometheus", numbers)
    stable_median = quantile(0.5, stable_compared)
    assert stable_median is not None
    ratio = median / max(stable_median, 0.001)
    numbers.update(stable_median_s=stable_median, median_ratio=ratio)
    medians = f"median in service {median:.3f} s vs stable {stable_median:.3f} s (×{ratio:.2f}, histograms"
    if ratio > max_ratio and median - stable_median > min_effect_s:
        return MetricVerdict("latency", "fail", f"canary slower: {medians}) > ×{max_ratio:g}", numbers)
    if canary.trials < policy.min_requests:
        return MetricVerdict("latency", "inconclusive", f"only {canary.trials} canary requests "
                             f"(min_requests {policy.min_requests}); {medians})", numbers)
    return MetricVerdict("latency", "pass", f"latency {medians}) ≤ ×{max_ratio:g} or within "
                         f"{policy.latency_min_effect_ms} ms, p95 {p95:.3f} s ≤ {cap_s:.3f} s", numbers)


def judge_first_audio_histograms(canary: VersionTotals, stable: VersionTotals, policy: Policy) -> MetricVerdict | None:
    """Streamed answers' median time to first audio from the histograms; None (not judged)
    while the canary has fewer than LATENCY_MIN_N of them, as on the access log."""
    n = round(canary.first_audio_buckets[-1][1]) if canary.first_audio_buckets else 0
    ns = round(stable.first_audio_buckets[-1][1]) if stable.first_audio_buckets else 0
    if n < LATENCY_MIN_N:
        return None
    median, max_ratio = quantile(0.5, canary.first_audio_buckets), policy.ttfa_max_ratio
    numbers: dict[str, Any] = {"n": n, "stable_n": ns, "max_ratio": max_ratio, "median_s": median,
                               "from": "histogram"}
    if ns < LATENCY_MIN_N:
        return MetricVerdict("first_audio", "inconclusive", f"no baseline: only {ns} streamed stable answers "
                             "in Prometheus", numbers)
    stable_median = quantile(0.5, stable.first_audio_buckets)
    assert median is not None and stable_median is not None  # n, ns > 0
    ratio = median / max(stable_median, 0.001)
    numbers.update(stable_median_s=stable_median, median_ratio=ratio)
    medians = f"median time to first audio {median:.3f} s vs stable {stable_median:.3f} s (×{ratio:.2f}, histograms)"
    if ratio > max_ratio and median - stable_median > policy.latency_min_effect_ms / 1000.0:
        return MetricVerdict("first_audio", "fail", f"canary's first audio later: {medians} > ×{max_ratio:g}",
                             numbers)
    return MetricVerdict("first_audio", "pass", f"{medians} over {n} streamed answers", numbers)


def judge_totals(canary: VersionTotals, stable: VersionTotals, policy: Policy, load_ratio: float = 1.0) -> Verdict:
    """The judge's verdict on Prometheus' totals: the same error-rate and shed tests as on
    the access log (they need counts only), latency from the histograms."""
    first_audio = judge_first_audio_histograms(canary, stable, policy)
    metrics = (judge_error_counts(canary.trials, canary.errors, stable.trials, stable.errors, canary.shed, policy),
               judge_latency_histograms(canary, stable, policy),
               *([first_audio] if first_audio is not None else []),
               judge_shed_counts(canary.trials + canary.shed, canary.shed, stable.trials + stable.shed, stable.shed,
                                 canary.trials, policy, load_ratio))
    return overall(metrics, "prometheus")


def unavailable(why: str) -> Verdict:
    """No Prometheus data: inconclusive, saying why (never a pass)."""
    numbers = {"n": 0, "stable_n": 0, "source": "prometheus"}
    return overall((MetricVerdict("prometheus", "inconclusive", why, numbers),), "prometheus")


def both(access_log: Verdict, prometheus: Verdict) -> Verdict:
    """`evidence: both`: a fail from either source fails; a pass needs both to pass."""
    metrics = tuple(access_log.metrics) + tuple(
        MetricVerdict(f"prometheus {m.metric}", m.verdict, m.reason, m.numbers) for m in prometheus.metrics)
    merged = overall(metrics, "access log and prometheus")
    return Verdict(merged.verdict, merged.metrics, access_log.canary_n, access_log.stable_n, merged.summary)
