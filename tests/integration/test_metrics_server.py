"""`rollout metrics --serve`: a real HTTP server answering Prometheus' scrape."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration
ROLLOUT = str(Path(sys.executable).with_name("rollout"))


def test_the_controllers_metrics_are_served_for_scraping_from_the_state_store(tmp_path):
    state = tmp_path / "state"
    env = {"VOXFLEET_STATE_DIR": str(state), "PATH": str(Path(sys.executable).parent)}
    server = subprocess.Popen([ROLLOUT, "metrics", "--serve", "0"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        url = line.split(" on ", 1)[1].split()[0]
        with urllib.request.urlopen(url, timeout=10) as response:  # no store yet: no series, still a scrape
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert list(text_string_to_metric_families(response.read().decode())) == []
        with pytest.raises(urllib.error.HTTPError) as other:
            urllib.request.urlopen(url.replace("/metrics", "/"), timeout=10)
        assert other.value.code == 404
    finally:
        server.terminate()
        server.wait(10)
