"""Judge a canary against stable from their upstream attempts: pure, numbers in, verdict out.

Two metrics, each pass / fail / inconclusive with the numbers behind it:

- error_rate (per attempt: server faults, i.e. 5xx, connection failures and timeouts, among
  the attempts the server answered for; a client fault, 4xx other than 429, is neither an
  error nor a trial, so a client sending bad input can neither fail a version nor dilute its
  errors; load shed with 429/503 is judged apart, below):
  * absolute cap, exact Clopper–Pearson bounds, one-sided: fail when the 99% lower bound
    is above policy.max_error_rate (from 5 requests on, whatever min_requests says, so a
    broken canary is caught early); pass needs n ≥ min_requests and the 95% upper bound
    ≤ the cap. With no errors the upper bound is 1 − 0.05^(1/n) ≈ 3/n (rule of three).
  * relative to stable, a conditional SPRT on which side each error came from (below).
- latency (2xx attempts only): one-sided Mann–Whitney U (normal approximation, tie and
  continuity corrected) for "canary slower", gated on the ratio of medians; and the
  canary's p95 against policy.max_p95_ms. The comparison is of time in service (the
  response time less what the answer waited in its server's queue, when the server says):
  the plan can give the canary more load per unit of capacity than stable (a 10% step on
  one of three hosts, a 50% one), and queueing behind that load is the host's, not the
  version's; the p95 cap is on the whole response time, what clients wait.

- first audio (streamed 2xx answers only, once the canary has LATENCY_MIN_N of them in the
  window): the same Mann–Whitney test and settling as latency, on nginx's upstream header
  time less the queue wait, gated on policy.ttfa_max_ratio of the medians. A streamed
  answer's headers leave with its first audio, so that is the version's time to first audio.

- shed: the share of attempts each version refused for load (429, 503). A version that
  sheds more than the other (the same SPRT on attribution) while carrying no more load per
  unit of capacity fails; under more load than the other it is only inconclusive.

No data is never a pass: too few requests, no baseline or an unclear result is
inconclusive, and the reason says what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from canary.decisions.access_log import Attempt
from canary.decisions.policy import Policy

Outcome = Literal["pass", "fail", "inconclusive"]

EARLY_FAIL_MIN_N = 5  # a clear error-rate failure may be called from this many requests on
LATENCY_MIN_N = 20  # samples needed on each side for p95 and the normal approximation
LATENCY_ALPHA = 0.01
SPRT_RATIO, SPRT_ALPHA, SPRT_BETA = 2.0, 0.01, 0.05
LOG_RESOLUTION_S = 0.001  # nginx logs upstream times in milliseconds
SHED_LOAD_TOLERANCE = 1.1  # "the same load per unit of capacity", within 10%


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    verdict: Outcome
    reason: str
    numbers: dict[str, Any]  # JSON-serialisable evidence: ints, floats, strings, None


@dataclass(frozen=True)
class Verdict:
    verdict: Outcome
    metrics: tuple[MetricVerdict, ...]
    canary_n: int
    stable_n: int
    summary: str


# ---- distributions ---------------------------------------------------------------------


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal; erfc keeps the far tail accurate."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _beta_cf(a: float, b: float, x: float) -> float:
    # Continued fraction for the incomplete beta (modified Lentz), as in Numerical Recipes
    # §6.4; converges in O(sqrt(max(a, b))) terms for x < (a + 1) / (a + b + 2).
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        for aa in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) for a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def _solve_increasing(f: Any, target: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-14:
            break
    return (lo + hi) / 2


def cp_lower(x: int, n: int, tail: float) -> float:
    """Exact one-sided Clopper–Pearson lower bound: the p with P(X ≥ x | n, p) = tail."""
    if x <= 0:
        return 0.0
    return _solve_increasing(lambda p: betainc(x, n - x + 1, p), tail)  # P(X ≥ x) = I_p(x, n-x+1)


def cp_upper(x: int, n: int, tail: float) -> float:
    """Exact one-sided Clopper–Pearson upper bound: the p with P(X ≤ x | n, p) = tail."""
    if x >= n:
        return 1.0
    return _solve_increasing(lambda p: betainc(x + 1, n - x, p), 1.0 - tail)  # P(X ≤ x) = 1 - I_p(x+1, n-x)


def clopper_pearson(x: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact interval: each bound at (1 - confidence) / 2."""
    tail = (1.0 - confidence) / 2
    return cp_lower(x, n, tail), cp_upper(x, n, tail)


