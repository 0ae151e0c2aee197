from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.decisions.access_log import (
    MalformedLine,
    attempts_to,
    parse_line,
    parse_lines,
    split_complete,
)

CANARY, STABLE = "10.0.0.2:6006", "10.0.0.3:6006"


def line(**overrides: object) -> str:
    """One line as nginx writes it with the nginx_lb role's tts_json format."""
    record: dict[str, object] = {
        "time": "2025-11-25T18:01:02+00:00", "request_id": "a1b2c3", "remote_addr": "192.0.2.7",
        "method": "POST", "uri": "/v1/audio/speech", "status": 200, "request_time": 0.262,
        "upstream_addr": CANARY, "upstream_status": "200", "upstream_response_time": "0.250",
        "upstream_connect_time": "0.001", "model_version": "v1.3.0", "bytes_sent": 48211,
        "request_length": 312, "ui_pool": "",
    }
    record.update(overrides)
    return json.dumps(record, separators=(",", ":"))


def test_one_successful_attempt():
    request = parse_line(line())
    assert request.request_id == "a1b2c3" and request.status == 200 and not request.client_error
    assert request.time == datetime(2025, 11, 25, 18, 1, 2, tzinfo=UTC)
    assert request.version == "v1.3.0" and request.method == "POST" and request.request_time_s == 0.262
    (attempt,) = request.attempts
    assert (attempt.address, attempt.status, attempt.response_time_s) == (CANARY, 200, 0.25)
    assert attempt.is_last and not attempt.is_error and not attempt.shed and attempt.is_success
    assert attempt.uri == "/v1/audio/speech" and attempt.request_id == "a1b2c3"


def test_retry_counts_the_canary_failure_although_the_client_saw_200():
    request = parse_line(line(upstream_addr=f"{CANARY}, {STABLE}", upstream_status="502, 200",
                              upstream_response_time="0.012, 0.250", model_version="v1.2.0"))
    assert request.status == 200 and not request.client_error
    first, second = request.attempts
    assert (first.address, first.status, first.is_error, first.is_last) == (CANARY, 502, True, False)
    assert (second.address, second.status, second.is_error, second.is_last) == (STABLE, 200, False, True)
    assert [a.status for a in attempts_to([request], [CANARY])] == [502]
    assert [a.status for a in attempts_to([request], [STABLE])] == [200]


def test_connection_failure_with_dashes_is_an_error():
    request = parse_line(line(status=502, upstream_status="-", upstream_response_time="-"))
    (attempt,) = request.attempts
    assert attempt.status is None and attempt.response_time_s is None
    assert attempt.is_error and request.client_error


def test_timeout_then_retry_and_upstream_group_switch():
    request = parse_line(line(status=504, upstream_addr=f"{CANARY}, {STABLE} : 10.0.0.4:6006",
                              upstream_status="504, 503 : 504", upstream_response_time="60.001, 0.004 : -"))
    assert [a.address for a in request.attempts] == [CANARY, STABLE, "10.0.0.4:6006"]
    assert [a.status for a in request.attempts] == [504, 503, 504]
    assert [a.response_time_s for a in request.attempts] == [60.001, 0.004, None]
    assert [(a.is_error, a.shed) for a in request.attempts] == [(True, False), (False, True), (True, False)]
    assert request.client_error


@pytest.mark.parametrize("code", ["429", "503"])
def test_429_and_503_are_shedding_not_errors(code):
    request = parse_line(line(upstream_addr=f"{CANARY}, {STABLE}", upstream_status=f"{code}, 200",
                              upstream_response_time="0.001, 0.300"))
    shed, ok = request.attempts
    assert shed.shed and not shed.is_error and not shed.is_success
    assert not ok.shed and not ok.is_error


def test_lb_rate_limit_has_no_attempts():
    request = parse_line(line(status=429, upstream_addr="", upstream_status="", upstream_response_time=""))
    assert request.attempts == () and not request.client_error
    request = parse_line(line(status=503, upstream_addr="-", upstream_status="-", upstream_response_time="-"))
    assert request.attempts == () and request.client_error


def test_client_abort_is_not_the_servers_error():
    request = parse_line(line(status=499, upstream_status="-", upstream_response_time="1.204"))
    (attempt,) = request.attempts
    assert attempt.status is None and not attempt.is_error and not request.client_error


