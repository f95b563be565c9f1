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

from rig.records import RecordStore, Run
from rig.records.liveness import Host, is_orphaned
from rig.vocabulary import RunStatus, StepOutcome, UnitState, Verdict

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import sys, time
    from rig.records import RecordStore
    from rig.vocabulary import StepOutcome
    store = RecordStore(sys.argv[1])
    runs = store.runs
    run = runs.start_run("bench-k", method="hard", argv=["rig", "run", "bench-k.toml"])
    done = runs.start_unit(run, "1", method="hard")
    runs.finish_unit(done, "factory-default", "inactive after reset")
    unit = runs.start_unit(run, "2", method="hard", expected_serial="DS-2")
    step = runs.start_step(unit, "power off")
    runs.finish_step(step, StepOutcome.OK)
    runs.start_step(unit, "press reset button", detail="solenoid GPIO 22")
    runs.add_evidence(unit, "power-reading", {"watts": 0.0})
    store.outputs.engaged(run, "2", "solenoid-on", "GPIO 22")
    runs.plan_unit(run, "3", method="hard")
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
            assert store.runs.recover_interrupted() == []        # its process is alive: hands off
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            assert child.returncode == -signal.SIGKILL

            recovered = store.runs.recover_interrupted()
            assert [r.run.id for r in recovered] == [run_id]
            lost = recovered[0]
            assert lost.run.status is RunStatus.INTERRUPTED
            assert "had stopped" in lost.run.note
            assert [(o.slot, o.kind, o.target) for o in lost.outputs] == [
                ("2", "solenoid-on", "GPIO 22")]
            assert {u.slot for u in lost.units} == {"2", "3"}

            record = store.runs.load_run(run_id)
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

            assert store.runs.recover_interrupted() == []                 # idempotent
            assert store.runs.recover_interrupted(force=True) == []
            # the outputs stay listed until someone makes them safe
            assert [o.id for o in store.outputs.open()] == [lost.outputs[0].id]
            store.outputs.cleared(lost.outputs[0].id, "made safe after restart")
            assert store.outputs.open() == []
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
        run = store.runs.start_run("bench", method="hard")
        assert not store.runs.is_orphaned(store.runs.load_run(run).run)
        assert store.runs.recover_interrupted() == []
        assert store.runs.load_run(run).run.status is RunStatus.RUNNING


def test_a_reused_pid_does_not_keep_a_dead_run_alive(tmp_path):
    db = tmp_path / "rig.sqlite"
    with RecordStore(db) as store:
        run = store.runs.start_run("bench", method="hard")      # our pid: alive…
        _bump(db, "UPDATE runs SET process_start = '1' WHERE id = ?", (run,))  # …but not ours
        assert store.runs.is_orphaned(store.runs.load_run(run).run)
        assert [r.run.id for r in store.runs.recover_interrupted()] == [run]


def test_a_run_from_an_earlier_boot_is_dead(tmp_path):
    db = tmp_path / "rig.sqlite"
    with RecordStore(db) as store:
        run = store.runs.start_run("bench", method="hard")
        if not store.runs.load_run(run).run.boot_id:
            pytest.skip("no boot id on this platform")
        _bump(db, "UPDATE runs SET boot_id = 'before-the-power-cut' WHERE id = ?", (run,))
        assert [r.run.id for r in store.runs.recover_interrupted()] == [run]


def test_runs_of_other_hosts_are_recovered_only_by_force(tmp_path):
    with RecordStore(tmp_path / "rig.sqlite") as store:
        run = store.runs.start_run("bench", method="hard", hostname="other-pi", pid=1)
        unit = store.runs.start_unit(run, "1", method="hard")
        assert store.runs.recover_interrupted() == []
        recovered = store.runs.recover_interrupted(force=True)
        assert [r.run.id for r in recovered] == [run]
        assert recovered[0].units[0].id == unit
        assert recovered[0].units[0].reason.endswith("before its first step")
        assert recovered[0].outputs == ()


# --- liveness, decided from made-up facts (no process spawned) ----------------------------------

def a_run(**changes) -> Run:
    fields = dict(id=1, started_at=None, finished_at=None, status=RunStatus.RUNNING,
                  bench_name="b", bench_path=None, bench_sha256=None, method="hard",
                  rig_version="0", hostname="pi", pid=4242, argv=(), note="",
                  boot_id="boot-1", process_start="900")
    return Run(**{**fields, **changes})


def host(starts: dict[int, str], boot: str = "boot-1") -> Host:
    return Host(hostname="pi", boot_id=boot, process_start=starts.get)


def test_a_run_whose_process_is_still_there_is_alive():
    assert not is_orphaned(a_run(), host({4242: "900"}))
    assert not is_orphaned(a_run(), host({4242: ""}))            # platform cannot tell: alive
    assert not is_orphaned(a_run(process_start=""), host({4242: "1"}))   # nothing to compare


def test_a_gone_process_a_reused_pid_or_a_new_boot_is_dead():
    assert is_orphaned(a_run(), host({}))
    assert is_orphaned(a_run(), host({4242: "1234"}))            # same pid, another process
    assert is_orphaned(a_run(), host({4242: "900"}, boot="boot-2"))
    assert not is_orphaned(a_run(boot_id=""), host({4242: "900"}, boot="boot-2"))


def test_closed_runs_and_other_hosts_runs_are_never_orphaned_here():
    assert not is_orphaned(a_run(status=RunStatus.PASSED), host({}))
    assert not is_orphaned(a_run(hostname="other-pi"), host({}))


def test_host_here_reads_this_machine():
    here = Host.here()
    assert here.hostname and here.process_start(os.getpid()) is not None
    assert here.process_start(-1) is None
