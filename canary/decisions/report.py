"""`rollout show ID --html FILE`: one self-contained page of a rollout (pure: the
rollout's record and events in, HTML out; inline SVG, no script, nothing fetched).

On one time axis (seconds since the rollout was created): the canary's traffic weight,
then the error rate, the shed rate and the latency (median and p95) of the new and the
old version at each analysis, with every phase change and operator action marked on
all four; then the verdicts with their numbers, and every event.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from canary.decisions.status import metric_numbers

WIDTH, PANEL_HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 960, 150, 70, 20, 22, 24
NEW_COLOUR, OLD_COLOUR, MARK_COLOUR = "#d9480f", "#1c7ed6", "#868e96"
CONTROLLER_KINDS = {"created", "verdict", "weights live", "traffic off new version", "previous version restored",
                    "switching", "batch switched", "golden baseline", "warmup_gate", "waiting for capacity", "inventory changed"}


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: list[tuple[float, float]]  # (seconds since start, value)
    dashed: bool = False
    steps: bool = False  # a value holds until the next point (weights)


def _series(record: dict[str, Any]) -> dict[str, list[Series]]:
    """The four panels' series from the rollout's events."""
    start = float(record["events"][0]["at"]) if record["events"] else 0.0
    new, old = record.get("version") or "new", record.get("stable_version") or "old"
    weight: list[tuple[float, float]] = [(0.0, 0.0)]
    values: dict[str, list[tuple[float, float]]] = {}
    for event in record["events"]:
        t, data = float(event["at"]) - start, event.get("data") or {}
        if event["kind"] == "weights live":
            weight.append((t, float(data.get("canary_percent", 0))))
        elif event["kind"] == "traffic off new version":
            weight.append((t, 0.0))
        elif event["kind"] == "enter SUCCEEDED":
            weight.append((t, 100.0))
        elif event["kind"] == "verdict":
            verdict = data.get("verdict") or {}
            for key, metric, field in (("error new", "error_rate", "rate"), ("error old", "error_rate", "stable_rate"),
                                       ("shed new", "shed", "rate"), ("shed old", "shed", "stable_rate"),
                                       ("median new", "latency", "median_s"),
                                       ("median old", "latency", "stable_median_s"),
                                       ("p95 new", "latency", "p95_s"), ("p95 old", "latency", "stable_p95_s")):
                value = metric_numbers(verdict, metric).get(field)
                if isinstance(value, int | float):
                    values.setdefault(key, []).append((t, float(value)))
    end = float(record["events"][-1]["at"]) - start if record["events"] else 0.0
    weight.append((end, weight[-1][1]))

    def pair(prefix: str, label: str, dashed: bool = False) -> list[Series]:
        return [Series(f"{label} {new}", NEW_COLOUR, values.get(f"{prefix} new", []), dashed),
                Series(f"{label} {old}", OLD_COLOUR, values.get(f"{prefix} old", []), dashed)]

    return {"canary weight (%)": [Series(f"traffic to {new}", NEW_COLOUR, weight, steps=True)],
            "error rate": pair("error", "errors"),
            "shed rate (429/503)": pair("shed", "shed"),
            "latency (s)": pair("median", "median") + pair("p95", "p95", dashed=True)}


def _marks(record: dict[str, Any]) -> list[tuple[float, str, bool]]:
    """(seconds, label, is an operator's action): phase changes and operator verbs."""
    start = float(record["events"][0]["at"]) if record["events"] else 0.0
    marks = []
    for event in record["events"]:
        kind = event["kind"]
        if kind.startswith("enter "):
            marks.append((float(event["at"]) - start, kind.removeprefix("enter "), False))
        elif kind not in CONTROLLER_KINDS:
            marks.append((float(event["at"]) - start, f"{kind} ({event.get('actor', '')})", True))
    return marks


def _panel(title: str, series: list[Series], marks: list[tuple[float, str, bool]], end: float) -> str:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, PANEL_HEIGHT - TOP - BOTTOM
    highest = max((v for s in series for _, v in s.points), default=0.0)
    top = 100.0 if title.startswith("canary weight") else 1.1 * highest or 1.0  # 1: nothing but zeros
    span = max(end, 1.0)

    def x(t: float) -> float:
        return LEFT + plot_w * t / span

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [f'<svg class="panel" role="img" aria-label="{escape(title)}" width="{WIDTH}" height="{PANEL_HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {PANEL_HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{LEFT}" y="14" class="title">{escape(title)}</text>',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="frame"/>',
             f'<text x="{LEFT - 6}" y="{TOP + 4}" class="tick" text-anchor="end">{top:.3g}</text>',
             f'<text x="{LEFT - 6}" y="{TOP + plot_h}" class="tick" text-anchor="end">0</text>',
             f'<text x="{WIDTH - RIGHT}" y="{PANEL_HEIGHT - 6}" class="tick" text-anchor="end">{end:.0f} s</text>']
    for t, label, operator in marks:
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
                     f'class="{"operator" if operator else "phase"}"><title>{escape(label)} at {t:.1f} s</title></line>')
    for s in series:
        if not s.points:
            continue
        points = []
        for i, (t, v) in enumerate(s.points):
            if s.steps and i:
                points.append(f"{x(t):.1f},{y(s.points[i - 1][1]):.1f}")
            points.append(f"{x(t):.1f},{y(v):.1f}")
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(f'<polyline class="series" data-series="{escape(s.name)}" points="{" ".join(points)}" '
                     f'stroke="{s.colour}"{dash}/>')
        if not s.steps:
            parts += [f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{s.colour}">'
                      f'<title>{escape(s.name)}: {v:.4g} at {t:.1f} s</title></circle>' for t, v in s.points]
    legend = " ".join(f'<tspan fill="{s.colour}">■ {escape(s.name)}{" (dashed)" if s.dashed else ""}</tspan>'
                      for s in series)
    parts.append(f'<text x="{LEFT + 220}" y="14" class="legend">{legend}</text></svg>')
    return "\n".join(parts)


