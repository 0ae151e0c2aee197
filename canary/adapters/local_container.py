"""Run one service image on the local Docker engine, hardened as on a fleet host.

Used by `rollout run` (the local demo) and by tests of the image: read-only root,
tmpfs /tmp, all capabilities dropped, no-new-privileges, the image's non-root user.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import dataclass


class ContainerError(RuntimeError):
    """The container could not start or did not become healthy; includes its log tail."""


@dataclass(frozen=True)
class RunOptions:
    port: int = 6006
    bind: str = "127.0.0.1"
    memory: str = "4g"
    health_start_period_s: int = 120
    env: tuple[tuple[str, str], ...] = ()
    gpus: str = ""  # docker --gpus value ("all", "device=0"); empty: CPU only


def free_local_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def container_name(version: str) -> str:
    return f"voxfleet-tts-{version.replace('.', '-')}"


def hardened_run_args(image: str, name: str, options: RunOptions) -> list[str]:
    args = ["docker", "run", "-d", "--name", name,
            "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=512m",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
            "--memory", options.memory, "--restart", "unless-stopped",
            "--health-start-period", f"{options.health_start_period_s}s",
            "-p", f"{options.bind}:{options.port}:6006",
            "--label", "io.voxfleet.managed=local"]
    if options.gpus:
        args += ["--gpus", options.gpus]
    for key, value in options.env:
        args += ["-e", f"{key}={value}"]
    return args + [image]


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def remove(name: str) -> bool:
    """Remove the container if it exists; True when one was removed."""
    return _docker("rm", "-f", name).returncode == 0


def health(name: str) -> str:
    result = _docker("inspect", "--format", "{{json .State}}", name)
    if result.returncode != 0:
        return "missing"
    state = json.loads(result.stdout)
    if not state.get("Running"):
        return "exited"
    return state.get("Health", {}).get("Status", "none")


def logs(name: str, lines: int = 40) -> str:
    result = _docker("logs", "--tail", str(lines), name)
    return (result.stdout + result.stderr).strip()


def run(image: str, name: str, options: RunOptions, timeout_s: float = 180.0) -> None:
    """Replace any container called `name` with one of `image`; wait until healthy."""
    remove(name)
    started = subprocess.run(hardened_run_args(image, name, options), capture_output=True, text=True)
    if started.returncode != 0:
        raise ContainerError(f"docker run {image} failed: {started.stderr.strip()}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = health(name)
        if status == "healthy":
            return
        if status in ("exited", "unhealthy", "missing"):
            break
        time.sleep(1.0)
    else:
        status = f"not healthy after {timeout_s:.0f}s"
    raise ContainerError(f"container {name} ({image}) is {status}; last log lines:\n{logs(name)}")
