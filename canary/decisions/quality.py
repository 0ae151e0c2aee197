"""Compare a new version's golden-prompt reports with the stable version's (pure).

Used by the rollout's warm-up gate (before any user hears the canary) and by the
release gate. Each prompt must pass the hard audio checks on the new version, and
its voice must not be grossly different from stable's: duration per character and
level within tolerances. Latency (over all prompts together) and real-time factor
are compared when asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class QualityTolerances:
    seconds_per_char_ratio: tuple[float, float] = (0.5, 2.0)  # new / stable
    max_level_diff_db: float = 10.0
    max_latency_ratio: float | None = None  # None: latency is not judged
    max_rtf: float | None = None


@dataclass(frozen=True)
class QualityResult:
    passed: bool
    problems: tuple[str, ...]
    rows: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def summary(self) -> str:
        return "passed" if self.passed else "; ".join(self.problems)


def compare(new: list[dict[str, Any]], stable: list[dict[str, Any]] | None,
            tolerances: QualityTolerances = QualityTolerances()) -> QualityResult:
    baseline = {r["name"]: r for r in (stable or [])}
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    for report in new:
        name = report["name"]
        base = baseline.get(name)
        row = {"prompt": name, "new": report, "stable": base}
        rows.append(row)
        if not report.get("passed"):
            problems.append(f"prompt '{name}': {report.get('reason') or 'failed'}")
            continue
        if base is None or not base.get("passed"):
            continue  # nothing healthy to compare with; the hard checks above still apply
        ratio = report["seconds_per_char"] / base["seconds_per_char"]
        row["seconds_per_char_ratio"] = round(ratio, 3)
        lo, hi = tolerances.seconds_per_char_ratio
        if not lo <= ratio <= hi:
            problems.append(f"prompt '{name}': duration per character {ratio:.2f}× stable's (allowed {lo}–{hi})")
        level = report["rms_dbfs"] - base["rms_dbfs"]
        row["level_diff_db"] = round(level, 2)
        if abs(level) > tolerances.max_level_diff_db:
            problems.append(f"prompt '{name}': level {level:+.1f} dB from stable's "
                            f"(allowed ±{tolerances.max_level_diff_db})")
        if base.get("latency_s"):
            row["latency_ratio"] = round(report["latency_s"] / base["latency_s"], 3)
        if tolerances.max_rtf and report.get("rtf") and report["rtf"] > tolerances.max_rtf:
            problems.append(f"prompt '{name}': real-time factor {report['rtf']:.2f} > {tolerances.max_rtf}")
    compared = [r for r in rows if "latency_ratio" in r]
    if tolerances.max_latency_ratio and compared:
        # judged over all prompts together: one short prompt's latency is too noisy alone
        total = sum(r["new"]["latency_s"] for r in compared) / sum(r["stable"]["latency_s"] for r in compared)
        if total > tolerances.max_latency_ratio:
            problems.append(f"latency over the golden prompts {total:.2f}× stable's "
                            f"(allowed {tolerances.max_latency_ratio}×)")
    if not new:
        problems.append("no golden prompt reports from the new version")
    return QualityResult(not problems, tuple(problems), tuple(rows))