def requests_to_clear(errors: int, cap: float, tail: float = 0.05) -> int | None:
    """Fewest requests N for which `errors` errors in N have a one-sided upper bound ≤ cap.

    "If no more errors occur": for 0 errors this is the rule of three, N ≈ 3 / cap.
    None when no N will do (cap 0).
    """
    if cap >= 1.0:
        return max(errors, 1)
    if cap <= 0.0:
        return None
    lo, hi = errors, max(errors + 1, int(errors / cap) + 1)
    while cp_upper(errors, hi, tail) > cap:
        lo, hi = hi, hi * 2
        if hi > 10**10:
            return None
    while hi - lo > 1:  # cp_upper falls as N grows; lo fails, hi clears
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if cp_upper(errors, mid, tail) <= cap else (mid, hi)
    return hi


@dataclass(frozen=True)
class Sprt:
    llr: float
    lower: float
    upper: float
    decision: Literal["h0", "h1", "continue"]
    pi: float
    pi1: float


def sprt_error_attribution(canary_errors: int, canary_n: int, stable_errors: int, stable_n: int,
                           ratio: float = SPRT_RATIO, alpha: float = SPRT_ALPHA,
                           beta: float = SPRT_BETA) -> Sprt | None:
    """Wald SPRT on which side each error came from, conditional on the total number of errors.

    Given m errors, each is the canary's with probability π = n_c / (n_c + n_s) if both
    error rates are equal (H0), and π1 = kπ / (kπ + 1 − π) if the canary's is k times
    stable's (H1). The log likelihood ratio is a sum over errors, so it can be updated
    and looked at as often as we like: under H0 the likelihood ratio is a martingale and
    Ville's inequality bounds P(it ever reaches (1−β)/α) by α/(1−β). Looking only at
    analysis times is a subset of "every error", so the bound still holds; no penalty for
    peeking. π comes from the current counts: the true attribution probability while the
    traffic split stays fixed, i.e. within one step.
    """
    if canary_n <= 0 or stable_n <= 0:
        return None
    pi = canary_n / (canary_n + stable_n)
    pi1 = ratio * pi / (ratio * pi + 1.0 - pi)
    llr = canary_errors * math.log(pi1 / pi) + stable_errors * math.log((1.0 - pi1) / (1.0 - pi))
    upper, lower = math.log((1.0 - beta) / alpha), math.log(beta / (1.0 - alpha))
    decision: Literal["h0", "h1", "continue"] = "h1" if llr >= upper else "h0" if llr <= lower else "continue"
    return Sprt(llr, lower, upper, decision, pi, pi1)


