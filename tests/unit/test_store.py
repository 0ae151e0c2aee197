"""The state store against real SQLite files: what it keeps, and what the database itself refuses."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canary.adapters.store import (
    SCHEMA_VERSION,
    ActiveRolloutError,
    ConcurrentUpdateError,
    Record,
    Store,
    StoreError,
    UnknownRolloutError,
)

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "rollouts.db"


@pytest.fixture
def store(db: Path):
    with Store(db) as s:
        yield s


def start(store: Store, rollout_id: str = "r1", fleet: str = "prod", version: str = "v1.3.0", now: float = T0):
    return store.create(rollout_id, fleet, version, "v1.2.0", "PENDING", {"step": 0}, actor="alice", now=now,
                        image_digest="sha256:abc", git_revision="deadbeef")


def end(store: Store, rollout_id: str, now: float):
    rec = store.get(rollout_id)
    return store.save(rollout_id, "SUCCEEDED", rec.state, now, rec.revision, "succeeded", "controller", {},
                      result="succeeded", ended=True)


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


# --- round trip ---------------------------------------------------------------------------------------------------


def test_create_save_get_history_events_round_trip(store: Store, db: Path) -> None:
    rec = start(store)
    assert (rec.id, rec.fleet, rec.version, rec.stable_version, rec.phase) == ("r1", "prod", "v1.3.0", "v1.2.0",
                                                                              "PENDING")
    assert (rec.revision, rec.started_at, rec.updated_at, rec.ended_at, rec.active) == (1, T0, T0, None, True)
    assert (rec.image_digest, rec.git_revision, rec.result, rec.reason) == ("sha256:abc", "deadbeef", None, None)

    state = {"step": 1, "weights": {"gpu-1": 10, "gpu-2": 90}, "cursor": {"offset": 1234}, "hosts": ["gpu-1"]}
    rec = store.save("r1", "TRAFFIC", state, T0 + 5, 1, "step_started", "controller", {"weight": 10})
    assert (rec.phase, rec.state, rec.revision, rec.updated_at) == ("TRAFFIC", state, 2, T0 + 5)
    rec = store.save("r1", "ROLLING_BACK", state, T0 + 9, 2, "rollback_started", "controller", {},
                     reason="canary error rate 8% > 5%")
    rec = store.save("r1", "ROLLED_BACK", {"step": 1}, T0 + 12, 3, "rolled_back", "controller", {"weight": 0},
                     result="rolled_back", ended=True)
    assert (rec.result, rec.reason, rec.ended_at, rec.active) == ("rolled_back", "canary error rate 8% > 5%",
                                                                  T0 + 12, False)  # None keeps the reason
    verdict = store.append_event("r1", "verdict", "analysis", {"overall": "fail", "n": 412}, T0 + 13)
    assert store.get("r1") == rec  # an event changes no state

    events = store.events("r1")
    assert [e.kind for e in events] == ["created", "step_started", "rollback_started", "rolled_back", "verdict"]
    assert [e.at for e in events] == [T0, T0 + 5, T0 + 9, T0 + 12, T0 + 13]
    assert events[0].data["version"] == "v1.3.0" and events[0].actor == "alice"
    assert events[1].data == {"weight": 10} and events[-1] == verdict
    assert [e.seq for e in events] == sorted({e.seq for e in events})

    start(store, "r2", now=T0 + 20)
    start(store, "r3", fleet="staging", now=T0 + 30)
    assert [r.id for r in store.history()] == ["r3", "r2", "r1"]
    assert [r.id for r in store.history("prod")] == ["r2", "r1"]
    assert [r.id for r in store.history(limit=1)] == ["r3"]
    assert the_id(store.latest("prod")) == "r2" and the_id(store.active("prod")) == "r2"
    assert store.latest("nowhere") is None and store.active("nowhere") is None

    store.close()
    with Store(db, create_if_missing=False) as again:  # durable across processes/restarts
        assert again.get("r1") == rec and len(again.events("r1")) == 5
    assert raw(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_returned_state_is_a_copy(store: Store) -> None:
    rec = start(store)
    rec.state["step"] = 99
    assert store.get("r1").state == {"step": 0}


def test_unknown_rollout_is_named(store: Store) -> None:
    for call in (lambda: store.get("nope"), lambda: store.events("nope"),
                 lambda: store.append_event("nope", "note", "bob", {}, T0),
                 lambda: store.save("nope", "TRAFFIC", {}, T0, 1, "x", "bob", {})):
        with pytest.raises(UnknownRolloutError, match="'nope'"):
            call()


def test_bad_state_is_refused_before_anything_is_written(store: Store) -> None:
    start(store)
    with pytest.raises(TypeError, match="JSON"):
        store.save("r1", "TRAFFIC", {"when": object()}, T0 + 1, 1, "x", "c", {})
    with pytest.raises(TypeError, match="JSON"):
        store.save("r1", "TRAFFIC", {"rate": float("nan")}, T0 + 1, 1, "x", "c", {})
    assert store.get("r1").revision == 1 and len(store.events("r1")) == 1


def test_an_ended_rollout_takes_no_more_saves(store: Store) -> None:
    start(store)
    rec = end(store, "r1", T0 + 1)
    with pytest.raises(StoreError, match="r1 ended"):
        store.save("r1", "TRAFFIC", {}, T0 + 2, rec.revision, "x", "c", {})
    store.append_event("r1", "note", "bob", {"text": "post-mortem filed"}, T0 + 3)
    assert store.events("r1")[-1].kind == "note"


def test_duplicate_rollout_id_is_refused(store: Store) -> None:
    start(store)
    end(store, "r1", T0 + 1)
    with pytest.raises(StoreError, match="r1 already exists"):
        start(store, "r1")


# --- revisions and the one-active-rollout rule ----------------------------------------------------------------------


def test_stale_revision_is_refused_and_writes_nothing(store: Store) -> None:
    start(store)
    store.save("r1", "PREFLIGHT", {"step": 0}, T0 + 1, 1, "preflight", "c", {})
    with pytest.raises(ConcurrentUpdateError, match="revision is 2.*expected 1") as err:
        store.save("r1", "TRAFFIC", {"step": 1}, T0 + 2, 1, "step_started", "c", {})
    assert (err.value.expected, err.value.actual) == (1, 2)
    rec = store.get("r1")
    assert (rec.phase, rec.revision, rec.state) == ("PREFLIGHT", 2, {"step": 0})
    assert [e.kind for e in store.events("r1")] == ["created", "preflight"]


def test_one_active_rollout_per_fleet(store: Store) -> None:
    first = start(store, "r1")
    store.save("r1", "TRAFFIC", {}, T0 + 1, 1, "step_started", "c", {})
    with pytest.raises(ActiveRolloutError) as err:
        start(store, "r2", version="v1.4.0", now=T0 + 2)
    assert "r1" in str(err.value) and "v1.3.0" in str(err.value) and "TRAFFIC" in str(err.value)
    assert err.value.existing.id == first.id and err.value.existing.phase == "TRAFFIC"
    with pytest.raises(UnknownRolloutError):
        store.get("r2")  # nothing half-written

    assert start(store, "s1", fleet="staging").active  # another fleet is independent
    end(store, "r1", T0 + 3)
    assert start(store, "r2", version="v1.4.0", now=T0 + 4).active
    assert the_id(store.active("prod")) == "r2"


def test_the_database_itself_allows_one_active_rollout_per_fleet(store: Store, db: Path) -> None:
    start(store)
    conn = raw(db)
    row = ("r2", "prod", "v9", None, "PENDING", "{}", None, None, None, None, T0, T0, None, 1)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT OR REPLACE INTO rollouts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
    conn.execute("DROP TRIGGER rollouts_no_replace")  # the partial unique index alone still holds
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed: rollouts.fleet"):
        conn.execute("INSERT INTO rollouts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
    conn.execute("INSERT INTO rollouts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row[:12] + (T0, 1))  # ended: fine
    assert the_id(store.active("prod")) == "r1"


# --- append-only, enforced by the database ----------------------------------------------------------------------


def test_events_cannot_be_changed_with_raw_sqlite(store: Store, db: Path) -> None:
    start(store)
    store.append_event("r1", "verdict", "analysis", {"overall": "fail"}, T0 + 1)
    before = store.events("r1")
    conn = raw(db)
    for sql in ("UPDATE events SET kind = 'pass'",
                "UPDATE OR REPLACE events SET data_json = '{}' WHERE seq = 2",
                "DELETE FROM events",
                "DELETE FROM events WHERE seq = 2",
                "INSERT OR REPLACE INTO events VALUES (2, 'r1', 0, 'verdict', 'mallory', '{\"overall\": \"pass\"}')",
                "INSERT INTO events VALUES (1, 'r1', 0, 'created', 'mallory', '{}')",
                "DELETE FROM rollouts",
                "UPDATE rollouts SET fleet = 'other'"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only|never"):
            conn.execute(sql)
    end(store, "r1", T0 + 2)
    with pytest.raises(sqlite3.IntegrityError, match="never reopened"):
        conn.execute("UPDATE rollouts SET ended_at = NULL")
    assert store.events("r1")[:2] == before


# --- opening: corrupt, foreign, newer, missing --------------------------------------------------------------------


def test_a_corrupt_file_is_reported_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "rollouts.db"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match=rf"state store {re.escape(str(path))} is corrupt: file is not a database"):
        Store(path)
    assert snapshot(tmp_path) == {"rollouts.db": garbage}  # no -wal/-shm, no rewrite


def test_a_damaged_sqlite_file_is_reported(store: Store, db: Path) -> None:
    start(store)
    store.close()
    data = bytearray(db.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # keep the header, wreck the pages
    db.write_bytes(bytes(data))
    for name in ("rollouts.db-wal", "rollouts.db-shm"):
        (db.parent / name).unlink(missing_ok=True)
    with pytest.raises(StoreError, match=rf"state store {re.escape(str(db))} is corrupt"):
        Store(db)


def test_someone_elses_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    raw(path).execute("CREATE TABLE notes (text TEXT)")
    before = snapshot(tmp_path)
    with pytest.raises(StoreError, match=rf"state store {re.escape(str(path))} is not a voxfleet state store.*notes"):
        Store(path)
    assert snapshot(tmp_path) == before


def test_a_newer_schema_is_refused(db: Path) -> None:
    Store(db).close()
    raw(db).execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    newer = rf"state store {re.escape(str(db))} has schema version {SCHEMA_VERSION + 1}, newer"
    with pytest.raises(StoreError, match=newer):
        Store(db)


def test_a_damaged_schema_is_refused_not_repaired(db: Path) -> None:
    Store(db).close()
    raw(db).execute("DROP TRIGGER events_no_update")
    damaged = rf"state store {re.escape(str(db))} has a damaged schema.*events_no_update is missing"
    with pytest.raises(StoreError, match=damaged):
        Store(db)
    conn = raw(db)
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'events_no_update'").fetchone()


def test_a_missing_file_is_created_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "rollouts.db"
    with pytest.raises(StoreError, match=rf"state store {re.escape(str(path))} does not exist"):
        Store(path, create_if_missing=False)
    assert not (tmp_path / "deep").exists()
    Store(path).close()
    assert path.is_file()
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path / "deep")


# --- two writers ------------------------------------------------------------------------------------------------


def test_two_store_objects_on_one_file(db: Path) -> None:
    with Store(db) as start_cmd, Store(db) as tick_cmd:
        start(start_cmd)
        with pytest.raises(ActiveRolloutError, match="r1"):
            start(tick_cmd, "r2")
        seen_by_tick = tick_cmd.get("r1")
        start_cmd.save("r1", "PREFLIGHT", {"step": 0}, T0 + 1, 1, "preflight", "start", {})
        with pytest.raises(ConcurrentUpdateError):
            tick_cmd.save("r1", "TRAFFIC", {"step": 1}, T0 + 2, seen_by_tick.revision, "step_started", "tick", {})
        fresh = tick_cmd.get("r1")
        assert fresh.phase == "PREFLIGHT"
        tick_cmd.save("r1", "PREPULL", {"step": 0}, T0 + 2, fresh.revision, "prepull", "tick", {})
        assert [e.actor for e in start_cmd.events("r1")] == ["alice", "start", "tick"]


def test_a_writer_waits_then_reports_a_busy_store(db: Path) -> None:
    with Store(db, busy_timeout_s=0.2) as store:
        start(store)
        blocker = raw(db)
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match=rf"state store {re.escape(str(db))} is busy"):
            store.save("r1", "PREFLIGHT", {}, T0 + 1, 1, "preflight", "c", {})
        assert store.get("r1").revision == 1  # readers aren't blocked in WAL mode
        blocker.execute("ROLLBACK")
        assert store.save("r1", "PREFLIGHT", {}, T0 + 1, 1, "preflight", "c", {}).revision == 2


RACER = """
import sys
from pathlib import Path
from canary.adapters.store import ActiveRolloutError, Store
store = Store(Path(sys.argv[1]))
try:
    store.create(sys.argv[2], "prod", "v1.3.0", "v1.2.0", "PENDING", {}, actor=sys.argv[2], now=1.0)
    won = "created"
