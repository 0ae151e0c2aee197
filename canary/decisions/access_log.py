"""Parse the LB's nginx JSON access log (`log_format tts_json escape=json`) into attempts.

One log line is one client request. nginx lists every upstream attempt in
`upstream_addr` / `upstream_status` / `upstream_response_time`, comma separated
("10.0.0.2:6006, 10.0.0.3:6006" / "502, 200" / "0.012, 0.250"), with " : " where the
request moved to another upstream group. Errors are judged per attempt, so a canary
attempt that failed counts against the canary even when the retry on stable gave the
client a 200.

Pure: no file access. `canary.adapters.lb_log` reads the bytes and keeps the cursor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

API_PREFIX = "/v1/"
# nginx's separators between attempts: ", " within an upstream group, " : " between groups.
_ATTEMPT_SEP = re.compile(r"\s*,\s*|\s+:\s+")
_NONE = ("", "-")
CLIENT_CLOSED = 499  # nginx's status when the client went away before the response
SHED_STATUSES = (429, 503)  # the server refused for load (queue full) or readiness: shedding, not an error


class MalformedLine(ValueError):
    pass


@dataclass(frozen=True)
class Attempt:
    """One try of one request against one upstream server."""

    request_id: str
    time: datetime
    address: str
    status: int | None  # None: nginx logged "-" (no response status)
    response_time_s: float | None  # None: nginx logged "-"
    is_error: bool  # 5xx, or no response at all (connection failure, timeout)
    is_last: bool  # the attempt whose answer the client got
    uri: str
    shed: bool = False  # 429 or 503: the server shed load (queue full, not ready); judged as shedding
    # How long the answer waited in the server's inference queue (its X-Queue-Seconds; nginx
    # keeps the last attempt's header only). None: not reported.
    queue_wait_s: float | None = None
    # A streamed answer's headers leave with its first audio, so nginx's upstream_header_time
    # is its time to first audio. None: not a streamed answer (no X-Stream-Format), or no headers.
    first_audio_s: float | None = None

    @property
    def service_time_s(self) -> float | None:
        """The response time less the queue wait: what this version itself took, whatever
        the load its host was under (the response time when no wait was reported)."""
        if self.response_time_s is None or self.queue_wait_s is None:
            return self.response_time_s
        return max(0.0, self.response_time_s - self.queue_wait_s)

    @property
    def first_audio_service_s(self) -> float | None:
        """Time to first audio less the queue wait, as service_time_s is to the response time."""
        if self.first_audio_s is None or self.queue_wait_s is None:
            return self.first_audio_s
        return max(0.0, self.first_audio_s - self.queue_wait_s)

    @property
    def is_success(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def client_fault(self) -> bool:
        """A 4xx other than 429: the client's input (400, 413, 415, 422) or the client going
        away (499) decided it. It says nothing about the version, for or against."""
        return self.status is not None and 400 <= self.status < 500 and not self.shed


@dataclass(frozen=True)
class Request:
    """One access-log line: what the client asked for and saw, and every upstream attempt."""

    request_id: str
    time: datetime
    status: int
    attempts: tuple[Attempt, ...]
    client_error: bool  # the client saw a failure: final status >= 500
    uri: str = ""
    method: str = ""
    request_time_s: float | None = None
    version: str | None = None  # X-Model-Version of the last attempt's response
    lb: str = ""  # the LB whose log it came from

    @property
    def is_load(self) -> bool:
        """Whether it asked a server for synthesis: it reached one, and the answer was not a
        refusal of the client's input (a 400/413/422 costs a parse, not a synthesis, so a
        stream of bad input does not make the fleet look busy). A 429 or 499 counts: demand."""
        last = self.attempts[-1] if self.attempts else None
        return last is not None and not (last.client_fault and last.status != CLIENT_CLOSED)


def _split(field: str) -> list[str]:
    field = field.strip()
    return [] if not field else _ATTEMPT_SEP.split(field)


def _status(token: str) -> int | None:
    if token in _NONE:
        return None
    if not (token.isascii() and token.isdigit()):
        raise MalformedLine(f"bad upstream status {token!r}")
    return int(token)


def _seconds(token: str) -> float | None:
    if token in _NONE:
        return None
    try:
        value = float(token)
    except ValueError:
        raise MalformedLine(f"bad upstream response time {token!r}") from None
    if not value >= 0 or value == float("inf"):
        raise MalformedLine(f"bad upstream response time {token!r}")
    return value


def _text(obj: dict[str, Any], key: str, required: bool = True) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise MalformedLine(f"{key} missing or not a string")
    return value


def _json_record(line: str | bytes) -> dict[str, Any]:
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedLine("not UTF-8") from None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MalformedLine(f"not JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise MalformedLine("not a JSON object")
    return obj


def _int_status(value: Any) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedLine(f"bad status {value!r}")
    return value


def _request_time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MalformedLine(f"bad request_time {value!r}")
    return _seconds(str(value))


def _attempts(obj: dict[str, Any], request_id: str, time: datetime, status: int, uri: str) -> tuple[Attempt, ...]:
    """Every upstream attempt of one logged request, in order."""
    addr_field = _text(obj, "upstream_addr", required=False).strip()
    addresses = [] if addr_field in _NONE else _split(addr_field)
    statuses = [_status(t) for t in _split(_text(obj, "upstream_status", required=False))]
    times = [_seconds(t) for t in _split(_text(obj, "upstream_response_time", required=False))]
    header_times = [_seconds(t) for t in _split(_text(obj, "upstream_header_time", required=False))]
    if addresses:
        # A lone "-" stands for the only attempt; otherwise nginx keeps the lists aligned.
        statuses = statuses or [None]
        times = times or [None]
        if not len(addresses) == len(statuses) == len(times):
            raise MalformedLine(f"{len(addresses)} upstream addresses but {len(statuses)} statuses "
                                f"and {len(times)} response times")
    queue_wait = _queue_wait(obj.get("upstream_queue_time"))
    streamed = isinstance(obj.get("stream_format"), str) and obj["stream_format"].strip() not in _NONE
    first_audio = header_times[-1] if streamed and len(header_times) == len(addresses) else None
    attempts = []
    for i, address in enumerate(addresses):
        last = i == len(addresses) - 1
        code = statuses[i]
        # No status: the connection failed or timed out, unless the client itself went
        # away (499) while this, its last, attempt was still working.
        shed = code in SHED_STATUSES
        is_error = (code >= 500 and not shed) if code is not None else not (last and status == CLIENT_CLOSED)
        attempts.append(Attempt(request_id, time, address, code, times[i], is_error, last, uri, shed=shed,
                                queue_wait_s=queue_wait if last else None,
                                first_audio_s=first_audio if last else None))
    return tuple(attempts)


def _queue_wait(value: Any) -> float | None:
    """The last attempt's X-Queue-Seconds; anything but a plain number of seconds is
    "not reported" (it is the upstream's header, not nginx's own field)."""
    if not isinstance(value, str) or value.strip() in _NONE:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None


def parse_line(line: str | bytes) -> Request:
    """One access-log line → Request; raises MalformedLine when it is not a tts_json record."""
    obj = _json_record(line)
    request_id = _text(obj, "request_id")
    uri = _text(obj, "uri")
    try:
        time = datetime.fromisoformat(_text(obj, "time"))
    except ValueError:
        raise MalformedLine(f"bad time {obj.get('time')!r}") from None
    status = _int_status(obj.get("status"))
    request_time = _request_time(obj.get("request_time"))
    version = obj.get("version", obj.get("model_version"))
    version = version if isinstance(version, str) and version not in _NONE else None
    return Request(request_id, time, status, _attempts(obj, request_id, time, status, uri), status >= 500, uri,
                   _text(obj, "method", required=False), request_time, version)


def parse_lines(lines: Iterable[str | bytes], api_only: bool = True) -> tuple[list[Request], int]:
    """Parse every line; return (requests, number of malformed lines). Never raises on bad input.

    With api_only, only the synthesis API (/v1/...) is kept: UI, health and metrics
    requests say nothing about the model and are dropped (not counted as malformed).
    Blank lines are ignored.
    """
    requests: list[Request] = []
    malformed = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            request = parse_line(line)
        except MalformedLine:
            malformed += 1
            continue
        if api_only and not request.uri.startswith(API_PREFIX):
            continue
        requests.append(request)
    return requests, malformed


def attempts_to(requests: Iterable[Request], addresses: Sequence[str]) -> list[Attempt]:
    """Every attempt (from any request) that went to one of `addresses`, in log order."""
    wanted = set(addresses)
    return [a for r in requests for a in r.attempts if a.address in wanted]


def split_complete(chunk: bytes) -> tuple[list[bytes], int]:
    """(complete non-empty lines, bytes consumed); a trailing partial line is left for the next read."""
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], 0
    lines = [line.rstrip(b"\r") for line in chunk[:end].split(b"\n")]
    return [line for line in lines if line.strip()], end + 1


@dataclass(frozen=True)
class LogCursor:
    """How far a reader got in which log file (`generation`: the file's device:inode, which
    logrotate changes), so the next read is "since the last cursor"."""

    generation: str = ""
    offset: int = 0