def mann_whitney_greater(x: ArrayLike, y: ArrayLike) -> tuple[float, float, float]:
    """(U of x, z, one-sided p) for "x tends to be larger than y"; normal approximation
    with midranks, the tie-corrected variance and a continuity correction."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n1, n2 = len(xs), len(ys)
    _, inverse, counts = np.unique(np.concatenate([xs, ys]), return_inverse=True, return_counts=True)
    midranks = np.cumsum(counts) - (counts - 1) / 2.0
    u = float(midranks[inverse][:n1].sum() - n1 * (n1 + 1) / 2.0)
    total = n1 + n2
    ties = float((counts.astype(float) ** 3 - counts).sum())
    var = n1 * n2 / 12.0 * ((total + 1) - ties / (total * (total - 1))) if total > 1 else 0.0
    if var <= 0.0:
        return u, 0.0, 1.0  # every value equal: no evidence either way
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)
    return u, z, normal_sf(z)


def latency_alpha(looks: int, alpha: float = LATENCY_ALPHA) -> float:
    """Alpha for the k-th look (k = max(1, looks), counting this one): alpha / (k (k + 1)).

    Σ_k 1/(k (k+1)) = 1, so by the union bound the chance of any false "slower" over all
    looks of a step stays ≤ alpha however many looks there are (Bonferroni over an open-
    ended number of looks; spends more early, where gross regressions show up).
    """
    k = max(1, looks)
    return alpha / (k * (k + 1))


# ---- formatting -------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%" if 0 < x < 0.01 else f"{100 * x:.1f}%"


def _interval(lo: float, hi: float) -> str:
    return f"{_pct(lo).rstrip('%')}–{_pct(hi)}"


def _secs(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


# ---- metrics ----------------------------------------------------------------------------


def _counted(attempts: Sequence[Attempt]) -> list[Attempt]:
    # Shed attempts (429, 503), client faults (400, 413, 415, 422, 499: the client's input or
    # its going away) and client aborts (no status, not an error) say nothing about
    # correctness; everything else is a trial, failed or not.
    return [a for a in attempts if not a.shed and not a.client_fault and (a.is_error or a.status is not None)]


def judge_errors(canary: Sequence[Attempt], stable: Sequence[Attempt], policy: Policy) -> MetricVerdict:
    c, s = _counted(canary), _counted(stable)
    return judge_error_counts(len(c), sum(a.is_error for a in c), len(s), sum(a.is_error for a in s),
                              sum(a.shed for a in canary), policy)


def judge_error_counts(n: int, e: int, ns: int, es: int, shed: int, policy: Policy) -> MetricVerdict:
    """The error-rate verdict from counts: `n` canary trials with `e` server faults, `ns`
    and `es` for stable, `shed` canary attempts refused for load (said, not judged here)."""
    cap, min_n = policy.max_error_rate, policy.min_requests
    numbers: dict[str, Any] = {"n": n, "errors": e, "shed": shed, "stable_n": ns, "stable_errors": es,
                               "cap": cap, "min_requests": min_n,
                               "stable_rate": es / ns if ns else None}
    if n == 0:
        return MetricVerdict("error_rate", "inconclusive",
                             "no canary requests" + (f" ({shed} shed with 429)" if shed else ""), numbers)

    rate = e / n
    lo95, hi95 = clopper_pearson(e, n, 0.95)
    lower99, upper95 = cp_lower(e, n, 0.01), cp_upper(e, n, 0.05)
    sprt = sprt_error_attribution(e, n, es, ns)
    numbers.update(rate=rate, ci95_low=lo95, ci95_high=hi95, lower_bound_99=lower99, upper_bound_95=upper95)
    if sprt is not None:
        numbers.update(sprt_llr=sprt.llr, sprt_upper=sprt.upper, sprt_lower=sprt.lower,
                       sprt_decision=sprt.decision, sprt_pi=sprt.pi, sprt_pi1=sprt.pi1)
    desc = f"canary error rate {_pct(rate)} ({e}/{n}, 95% CI {_interval(lo95, hi95)})"
    stable_desc = f"stable {_pct(es / ns)} ({es}/{ns})" if ns else "no stable requests"

    failures = []
    if n >= EARLY_FAIL_MIN_N and (e == n or lower99 > cap):
        failures.append(f"{desc} > cap {_pct(cap)} (99% lower bound {_pct(lower99)})")
    if sprt is not None and sprt.decision == "h1":
        # Valid at any sample size (see sprt_error_attribution), so not gated on min_requests.
        failures.append(f"{'and' if failures else desc} exceeds stable's {_pct(es / ns)} ({es}/{ns}): "
                        f"SPRT log-LR {sprt.llr:.2f} ≥ {sprt.upper:.2f}")
    if failures:
        return MetricVerdict("error_rate", "fail", "; ".join(failures), numbers)

    cleared_at = requests_to_clear(e, cap)
    more = None if cleared_at is None else max(0, max(cleared_at, min_n) - n)
    numbers["more_requests_needed"] = more
    if n >= min_n and upper95 <= cap:
        relative = {"h0": "not above stable's (SPRT accepts)", "continue": "SPRT undecided"}
        tail = f"; {relative[sprt.decision]}, {stable_desc}" if sprt else "; no stable requests to compare"
        return MetricVerdict("error_rate", "pass", f"{desc} ≤ cap {_pct(cap)} (95% upper bound {_pct(upper95)})"
                             + tail, numbers)
    waiting = (f"only {n} canary requests (min_requests {min_n}); {desc}" if n < min_n else
               f"{desc}: 95% upper bound {_pct(upper95)} not yet ≤ cap {_pct(cap)}")
    if more is None:
        waiting += f"; a cap of {_pct(cap)} can never be shown"
    else:
        waiting += f"; needs {more} more requests (if no more errors occur)"
    return MetricVerdict("error_rate", "inconclusive", waiting, numbers)


def settled(attempts: Sequence[Attempt], since: datetime | None) -> list[Attempt]:
    """The attempts made at or after `since` (all of them for None)."""
    return list(attempts) if since is None else [a for a in attempts if a.time >= since]


def judge_latency(canary: Sequence[Attempt], stable: Sequence[Attempt], policy: Policy,
                  looks: int = 1, canary_from: datetime | None = None,
                  stable_from: datetime | None = None) -> MetricVerdict:
    """`canary_from`/`stable_from`: each side's latency is judged from then on (the end of
    the stage's settling time; None: every attempt, e.g. a baseline from an earlier step)."""
    unsettled = len(canary) - len(settled(canary, canary_from))
    canary, stable = settled(canary, canary_from), settled(stable, stable_from)
    answered_c = [a for a in canary if a.is_success and a.response_time_s is not None]
    answered_s = [a for a in stable if a.is_success and a.response_time_s is not None]
    c = np.array([a.service_time_s for a in answered_c], dtype=float)  # compared: time in service
    s = np.array([a.service_time_s for a in answered_s], dtype=float)
    whole = np.array([a.response_time_s for a in answered_c], dtype=float)  # capped: what clients wait
    cap_s, max_ratio = policy.max_p95_ms / 1000.0, policy.latency_max_ratio
    numbers: dict[str, Any] = {"n": len(c), "stable_n": len(s), "p95_cap_s": cap_s, "max_ratio": max_ratio,
                               "look": max(1, looks), "settling_excluded": unsettled,
                               "min_effect_s": policy.latency_min_effect_ms / 1000.0}
    if len(c) == 0:
        why = (f"the stage is settling: latency is judged from {policy.latency_settle_s} s after it began "
               f"({unsettled} earlier canary answers not judged)") if unsettled else "no successful canary responses"
        return MetricVerdict("latency", "inconclusive", why, numbers)
    numbers["median_s"] = float(np.median(c))
    if len(s):
        numbers["stable_median_s"] = float(np.median(s))
    if len(c) < LATENCY_MIN_N:
        return MetricVerdict("latency", "inconclusive", f"only {len(c)} successful canary responses; "
                             f"latency is judged from {LATENCY_MIN_N}", numbers)

    p95 = float(np.percentile(whole, 95))
    numbers.update(p95_s=p95, response_median_s=float(np.median(whole)),
                   queue_wait_reported=sum(a.queue_wait_s is not None for a in answered_c))
    failures = []
    if p95 > cap_s:
        failures.append(f"canary p95 {_secs(p95)} > cap {_secs(cap_s)} ({len(c)} responses)")
    if len(s) < LATENCY_MIN_N:
        if failures:
            return MetricVerdict("latency", "fail", "; ".join(failures), numbers)
        return MetricVerdict("latency", "inconclusive", f"no baseline: only {len(s)} successful stable responses",
                             numbers)

    med_c, med_s = float(np.median(c)), float(np.median(s))
    ratio = med_c / max(med_s, LOG_RESOLUTION_S)
    u, z, p = mann_whitney_greater(c, s)
    alpha = latency_alpha(looks)
    numbers.update(stable_p95_s=float(np.percentile(s, 95)), median_ratio=ratio, mann_whitney_u=u, z=z,
                   p_value=p, alpha=alpha, common_language_effect=u / (len(c) * len(s)))
    medians = f"median in service {_secs(med_c)} vs stable {_secs(med_s)} (×{ratio:.2f}"
    if p < alpha and ratio > max_ratio and med_c - med_s > policy.latency_min_effect_ms / 1000.0:
        failures.append(f"canary slower: {medians} > ×{max_ratio:g}, Mann–Whitney p={p:.2g} < α={alpha:.2g})")
    if failures:
        return MetricVerdict("latency", "fail", "; ".join(failures), numbers)
    requests = len(_counted(canary))  # min_requests counts requests, as for the error rate
    if requests < policy.min_requests:
        return MetricVerdict("latency", "inconclusive", f"only {requests} canary requests "
                             f"(min_requests {policy.min_requests}); {medians})", numbers)
    if ratio > max_ratio and med_c - med_s > policy.latency_min_effect_ms / 1000.0:
        return MetricVerdict("latency", "inconclusive", f"canary may be slower: {medians} > ×{max_ratio:g}, "
                             f"not significant yet: p={p:.2g} ≥ α={alpha:.2g})", numbers)
    within = f"≤ ×{max_ratio:g}" if ratio <= max_ratio else \
        f"within {policy.latency_min_effect_ms} ms of stable's"
    return MetricVerdict("latency", "pass", f"latency {medians} {within}, p={p:.2g}), "
                         f"p95 {_secs(p95)} ≤ {_secs(cap_s)}", numbers)


