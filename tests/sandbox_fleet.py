"""The shared sandbox fleet for tests: real registry, SSH hosts with Docker, nginx LB.

Brought up once per session with the product's own commands (`rollout sandbox up`,
`rollout build`, `rollout publish`), in a background process the session starts while
its tests that need no Docker engine run (`BackgroundBringUp`, tests/conftest.py), and
left up afterwards (so reruns are fast); `rollout sandbox down` removes it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from canary.adapters import fleet as fleet_ops
from canary.adapters import registry
from canary.adapters.inventory import load_fleet
from canary.decisions.inventory import Fleet

REPO = Path(__file__).resolve().parents[1]
INVENTORY = REPO / "inventory" / "sandbox"
VERSIONS = ("v1.2.0", "v1.3.0")
READY = "ready: v1.2.0 on every host"  # the bring-up log's last line


def rollout(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("rollout")), *args]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=dict(os.environ, **(env or {})),
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"rollout {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def docker_works() -> bool:
    return shutil.which("docker") is not None and subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def bring_up(done: Callable[[str], None] = lambda what: None) -> None:
    rollout("sandbox", "up", "--hosts", "3")
    done("sandbox up")
    for version in VERSIONS:
        rollout("build", version)
        rollout("publish", version)
        done(f"{version} built and published")


def stable_everywhere(fleet: Fleet) -> None:
    """Every node running the registry's v1.2.0, healthy. A deploy that changes nothing
    still takes its time: only when a node is not running the registry's v1.2.0 (the tag
    is rebuilt from this tree each session), or is not healthy."""
    digest = registry.tag_digest(fleet.registry_push, fleet.repository, "v1.2.0", fleet.registry_insecure)
    current = [s for s in fleet_ops.facts(fleet).values() if s.version == "v1.2.0" and s.health == "healthy"
               and digest and (s.image_digest or "").endswith(digest)]
    if len(current) < len(fleet.nodes):
        fleet_ops.deploy(fleet, "v1.2.0")


def ready_for_a_release() -> None:
    """The sandbox up, v1.2.0 and v1.3.0 published, the nginx_lb role run on every LB (as
    each rollout's preflight runs it: whatever a sandbox left up from another checkout had,
    the LBs now serve this tree's config and its fast path), v1.2.0 on every node. Each
    stage's end is printed with the seconds since the start (the background log)."""
    began = time.monotonic()

    def done(what: str) -> None:
        print(f"{time.monotonic() - began:6.1f} s  {what}", flush=True)

    bring_up(done)
    fleet = load_fleet(INVENTORY)
    fleet_ops.set_traffic(fleet, canary={}, stable={n.name: "v1.2.0" for n in fleet.nodes}, canary_percent=0)
    done("the nginx_lb role on every LB")
    stable_everywhere(fleet)
    done(READY)


class BackgroundBringUp:
    """`ready_for_a_release()` in a process of its own, started once the session knows it
    needs the sandbox: the tests that need no Docker engine run meanwhile (tests/conftest.py
    orders them first), and the first sandbox test waits for it."""

    def __init__(self, log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.waited_s: float | None = None  # by the first test that needed the sandbox
        with log.open("wb") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-c", "from tests.sandbox_fleet import ready_for_a_release; ready_for_a_release()"],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait(self) -> None:
        began = time.monotonic()
        returncode = self._process.wait()
        if self.waited_s is None:
            self.waited_s = time.monotonic() - began
        if returncode != 0:
            raise AssertionError(f"bringing the sandbox up failed (exit {returncode}); "
                                 f"{self.log}:\n{self.log.read_text(errors='replace')[-6000:]}")

    def summary(self) -> str:
        """How long the bring-up took and how long the tests waited for it, for the session's end."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        took = next((line.split(" s ")[0].strip() for line in reversed(lines) if line.endswith(READY)), None)
        waited = "no test waited for it" if self.waited_s is None else f"the first test that needed it waited {self.waited_s:.0f} s"
        return f"sandbox bring-up: {f'ready after {took} s' if took else 'not finished'}; {waited} (log: {self.log})"

    def stop(self) -> None:
        """A session that ends before it needed the sandbox (-x, Ctrl-C) leaves nothing
        running; the next `sandbox up` completes what was cut short."""
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(60)


def publish_variant(version: str, variant: str) -> str:
    """Build and publish a broken test-only variant (never a release) as `<version>-<variant>`."""
    full = f"{version}-{variant}"
    subprocess.run([sys.executable, "-m", "models", "build", version, "--variant", variant,
                    "--out", str(REPO / "build" / "models")], check=True, cwd=REPO, capture_output=True)
    rollout("build", full)
    rollout("publish", full)
    return full


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=False, capture_output=True, text=True, timeout=timeout)


def stop_node(container: str) -> None:
    """`docker stop` a node container, after shutting its own Docker engine down cleanly.

    A dockerd killed by `docker stop` leaves /var/run/docker.pid and containerd's pid file
    in the container, and the node's entrypoint then cannot start dockerd again ("pid file
    found"); stopping it first keeps the node restartable. Stopped, its name no longer
    resolves on the sandbox network: a host that is gone."""
    _docker("exec", container, "sh", "-c",
            'kill "$(cat /var/run/docker.pid)"; i=0; '
            'while [ -e /var/run/docker.pid ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done', timeout=90)
    stopped = _docker("stop", container)
    assert stopped.returncode == 0, f"could not stop {container}: {stopped.stderr}"


def _ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.settimeout(2)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def start_node(container: str, ssh_port: int, timeout: float = 180) -> None:
    """Start a stopped node container and wait for its sshd (which starts after its engine)
    and its service container (restarted by its engine: restart policy unless-stopped)."""
    started = _docker("start", container)
    assert started.returncode == 0, f"could not start {container}: {started.stderr}"
    deadline = time.monotonic() + timeout
    while not _ssh_banner(ssh_port):
        if time.monotonic() > deadline:
            log = _docker("exec", container, "tail", "-5", "/var/log/dockerd.log").stdout
            raise AssertionError(f"{container}: sshd did not come back on 127.0.0.1:{ssh_port}; dockerd.log:\n{log}")
        time.sleep(1)
    while _docker("exec", container, "curl", "-sf", "--max-time", "5", "localhost:6006/readyz").returncode:
        if time.monotonic() > deadline:
            break  # the next deploy recreates it anyway
        time.sleep(2)
