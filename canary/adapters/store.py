"""The controller's durable state: one SQLite file (DESIGN.md, Principles 4).

A rollout is one row in `rollouts` (the indexed columns plus `state_json`, an opaque
dict the controller owns) and an append-only trail in `events`. The database itself
enforces what matters even against a raw `sqlite3` shell: events can't be updated,
deleted or overwritten, rollouts can't be deleted or reopened, and a fleet has at
most one active rollout (a partial unique index on `fleet WHERE ended_at IS NULL`).

Two processes may share the file (a foreground `rollout start` and a cron
`rollout tick`): WAL mode, a busy timeout, `BEGIN IMMEDIATE` for every write and a
revision compare-and-swap on every state change, so a stale writer is refused
instead of overwriting. `lock()`/`unlock()` give an advisory lease ("one tick at a
time") that a crashed holder can't keep past its ttl.

Nothing here ever recreates or repairs an existing file: a file that is not a SQLite
database, or whose schema is not ours, is a `StoreError` naming the path.

The store is private: its directory is created 0700 (an existing looser one is warned
about: it may be shared) and the database with its -wal and -shm files is 0600 (a
looser one is tightened at open); `canary.adapters.private_files`.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canary.adapters.private_files import create_private_file, private_dir, tighten_file


class StoreError(RuntimeError):
    """The state store can't be used as asked; the message names the file or rollout."""


class UnknownRolloutError(StoreError):
    def __init__(self, rollout_id: str, path: Path) -> None:
        super().__init__(f"no rollout {rollout_id!r} in state store {path}")
        self.rollout_id = rollout_id


class ActiveRolloutError(StoreError):
    def __init__(self, existing: Record) -> None:
        super().__init__(
            f"fleet {existing.fleet!r} already has an active rollout: {existing.id} "
            f"(version {existing.version}, phase {existing.phase}); it must end before another starts")
        self.existing = existing


class ConcurrentUpdateError(StoreError):
    def __init__(self, rollout_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"rollout {rollout_id} was changed by another writer: revision is {actual}, this writer "
            f"expected {expected}; reload it and decide again")
        self.rollout_id, self.expected, self.actual = rollout_id, expected, actual


@dataclass(frozen=True)
class Record:
    id: str
    fleet: str
    version: str
    stable_version: str | None
    phase: str
    state: dict[str, Any]
    result: str | None
    reason: str | None
    image_digest: str | None
    git_revision: str | None
    started_at: float
    updated_at: float
    ended_at: float | None
    revision: int

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class Event:
    seq: int
    rollout_id: str
    at: float
    kind: str
    actor: str
    data: dict[str, Any]


# --- schema -------------------------------------------------------------------------------------------------------

