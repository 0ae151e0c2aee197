"""`rollout fleet` rows and the gate report (pure): what the hosts say, and where they disagree."""

from __future__ import annotations

from canary.decisions.fleet_state import NodeState
from canary.decisions.fleet_state import fleet_rows as rows
from canary.decisions.policy import Policy
from canary.decisions.quality import compare
from canary.release.gate import GateReport, tolerances_for


def node(host: str, served: dict | None, version: str = "v1.3.0", state: str = "running") -> NodeState:
    return NodeState(host, version, f"reg/tts:{version}", "reg/tts@sha256:abc", "m" * 64, "rev1", state, "healthy",
                     "2026-11-26T01:00:00Z", 1, None, served)


def served(**changes) -> dict:
    return dict({"model_version": "v1.3.0", "model_sha256": "m" * 64, "git_revision": "rev1",
                 "model_source": "baked"}, **changes)


def test_a_host_that_agrees_with_its_version_endpoint_has_no_problem():
    (row,) = rows({"node1": node("node1", served())}, ["node1"])
    assert row["problem"] is None and row["served_version"] == "v1.3.0" and row["image_digest"].endswith("abc")


def test_disagreements_and_unreadable_hosts_are_named():
    table = rows({"node1": node("node1", served(model_version="v1.2.0", git_revision="rev0")),
                  "node2": node("node2", {"error": "Connection refused"})}, ["node1", "node2", "node3"])
    assert "version: labels say v1.3.0, /version says v1.2.0" in table[0]["problem"]
    assert "git revision: labels say rev1, /version says rev0" in table[0]["problem"]
    assert "/version did not answer: Connection refused" in table[1]["problem"]
    assert table[2] == {"host": "node3", "problem": "unreachable or unreadable"}


def test_a_model_fetched_by_uri_is_reported_as_served_not_as_labelled():
    (row,) = rows({"node1": node("node1", served(model_sha256="f" * 64, model_source="uri"))}, ["node1"])
    assert row["problem"] is None and row["model_sha256"] == "f" * 64 and row["model_source"] == "uri"


def report(name: str, spc: float, latency: float, passed: bool = True) -> dict:
    return {"name": name, "passed": passed, "reason": "" if passed else "silence_share=1 (limit <= 0.85)",
            "seconds_per_char": spc, "rms_dbfs": -20.0, "latency_s": latency, "rtf": latency / (spc * 10)}


def test_the_gate_report_tables_every_prompt_with_live_figures_side_by_side():
    result = compare([report("short", 0.08, 0.9)], [report("short", 0.08, 0.2)], tolerances_for(Policy()))
    gate = GateReport("v1.4.0", "v1.3.0", result.passed, result.problems, result.rows, {"max_latency_ratio": 2.0})
    text = gate.markdown()
    assert "FAILED (against live v1.3.0)" in text
    assert "| short | pass | 0.080 | 0.080 | 1.000 | 0.000 | 0.900 | 0.200 | 4.500 | 1.125 |" in text
    assert "real-time factor 1.12 > 1.0" in text
    assert "latency over the golden prompts 4.50× stable's" in text
