"""An LB's JSON access log, read since a cursor, following log rotation.

The reader runs one small Python program on the LB per read (`READ_PROGRAM`): it opens
the log and, when the cursor points at a file that has since been rotated away, the
rotated file (`<log>.1`), and returns the bytes after the cursor from each, with each
file's identity (device and inode) taken from the open file itself. So a rotation
between two reads, or during one, neither loses nor repeats a line: the rest of the
rotated file is read first, then the new file from its start. The reader stays on the
rotated file until the new one has lines (nginx writes to the old file until it has
reopened its logs).

How the program reaches the LB is the `run` callable's business (`RemoteRun`: a shell
command in, its standard output out); in production, the LB's `HostConnection`.

With several LBs (an HA pair), each serves part of the clients: `EveryLbAccessLog` is the
MetricsPort over all of them, its cursor one position per LB.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from canary.adapters.connection import HostConnection
from canary.adapters.lb_addresses import address_book
from canary.decisions.access_log import LogCursor, Request, parse_lines, split_complete
from canary.decisions.inventory import Fleet
from canary.decisions.traffic import host_of

ACCESS_LOG = "/var/log/nginx/tts_access.json"
MAX_READ_BYTES = 8 * 1024 * 1024  # per read; the rest comes with the next one
TAIL_BYTES = 4 * 1024 * 1024  # how far back the request rate looks (about 10,000 requests)
RemoteRun = Callable[[str], bytes]  # a shell command on the LB -> its output

# Runs on the LB (python3 is there: Ansible needs it). Argument: JSON {path, generation,
# offset, max}. Output: JSON {current: generation, size, segments: [{generation, start, data}]}.
READ_PROGRAM = r"""
import base64, json, os, sys
args = json.loads(sys.argv[1])
budget = args["max"]
def ident(fd):
    st = os.fstat(fd)
    return "%d:%d" % (st.st_dev, st.st_ino), st.st_size
def opened(path):
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
segments = []
def take(fd, generation, start):
    global budget
    os.lseek(fd, start, 0)
    data = os.read(fd, budget) if budget > 0 else b""
    budget -= len(data)
    segments.append({"generation": generation, "start": start, "data": base64.b64encode(data).decode()})
    return start + len(data)
cur = opened(args["path"])
current, size = ident(cur) if cur is not None else ("", 0)
if args["generation"] and args["generation"] != current:
    old = opened(args["path"] + ".1")
    if old is not None:
        generation, old_size = ident(old)
        if generation == args["generation"]:
            end = take(old, generation, min(args["offset"], old_size))
            if end < old_size or size == 0:
                current = ""  # not done with the rotated file yet
if cur is not None and current:
    start = args["offset"] if current == args["generation"] and args["offset"] <= size else 0
    if args.get("tail"):
        start = max(0, size - args["tail"])
    take(cur, current, start)