_V1 = (
    """CREATE TABLE rollouts (
        id TEXT PRIMARY KEY, fleet TEXT NOT NULL, version TEXT NOT NULL, stable_version TEXT,
        phase TEXT NOT NULL, state_json TEXT NOT NULL, result TEXT, reason TEXT, image_digest TEXT,
        git_revision TEXT, started_at REAL NOT NULL, updated_at REAL NOT NULL, ended_at REAL,
        revision INTEGER NOT NULL)""",
    "CREATE UNIQUE INDEX rollouts_one_active_per_fleet ON rollouts(fleet) WHERE ended_at IS NULL",
    "CREATE INDEX rollouts_by_fleet_started ON rollouts(fleet, started_at)",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id TEXT NOT NULL REFERENCES rollouts(id),
        at REAL NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, data_json TEXT NOT NULL)""",
    "CREATE INDEX events_by_rollout ON events(rollout_id, seq)",
    """CREATE TRIGGER events_no_update BEFORE UPDATE ON events
       BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER events_no_delete BEFORE DELETE ON events
       BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END""",
    # INSERT OR REPLACE deletes the old row without firing delete triggers (unless
    # recursive_triggers is on), and an explicit old seq would backdate an event.
    """CREATE TRIGGER events_no_overwrite BEFORE INSERT ON events
       WHEN NEW.seq >= 0 AND NEW.seq <= (SELECT COALESCE(MAX(seq), 0) FROM events)
       BEGIN SELECT RAISE(ABORT, 'events are append-only: an existing or earlier seq was given'); END""",
    # INSERT OR REPLACE would otherwise delete a rollout (same id) or the fleet's active one.
    """CREATE TRIGGER rollouts_no_replace BEFORE INSERT ON rollouts
       WHEN EXISTS (SELECT 1 FROM rollouts WHERE id = NEW.id)
            OR (NEW.ended_at IS NULL AND EXISTS (SELECT 1 FROM rollouts WHERE fleet = NEW.fleet AND ended_at IS NULL))
       BEGIN SELECT RAISE(ABORT, 'a rollout is never replaced: its id is taken or its fleet has an active one'); END""",
    """CREATE TRIGGER rollouts_no_delete BEFORE DELETE ON rollouts
       BEGIN SELECT RAISE(ABORT, 'rollouts are never deleted'); END""",
    """CREATE TRIGGER rollouts_identity_fixed BEFORE UPDATE OF id, fleet, version, started_at ON rollouts
       WHEN NEW.id IS NOT OLD.id OR NEW.fleet IS NOT OLD.fleet OR NEW.version IS NOT OLD.version
            OR NEW.started_at IS NOT OLD.started_at
       BEGIN SELECT RAISE(ABORT, 'a rollout''s id, fleet, version and start time never change'); END""",
    """CREATE TRIGGER rollouts_stay_ended BEFORE UPDATE OF ended_at ON rollouts
       WHEN OLD.ended_at IS NOT NULL AND NEW.ended_at IS NOT OLD.ended_at
       BEGIN SELECT RAISE(ABORT, 'an ended rollout is never reopened'); END""",
    """CREATE TABLE leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, acquired_at REAL NOT NULL, expires_at REAL NOT NULL)""",
)


def _statements(*sql: str) -> Callable[[sqlite3.Connection], None]:
    def migrate(conn: sqlite3.Connection) -> None:
        for statement in sql:
            conn.execute(statement)
    return migrate


# Migration hook: version → a step run inside the opening transaction. Add v2 here;
# never edit a released step. The expected shape below describes the newest version.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _statements(*_V1)}
SCHEMA_VERSION = max(MIGRATIONS)
_COLUMNS = {
    "schema_version": ["version", "applied_at"],
    "rollouts": ["id", "fleet", "version", "stable_version", "phase", "state_json", "result", "reason",
                 "image_digest", "git_revision", "started_at", "updated_at", "ended_at", "revision"],
    "events": ["seq", "rollout_id", "at", "kind", "actor", "data_json"],
    "leases": ["name", "holder", "acquired_at", "expires_at"],
}
_OBJECTS = {"rollouts_one_active_per_fleet", "events_no_update", "events_no_delete", "events_no_overwrite",
            "rollouts_no_replace", "rollouts_no_delete", "rollouts_identity_fixed", "rollouts_stay_ended"}


def _dumps(what: str, value: Any) -> str:
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict, not {type(value).__name__}")
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} is not JSON-serialisable: {e}") from e


def _time(now: float) -> float:
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise ValueError(f"now must be a finite number of seconds, not {now!r}")
    return float(now)


class Store:
    def __init__(self, path: Path, create_if_missing: bool = True, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path).expanduser().absolute()
        if self.path.is_dir():
            raise StoreError(f"state store {self.path} is a directory, not a file")
        if not self.path.exists() and not create_if_missing:
            raise StoreError(f"state store {self.path} does not exist")
        if create_if_missing:
            try:
                private_dir(self.path.parent, tighten=False)
                create_private_file(self.path)  # SQLite gives -wal and -shm the database's mode
            except OSError as e:
                raise StoreError(f"state store {self.path} can't be created: {e}") from e
        mode = "rwc" if create_if_missing else "rw"
        try:
            self._conn = sqlite3.connect(f"{self.path.as_uri()}?mode={mode}", uri=True, timeout=busy_timeout_s,
                                         isolation_level=None)
        except sqlite3.Error as e:
            raise StoreError(f"state store {self.path} can't be opened: {e}") from e
        self._conn.row_factory = sqlite3.Row
        try:
            self._open(busy_timeout_s)
        except BaseException:
            self._conn.close()
            raise
        for suffix in ("", "-wal", "-shm"):
            tighten_file(self.path.with_name(self.path.name + suffix))

    def _open(self, busy_timeout_s: float) -> None:
        c = self._conn
        with self._errors():
            # A read first: garbage fails here, before anything could write to the file.
            names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
            c.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            c.execute("PRAGMA foreign_keys = ON")
            c.execute("PRAGMA synchronous = FULL")  # a committed transition survives power loss
            if names and "schema_version" not in names:
                raise StoreError(f"state store {self.path} is not a voxfleet state store: it has tables "
                                 f"{', '.join(sorted(names))} but no schema_version")
            if c.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                c.execute("PRAGMA journal_mode = WAL")
            with self._write():
                self._migrate()

    def _migrate(self) -> None:
        c = self._conn
        has_table = c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
        if has_table.fetchone():
            current = c.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
            if current is None:
                raise StoreError(f"state store {self.path} has a damaged schema: schema_version is empty")
        else:
            if c.execute("SELECT 1 FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchone():
                raise StoreError(f"state store {self.path} is not a voxfleet state store: no schema_version")
            c.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            current = 0
        if current > SCHEMA_VERSION:
            raise StoreError(f"state store {self.path} has schema version {current}, newer than this controller "
                             f"understands ({SCHEMA_VERSION}); upgrade voxfleet")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](c)
            c.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
        problems = []
        for table, columns in _COLUMNS.items():
            found = [r["name"] for r in c.execute(f"PRAGMA table_info({table})")]
            if found != columns:
                problems.append(f"table {table} has columns {found or 'none'}, expected {columns}")
        present = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger')")}
        problems += [f"{name} is missing" for name in sorted(_OBJECTS - present)]
        if problems:
            raise StoreError(f"state store {self.path} has a damaged schema (version {SCHEMA_VERSION}): "
                             + "; ".join(problems))

    # --- plumbing -------------------------------------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise StoreError(f"state store {self.path} is busy: another process held it too long ({e})") from e
            raise StoreError(f"state store {self.path}: {e}") from e
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as e:
            raise StoreError(f"state store {self.path} is corrupt: {e}") from e

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so two writers serialise instead of deadlocking."""
        with self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for reads that take several statements."""
        with self._errors():
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("ROLLBACK")

    def _record(self, row: sqlite3.Row) -> Record:
        try:
            state = json.loads(row["state_json"])
        except ValueError as e:
            raise StoreError(f"state store {self.path} is corrupt: rollout {row['id']} has bad state_json: {e}") from e
        fields = {k: row[k] for k in row.keys() if k != "state_json"}
        return Record(state=state, **fields)

    def _event(self, row: sqlite3.Row) -> Event:
        try:
            data = json.loads(row["data_json"])
        except ValueError as e:
            raise StoreError(f"state store {self.path} is corrupt: event {row['seq']} has bad data_json: {e}") from e
        return Event(seq=row["seq"], rollout_id=row["rollout_id"], at=row["at"], kind=row["kind"],
                     actor=row["actor"], data=data)

    def _get(self, c: sqlite3.Connection, rollout_id: str) -> Record:
        row = c.execute("SELECT * FROM rollouts WHERE id = ?", (rollout_id,)).fetchone()
        if row is None:
            raise UnknownRolloutError(rollout_id, self.path)
        return self._record(row)

    def _active(self, c: sqlite3.Connection, fleet: str) -> Record | None:
        row = c.execute("SELECT * FROM rollouts WHERE fleet = ? AND ended_at IS NULL", (fleet,)).fetchone()
        return None if row is None else self._record(row)

    def _append(self, c: sqlite3.Connection, rollout_id: str, kind: str, actor: str, data_json: str,
                at: float) -> None:
        c.execute("INSERT INTO events (rollout_id, at, kind, actor, data_json) VALUES (?, ?, ?, ?, ?)",
                  (rollout_id, at, kind, actor, data_json))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- rollouts -------------------------------------------------------------------------------------------------

    def create(self, rollout_id: str, fleet: str, version: str, stable_version: str | None, phase: str,
               state: dict[str, Any], actor: str, now: float, image_digest: str | None = None,
               git_revision: str | None = None) -> Record:
        """A new active rollout (revision 1) and its `created` event; ActiveRolloutError names the current one."""
        now = _time(now)
        state_json = _dumps(f"state of rollout {rollout_id}", state)
        created = _dumps("event data", {"fleet": fleet, "version": version, "stable_version": stable_version,
                                        "phase": phase, "image_digest": image_digest, "git_revision": git_revision})
        with self._write() as c:
            if (existing := self._active(c, fleet)) is not None:
                raise ActiveRolloutError(existing)
            if c.execute("SELECT 1 FROM rollouts WHERE id = ?", (rollout_id,)).fetchone():
                raise StoreError(f"rollout {rollout_id} already exists in state store {self.path}")
            c.execute("INSERT INTO rollouts (id, fleet, version, stable_version, phase, state_json, image_digest, "
                      "git_revision, started_at, updated_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                      (rollout_id, fleet, version, stable_version, phase, state_json, image_digest, git_revision,
                       now, now))
            self._append(c, rollout_id, "created", actor, created, now)
            return self._get(c, rollout_id)

    def save(self, rollout_id: str, phase: str, state: dict[str, Any], now: float, expected_revision: int,
             event_kind: str, actor: str, event_data: dict[str, Any], result: str | None = None,
             reason: str | None = None, ended: bool = False, stable_version: str | None = None,
             image_digest: str | None = None, git_revision: str | None = None) -> Record:
        """Move the rollout to `phase`/`state` and append its event, atomically, if nobody else moved it first.

        `result`/`reason`/`stable_version`/`image_digest`/`git_revision` of None keep the stored value. `ended=True` sets ended_at, which frees
        the fleet; an ended rollout takes no further saves (events may still be appended).
        """
        now = _time(now)
        state_json = _dumps(f"state of rollout {rollout_id}", state)
        data_json = _dumps(f"data of event {event_kind!r}", event_data)
        with self._write() as c:
            current = self._get(c, rollout_id)
            if current.revision != expected_revision:
                raise ConcurrentUpdateError(rollout_id, expected_revision, current.revision)
            if current.ended_at is not None:
                raise StoreError(f"rollout {rollout_id} ended in phase {current.phase} and can't change; "
                                 f"start a new rollout")
            c.execute("UPDATE rollouts SET phase = ?, state_json = ?, updated_at = ?, revision = revision + 1, "
                      "result = COALESCE(?, result), reason = COALESCE(?, reason), ended_at = ?, "
                      "stable_version = COALESCE(?, stable_version), image_digest = COALESCE(?, image_digest), "
                      "git_revision = COALESCE(?, git_revision) WHERE id = ? AND revision = ?",
                      (phase, state_json, now, result, reason, now if ended else None, stable_version,
                       image_digest, git_revision, rollout_id, expected_revision))
            self._append(c, rollout_id, event_kind, actor, data_json, now)
            return self._get(c, rollout_id)

    def append_event(self, rollout_id: str, kind: str, actor: str, data: dict[str, Any], now: float) -> Event:
        """An event that changes no state (a verdict, a notice); allowed on ended rollouts too."""
        now = _time(now)
        data_json = _dumps(f"data of event {kind!r}", data)
        with self._write() as c:
            self._get(c, rollout_id)
            self._append(c, rollout_id, kind, actor, data_json, now)
            row = c.execute("SELECT * FROM events WHERE seq = last_insert_rowid()").fetchone()
            return self._event(row)

    def active(self, fleet: str) -> Record | None:
        with self._errors():
            return self._active(self._conn, fleet)

    def all_active(self) -> list[Record]:
        """Every rollout not ended, on any fleet, oldest first."""
        with self._errors():
            rows = self._conn.execute("SELECT * FROM rollouts WHERE ended_at IS NULL ORDER BY started_at").fetchall()
        return [self._record(r) for r in rows]

    def get(self, rollout_id: str) -> Record:
        with self._errors():
            return self._get(self._conn, rollout_id)

    def latest(self, fleet: str) -> Record | None:
        found = self.history(fleet, limit=1)
        return found[0] if found else None

    def current(self, fleet: str) -> Record | None:
        """The fleet's active rollout, else its latest: the one `rollout status` shows."""
        return self.active(fleet) or self.latest(fleet)

    def history(self, fleet: str | None = None, limit: int | None = 50) -> list[Record]:
        """Newest first; `limit=None` returns them all."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, not {limit!r}")
        where, args = ("WHERE fleet = ?", [fleet]) if fleet is not None else ("", [])
        with self._errors():
            rows = self._conn.execute(f"SELECT * FROM rollouts {where} ORDER BY started_at DESC, rowid DESC "
                                      f"LIMIT ?", (*args, -1 if limit is None else limit)).fetchall()
        return [self._record(r) for r in rows]

    def events(self, rollout_id: str) -> list[Event]:
        with self._read() as c:
            self._get(c, rollout_id)
            rows = c.execute("SELECT * FROM events WHERE rollout_id = ? ORDER BY seq", (rollout_id,)).fetchall()
        return [self._event(r) for r in rows]

    # --- advisory leases ------------------------------------------------------------------------------------------

    def lock(self, name: str, holder: str, ttl_s: float, now: float) -> bool:
        """Take or renew the lease `name` for `ttl_s` seconds; False while another holder's lease is live."""
        now = _time(now)
        if not (_time(ttl_s) > 0):
            raise ValueError(f"ttl_s must be positive, not {ttl_s!r}")
        with self._write() as c:
            row = c.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row["holder"] != holder and row["expires_at"] > now:
                return False
            acquired = now if row is None or row["holder"] != holder or row["expires_at"] <= now else None
            c.execute("INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, "
                      "acquired_at = COALESCE(?, acquired_at)", (name, holder, now, now + ttl_s, acquired))
            return True

    def unlock(self, name: str, holder: str) -> bool:
        """Release the lease if `holder` has it; False (and nothing changes) otherwise."""
        with self._write() as c:
            return c.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)).rowcount > 0

    def lease(self, name: str) -> tuple[str, float] | None:
        """(holder, expires_at) of the lease `name`, expired or not, or None."""
        with self._errors():
            row = self._conn.execute("SELECT holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
        return None if row is None else (row["holder"], row["expires_at"])
