"""A bug in the speech route is still a JSON 500 with the version header, counted and logged."""

from __future__ import annotations

import logging

import pytest

from tests.unit.service_client import ready_client


@pytest.fixture(scope="module")
def client(model_dirs):
    with ready_client(model_dirs["v1.3.0"], raise_server_exceptions=False) as served:
        yield served


def test_an_unexpected_exception_is_a_json_500_with_the_version_and_counted(client, monkeypatch, caplog):
    test_client, runtime = client

    def broken(*args: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(runtime, "submit", broken)
    with caplog.at_level(logging.ERROR, logger="service.api"):
        response = test_client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hello."})
    assert response.status_code == 500
    assert response.json()["error"] == {"message": "internal server error", "type": "server_error",
                                        "param": None, "code": "internal_error"}
    assert response.headers["x-model-version"] == "v1.3.0"
    assert 'tts_requests_total{route="speech",status="500"} 1.0' in test_client.get("/metrics").text
    assert "ZeroDivisionError: a bug" in caplog.text  # the traceback, for whoever fixes it


def test_a_content_length_of_thousands_of_digits_is_refused_before_reading(client):
    test_client, _ = client
    response = test_client.post("/v1/audio/speech", content=b"{}",
                                headers={"content-type": "application/json", "content-length": "9" * 5000})
    assert response.status_code == 413 and response.json()["error"]["param"] == "body"
