"""MODEL_URI for real: the server and the image fetch a packed model from a local HTTP server.

The server tests run `python -m service` here; the image tests (marker `docker`) build
the v1.3.0 image as tests/integration/test_image.py does and run it hardened (read-only
root, tmpfs /tmp, canary.local_container's flags) with a host cache directory mounted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from canary.adapters.local_container import RunOptions, hardened_run_args
from tests.integration.server_process import REPO, ServerProcess, free_port

pytestmark = pytest.mark.integration

VERSION = "v1.3.0"
TAG = f"voxfleet/tts:{VERSION}-test"  # the tag test_image.py builds: one image, one layer cache
CACHE_IN_CONTAINER = "/var/cache/voxfleet/models"
WRONG = "0" * 64


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def http_server(directory: Path, host: str = "127.0.0.1") -> Iterator[str]:
    httpd = ThreadingHTTPServer((host, 0), partial(QuietHandler, directory=str(directory)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """build/models/v1.3.0 packed by `python -m models pack`: its folder, file name and sha256."""
    out = tmp_path_factory.mktemp("artifacts")
    subprocess.run([sys.executable, "-m", "models", "build", VERSION, "--out", "build/models"], cwd=REPO,
                   check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-m", "models", "pack", VERSION, "--out", str(out)], cwd=REPO,
                          check=True, capture_output=True, text=True)
    sha256, path = done.stdout.split()
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha256
    manifest = REPO / "build" / "models" / VERSION / "manifest.json"
    return {"dir": str(out), "name": Path(path).name, "sha256": sha256,
            "model_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()}


def uri_env(uri: str, sha256: str, cache: Path) -> dict[str, str]:
    return {"MODEL_URI": uri, "MODEL_URI_SHA256": sha256, "MODEL_CACHE_DIR": str(cache),
            "MODEL_VERSION": VERSION, "TTS_UI": "0"}


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


# -- the server on this machine ------------------------------------------------------

def test_server_serves_the_fetched_model(artifact: dict[str, str], tmp_path: Path) -> None:
    with http_server(Path(artifact["dir"])) as base:
        server = ServerProcess(tmp_path / "no-baked-model",
                               env=uri_env(f"{base}/{artifact['name']}", artifact["sha256"], tmp_path)).start()
        try:
            server.wait_ready()
            version = get_json(f"{server.url}/version")
        finally:
            server.stop()
    assert (version["model_version"], version["model_sha256"]) == (VERSION, artifact["model_sha256"])
    assert f"downloaded, archive sha256 {artifact['sha256']} verified" in server.log()


def test_server_refuses_a_wrong_checksum(artifact: dict[str, str], tmp_path: Path) -> None:
    with http_server(Path(artifact["dir"])) as base:
        env = dict(uri_env(f"{base}/{artifact['name']}", WRONG, tmp_path), PYTHONPATH=str(REPO))
        done = subprocess.run([sys.executable, "-m", "service"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot start: MODEL_URI {base}/{artifact['name']}: sha256 mismatch: "
                           f"expected {WRONG} (MODEL_URI_SHA256), got {artifact['sha256']}"), last


# -- the image -------------------------------------------------------------------------

def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image(artifact: dict[str, str]) -> str:
    try:
        problem = docker("info").returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        problem = True
    if problem:
        pytest.fail("no usable Docker engine (`docker info` failed); deselect with -m 'not docker'")
    from canary.adapters import images

    images.build_image(REPO, VERSION, TAG, images.DEFAULT_BASE_IMAGE, images.git_revision(REPO))
    return TAG


@pytest.fixture(scope="module")
def published(artifact: dict[str, str], image: str) -> Iterator[str]:
    """The artifact's URL on the docker0 bridge's gateway, which containers reach."""
    inspect = docker("network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}")
    assert inspect.returncode == 0, inspect.stderr
    config = json.loads(inspect.stdout)[0]
    # Some engines (Debian's 20.10) leave Gateway out: the bridge takes the subnet's first address.
    gateway = config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    with http_server(Path(artifact["dir"]), gateway) as base:
        yield f"{base}/{artifact['name']}"


@pytest.fixture
def start(image: str, tmp_path: Path) -> Iterator:
    """start(uri, sha256) -> (container name, URL); hardened, no restart, tmp_path/cache mounted."""
    names: list[str] = []
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)  # the image's uid 10001 writes here (the role chowns the host dir instead)

    def run(uri: str, sha256: str) -> tuple[str, str]:
        name, port = f"vfuri-{uuid.uuid4().hex[:8]}", free_port()
        env = {"MODEL_URI": uri, "MODEL_URI_SHA256": sha256}
        args = hardened_run_args(image, name, RunOptions(port=port, env=tuple(env.items())))
        args[args.index("--restart") + 1] = "no"  # a failed start must stay stopped, to be read
        args[-1:-1] = ["-v", f"{cache}:{CACHE_IN_CONTAINER}"]
        names.append(name)
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return name, f"http://127.0.0.1:{port}"

    yield run
    for name in names:
        docker("rm", "-f", "-v", name)


def state(name: str) -> dict:
    return json.loads(docker("inspect", "--format", "{{json .State}}", name).stdout)


def logs(name: str) -> str:
    done = docker("logs", name)
    return done.stdout + done.stderr


def wait_ready(name: str, url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not state(name).get("Running"):
            pytest.fail(f"container {name} exited ({state(name).get('ExitCode')}):\n{logs(name)[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    pytest.fail(f"container {name} not ready after {timeout_s} s:\n{logs(name)[-3000:]}")


@pytest.mark.docker
def test_image_fetches_the_model_then_starts_from_the_cache(artifact, published: str, start) -> None:
    name, url = start(published, artifact["sha256"])
    wait_ready(name, url)
    version = get_json(f"{url}/version")
    assert (version["model_version"], version["model_sha256"]) == (VERSION, artifact["model_sha256"])
    assert f"downloaded, archive sha256 {artifact['sha256']} verified" in logs(name)
    docker("rm", "-f", name)
    # A restart with the source gone: served from the host cache, nothing downloaded.
    name, url = start(published.replace(artifact["name"], "gone.tar.gz"), artifact["sha256"])
    wait_ready(name, url)
    assert "cache hit" in logs(name) and "fetching" not in logs(name)


@pytest.mark.docker
def test_image_stops_on_a_wrong_checksum(artifact, published: str, start) -> None:
    name, _ = start(published, WRONG)
    deadline = time.monotonic() + 60
    while state(name).get("Running") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state(name)["ExitCode"] == 2, logs(name)
    assert (f"error: cannot start: MODEL_URI {published}: sha256 mismatch: expected {WRONG} (MODEL_URI_SHA256), "
            f"got {artifact['sha256']}") in logs(name)
