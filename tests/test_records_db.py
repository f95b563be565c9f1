"""The record store's database: durability settings, commit before return, concurrent writers,
opening, the clock, migrations, the before-commit hook, and the RecordStore facade."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from records_support import FakeClock, new_run, peek

from rig.records import (
    Database,
    RecordError,
    RecordStore,
    default_db_path,
)
from rig.records.db import DEFAULT_BUSY_TIMEOUT_MS, MIGRATIONS, SCHEMA_VERSION
from rig.vocabulary import Grade, OutputKind, RunStatus, StepOutcome, Verdict


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "rig.sqlite"


@pytest.fixture
def store(db: Path):
    with RecordStore(db, clock=FakeClock()) as s:
        yield s


def pragma(store: RecordStore, name: str):
    return store.db.read(f"PRAGMA {name}")[0][0]


# --- durability ---------------------------------------------------------------------------------

def test_store_runs_in_wal_mode_with_full_sync_and_foreign_keys(store, db):
    assert pragma(store, "journal_mode") == "wal"
    assert pragma(store, "synchronous") == 2          # FULL
    assert pragma(store, "foreign_keys") == 1
    assert pragma(store, "busy_timeout") == DEFAULT_BUSY_TIMEOUT_MS
    # WAL is a property of the file: a second connection sees it too.
    assert peek(db, "PRAGMA journal_mode") == [("wal",)]


def test_every_write_is_visible_to_another_connection_when_the_call_returns(store, db):
    runs, outputs, slots = store.runs, store.outputs, store.slots
    run = new_run(store)
    assert peek(db, "SELECT status FROM runs WHERE id = ?", (run,)) == [("running",)]
    planned = runs.plan_unit(run, "2", method="hard")
    assert peek(db, "SELECT state FROM units WHERE id = ?", (planned,)) == [("pending",)]
    unit = runs.start_unit(run, "1", method="hard", profile="current")
    assert peek(db, "SELECT state FROM units WHERE id = ?", (unit,)) == [("running",)]
    step = runs.start_step(unit, "power off")
    assert peek(db, "SELECT outcome FROM steps WHERE id = ?", (step,)) == [("running",)]
    runs.finish_step(step, StepOutcome.OK, "0.0 W")
    assert peek(db, "SELECT outcome, detail FROM steps WHERE id = ?", (step,)) == [("ok", "0.0 W")]
    ev = runs.add_evidence(unit, "power-reading", {"watts": 0.0}, step_id=step)
    assert peek(db, "SELECT kind FROM evidence WHERE id = ?", (ev,)) == [("power-reading",)]
    out = outputs.engaged(run, "1", OutputKind.POWER_OFF, "switch main port 3")
    assert peek(db, "SELECT cleared_at IS NULL FROM outputs WHERE id = ?", (out,)) == [(1,)]
    outputs.cleared(out, "back on")
    assert peek(db, "SELECT cleared_at IS NULL FROM outputs WHERE id = ?", (out,)) == [(0,)]
    runs.finish_unit(unit, Verdict.FACTORY_DEFAULT, "inactive after reset")
    assert peek(db, "SELECT verdict FROM units WHERE id = ?", (unit,)) == [("factory-default",)]
    slots.record_outcome("bench-a", "9", bench_fault=True, reason="relay silent")
    assert peek(db, "SELECT consecutive_bench_faults FROM slot_health WHERE slot = '9'") == [(1,)]
    slots.clear("bench-a", "9", by="alice")
    assert peek(db, "SELECT consecutive_bench_faults FROM slot_health WHERE slot = '9'") == [(0,)]
    runs.finish_run(run, RunStatus.PASSED)
    assert peek(db, "SELECT status FROM runs WHERE id = ?", (run,)) == [("passed",)]


def test_eight_worker_threads_writing_at_once_lose_nothing(store, db):
    run = new_run(store)
    steps_each, errors = 12, []
    barrier = threading.Barrier(8)
    runs = store.runs

    def worker(slot: int) -> None:
        try:
            barrier.wait()
            unit = runs.start_unit(run, str(slot), method="hard")
            for i in range(steps_each):
                step = runs.start_step(unit, f"step {i}")
                runs.add_evidence(unit, "probe", {"slot": slot, "i": i}, step_id=step)
                runs.finish_step(step, StepOutcome.OK)
            runs.finish_unit(unit, Verdict.FACTORY_DEFAULT, "ok")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert peek(db, "SELECT COUNT(*) FROM units") == [(8,)]
    assert peek(db, "SELECT COUNT(*) FROM steps WHERE outcome = 'ok'") == [(8 * steps_each,)]
    assert peek(db, "SELECT COUNT(*) FROM evidence") == [(8 * steps_each,)]
    record = runs.load_run(run)
    for unit in record.units:     # per unit, steps numbered 1..n in the order they started
        assert [s.seq for s in unit.steps] == list(range(1, steps_each + 1))
        assert [s.name for s in unit.steps] == [f"step {i}" for i in range(steps_each)]


def test_a_second_process_style_connection_can_write_while_the_store_is_open(store, db):
    run = new_run(store)
    with RecordStore(db) as other:          # e.g. `rig history` next to a running `rig run`
        assert [s.run.id for s in other.runs.history()] == [run]
        other.slots.record_outcome("bench-a", "1", bench_fault=False, reason="ok")
    assert store.slots.status("bench-a", "1").updated_at is not None


def test_the_parts_of_a_store_share_one_database(store):
    assert store.runs.db is store.outputs.db is store.slots.db is store.db
    assert store.runs.health is store.slots
    assert store.path == store.db.path


# --- one write door: the hook a later outbox uses -----------------------------------------------

def test_before_commit_hooks_write_in_the_same_transaction(db):
    seen: list[int] = []

    def hook(conn: sqlite3.Connection) -> None:
        if conn.execute("SELECT name FROM sqlite_master WHERE name = 'hooked'").fetchone():
            seen.append(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
            conn.execute("INSERT INTO hooked VALUES (?)", (len(seen),))

    database = Database(db, clock=FakeClock(), before_commit=[hook])
    try:
        with database.write() as conn:
            conn.execute("CREATE TABLE hooked (n INTEGER)")
        with database.write() as conn:
            conn.execute("INSERT INTO runs (started_at, status, bench_name, method, rig_version, "
                         "hostname, pid) VALUES (?, 'running', 'b', 'hard', 'x', 'h', 1)",
                         (database.now(),))
        assert seen == [0, 1] and peek(db, "SELECT n FROM hooked") == [(1,), (2,)]
    finally:
        database.close()


def test_a_failing_hook_rolls_the_record_back(db):
    def refuse(conn: sqlite3.Connection) -> None:
        if conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0]:
            raise RuntimeError("outbox full")

    database = Database(db, before_commit=[refuse], migrations=())
    try:
        with pytest.raises(RuntimeError, match="outbox full"), database.write() as conn:
            conn.execute("CREATE TABLE runs (id INTEGER)")
        assert peek(db, "SELECT name FROM sqlite_master WHERE name = 'runs'") == []
        assert database.read("SELECT 1")[0][0] == 1      # the connection is usable afterwards
    finally:
        database.close()


# --- opening, clock, migrations -----------------------------------------------------------------

def test_default_db_path_honours_rig_db_then_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("RIG_DB", str(tmp_path / "a" / "b" / "records.sqlite"))
    path = default_db_path()
    assert path == tmp_path / "a" / "b" / "records.sqlite" and path.parent.is_dir()
    monkeypatch.delenv("RIG_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path(create_parent=False) == tmp_path / "xdg" / "rig" / "rig.sqlite"
    assert not (tmp_path / "xdg").exists()
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "rig" / "rig.sqlite"


def test_open_takes_the_default_path_and_the_same_keywords(tmp_path, monkeypatch):
    monkeypatch.setenv("RIG_DB", str(tmp_path / "env.sqlite"))
    with RecordStore.open(clock=FakeClock(), busy_timeout_ms=250, bench_fault_limit=2) as store:
        assert store.path == str(tmp_path / "env.sqlite")
        assert pragma(store, "busy_timeout") == 250
        assert store.slots.policy.bench_fault_limit == 2
    with pytest.raises(ValueError, match="bench_fault_limit"):
        RecordStore(tmp_path / "never.sqlite", bench_fault_limit=0)
    assert not (tmp_path / "never.sqlite").exists()


def test_open_without_create_refuses_a_missing_store(tmp_path):
    with pytest.raises(RecordError, match="no record store"):
        RecordStore(tmp_path / "none.sqlite", create=False)
    assert not (tmp_path / "none.sqlite").exists()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_bytes(b"this is not sqlite " * 100)
    with pytest.raises(RecordError, match="not a usable record store"):
        RecordStore(bad)


def test_the_clock_must_be_aware_and_is_stored_as_utc(db):
    with RecordStore(db, clock=lambda: datetime(2024, 5, 1, 14, 0,
                                                tzinfo=timezone(timedelta(hours=2)))) as store:
        run = store.runs.load_run(new_run(store)).run
        assert run.started_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        assert run.started_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="aware"), \
            RecordStore(db, clock=lambda: datetime(2024, 5, 1)) as store:
        new_run(store)


def test_schema_is_versioned_and_migrated_forward(db):
    with RecordStore(db) as store:
        assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
        new_run(store)
    extra = ("ALTER TABLE runs ADD COLUMN shift TEXT NOT NULL DEFAULT ''",)
    with Database(db, migrations=(*MIGRATIONS, extra)) as database:   # an older file is
        assert database.schema_version() == SCHEMA_VERSION + 1         # brought up to date
        assert database.read("SELECT COUNT(*) FROM runs")[0][0] == 1   # and keeps its data
    assert peek(db, "SELECT shift FROM runs") == [("",)]
    assert [v for (v,) in peek(db, "SELECT version FROM schema_version")] == list(
        range(1, SCHEMA_VERSION + 2))
    with pytest.raises(RecordError, match="newer rig"):   # never run on a schema we don't know
        RecordStore(db)


T0 = "2026-01-01T00:00:00+00:00"


def test_a_version_1_store_keeps_its_units_steps_and_evidence_through_the_units_rebuild(db):
    with Database(db, migrations=MIGRATIONS[:1]) as old:
        with old.write() as conn:
            conn.execute("INSERT INTO runs (id, started_at, status, bench_name, method, "
                         "rig_version, hostname, pid) VALUES (1, ?, 'running', 'b', 'hard', "
                         "'0', 'h', 1)", (T0,))
            conn.execute("INSERT INTO units (id, run_id, slot, method, state, verdict, reason) "
                         "VALUES (7, 1, '1', 'hard', 'done', 'not-default', 'why')")
            conn.execute("INSERT INTO steps (unit_id, seq, name, started_at, outcome) "
                         "VALUES (7, 1, 'power off', ?, 'ok')", (T0,))
            conn.execute("INSERT INTO evidence (unit_id, kind, created_at, data) "
                         "VALUES (7, 'http', ?, '{}')", (T0,))
    with RecordStore(db) as store:
        unit = store.runs.load_unit(7)
        assert (unit.verdict, unit.reason, unit.final_state) == (Verdict.NOT_DEFAULT, "why",
                                                                 None)
        assert [s.name for s in unit.steps] == ["power off"] and len(unit.evidence) == 1
        assert pragma(store, "foreign_keys") == 1                 # back on after migrating
        with pytest.raises(sqlite3.IntegrityError):              # and enforced again
            with store.db.write() as conn:
                conn.execute("INSERT INTO steps (unit_id, seq, name, started_at, outcome) "
                             "VALUES (99, 1, 'x', 't', 'ok')")


def test_attachments_keep_the_bytes_with_their_digest_and_refuse_another_units_evidence(db):
    import hashlib
    with RecordStore(db) as store:
        run = store.runs.start_run("b", method="hard", operator="ana", destination="resale")
        one = store.runs.start_unit(run, "1", method="hard")
        two = store.runs.start_unit(run, "2", method="hard")
        evidence = store.runs.add_evidence(one, "snapshot", {"width": 4})
        image = b"\xff\xd8 not really a jpeg \xff\xd9"
        kept = store.attachments.add(one, "snapshot.jpg", "image/jpeg", image, evidence)
        got = store.attachments.get(kept)
        assert (got.data, got.sha256, got.evidence_id) == (
            image, hashlib.sha256(image).hexdigest(), evidence)
        assert [a.id for a in store.attachments.for_unit(one)] == [kept]
        assert store.attachments.for_unit(two) == []
        with pytest.raises(RecordError, match="belongs to unit"):
            store.attachments.add(two, "x.jpg", "image/jpeg", image, evidence)
        with pytest.raises(RecordError, match="no attachment"):
            store.attachments.get(kept + 1)
        store.runs.finish_unit(one, Verdict.FACTORY_DEFAULT, "ok", grade=Grade.NOT_FUNCTIONAL)
        assert store.runs.load_unit(one).grade is Grade.NOT_FUNCTIONAL
        loaded = store.runs.load_run(run).run
        assert (loaded.operator, loaded.destination) == ("ana", "resale")