def test_version_field_of_either_name():
    assert parse_line(line(model_version="")).version is None
    assert parse_line(line(version="v9")).version == "v9"


@pytest.mark.parametrize("bad", [
    "",  # parse_line on an empty line
    "not json at all",
    '{"time": "2025-11-25T18:01:02+00:00", "request_id": "x"',  # cut off mid-write
    "[1, 2, 3]",
    line(status="OK"),
    line(status=True),
    line(time="yesterday"),
    line(request_id=""),
    line(uri=None),
    line(upstream_status="502, 200"),  # one address, two statuses
    line(upstream_status="abc"),
    line(upstream_response_time="fast"),
    line(upstream_response_time="-1"),
    line(request_time="soon"),
])
def test_malformed_lines_raise_malformed_line(bad: str):
    with pytest.raises(MalformedLine):
        parse_line(bad)


def test_parse_lines_skips_and_counts_malformed_lines():
    lines: list[str | bytes] = [line(request_id="1"), "garbage", "", line(request_id="2").encode(), b"\xff\xfe", line(status="x")]
    requests, malformed = parse_lines(lines)
    assert [r.request_id for r in requests] == ["1", "2"] and malformed == 3


def test_only_the_api_counts_by_default():
    lines = [line(request_id="api"), line(request_id="ui", uri="/ui/gradio_api/queue/join", ui_pool="tts_ui_canary"),
             line(request_id="health", uri="/healthz", method="GET"), line(request_id="v", uri="/v1")]
    requests, malformed = parse_lines(lines)
    assert [r.request_id for r in requests] == ["api"] and malformed == 0
    everything, _ = parse_lines(lines, api_only=False)
    assert [r.request_id for r in everything] == ["api", "ui", "health", "v"]


@given(st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=80)), max_size=20))
def test_parse_lines_never_raises(lines: list[str | bytes]):
    requests, malformed = parse_lines(lines)
    assert malformed <= len(lines) and len(requests) + malformed <= len(lines)


def test_split_complete_keeps_the_partial_trailing_line():
    first, second = line(request_id="1").encode(), line(request_id="2").encode()
    chunk = first + b"\n" + second + b"\n" + second[:30]
    lines, consumed = split_complete(chunk)
    assert lines == [first, second] and consumed == len(first) + len(second) + 2
    assert chunk[consumed:] == second[:30]
    assert split_complete(second[:30]) == ([], 0)
    assert split_complete(b"") == ([], 0)
    assert split_complete(first + b"\r\n\n") == ([first], len(first) + 3)


def test_the_last_attempts_queue_wait_is_read_and_anything_odd_is_not_reported():
    request = parse_line(line(upstream_addr=f"{CANARY}, {STABLE}", upstream_status="502, 200",
                              upstream_response_time="0.010, 0.300", upstream_queue_time="0.120"))
    first, last = request.attempts
    assert first.queue_wait_s is None and last.queue_wait_s == pytest.approx(0.12)
    assert last.service_time_s == pytest.approx(0.18) and first.service_time_s == pytest.approx(0.01)
    for odd in ("-", "", "soon", "-1", "inf"):
        (only,) = parse_line(line(upstream_queue_time=odd)).attempts
        assert only.queue_wait_s is None and only.service_time_s == only.response_time_s


def test_a_streamed_answers_header_time_is_its_time_to_first_audio_less_its_queue_wait():
    request = parse_line(line(upstream_header_time="0.040", stream_format="audio", upstream_queue_time="0.015"))
    (attempt,) = request.attempts
    assert attempt.first_audio_s == 0.04 and attempt.first_audio_service_s == pytest.approx(0.025)
    retried = parse_line(line(upstream_addr=f"{CANARY}, {STABLE}", upstream_status="500, 200",
                              upstream_response_time="0.010, 0.900", upstream_header_time="0.010, 0.120",
                              stream_format="sse"))
    assert [a.first_audio_s for a in retried.attempts] == [None, 0.12]  # the header is the last attempt's
    whole = parse_line(line(upstream_header_time="0.250", stream_format=""))
    assert whole.attempts[0].first_audio_s is None  # not streamed: its headers left with all of its audio
    with pytest.raises(MalformedLine, match="response time"):
        parse_line(line(upstream_header_time="soon", stream_format="audio"))
