"""The Grafana dashboard (dashboards/voxfleet.json) names only series that exist: the
service's metrics and the controller's own, so a renamed metric breaks this test, not a
graph in production."""

from __future__ import annotations

import json
import re
from pathlib import Path

from canary.decisions.controller_metrics import HELP, PREFIX
from service.metrics import ServiceMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "voxfleet.json"
FUNCTIONS = {"sum", "by", "rate", "on", "group_left", "histogram_quantile", "le", "version", "status", "route",
             "instance", "reason", "side", "result", "outcome", "phase", "or"}


def exported() -> set[str]:
    names = set()
    for family in ServiceMetrics().registry.collect():  # a family's samples, with or without children yet
        names |= {family.name + suffix for suffix in ("", "_total", "_bucket", "_count", "_sum", "_info")}
    return names | {f"{PREFIX}_{name}" for name in HELP}


def test_every_series_the_dashboard_queries_is_exported():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len(panels) >= 8
    known = exported()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            words = set(re.findall(r"[a-z_][a-z0-9_]*", re.sub(r'"[^"]*"|\[[^]]*\]', "", target["expr"])))
            unknown = words - FUNCTIONS - known
            assert not unknown, f"{panel['title']}: {target['expr']} names {unknown}"
