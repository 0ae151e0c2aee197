"""Repeatable synthesis: every answer names its seed (X-Seed); the same seed is the same
audio, another seed other audio; a request without one gets a seed from its content.
And GET /v1/voices lists the model's voices."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.engines.base import MAX_SEED, synthesis_seed
from tests.unit.service_client import ready_client

TEXT = "The canary sings at ten percent."


@pytest.fixture(scope="module")
def client(model_dirs):
    with ready_client(model_dirs["v1.3.0"]) as (test_client, _):
        yield test_client


def speak(client: TestClient, **extra) -> tuple[bytes, str]:
    answer = client.post("/v1/audio/speech", json={"model": "tts-1", "input": TEXT, "voice": "alloy",
                                                   "response_format": "pcm", **extra})
    assert answer.status_code == 200, answer.text
    return answer.content, answer.headers["X-Seed"]


def test_the_same_seed_is_the_same_audio_and_another_seed_other_audio(client):
    first, seed = speak(client, seed=7)
    again, _ = speak(client, seed=7)
    other, other_seed = speak(client, seed=8)
    assert seed == "7" and other_seed == "8"
    assert first == again and first != other


def test_without_a_seed_the_request_picks_its_own_and_says_which(client):
    derived, seed = speak(client)
    assert int(seed) == synthesis_seed(TEXT, "alloy", 1.0)
    assert speak(client, seed=int(seed))[0] == derived  # sent back, it is the same audio


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 1.5, "7", True])
def test_a_seed_that_is_not_a_31_bit_integer_is_a_400_naming_it(client, seed):
    answer = client.post("/v1/audio/speech", json={"model": "tts-1", "input": TEXT, "seed": seed})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "seed", answer.text


def test_the_models_voices_are_listed_its_default_first(client, model_dirs):
    from service.model_dir import read_manifest

    listed = client.get("/v1/voices").json()
    voices = read_manifest(model_dirs["v1.3.0"]).voices
    assert [v["id"] for v in listed["data"]] == list(voices) and listed["data"][0]["default"]
    assert not any(v["default"] for v in listed["data"][1:]) and listed["model_version"] == "v1.3.0"
