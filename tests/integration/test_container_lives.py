"""The controller's look at each new-version container during a traffic step, on the real
sandbox: a service process killed on its host is restarted by Docker, and the look says so,
with the exit code and the last log lines (canary/decisions/restarts.py judges it)."""

from __future__ import annotations

import subprocess
import time

import pytest

from canary.adapters.containers import container_lives
from canary.decisions.inventory import Fleet

pytestmark = pytest.mark.sandbox


def node_docker(fleet: Fleet, host: str, *args: str) -> str:
    container = fleet.hostvars[host]["sandbox_container"]
    return subprocess.run(["docker", "exec", container, "docker", *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def test_a_killed_service_process_is_seen_restarted_with_its_exit_code(stable_fleet: Fleet):
    host = stable_fleet.nodes[0].name
    before = container_lives(stable_fleet, [host, "no-such-host"])
    assert set(before) == {host}, before  # a host that cannot be asked is left out, not an error
    pid = node_docker(stable_fleet, host, "inspect", "--format", "{{.State.Pid}}", "tts")
    subprocess.run(["docker", "exec", stable_fleet.hostvars[host]["sandbox_container"], "kill", "-9", pid],
                   check=True, timeout=30)  # the process dies as in a crash, not through Docker's API
    deadline = time.monotonic() + 60
    life = before[host]
    while time.monotonic() < deadline and life.restart_count == before[host].restart_count:
        time.sleep(0.5)
        life = container_lives(stable_fleet, [host]).get(host, life)
    assert life.restart_count == before[host].restart_count + 1, life
    assert life.exit_code == 137 and not life.oom_killed and life.started_at != before[host].started_at, life
    # back to healthy, for the tests after this one (its model loads again)
    while time.monotonic() < deadline + 60:
        if node_docker(stable_fleet, host, "inspect", "--format", "{{.State.Health.Status}}", "tts") == "healthy":
            break
        time.sleep(1)
    life = container_lives(stable_fleet, [host])[host]
    assert life.exit_code == 137 and "HTTP/1.1" in life.last_log, life  # what it logged before it was killed
