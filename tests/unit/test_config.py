from __future__ import annotations

from pathlib import Path

import pytest

from service.config import Settings, SettingsError


def test_defaults_from_an_empty_environment():
    s = Settings.from_env({})
    assert s == Settings()
    assert (s.model_dir, s.host, s.port, s.max_queue) == (Path("/opt/model"), "0.0.0.0", 6006, 8)
    assert (s.max_input_chars, s.chunk_chars, s.max_body_bytes) == (4096, 300, 65_536)
    assert (s.request_timeout_s, s.ui_queue, s.model_aliases) == (120, 16, ("tts-1", "tts-1-hd"))
    assert (s.image_tag, s.git_revision) == ("", "")


def test_overrides():
    s = Settings.from_env({
        "MODEL_DIR": "/models/v1.3.0", "HOST": "127.0.0.1", "PORT": "8000", "TTS_MAX_QUEUE": "2",
        "TTS_MAX_INPUT_CHARS": "100", "TTS_CHUNK_CHARS": "20", "TTS_MAX_BODY_BYTES": "1024",
        "TTS_REQUEST_TIMEOUT_S": "30", "TTS_UI_QUEUE": "1", "IMAGE_TAG": "voxfleet:v1.3.0",
        "GIT_REVISION": "abc123",
    })
    assert s == Settings(model_dir=Path("/models/v1.3.0"), host="127.0.0.1", port=8000, max_queue=2,
                         max_input_chars=100, chunk_chars=20, max_body_bytes=1024, request_timeout_s=30,
                         ui_queue=1, image_tag="voxfleet:v1.3.0", git_revision="abc123")


def test_an_empty_integer_means_the_default():
    assert Settings.from_env({"PORT": "", "TTS_MAX_QUEUE": ""}).port == 6006


@pytest.mark.parametrize("name, value", [
    ("PORT", "http"),
    ("PORT", "80.5"),
    ("PORT", "0"),
    ("TTS_MAX_QUEUE", "0"),
    ("TTS_MAX_QUEUE", "-3"),
    ("TTS_MAX_INPUT_CHARS", "4k"),
    ("TTS_CHUNK_CHARS", "19"),
    ("TTS_MAX_BODY_BYTES", "1023"),
    ("TTS_REQUEST_TIMEOUT_S", "2m"),
    ("TTS_UI_QUEUE", "none"),
])
def test_bad_integers_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=f"^{name}="):
        Settings.from_env({name: value})


@pytest.mark.parametrize("raw, aliases", [
    ("tts-1", ("tts-1",)),
    ("tts-1, tts-1-hd ,gpt-4o-mini-tts", ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")),
    (" a ,, b ,", ("a", "b")),
    ("", ()),
])
def test_model_aliases_are_split_on_commas_and_trimmed(raw, aliases):
    assert Settings.from_env({"TTS_MODEL_ALIASES": raw}).model_aliases == aliases


def test_the_audio_cap_and_the_queue_deadline():
    defaults = Settings.from_env({})
    assert (defaults.max_audio_s, defaults.queue_deadline_s) == (300, 120)  # 5 minutes; the request timeout
    assert Settings.from_env({"TTS_REQUEST_TIMEOUT_S": "30"}).queue_deadline_s == 30
    s = Settings.from_env({"TTS_MAX_AUDIO_S": "60", "TTS_QUEUE_TIMEOUT_S": "5", "TTS_REQUEST_TIMEOUT_S": "30"})
    assert (s.max_audio_s, s.queue_deadline_s, s.request_timeout_s) == (60, 5, 30)


def test_worker_cpus_hold_each_worker_to_a_device_speed():
    assert Settings.from_env({}).worker_cpus == 0.0
    assert Settings.from_env({"TTS_WORKER_CPUS": ""}).worker_cpus == 0.0
    assert Settings.from_env({"TTS_WORKER_CPUS": "0.4"}).worker_cpus == 0.4


@pytest.mark.parametrize("value", ["fast", "0", "-0.4", "nan", "inf", "2000"])
def test_bad_worker_cpus_name_the_variable(value):
    with pytest.raises(SettingsError, match="^TTS_WORKER_CPUS="):
        Settings.from_env({"TTS_WORKER_CPUS": value})


def test_a_held_worker_refuses_more_than_one_torch_thread():
    assert Settings.from_env({"TTS_WORKER_CPUS": "0.4", "TTS_TORCH_THREADS": "1"}).torch_threads == 1
    with pytest.raises(SettingsError, match="^TTS_TORCH_THREADS=2 with TTS_WORKER_CPUS=0.4"):
        Settings.from_env({"TTS_WORKER_CPUS": "0.4", "TTS_TORCH_THREADS": "2"})
