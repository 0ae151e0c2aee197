"""Server settings, read once from the environment (the container's interface)."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """An environment variable has a value the server cannot use."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def cpu_count(name: str, raw: object) -> float:
    """A number of CPUs (finite, more than 0, at most 1024) from `raw`; empty: 0, meaning none.
    SettingsError names `name`. The inventory check takes tts_worker_cpus by it too."""
    if raw == "":
        return 0.0
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SettingsError(f"{name}={raw!r} is not a number of CPUs (e.g. 0.4)") from None
    if isinstance(raw, bool) or not (math.isfinite(value) and 0 < value <= 1024):
        raise SettingsError(f"{name}={raw} must be more than 0 and at most 1024 CPUs (or empty for none)")
    return value


DEFAULT_MODEL_CACHE_DIR = Path("/var/cache/voxfleet/models")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def redact_uri(uri: str) -> str:
    """A URI fit for logs: no user:password@, no query string (a pre-signed URL's token)."""
    parts = urllib.parse.urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


def _model_uri(env: dict[str, str]) -> tuple[str, str]:
    """(MODEL_URI, MODEL_URI_SHA256), both empty for the baked model; checked when set."""
    uri = env.get("MODEL_URI", "").strip()
    sha256 = env.get("MODEL_URI_SHA256", "").strip().lower()
    if not uri:
        if sha256:
            raise SettingsError("MODEL_URI_SHA256 is set but MODEL_URI is empty (set both, or neither for the "
                                "model baked into the image)")
        return "", ""
    shown = redact_uri(uri)
    if urllib.parse.urlsplit(uri).scheme not in ("file", "http", "https"):
        raise SettingsError(f"MODEL_URI {shown!r} must start with file://, http:// or https://")
    if "@" in urllib.parse.urlsplit(uri).netloc:
        raise SettingsError(f"MODEL_URI {shown!r} carries a user or password: it would show in logs and "
                            "`docker inspect`; use a short-lived pre-signed URL instead")
    if not sha256:
        raise SettingsError(f"MODEL_URI_SHA256 is required with MODEL_URI {shown}: the sha256 of the archive "
                            "(`python -m models pack VERSION` prints it)")
    if not _SHA256.fullmatch(sha256):
        raise SettingsError(f"MODEL_URI_SHA256={sha256[:80]!r} is not a sha256 (64 hex digits)")
    return uri, sha256


@dataclass(frozen=True)
class Settings:
    model_dir: Path = Path("/opt/model")
    host: str = "0.0.0.0"
    port: int = 6006
    max_queue: int = 8  # synthesis requests waiting for each worker, beyond the one running
    workers: int = 0  # inference workers (one engine each); 0: one per visible GPU, else 1
    torch_threads: int = 0  # torch's intra-op threads; 0: torch's default (the sandbox sets its CPU quota)
    # TTS_WORKER_CPUS: each worker speaks at most as fast as this many CPUs would (0: as fast as
    # it can; service/engines/held.py). The sandbox's stand-in for one GPU per worker: a host of
    # N units runs N workers of one unit's speed, so a request takes as long on any host.
    worker_cpus: float = 0.0
    max_input_chars: int = 4096
    chunk_chars: int = 300
    max_body_bytes: int = 65_536
    request_timeout_s: int = 120
    max_audio_s: int = 300  # TTS_MAX_AUDIO_S: longest audio one request may ask for (predicted before synthesis)
    queue_timeout_s: int = 0  # TTS_QUEUE_TIMEOUT_S: queued longer, never started; 0: the request timeout
    ui_queue: int = 16
    read_timeout_s: int = 10  # TTS_READ_TIMEOUT_S: a request not read whole by then closes its connection
    keep_alive_s: int = 5  # TTS_KEEP_ALIVE_S: an idle connection between requests is closed after this
    ui_cache_max_age_s: int = 600  # TTS_UI_CACHE_MAX_AGE_S: the UI's answers are deleted from its cache after this
    model_aliases: tuple[str, ...] = ("tts-1", "tts-1-hd")
    image_tag: str = ""
    git_revision: str = ""
    # Model sourcing (service/model_source.py): empty model_uri serves the baked model_dir.
    model_uri: str = ""
    model_uri_sha256: str = ""
    model_cache_dir: Path = DEFAULT_MODEL_CACHE_DIR
    model_version: str = ""  # MODEL_VERSION, set by the image build: a fetched model must match it
    node_name: str = ""  # TTS_NODE_NAME (the inventory's host name; default the hostname): answers name it
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def queue_deadline_s(self) -> int:
        """How long a synthesis may wait in the queue before it is dropped unstarted."""
        return self.queue_timeout_s or self.request_timeout_s

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        aliases = env.get("TTS_MODEL_ALIASES", "tts-1,tts-1-hd")
        model_uri, model_uri_sha256 = _model_uri(env)
        return cls(
            model_dir=Path(env.get("MODEL_DIR", "/opt/model")),
            host=env.get("HOST", "0.0.0.0"),
            port=_int(env, "PORT", 6006),
            max_queue=_int(env, "TTS_MAX_QUEUE", 8),
            workers=_int(env, "TTS_WORKERS", 0, minimum=0),
            torch_threads=_int(env, "TTS_TORCH_THREADS", 0, minimum=0),
            worker_cpus=cpu_count("TTS_WORKER_CPUS", env.get("TTS_WORKER_CPUS", "")),
            max_input_chars=_int(env, "TTS_MAX_INPUT_CHARS", 4096),
            chunk_chars=_int(env, "TTS_CHUNK_CHARS", 300, minimum=20),
            max_body_bytes=_int(env, "TTS_MAX_BODY_BYTES", 65_536, minimum=1024),
            request_timeout_s=_int(env, "TTS_REQUEST_TIMEOUT_S", 120),
            max_audio_s=_int(env, "TTS_MAX_AUDIO_S", 300),
            queue_timeout_s=_int(env, "TTS_QUEUE_TIMEOUT_S", 0, minimum=0),
            ui_queue=_int(env, "TTS_UI_QUEUE", 16),
            read_timeout_s=_int(env, "TTS_READ_TIMEOUT_S", 10),
            keep_alive_s=_int(env, "TTS_KEEP_ALIVE_S", 5),
            ui_cache_max_age_s=_int(env, "TTS_UI_CACHE_MAX_AGE_S", 600),
            model_aliases=tuple(a.strip() for a in aliases.split(",") if a.strip()),
            image_tag=env.get("IMAGE_TAG", ""),
            git_revision=env.get("GIT_REVISION", ""),
            model_uri=model_uri,
            model_uri_sha256=model_uri_sha256,
            model_cache_dir=Path(env.get("MODEL_CACHE_DIR") or DEFAULT_MODEL_CACHE_DIR),
            model_version=env.get("MODEL_VERSION", ""),
            node_name=env.get("TTS_NODE_NAME", ""),
        )._checked()

    def _checked(self) -> Settings:
        """A held worker counts its own thread's CPU time: torch runs one thread, and no more."""
        if not self.worker_cpus:
            return self
        if self.torch_threads > 1:
            raise SettingsError(f"TTS_TORCH_THREADS={self.torch_threads} with TTS_WORKER_CPUS={self.worker_cpus:g}: "
                                "a held worker counts its own thread's CPU time, so torch must run one thread "
                                "(set TTS_TORCH_THREADS to 1, or leave it empty)")
        return dataclasses.replace(self, torch_threads=1)
