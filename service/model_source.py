"""Where the served model comes from: baked into the image, or fetched from `MODEL_URI`.

Baked (the default, `MODEL_URI` empty): `MODEL_DIR`, put there by the image build.

Fetched: `MODEL_URI` (`file://`, `http://`, `https://`) names a model artifact, a
tar.gz of a model directory (`python -m models pack VERSION` makes one), and
`MODEL_URI_SHA256` the sha256 of its bytes. The model is extracted to
`<MODEL_CACHE_DIR>/<sha256>/` (a host directory mounted into the container), so a
restart or a roll back to a version fetched before downloads nothing. A download is
streamed to a temporary file in the cache directory while it is hashed, checked
against the expected digest (a mismatch discards it), extracted member by member
(absolute paths, `..` and links are refused), verified against its manifest, and
renamed into place atomically: concurrent starts on one host are safe.

Every failure is a ModelSourceError whose one-line message names the URI (without
its query string or credentials) and the cause; `python -m service` prints it as
`error: cannot start: ...` and exits 2.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from service.config import Settings, redact_uri
from service.model_dir import MANIFEST_NAME, ModelDirError, ModelManifest, read_manifest, verify_model_dir

log = logging.getLogger("service.model_source")

TIMEOUT_S = 30.0  # per connection attempt and per read (a stalled transfer fails, a slow one does not)
ATTEMPTS = 3  # for errors that may pass: refused or reset connections, timeouts, HTTP 5xx/408/429
BACKOFF_S = 2.0  # wait before attempt n+1: BACKOFF_S * n
STALE_TEMP_S = 24 * 3600  # leftovers of a killed start older than this are removed
_CHUNK = 1 << 20


class ModelSourceError(Exception):
    """The model could not be fetched, verified or unpacked; the message says why, in one line."""


class _Retryable(Exception):
    """A failed attempt that may succeed when tried again."""


def resolve_model(settings: Settings, *, timeout_s: float = TIMEOUT_S, attempts: int = ATTEMPTS,
                  backoff_s: float = BACKOFF_S) -> ModelManifest:
    """The verified model to serve: the baked MODEL_DIR, or the artifact at MODEL_URI (cached)."""
    if not settings.model_uri:
        manifest = verify_model_dir(settings.model_dir)
        log.info("model %s (%s) baked into the image at %s", manifest.version, manifest.sha256[:12],
                 manifest.directory)
        return manifest
    return fetch_model(settings.model_uri, settings.model_uri_sha256, settings.model_cache_dir,
                       expected_version=settings.model_version, timeout_s=timeout_s, attempts=attempts,
                       backoff_s=backoff_s)


def fetch_model(uri: str, sha256: str, cache_dir: Path, *, expected_version: str = "",
                timeout_s: float = TIMEOUT_S, attempts: int = ATTEMPTS, backoff_s: float = BACKOFF_S) -> ModelManifest:
    """Return the verified model of the artifact `uri` with archive digest `sha256`, from the cache if there."""
    shown, sha256, cache_dir = redact_uri(uri), sha256.lower(), Path(cache_dir)
    final = cache_dir / sha256
    try:
        cached = final.is_dir()
    except OSError as exc:
        raise ModelSourceError(f"MODEL_CACHE_DIR {cache_dir} cannot be read by uid {os.getuid()}: "
                               f"{exc.strerror or exc}") from exc
    if cached:
        try:
            manifest = verify_model_dir(final)
        except (ModelDirError, OSError) as exc:
            log.warning("cached model %s is damaged (%s); fetching it again", final, exc)
            _discard(final, cache_dir, shown)
        else:
            _check_version(manifest, expected_version, shown)
            log.info("model %s (%s) from MODEL_URI %s: cache hit at %s (archive sha256 %s), nothing downloaded",
                     manifest.version, manifest.sha256[:12], shown, final, sha256)
            return manifest
    _writable_cache(cache_dir)
    _remove_stale_temporaries(cache_dir)
    archive = _download(uri, shown, sha256, cache_dir, timeout_s, attempts, backoff_s)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache_dir))
        try:
            root = _extract(archive, staging, shown)
            try:
                verify_model_dir(root)
            except ModelDirError as exc:
                raise ModelSourceError(f"MODEL_URI {shown}: the archive's model directory is not valid: {exc}") from exc
            root.chmod(0o755)  # mkdtemp made it 0700
            try:
                root.rename(final)  # atomic; fails when a concurrent start got there first
            except OSError:
                if not final.is_dir():
                    raise
                log.info("another start already unpacked %s; using that copy", final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise ModelSourceError(f"MODEL_URI {shown}: cannot unpack into MODEL_CACHE_DIR {cache_dir}: {exc}") from exc
    finally:
        archive.unlink(missing_ok=True)
    manifest = read_manifest(final)  # verified above, before the rename (or by the start that won)
    log.info("model %s (%s) from MODEL_URI %s: downloaded, archive sha256 %s verified, unpacked to %s",
             manifest.version, manifest.sha256[:12], shown, sha256, final)
    _check_version(manifest, expected_version, shown)  # after caching: a restart loop downloads nothing
    return manifest


def _check_version(manifest: ModelManifest, expected: str, shown: str) -> None:
    if expected and manifest.version != expected:
        raise ModelSourceError(f"MODEL_URI {shown} holds model version {manifest.version}, but this image is "
                               f"MODEL_VERSION={expected} (point MODEL_URI at the {expected} artifact)")


def _writable_cache(cache_dir: Path) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache_dir):
            pass
    except OSError as exc:
        raise ModelSourceError(
            f"MODEL_CACHE_DIR {cache_dir} is not a writable directory for uid {os.getuid()} "
            f"({exc.strerror or exc}); mount a host directory owned by that uid there "
            f"(docker run -v /var/cache/voxfleet/models:{cache_dir})") from exc


def _remove_stale_temporaries(cache_dir: Path) -> None:
    cutoff = time.time() - STALE_TEMP_S
    for path in cache_dir.glob(".*-*"):
        try:
            if path.name.startswith((".download-", ".extract-", ".stale-")) and path.lstat().st_mtime < cutoff:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:
            pass  # another start is cleaning it up, or it is not ours to remove


def _discard(path: Path, cache_dir: Path, shown: str) -> None:
    """Move a damaged cache entry aside (atomic) and delete it."""
    try:
        aside = Path(tempfile.mkdtemp(prefix=".stale-", dir=cache_dir))
        path.rename(aside / "model")
        shutil.rmtree(aside, ignore_errors=True)
    except OSError as exc:
        raise ModelSourceError(f"MODEL_URI {shown}: cannot remove the damaged cache entry {path}: {exc}") from exc


# -- download ---------------------------------------------------------------------

def _download(uri: str, shown: str, sha256: str, cache_dir: Path, timeout_s: float, attempts: int,
              backoff_s: float) -> Path:
    """Fetch `uri` into a temporary file in `cache_dir` whose sha256 is `sha256`; return its path."""
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            handle, name = tempfile.mkstemp(prefix=".download-", suffix=".tar.gz", dir=cache_dir)
        except OSError as exc:
            raise ModelSourceError(f"MODEL_URI {shown}: cannot create a file in MODEL_CACHE_DIR {cache_dir}: "
                                   f"{exc.strerror or exc}") from exc
        path = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                log.info("fetching model from MODEL_URI %s (attempt %d/%d)", shown, attempt, attempts)
                started = time.monotonic()
                size, actual = _fetch_into(uri, shown, out, timeout_s)
        except _Retryable as exc:
            path.unlink(missing_ok=True)
            last = str(exc)
            if attempt < attempts:
                log.warning("MODEL_URI %s: attempt %d/%d failed: %s", shown, attempt, attempts, last)
                time.sleep(backoff_s * attempt)
            continue
        except OSError as exc:  # closing (flushing) the file
            path.unlink(missing_ok=True)
            raise ModelSourceError(f"MODEL_URI {shown}: cannot write the download into MODEL_CACHE_DIR {cache_dir}: "
                                   f"{exc.strerror or exc}") from exc
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if actual != sha256:
            path.unlink(missing_ok=True)
            raise ModelSourceError(f"MODEL_URI {shown}: sha256 mismatch: expected {sha256} (MODEL_URI_SHA256), "
                                   f"got {actual} for the {size} bytes downloaded; the download was discarded")
        log.info("fetched %d bytes from %s in %.1f s", size, shown, time.monotonic() - started)
        return path
    raise ModelSourceError(f"MODEL_URI {shown} is unreachable: {last} (gave up after {attempts} attempts)")


def _fetch_into(uri: str, shown: str, out: BinaryIO, timeout_s: float) -> tuple[int, str]:
    """Copy the body of `uri` into `out`; (bytes, sha256). Raises _Retryable or ModelSourceError."""
    digest, size = hashlib.sha256(), 0
    request = urllib.request.Request(uri, headers={"User-Agent": "voxfleet-model-source"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            expected = response.headers.get("Content-Length")
            for block in iter(lambda: response.read(_CHUNK), b""):
                digest.update(block)
                try:
                    out.write(block)
                except OSError as exc:  # a full disk is not a network problem: no retry
                    raise ModelSourceError(f"MODEL_URI {shown}: cannot write the download into "
                                           f"MODEL_CACHE_DIR: {exc.strerror or exc}") from exc
                size += len(block)
    except urllib.error.HTTPError as exc:
        cause = f"HTTP {exc.code} {exc.reason}"
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retryable(cause) from exc
        raise ModelSourceError(f"MODEL_URI {shown} answered {cause}") from exc
    except urllib.error.URLError as exc:
        reason = exc.reason.strerror if isinstance(exc.reason, OSError) and exc.reason.strerror else exc.reason
        if request.type == "file":  # a local path: trying again will not help
            raise ModelSourceError(f"MODEL_URI {shown} cannot be read: {reason}") from exc
        raise _Retryable(str(reason)) from exc
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, truncated bodies
        raise _Retryable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
    if expected is not None and expected.isdigit() and int(expected) != size:
        raise _Retryable(f"transfer cut short: {size} of {expected} bytes")
    return size, digest.hexdigest()


# -- unpack -----------------------------------------------------------------------

def _extract(archive: Path, dest: Path, shown: str) -> Path:
    """Unpack regular files and directories only; return the model root (where manifest.json is)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not parts and member.isdir():
                    continue  # "./", the archive's own root (`tar -C model -czf x .`)
                if member.name.startswith("/") or ".." in parts or not parts:
                    raise ModelSourceError(f"MODEL_URI {shown}: archive member {member.name!r} "
                                           "would land outside the model directory; refused")
                target = dest.joinpath(*parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    assert source is not None
                    with source, open(target, "xb") as out:
                        shutil.copyfileobj(source, out, _CHUNK)
                    target.chmod(0o644)
                else:
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise ModelSourceError(f"MODEL_URI {shown}: archive member {member.name!r} is a {kind}; "
                                           "only regular files and directories are allowed")
    except (tarfile.TarError, EOFError) as exc:
        raise ModelSourceError(f"MODEL_URI {shown}: not a readable tar.gz archive ({exc})") from exc
    except FileExistsError as exc:
        raise ModelSourceError(f"MODEL_URI {shown}: archive holds {exc.filename} twice") from exc
    if (dest / MANIFEST_NAME).is_file():
        return dest
    entries = list(dest.iterdir())
    if len(entries) == 1 and (entries[0] / MANIFEST_NAME).is_file():  # packed as <version>/manifest.json ...
        return entries[0]
    raise ModelSourceError(f"MODEL_URI {shown}: the archive has no {MANIFEST_NAME} at its top "
                           "(pack the model directory with `python -m models pack`)")