def judge_first_audio(canary: Sequence[Attempt], stable: Sequence[Attempt], policy: Policy, looks: int = 1,
                      canary_from: datetime | None = None, stable_from: datetime | None = None
                      ) -> MetricVerdict | None:
    """Time to first audio of streamed answers, canary against stable; None (not judged)
    while the canary has fewer than LATENCY_MIN_N of them: most clients may not stream."""
    def first_audio(attempts: Sequence[Attempt], since: datetime | None) -> np.ndarray:
        # first_audio_s first: most answers are not streamed, and the look is over a whole step's attempts
        return np.array([a.first_audio_service_s for a in attempts if a.first_audio_s is not None and a.is_success
                         and (since is None or a.time >= since)], dtype=float)

    c, s = first_audio(canary, canary_from), first_audio(stable, stable_from)
    if len(c) < LATENCY_MIN_N:
        return None
    max_ratio, min_effect_s = policy.ttfa_max_ratio, policy.latency_min_effect_ms / 1000.0
    numbers: dict[str, Any] = {"n": len(c), "stable_n": len(s), "max_ratio": max_ratio,
                               "median_s": float(np.median(c)), "look": max(1, looks)}
    if len(s) < LATENCY_MIN_N:
        return MetricVerdict("first_audio", "inconclusive",
                             f"no baseline: only {len(s)} streamed stable answers", numbers)
    med_c, med_s = float(np.median(c)), float(np.median(s))
    ratio = med_c / max(med_s, LOG_RESOLUTION_S)
    u, z, p = mann_whitney_greater(c, s)
    alpha = latency_alpha(looks)
    numbers.update(stable_median_s=med_s, median_ratio=ratio, mann_whitney_u=u, z=z, p_value=p, alpha=alpha)
    medians = f"median time to first audio {_secs(med_c)} vs stable {_secs(med_s)} (×{ratio:.2f}"
    slower = ratio > max_ratio and med_c - med_s > min_effect_s
    if slower and p < alpha:
        return MetricVerdict("first_audio", "fail", f"canary's first audio later: {medians} > ×{max_ratio:g}, "
                             f"Mann–Whitney p={p:.2g} < α={alpha:.2g})", numbers)
    if slower:
        return MetricVerdict("first_audio", "inconclusive", f"canary's first audio may be later: {medians} > "
                             f"×{max_ratio:g}, not significant yet: p={p:.2g} ≥ α={alpha:.2g})", numbers)
    return MetricVerdict("first_audio", "pass", f"{medians}, p={p:.2g}) over {len(c)} streamed answers", numbers)


