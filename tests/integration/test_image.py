"""The service image: build it for model v1.3.0, run it locked down, and speak through it.

Needs a Docker engine (skipped otherwise) and the offline base image, which
canary.adapters.images.ensure_base_image makes when it is missing. The first build takes
a few minutes (torch goes into the venv); later builds reuse the layer cache.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSION = "v1.3.0"
TAG = f"voxfleet/tts:{VERSION}-test"
BASE_IMAGE = "voxfleet/base:bookworm"
HEALTHY_TIMEOUT_S = 180


def _docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def _docker_available() -> str | None:
    """None when `docker info` works, else why not."""
    try:
        done = _docker("info", check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


@pytest.fixture(scope="session")
def image() -> dict[str, str]:
    """Build the image for VERSION; returns its tag, id and the model's manifest sha256."""
    problem = _docker_available()
    if problem:
        pytest.fail(f"no usable Docker engine (`docker info` failed: {problem}); deselect with -m 'not docker'")
    from canary.adapters import images

    subprocess.run([sys.executable, "-m", "models", "build", VERSION, "--out", "build/models"],
                   cwd=REPO_ROOT, check=True)
    manifest = REPO_ROOT / "build" / "models" / VERSION / "manifest.json"
    image_id = images.build_image(REPO_ROOT, VERSION, TAG, BASE_IMAGE, images.git_revision(REPO_ROOT))
    return {"tag": TAG, "id": image_id, "sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _logs(name: str) -> str:
    done = _docker("logs", "--tail", "60", name, check=False)
    return (done.stdout + done.stderr)[-6000:]


@pytest.fixture(scope="module")
def container(image: dict[str, str]) -> Iterator[dict[str, str]]:
    """The image running read-only, unprivileged, on a free local port; removed after this
    module's tests (not kept through the sandbox's, which judge latency on the same CPUs)."""
    name = f"voxfleet-image-test-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    try:
        _docker("run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
                "--security-opt", "no-new-privileges:true", "-p", f"127.0.0.1:{port}:6006", image["tag"])
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        status = ""
        while time.monotonic() < deadline:
            state = json.loads(_docker("inspect", "--format", "{{json .State}}", name).stdout)
            status = (state.get("Health") or {}).get("Status", "")
            if status == "healthy":
                break
            if not state.get("Running"):
                pytest.fail(f"container exited (code {state.get('ExitCode')}) before healthy:\n{_logs(name)}")
            time.sleep(2)
        else:
            pytest.fail(f"container not healthy after {HEALTHY_TIMEOUT_S} s (status {status!r}):\n{_logs(name)}")
        yield {"name": name, "url": f"http://127.0.0.1:{port}"}
    finally:
        _docker("rm", "-f", "-v", name, check=False)


def _wav_info(body: bytes) -> tuple[int, float]:
    """(sample rate, seconds) of a RIFF/WAVE file, from its fmt and data chunks."""
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE", f"not a RIFF WAV: {body[:16]!r}"
    rate = block_align = 0
    data_bytes = None
    offset = 12
    while offset + 8 <= len(body):
        chunk, size = body[offset:offset + 4], struct.unpack("<I", body[offset + 4:offset + 8])[0]
        if chunk == b"fmt ":
            _, _, rate, _, block_align = struct.unpack("<HHIIH", body[offset + 8:offset + 22])
        elif chunk == b"data":
            data_bytes = min(size, len(body) - offset - 8)
            break
        offset += 8 + size + (size & 1)
    assert rate and block_align and data_bytes is not None, "WAV lacks a fmt or data chunk"
    return rate, data_bytes / block_align / rate


def test_speech_through_the_image(container: dict[str, str]) -> None:
    payload = {"model": "tts-1", "input": "Hello from the image.", "voice": "alloy", "response_format": "wav"}
    request = urllib.request.Request(f"{container['url']}/v1/audio/speech", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200
        assert response.headers.get("x-model-version") == VERSION
        body = response.read()
    rate, seconds = _wav_info(body)
    assert rate == 44100
    assert seconds > 0.3, f"only {seconds:.3f} s of audio"


def test_runs_unprivileged_on_a_read_only_root(container: dict[str, str]) -> None:
    uid = _docker("exec", container["name"], "id", "-u").stdout.strip()
    assert uid and uid != "0", f"runs as uid {uid!r}"
    write = _docker("exec", container["name"], "touch", "/opt/written-at-run-time", check=False)
    assert write.returncode != 0, "could write to /opt"
    assert "Read-only file system" in write.stderr, write.stderr
    scratch = _docker("exec", container["name"], "touch", "/tmp/scratch", check=False)
    assert scratch.returncode == 0, f"/tmp (tmpfs) not writable: {scratch.stderr}"


def test_image_labels(image: dict[str, str]) -> None:
    labels = json.loads(_docker("image", "inspect", "--format", "{{json .Config.Labels}}", image["tag"]).stdout)
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["io.voxfleet.model.version"] == VERSION
    assert labels["io.voxfleet.model.sha256"] == image["sha256"]
    assert labels["io.voxfleet.engine"]
    assert labels["org.opencontainers.image.revision"]