except ActiveRolloutError:
    won = "refused"
print(won, store.lock("tick", sys.argv[2], 60, 1.0))
"""


def test_real_processes_racing_for_one_fleet(db: Path) -> None:
    db.parent.mkdir()  # the racers also race to create the schema
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(db), f"r{i}"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(6)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(out.split())
    assert sorted(r[0] for r in results) == ["created"] + ["refused"] * 5
    assert sorted(r[1] for r in results) == ["False"] * 5 + ["True"]
    with Store(db) as store:
        assert len(store.history()) == 1 and len(store.events(store.history()[0].id)) == 1


# --- leases -----------------------------------------------------------------------------------------------------


def test_lease_lock(db: Path) -> None:
    with Store(db) as a, Store(db) as b:
        assert a.lock("tick", "host-a:101", ttl_s=30, now=T0)
        assert not b.lock("tick", "host-b:202", ttl_s=30, now=T0 + 10)
        assert b.lock("other", "host-b:202", ttl_s=30, now=T0 + 10)  # leases are per name
        assert a.lock("tick", "host-a:101", ttl_s=30, now=T0 + 20)  # renewal moves the expiry
        assert not b.lock("tick", "host-b:202", ttl_s=30, now=T0 + 45)
        assert b.lock("tick", "host-b:202", ttl_s=30, now=T0 + 50)  # expired: taken over
        assert b.lease("tick") == ("host-b:202", T0 + 80)
        assert not a.unlock("tick", "host-a:101")  # no longer a's to release
        assert b.lease("tick") == ("host-b:202", T0 + 80)
        assert b.unlock("tick", "host-b:202")
        assert a.lock("tick", "host-a:101", ttl_s=30, now=T0 + 51)
        with pytest.raises(ValueError):
            a.lock("tick", "host-a:101", ttl_s=0, now=T0)


# --- property: the event log stays ordered -------------------------------------------------------------------------

PHASES = ["PREFLIGHT", "PREPULL", "CANARY_DEPLOY", "WARMUP_GATE", "TRAFFIC", "PROMOTING", "PAUSED", "ROLLING_BACK"]
STATE = st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.booleans(),
                                                       st.lists(st.integers(), max_size=3)), max_size=4)
SAVE = st.tuples(st.sampled_from(PHASES), STATE, st.text(min_size=1, max_size=12), st.booleans())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(saves=st.lists(SAVE, min_size=1, max_size=12), events_between=st.lists(st.booleans(), max_size=12))
def test_any_sequence_of_saves_keeps_the_log_ordered(saves, events_between) -> None:
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.db") as store:
        rec = start(store)
        kinds = ["created"]
        for i, (phase, state, kind, noise) in enumerate(saves):
            if noise and i < len(events_between) and events_between[i]:
                store.append_event("r1", "verdict", "analysis", {"i": i}, T0 + i)
                kinds.append("verdict")
            rec = store.save("r1", phase, state, T0 + i, rec.revision, kind, "controller", {"i": i})
            kinds.append(kind)
            assert store.get("r1") == rec and rec.state == json.loads(json.dumps(state))
        events = store.events("r1")
        seqs = [e.seq for e in events]
        assert all(a < b for a, b in zip(seqs, seqs[1:]))
        assert [e.kind for e in events] == kinds
        assert events[-1].kind == saves[-1][2]
        assert rec.revision == 1 + len(saves) and rec.phase == saves[-1][0]


def the_id(record: Record | None) -> str:
    assert record is not None
    return record.id
