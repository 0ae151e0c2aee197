"""Build the service image: wheelhouse, base image and `docker build` (used by `rollout build`).

Nothing inside the image build downloads anything: Python packages come from a
wheelhouse made here on the host (`build/wheelhouse/`), the model from
`build/models/<version>/`. See the Dockerfile for the build args.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from service.model_dir import ModelDirError, ModelManifest, verify_model_dir

DEFAULT_BASE_IMAGE = "voxfleet/base:bookworm"
# Labels the Dockerfile sets, read back by publish (immutable tags) and the controller (history).
VERSION_LABEL = "org.opencontainers.image.version"
REVISION_LABEL = "org.opencontainers.image.revision"
MODEL_SHA_LABEL = "io.voxfleet.model.sha256"
MODEL_VERSION_LABEL = "io.voxfleet.model.version"
REQUIREMENT_FILES = ("requirements/image.txt", "requirements/torch.txt")
TORCH_WHEELS = Path(os.environ.get("VOXFLEET_TORCH_WHEELS", "/opt/wheels"))
# Wheels for the image's interpreter, not the host's: CPython 3.11 on x86_64 glibc.
# Up to glibc 2.35, so they run on Ubuntu 22.04 (CUDA images) and Debian bookworm.
TARGET_ARGS = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
TARGET_ARGS += [f"--platform=manylinux_2_{minor}_x86_64" for minor in range(35, 16, -1)]
TARGET_ARGS += ["--platform=manylinux2014_x86_64"]


class ImageBuildError(RuntimeError):
    """An image build step failed; `log_tail` holds the last lines of its output."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n--- last lines of output ---\n{log_tail}" if log_tail else message)
        self.log_tail = log_tail


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(repo_root: Path) -> dict[str, str]:
    """name -> version of every `name==version` line in the requirement files."""
    pins: dict[str, str] = {}
    for rel in REQUIREMENT_FILES:
        for line in (repo_root / rel).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                name, sep, version = line.partition("==")
                if not sep:
                    raise ImageBuildError(f"{repo_root / rel}: {line!r} is not pinned as name==version")
                pins[_canonical(name)] = version.strip()
    return pins


def _wheels(wheelhouse: Path) -> dict[tuple[str, str], Path]:
    """(name, version without local label) -> wheel file, for the wheels in `wheelhouse`."""
    found = {}
    for path in wheelhouse.glob("*.whl"):
        name, version = path.name.split("-")[:2]
        found[(_canonical(name), version.split("+")[0])] = path
    return found


def _stream(cmd: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            log: TextIO | None = None) -> None:
    """Run `cmd`, copying its output to `log` (default stderr); raise ImageBuildError with
    the tail on failure."""
    tail: collections.deque[str] = collections.deque(maxlen=40)
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        raise ImageBuildError(f"{what}: cannot run {cmd[0]} ({exc})") from exc
    assert proc.stdout is not None
    for line in proc.stdout:
        (log or sys.stderr).write(line)
        tail.append(line.rstrip("\n"))
    if proc.wait() != 0:
        where = f" (whole log: {log.name})" if log is not None and hasattr(log, "name") else ""
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}){where}: {' '.join(cmd)}", "\n".join(tail))


def build_wheelhouse(repo_root: Path, dest: Path, log: TextIO | None = None) -> Path:
    """Download every pinned wheel for the image into `dest`; a no-op when all are there."""
    repo_root, dest = Path(repo_root), Path(dest)
    pins = _pins(repo_root)
    dest.mkdir(parents=True, exist_ok=True)
    for (name, version), path in _wheels(dest).items():  # drop wheels of old pins
        if pins.get(name) != version:
            path.unlink()
    if all((name, version) in _wheels(dest) for name, version in pins.items()):
        print(f"wheelhouse {dest}: all {len(pins)} pinned wheels present", file=log or sys.stderr)
        return dest
    # An unpinned or missing local torch would make pip fetch a multi-GB CUDA build.
    torch = pins.get("torch")
    if torch and not any(TORCH_WHEELS.glob(f"torch-{torch}+*-cp311-*.whl")) and not any(dest.glob("torch-*.whl")):
        raise ImageBuildError(f"no torch {torch} wheel in {TORCH_WHEELS} (set VOXFLEET_TORCH_WHEELS to its folder)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", *TARGET_ARGS,
           "--find-links", str(TORCH_WHEELS), "--dest", str(dest)]
    for rel in REQUIREMENT_FILES:
        cmd += ["-r", str(repo_root / rel)]
    _stream(cmd, "wheelhouse download", log=log)
    missing = sorted(f"{n}=={v}" for n, v in pins.items() if (n, v) not in _wheels(dest))
    if missing:
        raise ImageBuildError(f"wheelhouse {dest} still lacks: {', '.join(missing)}")
    return dest


def image_present(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], check=False, capture_output=True).returncode == 0


