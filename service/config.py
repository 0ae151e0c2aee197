"""Server settings, read once from the environment (the container's interface)."""

from __future__ import annotations

import os
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


@dataclass(frozen=True)
class Settings:
    model_dir: Path = Path("/opt/model")
    host: str = "0.0.0.0"
    port: int = 6006
    max_queue: int = 8  # synthesis requests waiting for the engine, beyond the one running
    max_input_chars: int = 4096
    chunk_chars: int = 300
    max_body_bytes: int = 65_536
    request_timeout_s: int = 120
    ui_queue: int = 16
    model_aliases: tuple[str, ...] = ("tts-1", "tts-1-hd")
    image_tag: str = ""
    git_revision: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        aliases = env.get("TTS_MODEL_ALIASES", "tts-1,tts-1-hd")
        return cls(
            model_dir=Path(env.get("MODEL_DIR", "/opt/model")),
            host=env.get("HOST", "0.0.0.0"),
            port=_int(env, "PORT", 6006),
            max_queue=_int(env, "TTS_MAX_QUEUE", 8),
            max_input_chars=_int(env, "TTS_MAX_INPUT_CHARS", 4096),
            chunk_chars=_int(env, "TTS_CHUNK_CHARS", 300, minimum=20),
            max_body_bytes=_int(env, "TTS_MAX_BODY_BYTES", 65_536, minimum=1024),
            request_timeout_s=_int(env, "TTS_REQUEST_TIMEOUT_S", 120),
            ui_queue=_int(env, "TTS_UI_QUEUE", 16),
            model_aliases=tuple(a.strip() for a in aliases.split(",") if a.strip()),
            image_tag=env.get("IMAGE_TAG", ""),
            git_revision=env.get("GIT_REVISION", ""),
        )
