"""The sandbox's Prometheus server: its scrape config, its container, and its readiness.

One container (`<prefix>-prometheus`, Debian's `prometheus` package) on the sandbox
network scrapes every node's service by the same address the LBs use, and the
controller's own metrics on this machine (`rollout metrics --serve PORT --bind GATEWAY`,
GATEWAY being this machine's address on the sandbox network). Its API is published on
127.0.0.1 for the controller (policy `prometheus_url`).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

SCRAPE_INTERVAL = "2s"  # sandbox stages last seconds; production scrapes every 15-30 s
CONFIG_NAME = "prometheus.yml"


def scrape_config(node_addresses: list[str], controller_target: str) -> dict:
    """Prometheus' configuration: the nodes' services and the controller."""
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL,
                   "evaluation_interval": "15s"},
        "scrape_configs": [
            {"job_name": "tts", "static_configs": [{"targets": node_addresses}]},
            {"job_name": "voxfleet-controller", "static_configs": [{"targets": [controller_target]}]},
        ],
    }


def write_config(config_dir: Path, config: dict) -> bool:
    """Write the config where the container mounts it (world-readable: the server runs as
    its own user, and nothing in it is secret); True when it changed."""
    text = "# Written by `rollout sandbox up`; regenerated on every run.\n" + yaml.safe_dump(config, sort_keys=False)
    path = config_dir / CONFIG_NAME
    config_dir.mkdir(parents=True, exist_ok=True)
    config_dir.chmod(0o755)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    path.chmod(0o644)
    return True


def container_args(config_dir: Path, port: int) -> tuple[str, ...]:
    return ("-v", f"{config_dir}:/etc/voxfleet:ro", "-p", f"127.0.0.1:{port}:9090")


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    """Until the server answers /-/ready; RuntimeError naming it after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox Prometheus at {url} is not ready after {timeout_s:.0f} s")
        time.sleep(0.5)


def reload(url: str) -> None:
    """Make the running server read its config again (it runs with --web.enable-lifecycle)."""
    request = urllib.request.Request(f"{url}/-/reload", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
