"""The sandbox's real Prometheus server (Debian's package): it scrapes every node's
/metrics and the controller's `rollout metrics --serve`; its counts match what clients
saw; the evidence source and the shipped dashboard read real answers from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from canary.adapters.prometheus import PrometheusSource
from canary.devtools.loadgen import LoadGenerator
from canary.devtools.sandbox import load_spec, network_gateway
from tests.e2e.helpers import LOAD_RPS
from tests.sandbox_fleet import INVENTORY, REPO

pytestmark = pytest.mark.sandbox
DASHBOARD = REPO / "dashboards" / "voxfleet.json"
SCRAPE_S = 2.0


def served_by_instance(prometheus: PrometheusSource, at: float) -> dict[str, float]:
    result = prometheus.query('sum by (instance) (tts_requests_total{route="speech",status="200"})', at)
    return {s["metric"]["instance"]: float(s["value"][1]) for s in result}


def test_prometheus_scrapes_every_node_and_the_controller_and_counts_what_clients_saw(stable_fleet, state_dir):
    spec = load_spec(INVENTORY)
    assert spec is not None
    prometheus = PrometheusSource(stable_fleet.policy.prometheus_url)
    controller = subprocess.Popen(
        [str(Path(sys.executable).with_name("rollout")), "metrics", "--serve", str(spec.controller_metrics_port),
         "--bind", network_gateway(spec.network)], cwd=REPO, env={**os.environ, **state_dir},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3 * SCRAPE_S)
        before = served_by_instance(prometheus, time.time())
        began = time.time()
        traffic = LoadGenerator(stable_fleet.lb_public_urls, rps=LOAD_RPS).run(duration_s=120, max_requests=150)
        ended = time.time()
        time.sleep(3 * SCRAPE_S)  # every node scraped again after the last answer
        now = time.time()
        up = {(s["metric"]["job"], s["metric"]["instance"]): s["value"][1] for s in prometheus.query("up", now)}
    finally:
        controller.terminate()
        controller.wait(10)
    nodes = {stable_fleet.hostvars[n.name]["tts_upstream_address"]: n.name for n in stable_fleet.nodes}
    assert {instance for job, instance in up if job == "tts"} == set(nodes)
    assert all(value == "1" for value in up.values()), up
    assert sum(job == "voxfleet-controller" for job, _ in up) == 1

    # per node, exactly what the clients saw it answer (the counters, not an estimate)
    after = served_by_instance(prometheus, now)
    assert not traffic.failed and len(traffic.outcomes) == 150, traffic.summary()
    by_host = traffic.by_host()
    assert {nodes[i]: round(after[i] - before.get(i, 0)) for i in nodes} == {h: by_host[h] for h in nodes.values()}

    # the evidence source's totals for the window: increase() extrapolates to the window's
    # edges (up to a scrape interval's worth at each end), so close, not exact
    totals = prometheus.totals(["v1.2.0", "v1.3.0"], began, ended + SCRAPE_S)
    assert abs(totals["v1.2.0"].trials - 150) <= 30 and totals["v1.2.0"].errors == 0, totals
    assert abs(totals["v1.2.0"].successes - 150) <= 30 and totals["v1.2.0"].service_buckets, totals
    assert totals["v1.3.0"].trials == 0

    # every service panel of the shipped dashboard gets series from a real server (a 0% error
    # rate is a 0, not "no data"); rejections have series only once something was rejected
    rejected = bool(prometheus.query("tts_rejected_requests_total", now))
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            if "tts_" in target["expr"] and (rejected or "tts_rejected" not in target["expr"]):
                assert prometheus.query(target["expr"], now), (panel["title"], target["expr"])