print(json.dumps({"current": current, "size": size, "segments": segments}))
"""


class AccessLogReader:
    """The MetricsPort's reads (`cursor`, `read`) of one LB's access log.

    `resolve()` maps what nginx logs as an upstream (`ip:port`) to the inventory's
    `name:port`; attempts to any other address keep theirs."""

    def __init__(self, host: str, run: RemoteRun, resolve: Callable[[], dict[str, str]] | None = None,
                 path: str = ACCESS_LOG, max_read_bytes: int = MAX_READ_BYTES) -> None:
        self.host, self.run, self.path, self.max_read_bytes = host, run, path, max_read_bytes
        self._resolve = resolve
        self._addresses: dict[str, str] | None = None

    @property
    def addresses(self) -> dict[str, str]:
        if self._addresses is None:  # once per reader, at its first read
            self._addresses = self._resolve() if self._resolve else {}
        return self._addresses

    def _read(self, cursor: LogCursor, max_bytes: int, tail: int = 0) -> dict[str, Any]:
        args = json.dumps({"path": self.path, "generation": cursor.generation, "offset": cursor.offset,
                           "max": max_bytes, "tail": tail})
        out = self.run(f"python3 -c {shlex.quote(READ_PROGRAM)} {shlex.quote(args)}")
        try:
            return dict(json.loads(out))
        except ValueError as exc:
            raise OSError(f"LB {self.host}: reading {self.path} gave no answer: {out[:200]!r}") from exc

    def cursor(self) -> dict[str, Any]:
        """The end of the log now: a later `read` returns only what is logged after it."""
        answer = self._read(LogCursor(), 0)
        return {"generation": answer["current"], "offset": answer["size"]}

    def request_rate(self, window_s: float) -> float:
        """API requests for synthesis (`Request.is_load`) per second over the last `window_s`
        seconds, from the log's tail."""
        answer = self._read(LogCursor(), TAIL_BYTES, tail=TAIL_BYTES)
        since = datetime.now(UTC) - timedelta(seconds=window_s)
        count = 0
        for segment in answer["segments"]:
            data = base64.b64decode(segment["data"])
            if segment["start"] > 0:
                data = data[data.find(b"\n") + 1:]  # the first line may be cut
            lines, _ = split_complete(data)
            count += sum(1 for r in parse_lines(lines)[0] if r.time >= since and r.is_load)
        return count / window_s

    def read(self, cursor: dict[str, Any]) -> tuple[list[Request], dict[str, Any]]:
        """API requests logged since `cursor` (all of the current log for an empty one)."""
        position = LogCursor(**cursor) if cursor else LogCursor()
        answer = self._read(position, self.max_read_bytes)
        requests: list[Request] = []
        for segment in answer["segments"]:
            lines, consumed = split_complete(base64.b64decode(segment["data"]))
            parsed, _malformed = parse_lines(lines)
            requests += [replace(r, lb=self.host, attempts=tuple(
                replace(a, address=self.addresses.get(a.address, a.address)) for a in r.attempts)) for r in parsed]
            position = LogCursor(segment["generation"], segment["start"] + consumed)
        return requests, {"generation": position.generation, "offset": position.offset}


def resolved_addresses(fleet: Fleet, lb: str, run: RemoteRun) -> dict[str, str]:
    """Logged `ip:port` → inventory `name:port`, from the LB's address book: the addresses
    its config names (a host that is gone keeps the address it had)."""
    book = address_book(lb, run, [host_of(n.upstream) for n in fleet.nodes])
    addresses = {}
    for node in fleet.nodes:
        name, port = node.upstream.rsplit(":", 1)
        addresses[f"{book.get(name, name)}:{port}"] = node.upstream
    return addresses


class EveryLbAccessLog:
    """The MetricsPort over every LB's log. Its cursor is `{lb: that LB's cursor}`, so each
    LB's position is kept in the state store on its own; the requests read are all LBs'."""

    def __init__(self, readers: list[AccessLogReader]) -> None:
        self.readers = readers

    def cursor(self) -> dict[str, Any]:
        return {reader.host: reader.cursor() for reader in self.readers}

    def read(self, cursor: dict[str, Any]) -> tuple[list[Request], dict[str, Any]]:
        """Every LB's requests since its position in `cursor`; an empty cursor reads every
        log whole. An LB the cursor does not know (one added to the inventory since)
        starts counting now, with nothing read from its past."""
        requests: list[Request] = []
        after: dict[str, Any] = {}
        for reader in self.readers:
            if cursor and reader.host not in cursor:
                after[reader.host] = reader.cursor()
                continue
            more, after[reader.host] = reader.read(cursor.get(reader.host, {}))
            requests += more
        return sorted(requests, key=lambda r: r.time), after

    def request_rate(self, window_s: float) -> float:
        return sum(reader.request_rate(window_s) for reader in self.readers)


def _lb_reader(fleet: Fleet, host: str) -> AccessLogReader:
    run = HostConnection.from_inventory(fleet, host).run
    return AccessLogReader(host, run, lambda: resolved_addresses(fleet, host, run))


def lb_access_log(fleet: Fleet) -> EveryLbAccessLog:
    """The reader of every LB's log, each through its host connection."""
    return EveryLbAccessLog([_lb_reader(fleet, host) for host in fleet.lbs])
