"""The release's quality gate: run the candidate image here, speak the golden prompts,
apply the audio checks, and compare with the version live now (duration per
character, level, latency, real-time factor). Nothing is pushed when it fails.

Both images run on this machine, one after the other, hardened as on a fleet host,
so their latencies are measured under the same conditions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from canary.adapters import local_container
from canary.decisions.policy import Policy
from canary.decisions.quality import QualityTolerances, compare
from service.golden import model_voice, probe, run_golden


@dataclass(frozen=True)
class GateReport:
    version: str
    baseline: str | None  # the live version compared with; None: first release, hard checks only
    passed: bool
    problems: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    tolerances: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        against = f"against live {self.baseline}" if self.baseline else "no live version: hard audio checks only"
        lines = [f"### Release gate {self.version}: {verdict} ({against})", "",
                 "| prompt | checks | s/char | live s/char | ratio | level Δ dB | latency s | live latency s "
                 "| latency ratio | RTF |", "|---|---|---|---|---|---|---|---|---|---|"]
        for row in self.rows:
            new, base = row["new"], row.get("stable") or {}
            lines.append(" | ".join([
                f"| {row['prompt']}", "pass" if new.get("passed") else f"FAIL: {new.get('reason', '')[:80]}",
                _num(new.get("seconds_per_char")), _num(base.get("seconds_per_char")),
                _num(row.get("seconds_per_char_ratio")), _num(row.get("level_diff_db")),
                _num(new.get("latency_s")), _num(base.get("latency_s")), _num(row.get("latency_ratio")),
                _num(new.get("rtf"))]) + " |")
        if self.problems:
            lines += ["", "Problems:", *[f"- {p}" for p in self.problems]]
        limits = ", ".join(f"{k} {v}" for k, v in self.tolerances.items())
        return "\n".join(lines + ["", f"Tolerances: {limits}"])

    def save(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        md, js = directory / f"gate-{self.version}.md", directory / f"gate-{self.version}.json"
        md.write_text(self.markdown() + "\n")
        js.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")
        return md, js


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def tolerances_for(policy: Policy) -> QualityTolerances:
    return QualityTolerances(max_latency_ratio=policy.gate_latency_max_ratio, max_rtf=policy.gate_max_rtf)


@dataclass(frozen=True)
class GateMachine:
    """Where the gate runs the images: a real model needs the GPU and memory of a fleet host."""
    gpus: str = ""
    memory: str = "4g"
    timeout_s: float = 300.0


def golden_reports(image: str, label: str, machine: GateMachine) -> list[dict[str, Any]]:
    """Run `image` locally until it is healthy, speak the golden prompts, remove it."""
    name = f"voxfleet-gate-{label.replace('.', '-')}"
    options = local_container.RunOptions(port=local_container.free_local_port(), memory=machine.memory, gpus=machine.gpus)
    try:
        local_container.run(image, name, options, timeout_s=machine.timeout_s)
        url = f"http://127.0.0.1:{options.port}"
        probe(url, "Warming up.", model_voice(url), 120.0)  # the first request pays one-off costs: not measured
        return run_golden(url, timeout_s=120.0)
    finally:
        local_container.remove(name)


def run_gate(version: str, image: str, baseline: str | None, baseline_image: str | None,
             policy: Policy, machine: GateMachine = GateMachine()) -> GateReport:
    tolerances = tolerances_for(policy)
    new = golden_reports(image, f"{version}-candidate", machine)
    stable = golden_reports(baseline_image, f"{baseline}-live", machine) if baseline and baseline_image else None
    result = compare(new, stable, tolerances)
    return GateReport(version, baseline, result.passed, result.problems, result.rows,
                      {"seconds_per_char_ratio": tolerances.seconds_per_char_ratio,
                       "max_level_diff_db": tolerances.max_level_diff_db,
                       "max_latency_ratio": tolerances.max_latency_ratio, "max_rtf": tolerances.max_rtf})