def _verdict_rows(record: dict[str, Any]) -> str:
    start = float(record["events"][0]["at"]) if record["events"] else 0.0
    rows = []
    for event in record["events"]:
        if event["kind"] != "verdict":
            continue
        data = event.get("data") or {}
        verdict = data.get("verdict") or {}
        metrics = "<br>".join(f"{escape(str(m.get('metric')))}: <b>{escape(str(m.get('verdict')))}</b> — "
                              f"{escape(str(m.get('reason', '')))}" for m in verdict.get("metrics", []))
        by_lb = ", ".join(f"{escape(lb)} {n}" for lb, n in sorted((data.get("canary_n_by_lb") or {}).items()))
        rows.append(f"<tr class=\"verdict {escape(str(verdict.get('verdict', '')))}\"><td>{float(event['at']) - start:.1f}"
                    f"</td><td>{escape(str(data.get('stage', '')))}</td><td>{escape(str(verdict.get('verdict', '')))}"
                    f"</td><td>{verdict.get('canary_n', 0)} ({by_lb})</td><td>{verdict.get('stable_n', 0)}</td>"
                    f"<td>{escape(str((data.get('decision') or {}).get('action', '')))}</td><td>{metrics}</td></tr>")
    return "\n".join(rows) or '<tr><td colspan="7">no analysis was made</td></tr>'


def _event_rows(record: dict[str, Any]) -> str:
    start = float(record["events"][0]["at"]) if record["events"] else 0.0
    rows = []
    for event in record["events"]:
        data = event.get("data") or {}
        what = data.get("reason") or (data.get("decision") or {}).get("reason") or ""
        rows.append(f"<tr><td>{float(event['at']) - start:.1f}</td><td>{escape(event['kind'])}</td>"
                    f"<td>{escape(str(event.get('actor', '')))}</td><td>{escape(str(what))}</td></tr>")
    return "\n".join(rows)


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #212529; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.panel { display: block; margin-bottom: 6px; }
.title { font-weight: 600; font-size: 13px; } .legend, .tick { font-size: 11px; fill: #495057; }
.frame { fill: #f8f9fa; stroke: #dee2e6; }
.series { fill: none; stroke-width: 2; }
.phase { stroke: #868e96; stroke-dasharray: 2 3; } .operator { stroke: #7048e8; stroke-width: 2; }
table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #dee2e6; padding: 4px 6px;
vertical-align: top; text-align: left; } tr.fail td { background: #fff5f5; } tr.pass td { background: #f4fce3; }
"""


def rollout_html(record: dict[str, Any]) -> str:
    """The page for `record`: `rollout show`'s JSON (id, version, stable_version, phase,
    result, reason, started_at, ended_at, events)."""
    panels = _series(record)
    start = float(record["events"][0]["at"]) if record["events"] else 0.0
    end = float(record["events"][-1]["at"]) - start if record["events"] else 0.0
    marks = _marks(record)
    title = f"rollout {record['id']}: {record.get('version')} (from {record.get('stable_version') or '?'})"
    figures = "\n".join(_panel(name, series, marks, end) for name, series in panels.items())
    legend = ("Dotted grey lines: phase changes; purple lines: operator actions (hover for names). "
              f"<span style=\"color:{NEW_COLOUR}\">{escape(str(record.get('version')))}</span> against "
              f"<span style=\"color:{OLD_COLOUR}\">{escape(str(record.get('stable_version') or 'the old version'))}"
              "</span>; latency p95 dashed.")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p><b>{escape(str(record.get('phase')))}</b> ({escape(str(record.get('result') or 'active'))}): {escape(str(record.get('reason') or ''))}</p>
<p class="legend-note">{legend}</p>
<div id="timeline">
{figures}
</div>
<h2>Verdicts</h2>
<table id="verdicts"><tr><th>s</th><th>stage</th><th>verdict</th><th>canary n (by LB)</th><th>stable n</th>
<th>decision</th><th>metrics</th></tr>
{_verdict_rows(record)}
</table>
<h2>Events</h2>
<table id="events"><tr><th>s</th><th>event</th><th>by</th><th>why</th></tr>
{_event_rows(record)}
</table>
</body></html>
"""
