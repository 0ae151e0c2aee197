"""The rollout page (canary.decisions.report): what its plots and tables are made of."""

from __future__ import annotations

import re

from canary.decisions.report import rollout_html

T0 = 1_800_000_000.0


def verdict(at: float, verdict: str, rate: float, median: float, action: str = "wait") -> dict:
    metrics = [{"metric": "error_rate", "verdict": verdict, "reason": f"rate {rate}",
                "numbers": {"rate": rate, "stable_rate": 0.01}},
               {"metric": "shed", "verdict": "pass", "reason": "", "numbers": {"rate": 0.0, "stable_rate": 0.0}},
               {"metric": "latency", "verdict": "pass", "reason": "",
                "numbers": {"median_s": median, "stable_median_s": 0.1, "p95_s": 2 * median, "stable_p95_s": 0.2}}]
    return {"at": T0 + at, "kind": "verdict", "actor": "ci",
            "data": {"stage": "step 1 (10%)", "canary_n_by_lb": {"lb1": 7, "lb2": 5},
                     "verdict": {"verdict": verdict, "canary_n": 12, "stable_n": 100, "metrics": metrics},
                     "decision": {"action": action, "reason": "why"}}}


RECORD = {"id": "r-1", "version": "v1.3.0", "stable_version": "v1.2.0", "phase": "ROLLED_BACK",
          "result": "rolled_back", "reason": "<script>alert(1)</script>", "events": [
              {"at": T0, "kind": "created", "actor": "ci", "data": {}},
              {"at": T0 + 10, "kind": "enter TRAFFIC", "actor": "ci", "data": {"reason": "step 1"}},
              {"at": T0 + 11, "kind": "weights live", "actor": "ci", "data": {"canary_percent": 10}},
              verdict(20, "inconclusive", 0.05, 0.12),
              {"at": T0 + 25, "kind": "pause", "actor": "alice", "data": {"reason": "lunch"}},
              verdict(30, "fail", 0.4, 0.3, "rollback"),
              {"at": T0 + 30.5, "kind": "enter ROLLING_BACK", "actor": "ci", "data": {}},
              {"at": T0 + 31, "kind": "traffic off new version", "actor": "ci", "data": {}},
              {"at": T0 + 40, "kind": "enter ROLLED_BACK", "actor": "ci", "data": {}}]}


def points(page: str, series: str) -> list[tuple[float, float]]:
    found = re.search(rf'data-series="{re.escape(series)}" points="([^"]*)"', page)
    assert found, f"no plot of {series}"
    return [tuple(map(float, p.split(","))) for p in found.group(1).split()]  # type: ignore[misc]


def test_every_panel_plots_both_versions_on_one_time_axis():
    page = rollout_html(RECORD)
    assert page.count('class="panel"') == 4
    for name in ("errors", "shed", "median", "p95"):
        assert len(points(page, f"{name} v1.3.0")) == len(points(page, f"{name} v1.2.0")) == 2
    errors = points(page, "errors v1.3.0")
    assert errors[0][0] < errors[1][0] and errors[0][1] > errors[1][1]  # later and higher on the page
    weight = points(page, "traffic to v1.3.0")
    assert [y for _, y in weight][0] == [y for _, y in weight][-1]  # 0% before and after
    assert min(y for _, y in weight) < weight[0][1]  # 10% in between (svg y grows downwards)
    # the operator's pause is marked on every panel, the phases too
    assert page.count("pause (alice) at 25.0 s") == 4 and page.count("ROLLING_BACK at 30.5 s") == 4


def test_verdicts_keep_their_numbers_and_nothing_from_the_record_is_markup():
    page = rollout_html(RECORD)
    assert len(re.findall(r'<tr class="verdict (inconclusive|fail)">', page)) == 2
    assert "12 (lb1 7, lb2 5)" in page and "rollback" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
