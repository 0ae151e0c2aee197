"""The shared sandbox fleet for tests: real registry, SSH hosts with Docker, nginx LB.

Brought up once per session with the product's own commands (`rollout sandbox up`,
`rollout build`, `rollout publish`) by the `sandbox` fixture (tests/conftest.py) and
left up afterwards (so reruns are fast); `rollout sandbox down` removes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INVENTORY = REPO / "inventory" / "sandbox"
VERSIONS = ("v1.2.0", "v1.3.0")


def rollout(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("rollout")), *args]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=dict(os.environ, **(env or {})),
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"rollout {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def docker_works() -> bool:
    return shutil.which("docker") is not None and subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def bring_up() -> None:
    rollout("sandbox", "up", "--hosts", "3")
    for version in VERSIONS:
        rollout("build", version)
        rollout("publish", version)


def publish_variant(version: str, variant: str) -> str:
    """Build and publish a broken test-only variant (never a release) as `<version>-<variant>`."""
    full = f"{version}-{variant}"
    subprocess.run([sys.executable, "-m", "models", "build", version, "--variant", variant,
                    "--out", str(REPO / "build" / "models")], check=True, cwd=REPO, capture_output=True)
    rollout("build", full)
    rollout("publish", full)
    return full
