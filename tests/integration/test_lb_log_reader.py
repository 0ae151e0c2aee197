"""The access-log reader the controller uses (canary.adapters.lb_log.AccessLogReader),
run against real files on this machine: the same program it runs on an LB over SSH,
here through a local shell. Appends, partial lines, rotation and truncation at any
moment: every line is read exactly once."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canary.adapters.lb_log import AccessLogReader, EveryLbAccessLog

pytestmark = pytest.mark.integration


def local_run(command: str) -> bytes:
    return subprocess.run(["sh", "-c", command], capture_output=True, check=True).stdout


def entry(i: int, upstream: str = "10.0.0.2:6006", when: str = "2026-12-03T10:00:00+00:00", status: int = 200) -> bytes:
    return json.dumps({"time": when, "request_id": f"r{i}", "method": "POST",
                       "uri": "/v1/audio/speech", "status": status, "upstream_addr": upstream,
                       "upstream_status": str(status), "upstream_response_time": "0.100"}).encode() + b"\n"


class Log:
    """A log file as nginx and logrotate treat it: appends, rename-and-recreate, truncate."""

    def __init__(self, path: Path) -> None:
        self.path, self.next = path, 0
        path.touch()  # nginx creates its log when it starts

    def write(self, n: int, to: Path | None = None) -> list[str]:
        ids = []
        with open(to or self.path, "ab") as handle:
            for _ in range(n):
                handle.write(entry(self.next))
                ids.append(f"r{self.next}")
                self.next += 1
        return ids

    def rotate(self) -> None:
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self.path.touch()


def reader(path: Path, **kwargs) -> AccessLogReader:
    return AccessLogReader("lb-local", local_run, path=str(path), **kwargs)


def ids(requests) -> list[str]:
    return [r.request_id for r in requests]


def test_a_missing_log_reads_as_empty_and_its_first_lines_are_new(tmp_path):
    r = reader(tmp_path / "access.json")
    cursor = r.cursor()
    assert r.read(cursor) == ([], cursor)
    written = Log(tmp_path / "access.json").write(3)
    requests, _ = r.read(cursor)
    assert ids(requests) == written


def test_the_cursor_resumes_where_it_stopped_and_leaves_a_partial_line_for_later(tmp_path):
    log = Log(tmp_path / "access.json")
    log.write(2)
    r = reader(log.path)
    cursor = r.cursor()  # the end of the log now: the two earlier lines are not new
    first = log.write(3)
    requests, cursor = r.read(cursor)
    assert ids(requests) == first
    line = entry(99)
    with open(log.path, "ab") as handle:
        handle.write(line[:20])  # nginx is mid-write
    requests, cursor = r.read(cursor)
    assert requests == []
    with open(log.path, "ab") as handle:
        handle.write(line[20:])
    requests, cursor = r.read(cursor)
    assert ids(requests) == ["r99"]
    assert r.read(cursor)[0] == []


def test_a_rotation_between_reads_loses_and_repeats_nothing(tmp_path):
    log = Log(tmp_path / "access.json")
    r = reader(log.path)
    cursor = r.cursor()
    before = log.write(3)
    log.rotate()
    late = log.write(2, to=log.path.with_name("access.json.1"))  # nginx has not reopened yet
    requests, cursor = r.read(cursor)
    assert ids(requests) == before + late
    after = log.write(2)  # nginx reopened: new lines in the new file
    requests, cursor = r.read(cursor)
    assert ids(requests) == after
    assert r.read(cursor)[0] == []


def test_a_log_truncated_in_place_is_read_from_its_start(tmp_path):
    log = Log(tmp_path / "access.json")
    r = reader(log.path)
    cursor = r.cursor()
    log.write(5)
    _, cursor = r.read(cursor)
    log.path.write_bytes(b"")  # copytruncate
    again = log.write(2)
    requests, _ = r.read(cursor)
    assert ids(requests) == again


def test_a_long_log_is_read_in_bounded_chunks(tmp_path):
    log = Log(tmp_path / "access.json")
    r = reader(log.path, max_read_bytes=1000)  # a few lines a read
    cursor = r.cursor()
    written = log.write(40)
    seen: list[str] = []
    for _ in range(40):
        requests, cursor = r.read(cursor)
        seen += ids(requests)
    assert seen == written


def test_logged_addresses_are_named_as_the_inventory_names_them(tmp_path):
    log = Log(tmp_path / "access.json")
    r = reader(log.path, resolve=lambda: {"10.0.0.2:6006": "node1:6006"})
    cursor = r.cursor()
    log.write(1)
    (request,), _ = r.read(cursor)
    assert request.attempts[0].address == "node1:6006"


def test_the_request_rate_counts_the_last_window_only(tmp_path):
    log = Log(tmp_path / "access.json")
    now = datetime.now(UTC)
    with open(log.path, "ab") as handle:
        for i in range(50):  # long ago
            handle.write(entry(i, when=(now - timedelta(hours=1)).isoformat(timespec="seconds")))
        for i in range(50, 110):  # within the last minute
            handle.write(entry(i, when=(now - timedelta(seconds=i % 50)).isoformat(timespec="seconds")))
    assert reader(log.path).request_rate(60) == pytest.approx(60 / 60)
    assert reader(log.path, max_read_bytes=500).request_rate(30) == pytest.approx(
        sum(1 for i in range(50, 110) if i % 50 < 30) / 30, rel=0.1)


def test_refused_input_is_not_load_but_shed_and_abandoned_requests_are(tmp_path):
    log = Log(tmp_path / "access.json")
    when = datetime.now(UTC).isoformat(timespec="seconds")
    with open(log.path, "ab") as handle:
        for i, status in enumerate([200, 500, 429, 499] + [400, 413, 422] * 20):  # a stream of bad input
            handle.write(entry(i, when=when, status=status))
    assert reader(log.path).request_rate(60) == pytest.approx(4 / 60)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["write", "write", "write", "read", "read", "rotate", "late", "truncate"]),
                max_size=16))
def test_any_interleaving_reads_each_line_once(tmp_path_factory, actions):
    log = Log(tmp_path_factory.mktemp("log") / "access.json")
    old = log.path.with_name("access.json.1")
    r = reader(log.path, max_read_bytes=600)
    cursor = r.cursor()
    written: list[str] = []
    seen: list[str] = []
    reopened = True  # nginx writes to the file it opened until it is told to reopen
    for action in actions:
        if action == "write":
            written += log.write(2)
            reopened = True
        elif action == "late" and old.exists() and not reopened:
            written += log.write(1, to=old)  # nginx writes to the old file until it reopens
        elif action == "rotate" and cursor["generation"] == r.cursor()["generation"]:
            log.rotate()  # logrotate keeps one old file; reads (every few seconds) outpace rotations
            reopened = False
        elif action == "truncate":
            cursor = drain(r, cursor, seen)
            log.path.write_bytes(b"")
            cursor = drain(r, cursor, seen)
        elif action == "read":
            requests, cursor = r.read(cursor)
            seen += ids(requests)
    drain(r, cursor, seen)
    assert seen == written


def drain(r: AccessLogReader, cursor: dict, seen: list[str]) -> dict:
    for _ in range(100):
        requests, cursor = r.read(cursor)
        seen += ids(requests)
        if not requests:
            break
    return cursor


def test_every_lbs_log_is_read_each_from_its_own_position(tmp_path):
    """An HA pair: clients reach both LBs, so the judge reads both logs; each LB keeps its
    own cursor (a rotation on one does not move the other's), and an LB added to the
    inventory mid-step starts counting from when it is first seen."""
    one, two = Log(tmp_path / "lb1.json"), Log(tmp_path / "lb2.json")
    two.next = 1000  # request ids are per LB in nginx; keep them apart here
    one.write(4)
    every = EveryLbAccessLog([AccessLogReader("lb1", local_run, path=str(one.path)),
                              AccessLogReader("lb2", local_run, path=str(two.path))])
    cursor = every.cursor()
    assert set(cursor) == {"lb1", "lb2"}
    from_one, from_two = one.write(3), two.write(5)
    one.rotate()
    from_one += one.write(2)
    requests, cursor = every.read(cursor)
    assert sorted(ids(requests)) == sorted(from_one + from_two)
    assert {r.request_id: r.lb for r in requests} == {**dict.fromkeys(from_one, "lb1"), **dict.fromkeys(from_two, "lb2")}
    assert every.read(cursor)[0] == []

    three = Log(tmp_path / "lb3.json")
    three.next = 2000
    three.write(6)  # before the controller knew of it: not this step's evidence
    every.readers.append(AccessLogReader("lb3", local_run, path=str(three.path)))
    requests, cursor = every.read(cursor)
    assert requests == [] and set(cursor) == {"lb1", "lb2", "lb3"}
    later = three.write(2) + two.write(1)
    assert sorted(ids(every.read(cursor)[0])) == sorted(later)
