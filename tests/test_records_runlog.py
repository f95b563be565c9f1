"""The run log: who ran what, one verdict per unit, steps in order, evidence as JSON, queries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from records_support import FakeClock, new_run

from rig.records import RecordError, RecordStore, UnknownRun, file_sha256
from rig.vocabulary import Fault, RunStatus, StepOutcome, UnitState, Verdict


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock):
    with RecordStore(tmp_path / "rig.sqlite", clock=clock) as s:
        yield s


@pytest.fixture
def runs(store: RecordStore):
    return store.runs


# --- the record's rules -------------------------------------------------------------------------

def test_run_records_who_ran_what(runs, clock, tmp_path):
    bench = tmp_path / "bench.toml"
    bench.write_text("[bench]\nname = 'a'\n")
    run_id = runs.start_run("bench-a", method="auto", bench_path=bench, argv=["rig", "run", "x"],
                            note="first batch")
    run = runs.load_run(run_id).run
    assert run.status is RunStatus.RUNNING and run.finished_at is None
    assert run.bench_path == str(bench) and run.bench_sha256 == file_sha256(bench)
    assert run.argv == ("rig", "run", "x") and run.note == "first batch"
    assert run.pid > 0 and run.hostname and run.rig_version
    assert run.started_at == clock.now            # the injected clock's latest reading


def test_finish_run_closes_unfinished_units_as_interrupted(store, runs):
    run = new_run(store)
    done = runs.start_unit(run, "1", method="hard")
    runs.finish_unit(done, Verdict.NOT_DEFAULT, "still activated", check="activation")
    busy = runs.start_unit(run, "2", method="hard")
    runs.start_step(busy, "hold button")
    waiting = runs.plan_unit(run, "3", method="hard")
    runs.finish_run(run, RunStatus.ABORTED, note="operator pressed Ctrl-C")
    record = runs.load_run(run)
    units = {u.slot: u for u in record.units}
    assert units["1"].verdict is Verdict.NOT_DEFAULT and units["1"].check == "activation"
    assert units["1"].fault is Fault.UNIT                      # implied by the verdict
    assert units["2"].state is UnitState.INTERRUPTED
    assert units["2"].reason == "run aborted before this unit finished during step 'hold button'"
    assert units["2"].steps[0].outcome is StepOutcome.INTERRUPTED
    assert units[str(3)].reason.endswith("before this unit started")
    assert runs.load_unit(waiting).verdict is Verdict.INTERRUPTED
    assert record.run.status is RunStatus.ABORTED and "Ctrl-C" in record.run.note
    with pytest.raises(RecordError, match="already closed"):
        runs.finish_run(run, RunStatus.PASSED)
    with pytest.raises(RecordError, match="closed"):
        runs.start_unit(run, "4", method="hard")
    with pytest.raises(ValueError, match="final status"):
        runs.finish_run(new_run(store), RunStatus.RUNNING)


def test_a_unit_gets_one_verdict_and_a_reason(store, runs):
    run = new_run(store)
    unit = runs.start_unit(run, "1", method="hard")
    with pytest.raises(ValueError, match="reason"):
        runs.finish_unit(unit, Verdict.FACTORY_DEFAULT, "  ")
    with pytest.raises(ValueError, match="no fault"):
        runs.finish_unit(unit, Verdict.FACTORY_DEFAULT, "ok", Fault.BENCH)
    with pytest.raises(ValueError, match="bench fault"):
        runs.finish_unit(unit, Verdict.BENCH_FAULT, "relay", Fault.UNIT)
    with pytest.raises(ValueError):
        runs.finish_unit(unit, "probably-fine", "hm")
    runs.finish_unit(unit, "unreachable", "no SADP answer\n within 90 s", mac="aa:bb:cc:00:00:01")
    got = runs.load_unit(unit)
    assert got.verdict is Verdict.UNREACHABLE and got.reason == "no SADP answer within 90 s"
    assert got.mac == "aa:bb:cc:00:00:01" and got.duration_s == 1.0
    with pytest.raises(RecordError, match="already has a verdict"):
        runs.finish_unit(unit, Verdict.FACTORY_DEFAULT, "second opinion")
    with pytest.raises(RecordError, match="closed"):
        runs.start_step(unit, "late step")
    with pytest.raises(RecordError, match="already has a unit in slot"):
        runs.start_unit(run, "1", method="hard")


def test_finishing_a_unit_closes_a_step_left_open(store, runs):
    unit = runs.start_unit(new_run(store), "1", method="hard")
    runs.start_step(unit, "wait for boot")
    runs.finish_unit(unit, Verdict.BENCH_FAULT, "power reading failed")
    step = runs.load_unit(unit).steps[0]
    assert step.outcome is StepOutcome.INTERRUPTED and step.finished_at is not None
    assert "unit finished" in step.detail


def test_a_planned_unit_starts_with_its_first_step(store, runs):
    unit = runs.plan_unit(new_run(store), "1", method="hard", expected_serial="DS-1")
    assert runs.load_unit(unit).started_at is None
    runs.start_step(unit, "power off")
    got = runs.load_unit(unit)
    assert got.state is UnitState.RUNNING and got.started_at is not None
    assert got.expected_serial == "DS-1"


def test_step_context_records_ok_failed_timeout_and_leaves_explicit_outcomes(store, runs):
    unit = runs.start_unit(new_run(store), "1", method="hard")
    with runs.step(unit, "power off", detail="GPIO 17"):
        pass
    with pytest.raises(RuntimeError), runs.step(unit, "press"):
        raise RuntimeError("solenoid current 0 A")
    with pytest.raises(TimeoutError), runs.step(unit, "wait for SADP"):
        raise TimeoutError
    with runs.step(unit, "web reset") as step_id:
        runs.finish_step(step_id, StepOutcome.SKIPPED, "hard method")
    with pytest.raises(KeyboardInterrupt), runs.step(unit, "hold"):
        raise KeyboardInterrupt
    steps = runs.load_unit(unit).steps
    assert [(s.name, s.outcome, s.detail) for s in steps] == [
        ("power off", StepOutcome.OK, "GPIO 17"),
        ("press", StepOutcome.FAILED, "RuntimeError: solenoid current 0 A"),
        ("wait for SADP", StepOutcome.TIMEOUT, "TimeoutError"),
        ("web reset", StepOutcome.SKIPPED, "hard method"),
        ("hold", StepOutcome.INTERRUPTED, "KeyboardInterrupt"),
    ]
    assert all(s.finished_at > s.started_at for s in steps)
    with pytest.raises(RecordError, match="already closed"):
        runs.finish_step(steps[0].id, StepOutcome.FAILED)
    with pytest.raises(ValueError, match="final outcome"):
        runs.finish_step(runs.start_step(unit, "x"), StepOutcome.RUNNING)


def test_unknown_ids_are_clear_errors(runs):
    with pytest.raises(UnknownRun, match="no run 42"):
        runs.load_run(42)
    with pytest.raises(UnknownRun):
        runs.start_unit(42, "1", method="hard")
    with pytest.raises(RecordError, match="no unit 7"):
        runs.start_step(7, "x")
    with pytest.raises(RecordError, match="no unit 8"):
        runs.load_unit(8)


# --- evidence -----------------------------------------------------------------------------------

def test_evidence_round_trips_as_json(store, runs):
    unit = runs.start_unit(new_run(store), "1", method="hard")
    step = runs.start_step(unit, "verify")
    data = {"mac": "aa:bb:cc:dd:ee:ff", "activated": False, "watts": 4.25, "ports": [80, 8000],
            "nested": {"model": "DS-2CD2143G2-I", "notes": None}, "text": "ünïcode ✓",
            "tuple": (1, 2)}
    ev = runs.add_evidence(unit, "sadp-after", data, step_id=step)
    runs.add_evidence(unit, "http", {"state": "inactive"})
    got = runs.load_unit(unit).evidence
    assert [e.id for e in got][0] == ev
    assert got[0].data == {**data, "tuple": [1, 2]} and got[0].step_id == step
    assert got[0].kind == "sadp-after" and got[1].step_id is None


@pytest.mark.parametrize("bad", [["a list"], "text", {"when": datetime.now(UTC)},
                                 {"x": float("nan")}, {1: "int key"}, {"s": {2, 3}},
                                 {"deep": [{3: "int key"}]}])
def test_evidence_that_is_not_a_json_object_is_refused(store, runs, bad):
    unit = runs.start_unit(new_run(store), "1", method="hard")
    with pytest.raises(TypeError):
        runs.add_evidence(unit, "bad", bad)
    assert runs.load_unit(unit).evidence == ()


def test_evidence_cannot_name_another_units_step(store, runs):
    run = new_run(store)
    one, two = (runs.start_unit(run, s, method="hard") for s in ("1", "2"))
    step = runs.start_step(one, "verify")
    with pytest.raises(RecordError, match="belongs to unit"):
        runs.add_evidence(two, "sadp-after", {"mac": "x"}, step_id=step)


# --- queries ------------------------------------------------------------------------------------

def test_history_counts_verdicts_newest_first(store, runs):
    first = new_run(store, "bench-a")
    for slot, verdict in (("1", Verdict.FACTORY_DEFAULT), ("2", Verdict.FACTORY_DEFAULT),
                          ("3", Verdict.NOT_DEFAULT)):
        runs.finish_unit(runs.start_unit(first, slot, method="hard"), verdict, "why")
    runs.start_unit(first, "4", method="hard")
    runs.finish_run(first, RunStatus.FAILED)
    second = new_run(store, "bench-b")
    runs.start_unit(second, "1", method="hard")
    history = runs.history()
    assert [s.run.id for s in history] == [second, first]
    assert history[1].counts == {"factory-default": 2, "not-default": 1, "interrupted": 1}
    assert history[1].units == 4
    assert history[0].counts == {"unfinished": 1}
    assert [s.run.id for s in runs.history(bench="bench-a")] == [first]
    assert len(runs.history(limit=1)) == 1
    assert runs.last_run_id() == second and runs.last_run_id("bench-a") == first


def test_empty_store_has_no_history(runs):
    assert runs.history() == [] and runs.last_run_id() is None