def ensure_base_image(repo_root: Path, image: str = DEFAULT_BASE_IMAGE, log: TextIO | None = None) -> None:
    """Make sure `image` is in the local engine: build voxfleet/base:* offline, pull anything else."""
    if image_present(image):
        return
    if image.startswith("voxfleet/base:"):
        _stream([str(Path(repo_root) / "docker" / "build-base-image.sh"), image], f"building base image {image}", log=log)
    else:
        _stream(["docker", "pull", image], f"pulling base image {image}", log=log)


def _git(repo_root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(repo_root), *args], check=False, capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision(repo_root: Path) -> str:
    """The commit the image is built from ("-dirty" if the tree has changes), or "unknown"."""
    revision = _git(repo_root, "rev-parse", "HEAD")
    if not revision:
        return "unknown"
    return revision + ("-dirty" if _git(repo_root, "status", "--porcelain", "--untracked-files=no") else "")


def model_manifest(repo_root: Path, version: str) -> ModelManifest:
    """The verified manifest of build/models/<version>; ImageBuildError naming the path otherwise."""
    model_dir = Path(repo_root) / "build" / "models" / version
    if not model_dir.is_dir():
        raise ImageBuildError(f"model directory {model_dir} is missing: fetch the {version} artifact from the "
                              f"artifact store into it (demo releases: python -m models build {version})")
    try:
        manifest = verify_model_dir(model_dir)
    except ModelDirError as exc:
        raise ImageBuildError(f"model directory {model_dir} is not valid: {exc}") from exc
    if manifest.version != version:
        raise ImageBuildError(f"{model_dir / 'manifest.json'}: version {manifest.version}, expected {version}")
    return manifest


def build_image(repo_root: Path, version: str, tag: str, base_image: str = DEFAULT_BASE_IMAGE,
                git_revision: str = "unknown", log: TextIO | None = None) -> str:
    """`docker build` the service image for model `version` as `tag`; returns the image id.
    The build's output goes to `log` (default stderr)."""
    repo_root = Path(repo_root)
    manifest = model_manifest(repo_root, version)
    build_wheelhouse(repo_root, repo_root / "build" / "wheelhouse", log)
    ensure_base_image(repo_root, base_image, log)
    commit_time = _git(repo_root, "log", "-1", "--format=%cI")
    created = commit_time or datetime.now(UTC).isoformat(timespec="seconds")
    args = {
        "BASE_IMAGE": base_image, "MODEL_VERSION": version, "MODEL_SHA256": manifest.sha256,
        "MODEL_ENGINE": manifest.engine, "GIT_REVISION": git_revision, "IMAGE_TAG": tag,
        "BUILD_DATE": created, "SOURCE_URL": _git(repo_root, "remote", "get-url", "origin") or "",
    }
    with tempfile.TemporaryDirectory(prefix="voxfleet-build-") as tmp:
        iidfile = Path(tmp) / "iid"
        cmd = ["docker", "build", "--force-rm", "--iidfile", str(iidfile), "-t", tag, "-f", str(repo_root / "Dockerfile")]
        for key, value in args.items():
            cmd += ["--build-arg", f"{key}={value}"]
        env = dict(os.environ)
        env.setdefault("DOCKER_BUILDKIT", "0")  # docker.io 20.10 here has no buildx
        _stream([*cmd, str(repo_root)], f"docker build of {tag}", env=env, log=log)
        return iidfile.read_text().strip()


def image_tag(version: str, registry_address: str | None, repository: str = "tts") -> str:
    return f"{registry_address.rstrip('/')}/{repository}:{version}" if registry_address else f"tts:{version}"


def tag_image(source: str, target: str) -> None:
    result = subprocess.run(["docker", "tag", source, target], capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageBuildError(f"cannot tag {source} as {target}: {result.stderr.strip()}")


def push_image(local_tag: str, target: str) -> str:
    """Tag `local_tag` as `target` and push it; returns the pushed manifest digest."""
    if not image_present(local_tag):
        version = local_tag.rsplit(":", 1)[-1]
        raise ImageBuildError(f"image {local_tag} is not built here (run: rollout build {version})")
    tag_image(local_tag, target)
    result = subprocess.run(["docker", "push", target], capture_output=True, text=True)
    if result.returncode != 0:
        raise ImageBuildError(f"docker push {target} failed: {result.stderr.strip()[-500:]}")
    match = re.search(r"digest: (sha256:[0-9a-f]{64})", result.stdout)
    return match.group(1) if match else ""


def pull_image(image: str) -> None:
    """`docker pull image`; ImageBuildError naming it when the registry does not give it."""
    pulled = subprocess.run(["docker", "pull", image], capture_output=True, text=True)
    if pulled.returncode != 0:
        raise ImageBuildError(f"cannot pull {image}: {pulled.stderr.strip()}")


def local_image_labels(image: str) -> tuple[str, dict[str, str]] | None:
    """(image ID, labels) of `image` in the local engine; None when it is not there."""
    found = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}} {{json .Config.Labels}}", image],
                           capture_output=True, text=True)
    if found.returncode != 0:
        return None
    image_id, _, labels = found.stdout.strip().partition(" ")
    return image_id, json.loads(labels) or {}