def _not_client_faults(attempts: Sequence[Attempt]) -> list[Attempt]:
    return [a for a in attempts if not a.client_fault]


def judge_shedding(canary: Sequence[Attempt], stable: Sequence[Attempt], policy: Policy,
                   load_ratio: float = 1.0) -> MetricVerdict:
    """`load_ratio`: the canary side's load per unit of capacity ÷ stable's, this window."""
    canary, stable = _not_client_faults(canary), _not_client_faults(stable)
    return judge_shed_counts(len(canary), sum(a.shed for a in canary), len(stable), sum(a.shed for a in stable),
                             len(_counted(canary)), policy, load_ratio)


def judge_shed_counts(n: int, s: int, ns: int, ss: int, served: int, policy: Policy,
                      load_ratio: float = 1.0) -> MetricVerdict:
    """The shed verdict from counts: `n` canary attempts (client faults left out) of which
    `s` were shed and `served` were trials; `ns`, `ss` for stable."""
    numbers: dict[str, Any] = {"n": n, "shed": s, "stable_n": ns, "stable_shed": ss,
                               "rate": s / n if n else None, "stable_rate": ss / ns if ns else None,
                               "load_ratio": load_ratio}
    if n < policy.min_requests:
        return MetricVerdict("shed", "inconclusive", f"only {n} canary attempts (min_requests {policy.min_requests})"
                             + (f"; {s} shed" if s else ""), numbers)
    desc = f"canary shed {_pct(s / n)} ({s}/{n}), stable {_pct(ss / ns) if ns else '-'} ({ss}/{ns})"
    sprt = sprt_error_attribution(s, n, ss, ns)
    if sprt is not None and sprt.decision == "h1":
        if load_ratio <= SHED_LOAD_TOLERANCE:
            return MetricVerdict("shed", "fail", f"{desc}: sheds more at ×{load_ratio:.2f} stable's load per unit of "
                                 f"capacity (SPRT log-LR {sprt.llr:.2f} ≥ {sprt.upper:.2f})", numbers)
        return MetricVerdict("shed", "inconclusive", f"{desc}, but under ×{load_ratio:.2f} stable's load per unit "
                             "of capacity", numbers)
    if served < policy.min_requests:  # no pass on shedding alone: "no data is never a pass"
        return MetricVerdict("shed", "inconclusive", f"{desc}: only {served} canary requests served "
                             f"(min_requests {policy.min_requests})", numbers)
    if s == 0 or (sprt is not None and sprt.decision == "h0") or s / n <= (ss / ns if ns else 0):
        return MetricVerdict("shed", "pass", desc, numbers)
    return MetricVerdict("shed", "inconclusive", f"{desc}: not clear yet", numbers)


