"""MODEL_URI: fetch a packed model over HTTP or file://, verify, cache; every failure named."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from models.artifact import pack
from service.config import Settings, SettingsError, redact_uri
from service.model_dir import write_manifest
from service.model_source import ModelSourceError, fetch_model, resolve_model

FIELDS = {"name": "voxfleet-demo", "version": "v1.3.0", "engine": "demo", "sample_rate": 44_100}
FAST: dict[str, Any] = {"timeout_s": 2.0, "attempts": 2, "backoff_s": 0.0}


@pytest.fixture
def model(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    (directory / "sub").mkdir(parents=True)
    (directory / "weights.bin").write_bytes(os.urandom(300_000))
    (directory / "sub" / "vocab.txt").write_text("a\nb\n")
    write_manifest(directory, FIELDS)
    return directory


@pytest.fixture
def artifact(model: Path, tmp_path: Path) -> tuple[Path, str]:
    out = tmp_path / "www" / "v1.3.0.tar.gz"
    return out, pack(model, out)


class Handler(SimpleHTTPRequestHandler):
    failures_left = 0  # answer 503 this many times first
    requests: list[str] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_error(503)
            return
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(artifact: tuple[Path, str]) -> Iterator[tuple[str, type[Handler]]]:
    handler = type("H", (Handler,), {"requests": [], "failures_left": 0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(artifact[0].parent)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def failure(*args, **kwargs) -> str:
    with pytest.raises(ModelSourceError) as info:
        fetch_model(*args, **{**FAST, **kwargs})
    message = str(info.value)
    assert "\n" not in message
    return message


def test_pack_is_reproducible(model: Path, tmp_path: Path) -> None:
    first, second = pack(model, tmp_path / "a.tar.gz"), pack(model, tmp_path / "b.tar.gz")
    assert first == second == hashlib.sha256((tmp_path / "a.tar.gz").read_bytes()).hexdigest()
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["manifest.json", "sub/vocab.txt", "weights.bin"]
    assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == {(0, 0, 0, 0o644)}


def test_http_download_then_cache_hit_without_network(server, artifact, tmp_path: Path, caplog) -> None:
    url, handler = server
    path, sha256 = artifact
    caplog.set_level("INFO", "service.model_source")
    manifest = fetch_model(f"{url}/{path.name}", sha256, tmp_path / "cache", expected_version="v1.3.0", **FAST)
    assert manifest.directory == tmp_path / "cache" / sha256 and manifest.version == "v1.3.0"
    assert "downloaded, archive sha256 " + sha256 in caplog.text
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [sha256]  # no temporary left
    again = fetch_model(f"http://127.0.0.1:{closed_port()}/{path.name}", sha256, tmp_path / "cache", **FAST)
    assert again.sha256 == manifest.sha256 and len(handler.requests) == 1
    assert "cache hit" in caplog.text


def test_file_uri_and_a_damaged_cache_entry_fetched_again(artifact, tmp_path: Path) -> None:
    path, sha256 = artifact
    manifest = fetch_model(path.as_uri(), sha256, tmp_path / "cache", **FAST)
    (manifest.directory / "weights.bin").write_bytes(b"tampered")
    again = fetch_model(path.as_uri(), sha256, tmp_path / "cache", **FAST)
    assert (again.directory / "weights.bin").stat().st_size == 300_000


def test_wrong_checksum_names_uri_and_both_digests(server, artifact, tmp_path: Path) -> None:
    url, _ = server
    path, sha256 = artifact
    wrong = "0" * 64
    message = failure(f"{url}/{path.name}", wrong, tmp_path / "cache")
    assert f"MODEL_URI {url}/{path.name}: sha256 mismatch: expected {wrong}" in message
    assert f"got {sha256}" in message
    assert list((tmp_path / "cache").iterdir()) == []  # the bad download was deleted


def test_unreachable_host_is_retried_then_named(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{closed_port()}/v1.3.0.tar.gz"
    message = failure(uri, "0" * 64, tmp_path / "cache")
    assert message == f"MODEL_URI {uri} is unreachable: Connection refused (gave up after 2 attempts)"


def test_a_stalled_server_times_out(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}/v1.3.0.tar.gz"
        message = failure(uri, "0" * 64, tmp_path / "cache", timeout_s=0.3, attempts=1)
    assert "is unreachable" in message and "timed out" in message


def test_404_is_not_retried(server, tmp_path: Path) -> None:
    url, handler = server
    message = failure(f"{url}/v9.9.9.tar.gz", "0" * 64, tmp_path / "cache")
    assert message == f"MODEL_URI {url}/v9.9.9.tar.gz answered HTTP 404 File not found"
    assert len(handler.requests) == 1


def test_503_is_retried(server, artifact, tmp_path: Path) -> None:
    url, handler = server
    handler.failures_left = 1
    manifest = fetch_model(f"{url}/{artifact[0].name}", artifact[1], tmp_path / "cache", **FAST)
    assert manifest.version == "v1.3.0" and len(handler.requests) == 2


def test_missing_file_uri(tmp_path: Path) -> None:
    message = failure((tmp_path / "nope.tar.gz").as_uri(), "0" * 64, tmp_path / "cache")
    assert message.endswith("nope.tar.gz cannot be read: No such file or directory")


def test_version_must_match_the_image(artifact, tmp_path: Path) -> None:
    path, sha256 = artifact
    message = failure(path.as_uri(), sha256, tmp_path / "cache", expected_version="v1.2.0")
    assert "holds model version v1.3.0, but this image is MODEL_VERSION=v1.2.0" in message


def tar_with(tmp_path: Path, name: str, kind: bytes = tarfile.REGTYPE) -> tuple[str, str]:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.size, info.linkname = kind, 0 if kind != tarfile.REGTYPE else 4, "/etc/passwd"
        tar.addfile(info, io.BytesIO(b"evil") if kind == tarfile.REGTYPE else None)
    return path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("name", "kind", "why"), [
    ("../escaped.txt", tarfile.REGTYPE, "would land outside the model directory"),
    ("/abs.txt", tarfile.REGTYPE, "would land outside the model directory"),
    ("link", tarfile.SYMTYPE, "is a link"),
])
def test_unsafe_archive_members_are_refused(tmp_path: Path, name: str, kind: bytes, why: str) -> None:
    uri, sha256 = tar_with(tmp_path, name, kind)
    assert why in failure(uri, sha256, tmp_path / "cache" / "models")
    assert not (tmp_path / "cache" / "escaped.txt").exists()
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_unwritable_cache_is_named(artifact, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    message = failure(artifact[0].as_uri(), artifact[1], tmp_path / "file" / "cache")
    assert message.startswith(f"MODEL_CACHE_DIR {tmp_path / 'file' / 'cache'} is not a writable directory")


def test_concurrent_starts_share_one_copy(artifact, tmp_path: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: fetch_model(artifact[0].as_uri(), artifact[1], tmp_path / "c", **FAST),
                                range(4)))
    assert {m.directory for m in results} == {tmp_path / "c" / artifact[1]}
    assert [p.name for p in (tmp_path / "c").iterdir()] == [artifact[1]]


def test_baked_model_by_default(model: Path) -> None:
    assert resolve_model(Settings(model_dir=model)).directory == model


@pytest.mark.parametrize(("env", "error"), [
    ({"MODEL_URI": "https://a.example/v1.3.0.tar.gz"}, "MODEL_URI_SHA256 is required with MODEL_URI"),
    ({"MODEL_URI": "s3://bucket/v1.3.0.tar.gz", "MODEL_URI_SHA256": "a" * 64}, "must start with file://"),
    ({"MODEL_URI": "file:///m.tar.gz", "MODEL_URI_SHA256": "xyz"}, "is not a sha256"),
    ({"MODEL_URI_SHA256": "a" * 64}, "MODEL_URI_SHA256 is set but MODEL_URI is empty"),
    ({"MODEL_URI": "https://u:pw@a.example/m.tar.gz", "MODEL_URI_SHA256": "a" * 64}, "carries a user or password"),
])
def test_settings_are_checked(env: dict[str, str], error: str) -> None:
    with pytest.raises(SettingsError, match=error):
        Settings.from_env(env)


def test_settings_and_redaction() -> None:
    s = Settings.from_env({"MODEL_URI": "https://a.example/m.tar.gz?X-Amz-Signature=s",
                           "MODEL_URI_SHA256": "A" * 64, "MODEL_CACHE_DIR": "/c", "MODEL_VERSION": "v1.3.0"})
    assert (s.model_uri_sha256, s.model_cache_dir, s.model_version) == ("a" * 64, Path("/c"), "v1.3.0")
    assert redact_uri(s.model_uri) == "https://a.example/m.tar.gz?…"
    assert redact_uri("https://u:pw@a.example/m.tar.gz") == "https://a.example/m.tar.gz"
    assert Settings.from_env({}).model_cache_dir == Path("/var/cache/voxfleet/models")


def test_an_archive_with_a_dot_root_entry_is_accepted(model: Path, tmp_path: Path) -> None:
    archive = tmp_path / "dot.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(model, arcname=".")  # what `tar -C model -czf dot.tar.gz .` writes
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    fetched = fetch_model(archive.as_uri(), digest, tmp_path / "cache")
    assert fetched.version == "v1.3.0" and (fetched.directory / "manifest.json").is_file()
