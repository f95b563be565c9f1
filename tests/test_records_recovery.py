"""After a crash, kill -9 or power cut the store says so, and recovery closes the run honestly
and hands back the outputs the dead process left engaged — once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rig.records import RecordStore
from rig.vocabulary import RunStatus, StepOutcome, UnitState, Verdict

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import sys, time
    from rig.records import RecordStore
    from rig.vocabulary import StepOutcome
    store = RecordStore(sys.argv[1])
    run = store.start_run("bench-k", method="hard", argv=["rig", "run", "bench-k.toml"])
    done = store.start_unit(run, "1", method="hard")
    store.finish_unit(done, "factory-default", "inactive after reset")
    unit = store.start_unit(run, "2", method="hard", expected_serial="DS-2")
    step = store.start_step(unit, "power off")
    store.finish_step(step, StepOutcome.OK)
    store.start_step(unit, "press reset button", detail="solenoid GPIO 22")
    store.add_evidence(unit, "power-reading", {"watts": 0.0})
    store.output_engaged(run, "2", "solenoid-on", "GPIO 22")
    store.plan_unit(run, "3", method="hard")
    print(run, flush=True)
    print("ready", flush=True)
    time.sleep(60)
""")


def test_kill_9_mid_step_leaves_a_record_that_recovery_closes_once(tmp_path):
    db = tmp_path / "rig.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE,
                             text=True, env=env)
    try:
        run_id = int(child.stdout.readline())
        assert child.stdout.readline().strip() == "ready"
        with RecordStore(db) as store:
            assert store.recover_interrupted() == []        # its process is alive: hands off
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            assert child.returncode == -signal.SIGKILL

            recovered = store.recover_interrupted()
            assert [r.run.id for r in recovered] == [run_id]
            lost = recovered[0]
            assert lost.run.status is RunStatus.INTERRUPTED
            assert "had stopped" in lost.run.note
            assert [(o.slot, o.kind, o.target) for o in lost.outputs] == [
                ("2", "solenoid-on", "GPIO 22")]
            assert {u.slot for u in lost.units} == {"2", "3"}

            record = store.load_run(run_id)
            units = {u.slot: u for u in record.units}
            assert units["1"].verdict is Verdict.FACTORY_DEFAULT     # finished work is kept
            two = units["2"]
            assert two.state is UnitState.INTERRUPTED and two.verdict is Verdict.INTERRUPTED
            assert two.reason == ("run interrupted (rig stopped: crash, kill or power cut) "
                                  "during step 'press reset button'")
            assert [s.outcome for s in two.steps] == [StepOutcome.OK, StepOutcome.INTERRUPTED]
            assert two.evidence[0].data == {"watts": 0.0}
            assert units["3"].reason.endswith("before this unit started")
            # times: the last sign of life, not the moment recovery happened to run
            assert record.run.finished_at == record.outputs[0].since   # its last write
            assert two.steps[-1].finished_at == record.run.finished_at

            assert store.recover_interrupted() == []                 # idempotent
            assert store.recover_interrupted(force=True) == []
            # the outputs stay listed until someone makes them safe
            assert [o.id for o in store.open_outputs()] == [lost.outputs[0].id]
            store.output_cleared(lost.outputs[0].id, "made safe after restart")
            assert store.open_outputs() == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def _bump(db: Path, sql: str, params: tuple) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql, params)
    conn.close()


def test_a_run_of_this_live_process_is_not_recovered(tmp_path):
    with RecordStore(tmp_path / "rig.sqlite") as store:
        run = store.start_run("bench", method="hard")
        assert not store.is_orphaned(store.load_run(run).run)
        assert store.recover_interrupted() == []
        assert store.load_run(run).run.status is RunStatus.RUNNING


def test_a_reused_pid_does_not_keep_a_dead_run_alive(tmp_path):
    db = tmp_path / "rig.sqlite"
    with RecordStore(db) as store:
        run = store.start_run("bench", method="hard")      # our pid: alive…
        _bump(db, "UPDATE runs SET process_start = '1' WHERE id = ?", (run,))  # …but not ours
        assert store.is_orphaned(store.load_run(run).run)
        assert [r.run.id for r in store.recover_interrupted()] == [run]


def test_a_run_from_an_earlier_boot_is_dead(tmp_path):
    db = tmp_path / "rig.sqlite"
    with RecordStore(db) as store:
        run = store.start_run("bench", method="hard")
        if not store.load_run(run).run.boot_id:
            pytest.skip("no boot id on this platform")
        _bump(db, "UPDATE runs SET boot_id = 'before-the-power-cut' WHERE id = ?", (run,))
        assert [r.run.id for r in store.recover_interrupted()] == [run]


def test_runs_of_other_hosts_are_recovered_only_by_force(tmp_path):
    with RecordStore(tmp_path / "rig.sqlite") as store:
        run = store.start_run("bench", method="hard", hostname="other-pi", pid=1)
        unit = store.start_unit(run, "1", method="hard")
        assert store.recover_interrupted() == []
        recovered = store.recover_interrupted(force=True)
        assert [r.run.id for r in recovered] == [run]
        assert recovered[0].units[0].id == unit
        assert recovered[0].units[0].reason.endswith("before its first step")
        assert recovered[0].outputs == ()