def judge(canary: Sequence[Attempt], stable: Sequence[Attempt], policy: Policy, looks: int = 1,
          load_ratio: float = 1.0, canary_from: datetime | None = None,
          stable_from: datetime | None = None) -> Verdict:
    """Overall verdict: fail if any metric fails, pass only if every metric passes.

    `looks`: how many analyses this step has had, counting this one (1 for the first);
    `load_ratio`: the canary side's load per unit of capacity ÷ stable's;
    `canary_from`/`stable_from`: when each side's latency starts being judged (judge_latency).
    """
    first_audio = judge_first_audio(canary, stable, policy, looks, canary_from, stable_from)
    metrics = (judge_errors(canary, stable, policy),
               judge_latency(canary, stable, policy, looks, canary_from, stable_from),
               *([first_audio] if first_audio is not None else []),
               judge_shedding(canary, stable, policy, load_ratio))
    return overall(metrics)


def overall(metrics: Sequence[MetricVerdict], source: str = "") -> Verdict:
    """Fail if any metric fails, pass only if every metric passes; counts from the first
    (error-rate) metric. `source` names where the numbers came from in the summary."""
    outcomes = {m.verdict for m in metrics}
    verdict: Outcome = "fail" if "fail" in outcomes else "pass" if outcomes == {"pass"} else "inconclusive"
    shown = [m.reason for m in metrics if verdict == "pass" or m.verdict == verdict]
    errors = metrics[0].numbers
    prefix = f"{verdict} ({source})" if source else verdict
    return Verdict(verdict, tuple(metrics), errors["n"], errors["stable_n"], f"{prefix}: " + "; ".join(shown))
