"""A model directory: `manifest.json` plus the files it lists with their sha256.

The manifest is the contract between the model recipe (or a training team), the
image build and the server: version, engine, sample rate, voices and every file's
digest. The model's identity (`sha256`) is the digest of the manifest's bytes, which
covers every file through their listed digests.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
VERSION_PATTERN = re.compile(r"^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
_REQUIRED = ("name", "version", "engine", "sample_rate", "files")


class ModelDirError(Exception):
    """A model directory is missing, incomplete or corrupt. The message names the file."""


@dataclass(frozen=True)
class ModelManifest:
    directory: Path
    name: str
    version: str
    engine: str
    sample_rate: int
    files: dict[str, str]
    voices: tuple[str, ...]
    sha256: str
    config: dict[str, Any] = field(default_factory=dict)
    shipped: bool = True

    def path(self, name: str) -> Path:
        return self.directory / name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_data(directory: Path) -> tuple[Path, bytes, dict[str, Any]]:
    """(path, bytes, parsed object) of the directory's manifest; ModelDirError naming what is wrong."""
    manifest_path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise ModelDirError(f"model directory {directory} does not exist")
    if not manifest_path.is_file():
        raise ModelDirError(f"{manifest_path}: manifest is missing")
    raw = manifest_path.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelDirError(f"{manifest_path}: expected a JSON object")
    return manifest_path, raw, data


def _field_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the manifest's fields, naming the field; None when nothing is."""
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    files = data["files"]
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        return "field 'files' must map file names to sha256 strings"
    outside = [name for name in files if Path(name).is_absolute() or ".." in Path(name).parts]
    if outside:
        return f"file name {outside[0]!r} must stay inside the model directory"
    if not isinstance(data["sample_rate"], int) or data["sample_rate"] <= 0:
        return "field 'sample_rate' must be a positive integer"
    if not VERSION_PATTERN.fullmatch(str(data["version"])):
        return f"field 'version' {data['version']!r} is not a version like v1.3.0"
    return None


def read_manifest(directory: Path | str) -> ModelManifest:
    """Parse the manifest without checking file digests (cheap)."""
    directory = Path(directory)
    manifest_path, raw, data = _manifest_data(directory)
    problem = _field_problem(data)
    if problem:
        raise ModelDirError(f"{manifest_path}: {problem}")
    voices = data.get("voices") or ["default"]
    return ModelManifest(
        directory=directory,
        name=str(data["name"]),
        version=str(data["version"]),
        engine=str(data["engine"]),
        sample_rate=int(data["sample_rate"]),
        files=dict(data["files"]),
        voices=tuple(str(v) for v in voices),
        sha256=hashlib.sha256(raw).hexdigest(),
        config=dict(data.get("config") or {}),
        shipped=bool(data.get("shipped", True)),
    )


def verify_model_dir(directory: Path | str) -> ModelManifest:
    """Parse the manifest and check every listed file exists with its sha256."""
    manifest = read_manifest(directory)
    for name, expected in sorted(manifest.files.items()):
        path = manifest.path(name)
        if not path.is_file():
            raise ModelDirError(f"{path}: file listed in the manifest is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelDirError(f"{path}: sha256 mismatch (manifest {expected[:12]}…, file {actual[:12]}…)")
    return manifest


def write_manifest(directory: Path, fields: dict[str, Any]) -> str:
    """Write manifest.json for every file under `directory` (recursively); returns the model sha256."""
    files = {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path != directory / MANIFEST_NAME
    }
    body = dict(fields, files=files)
    encoded = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
    (directory / MANIFEST_NAME).write_bytes(encoded)
    return hashlib.sha256(encoded).hexdigest()
