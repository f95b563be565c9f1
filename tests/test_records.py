"""The record store: durability settings, commit before return, concurrent writers, the record's
rules (one verdict per unit, steps in order, evidence as JSON), slot health and migrations."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import rig.records as records
from rig.records import (
    RecordError,
    RecordStore,
    UnknownRun,
    default_db_path,
    file_sha256,
)
from rig.vocabulary import Fault, OutputKind, RunStatus, StepOutcome, UnitState, Verdict

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """Each reading is one second after the previous: deterministic, ordered timestamps."""

    def __init__(self, start: datetime = T0, step: float = 1.0) -> None:
        self.now, self.step = start, timedelta(seconds=step)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += self.step
            return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "rig.sqlite"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db: Path, clock: FakeClock):
    with RecordStore(db, clock=clock) as s:
        yield s


def peek(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read through a second, independent connection: sees only what was committed."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def new_run(store: RecordStore, bench: str = "bench-a") -> int:
    return store.start_run(bench, method="hard", argv=["rig", "run"])


# --- durability ---------------------------------------------------------------------------------

def test_store_runs_in_wal_mode_with_full_sync_and_foreign_keys(store, db):
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == records.DEFAULT_BUSY_TIMEOUT_MS
    # WAL is a property of the file: a second connection sees it too.
    assert peek(db, "PRAGMA journal_mode") == [("wal",)]


def test_every_write_is_visible_to_another_connection_when_the_call_returns(store, db):
    run = new_run(store)
    assert peek(db, "SELECT status FROM runs WHERE id = ?", (run,)) == [("running",)]
    planned = store.plan_unit(run, "2", method="hard")
    assert peek(db, "SELECT state FROM units WHERE id = ?", (planned,)) == [("pending",)]
    unit = store.start_unit(run, "1", method="hard", profile="current")
    assert peek(db, "SELECT state FROM units WHERE id = ?", (unit,)) == [("running",)]
    step = store.start_step(unit, "power off")
    assert peek(db, "SELECT outcome FROM steps WHERE id = ?", (step,)) == [("running",)]
    store.finish_step(step, StepOutcome.OK, "0.0 W")
    assert peek(db, "SELECT outcome, detail FROM steps WHERE id = ?", (step,)) == [("ok", "0.0 W")]
    ev = store.add_evidence(unit, "power-reading", {"watts": 0.0}, step_id=step)
    assert peek(db, "SELECT kind FROM evidence WHERE id = ?", (ev,)) == [("power-reading",)]
    out = store.output_engaged(run, "1", OutputKind.POWER_OFF, "switch main port 3")
    assert peek(db, "SELECT cleared_at IS NULL FROM outputs WHERE id = ?", (out,)) == [(1,)]
    store.output_cleared(out, "back on")
    assert peek(db, "SELECT cleared_at IS NULL FROM outputs WHERE id = ?", (out,)) == [(0,)]
    store.finish_unit(unit, Verdict.FACTORY_DEFAULT, "inactive after reset")
    assert peek(db, "SELECT verdict FROM units WHERE id = ?", (unit,)) == [("factory-default",)]
    store.record_slot_outcome("bench-a", "9", bench_fault=True, reason="relay silent")
    assert peek(db, "SELECT consecutive_bench_faults FROM slot_health WHERE slot = '9'") == [(1,)]
    store.clear_slot("bench-a", "9", by="alice")
    assert peek(db, "SELECT consecutive_bench_faults FROM slot_health WHERE slot = '9'") == [(0,)]
    store.finish_run(run, RunStatus.PASSED)
    assert peek(db, "SELECT status FROM runs WHERE id = ?", (run,)) == [("passed",)]


def test_eight_worker_threads_writing_at_once_lose_nothing(store, db):
    run = new_run(store)
    steps_each, errors = 12, []
    barrier = threading.Barrier(8)

    def worker(slot: int) -> None:
        try:
            barrier.wait()
            unit = store.start_unit(run, str(slot), method="hard")
            for i in range(steps_each):
                step = store.start_step(unit, f"step {i}")
                store.add_evidence(unit, "probe", {"slot": slot, "i": i}, step_id=step)
                store.finish_step(step, StepOutcome.OK)
            store.finish_unit(unit, Verdict.FACTORY_DEFAULT, "ok")
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
    record = store.load_run(run)
    for unit in record.units:     # per unit, steps numbered 1..n in the order they started
        assert [s.seq for s in unit.steps] == list(range(1, steps_each + 1))
        assert [s.name for s in unit.steps] == [f"step {i}" for i in range(steps_each)]


def test_a_second_process_style_connection_can_write_while_the_store_is_open(store, db):
    run = new_run(store)
    with RecordStore(db) as other:          # e.g. `rig history` next to a running `rig run`
        assert [s.run.id for s in other.history()] == [run]
        other.record_slot_outcome("bench-a", "1", bench_fault=False, reason="ok")
    assert store.slot_status("bench-a", "1").updated_at is not None


# --- the record's rules -------------------------------------------------------------------------

def test_run_records_who_ran_what(store, clock, tmp_path):
    bench = tmp_path / "bench.toml"
    bench.write_text("[bench]\nname = 'a'\n")
    run_id = store.start_run("bench-a", method="auto", bench_path=bench, argv=["rig", "run", "x"],
                             note="first batch")
    run = store.load_run(run_id).run
    assert run.status is RunStatus.RUNNING and run.finished_at is None
    assert run.bench_path == str(bench) and run.bench_sha256 == file_sha256(bench)
    assert run.argv == ("rig", "run", "x") and run.note == "first batch"
    assert run.pid > 0 and run.hostname and run.rig_version
    assert run.started_at == clock.now            # the injected clock's latest reading


def test_finish_run_closes_unfinished_units_as_interrupted(store):
    run = new_run(store)
    done = store.start_unit(run, "1", method="hard")
    store.finish_unit(done, Verdict.NOT_DEFAULT, "still activated", check="activation")
    busy = store.start_unit(run, "2", method="hard")
    store.start_step(busy, "hold button")
    waiting = store.plan_unit(run, "3", method="hard")
    store.finish_run(run, RunStatus.ABORTED, note="operator pressed Ctrl-C")
    record = store.load_run(run)
    units = {u.slot: u for u in record.units}
    assert units["1"].verdict is Verdict.NOT_DEFAULT and units["1"].check == "activation"
    assert units["1"].fault is Fault.UNIT                      # implied by the verdict
    assert units["2"].state is UnitState.INTERRUPTED
    assert units["2"].reason == "run aborted before this unit finished during step 'hold button'"
    assert units["2"].steps[0].outcome is StepOutcome.INTERRUPTED
    assert units[str(3)].reason.endswith("before this unit started")
    assert store.load_unit(waiting).verdict is Verdict.INTERRUPTED
    assert record.run.status is RunStatus.ABORTED and "Ctrl-C" in record.run.note
    with pytest.raises(RecordError, match="already closed"):
        store.finish_run(run, RunStatus.PASSED)
    with pytest.raises(RecordError, match="closed"):
        store.start_unit(run, "4", method="hard")


def test_a_unit_gets_one_verdict_and_a_reason(store):
    run = new_run(store)
    unit = store.start_unit(run, "1", method="hard")
    with pytest.raises(ValueError, match="reason"):
        store.finish_unit(unit, Verdict.FACTORY_DEFAULT, "  ")
    with pytest.raises(ValueError, match="no fault"):
        store.finish_unit(unit, Verdict.FACTORY_DEFAULT, "ok", Fault.BENCH)
    with pytest.raises(ValueError, match="bench fault"):
        store.finish_unit(unit, Verdict.BENCH_FAULT, "relay", Fault.UNIT)
    with pytest.raises(ValueError):
        store.finish_unit(unit, "probably-fine", "hm")
    store.finish_unit(unit, "unreachable", "no SADP answer\n within 90 s", mac="aa:bb:cc:00:00:01")
    got = store.load_unit(unit)
    assert got.verdict is Verdict.UNREACHABLE and got.reason == "no SADP answer within 90 s"
    assert got.mac == "aa:bb:cc:00:00:01" and got.duration_s == 1.0
    with pytest.raises(RecordError, match="already has a verdict"):
        store.finish_unit(unit, Verdict.FACTORY_DEFAULT, "second opinion")
    with pytest.raises(RecordError, match="closed"):
        store.start_step(unit, "late step")
    with pytest.raises(RecordError, match="already has a unit in slot"):
        store.start_unit(run, "1", method="hard")


def test_finishing_a_unit_closes_a_step_left_open(store):
    unit = store.start_unit(new_run(store), "1", method="hard")
    store.start_step(unit, "wait for boot")
    store.finish_unit(unit, Verdict.BENCH_FAULT, "power reading failed")
    step = store.load_unit(unit).steps[0]
    assert step.outcome is StepOutcome.INTERRUPTED and step.finished_at is not None
    assert "unit finished" in step.detail


def test_a_planned_unit_starts_with_its_first_step(store):
    unit = store.plan_unit(new_run(store), "1", method="hard", expected_serial="DS-1")
    assert store.load_unit(unit).started_at is None
    store.start_step(unit, "power off")
    got = store.load_unit(unit)
    assert got.state is UnitState.RUNNING and got.started_at is not None
    assert got.expected_serial == "DS-1"


def test_step_context_records_ok_failed_timeout_and_leaves_explicit_outcomes(store):
    unit = store.start_unit(new_run(store), "1", method="hard")
    with store.step(unit, "power off", detail="GPIO 17"):
        pass
    with pytest.raises(RuntimeError), store.step(unit, "press"):
        raise RuntimeError("solenoid current 0 A")
    with pytest.raises(TimeoutError), store.step(unit, "wait for SADP"):
        raise TimeoutError
    with store.step(unit, "web reset") as step_id:
        store.finish_step(step_id, StepOutcome.SKIPPED, "hard method")
    with pytest.raises(KeyboardInterrupt), store.step(unit, "hold"):
        raise KeyboardInterrupt
    steps = store.load_unit(unit).steps
    assert [(s.name, s.outcome, s.detail) for s in steps] == [
        ("power off", StepOutcome.OK, "GPIO 17"),
        ("press", StepOutcome.FAILED, "RuntimeError: solenoid current 0 A"),
        ("wait for SADP", StepOutcome.TIMEOUT, "TimeoutError"),
        ("web reset", StepOutcome.SKIPPED, "hard method"),
        ("hold", StepOutcome.INTERRUPTED, "KeyboardInterrupt"),
    ]
    assert all(s.finished_at > s.started_at for s in steps)
    with pytest.raises(RecordError, match="already closed"):
        store.finish_step(steps[0].id, StepOutcome.FAILED)
    with pytest.raises(ValueError, match="final outcome"):
        store.finish_step(store.start_step(unit, "x"), StepOutcome.RUNNING)


def test_unknown_ids_are_clear_errors(store):
    with pytest.raises(UnknownRun, match="no run 42"):
        store.load_run(42)
    with pytest.raises(UnknownRun):
        store.start_unit(42, "1", method="hard")
    with pytest.raises(RecordError, match="no unit 7"):
        store.start_step(7, "x")
    with pytest.raises(RecordError, match="no output 3"):
        store.output_cleared(3)


# --- evidence -----------------------------------------------------------------------------------

def test_evidence_round_trips_as_json(store):
    unit = store.start_unit(new_run(store), "1", method="hard")
    step = store.start_step(unit, "verify")
    data = {"mac": "aa:bb:cc:dd:ee:ff", "activated": False, "watts": 4.25, "ports": [80, 8000],
            "nested": {"model": "DS-2CD2143G2-I", "notes": None}, "text": "ünïcode ✓",
            "tuple": (1, 2)}
    ev = store.add_evidence(unit, "sadp-after", data, step_id=step)
    store.add_evidence(unit, "http", {"state": "inactive"})
    got = store.load_unit(unit).evidence
    assert [e.id for e in got][0] == ev
    assert got[0].data == {**data, "tuple": [1, 2]} and got[0].step_id == step
    assert got[0].kind == "sadp-after" and got[1].step_id is None


@pytest.mark.parametrize("bad", [["a list"], "text", {"when": datetime.now(UTC)},
                                 {"x": float("nan")}, {1: "int key"}, {"s": {2, 3}},
                                 {"deep": [{3: "int key"}]}])
def test_evidence_that_is_not_a_json_object_is_refused(store, bad):
    unit = store.start_unit(new_run(store), "1", method="hard")
    with pytest.raises(TypeError):
        store.add_evidence(unit, "bad", bad)
    assert store.load_unit(unit).evidence == ()


def test_evidence_cannot_name_another_units_step(store):
    run = new_run(store)
    one, two = (store.start_unit(run, s, method="hard") for s in ("1", "2"))
    step = store.start_step(one, "verify")
    with pytest.raises(RecordError, match="belongs to unit"):
        store.add_evidence(two, "sadp-after", {"mac": "x"}, step_id=step)


# --- outputs ledger -----------------------------------------------------------------------------

def test_outputs_ledger_lists_what_is_still_engaged(store):
    run = new_run(store)
    solenoid = store.output_engaged(run, "1", OutputKind.SOLENOID_ON, "GPIO 22")
    port = store.output_engaged(run, "2", "poe-port-off", "switch main port 3")
    assert [(o.id, o.kind, o.target) for o in store.open_outputs()] == [
        (solenoid, "solenoid-on", "GPIO 22"), (port, "poe-port-off", "switch main port 3")]
    assert store.output_cleared(solenoid, "released after 12 s") is True
    assert store.output_cleared(solenoid) is False                    # twice is harmless
    assert [o.id for o in store.open_outputs(run)] == [port]
    assert store.open_outputs(run + 1) == []
    cleared = store.load_run(run).outputs[0]
    assert cleared.cleared_at is not None and cleared.note == "released after 12 s"


# --- slot health --------------------------------------------------------------------------------

def test_three_consecutive_bench_faults_take_a_slot_out_until_cleared(store):
    def outcome(bench_fault: bool, why: str = "relay did not switch"):
        return store.record_slot_outcome("bench-a", "4", bench_fault=bench_fault, reason=why)

    assert outcome(True).consecutive_bench_faults == 1
    assert outcome(True).consecutive_bench_faults == 2
    status = outcome(False, "unit not default")             # a unit fault resets the count
    assert status.consecutive_bench_faults == 0 and not status.out_of_service
    outcome(True)
    outcome(True)
    assert not store.slot_status("bench-a", "4").out_of_service
    status = outcome(True, "no power reading")
    assert status.out_of_service and status.consecutive_bench_faults == 3
    assert "3 consecutive bench faults" in status.reason and "no power reading" in status.reason
    assert [s.slot for s in store.out_of_service_slots("bench-a")] == ["4"]
    assert store.out_of_service_slots("bench-b") == []
    assert outcome(False, "ok").out_of_service                  # stays out: only people clear it
    back = store.clear_slot("bench-a", "4", by="alice", note="replaced solenoid")
    assert not back.out_of_service and back.consecutive_bench_faults == 0
    assert "alice" in back.reason and "replaced solenoid" in back.reason
    assert store.out_of_service_slots("bench-a") == []
    events = store.slot_events("bench-a", "4")
    assert events[0].event == "cleared" and events[0].actor == "alice"
    assert [e.event for e in events].count("out-of-service") == 1
    with pytest.raises(ValueError, match="who"):
        store.clear_slot("bench-a", "4", by="")


def test_finish_unit_counts_bench_faults_for_its_slot(db):
    with RecordStore(db, clock=FakeClock(), bench_fault_limit=2) as store:
        for n in range(3):
            run = new_run(store)
            unit = store.start_unit(run, "7", method="hard")
            store.finish_unit(unit, Verdict.BENCH_FAULT, f"switch timeout {n}")
            if n == 0:      # an interrupted unit says nothing about the slot
                other = store.start_unit(run, "8", method="hard")
                store.finish_unit(other, Verdict.INTERRUPTED, "stopped")
            store.finish_run(run, RunStatus.FAILED)
        status = store.slot_status("bench-a", "7")
        assert status.out_of_service and status.consecutive_bench_faults == 3
        assert store.slot_status("bench-a", "8").updated_at is None
        assert store.slot_status("bench-b", "7").consecutive_bench_faults == 0


def test_operator_can_take_a_slot_out(store):
    status = store.take_slot_out("bench-a", "2", by="bob", note="loose cable")
    assert status.out_of_service and "bob" in status.reason


# --- queries ------------------------------------------------------------------------------------

def test_history_counts_verdicts_newest_first(store):
    first = new_run(store, "bench-a")
    for slot, verdict in (("1", Verdict.FACTORY_DEFAULT), ("2", Verdict.FACTORY_DEFAULT),
                          ("3", Verdict.NOT_DEFAULT)):
        store.finish_unit(store.start_unit(first, slot, method="hard"), verdict, "why")
    store.start_unit(first, "4", method="hard")
    store.finish_run(first, RunStatus.FAILED)
    second = new_run(store, "bench-b")
    store.start_unit(second, "1", method="hard")
    history = store.history()
    assert [s.run.id for s in history] == [second, first]
    assert history[1].counts == {"factory-default": 2, "not-default": 1, "interrupted": 1}
    assert history[1].units == 4
    assert history[0].counts == {"unfinished": 1}
    assert [s.run.id for s in store.history(bench="bench-a")] == [first]
    assert len(store.history(limit=1)) == 1
    assert store.last_run_id() == second and store.last_run_id("bench-a") == first


def test_empty_store_has_no_history(store):
    assert store.history() == [] and store.last_run_id() is None


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
        run = store.load_run(new_run(store)).run
        assert run.started_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        assert run.started_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="aware"), \
            RecordStore(db, clock=lambda: datetime(2024, 5, 1)) as store:
        new_run(store)


def test_schema_is_versioned_and_migrated_forward(db, monkeypatch):
    with RecordStore(db) as store:
        assert store.schema_version() == records.SCHEMA_VERSION == 1
        new_run(store)
    extra = ("ALTER TABLE runs ADD COLUMN operator TEXT NOT NULL DEFAULT ''",)
    monkeypatch.setattr(records, "MIGRATIONS", (*records.MIGRATIONS, extra))
    with RecordStore(db) as store:                  # an older file is brought up to date
        assert store.schema_version() == 2
        assert store.history()[0].units == 0        # and keeps its data
    assert peek(db, "SELECT operator FROM runs") == [("",)]
    assert [v for (v,) in peek(db, "SELECT version FROM schema_version")] == [1, 2]
    monkeypatch.setattr(records, "MIGRATIONS", records.MIGRATIONS[:1])
    with pytest.raises(RecordError, match="newer rig"):   # never run on a schema we don't know
        RecordStore(db)
