"""Recovery after a dead run closes the run only once every output it left engaged is proven
safe: a dead run of another bench, or an output that cannot be made safe now, leaves the run
open and named, and every later rig run or rig safe on its bench retries."""

from __future__ import annotations

import sqlite3

import pytest

from rig.actuators.base import ActuatorError
from rig.bench import load_bench
from rig.cli import main
from rig.records import RecordStore
from rig.recovery import recover
from rig.runner import Runner
from rig.vocabulary import OutputKind, RunStatus, Verdict
from rig.wiring import BenchHardware

BENCH = """
[bench]
name = "{name}"
gpio_factory = "mock"
solenoid_max_on_seconds = 2

[[slots]]
name = "1"
power = {{ kind = "gpio", pin = 17, active_high = false }}
button = {{ kind = "gpio", pin = {button} }}
"""


@pytest.fixture
def store(tmp_path):
    with RecordStore(tmp_path / "records.sqlite") as s:
        yield s


def bench_file(tmp_path, name: str, button: int = 22):
    path = tmp_path / f"{name}.toml"
    path.write_text(BENCH.format(name=name, button=button), encoding="utf-8")
    return load_bench(path)


def dead_run_with_a_coil_on(store: RecordStore, bench_name: str) -> tuple[int, int]:
    """A run that died during a press: its solenoid line is still open in the ledger."""
    run = store.runs.start_run(bench_name, method="hard")
    unit = store.runs.start_unit(run, "1", method="hard")
    store.runs.start_step(unit, "press", "GPIO 22")
    entry = store.outputs.engaged(run, "1", OutputKind.SOLENOID_ON, "GPIO 22", "held")
    with sqlite3.connect(store.path) as conn:          # its process is gone (not this one)
        conn.execute("UPDATE runs SET process_start = 'gone' WHERE id = ?", (run,))
    return run, entry


def status(store: RecordStore, run: int) -> RunStatus:
    return store.runs.load_run(run).run.status


def test_a_dead_run_of_another_bench_is_left_open_and_its_outputs_named(tmp_path, store):
    bench_a, bench_b = bench_file(tmp_path, "bench-a"), bench_file(tmp_path, "bench-b", 23)
    run, _ = dead_run_with_a_coil_on(store, "bench-a")
    with BenchHardware(bench_b) as hardware:
        report = Runner(bench_b, store, hardware).recover()
    assert status(store, run) is RunStatus.RUNNING            # not closed behind A's back
    assert len(store.outputs.open(run)) == 1
    assert any("bench-a" in line and "solenoid-on GPIO 22" in line and "rig safe" in line
               for line in report.engaged), report.engaged
    with BenchHardware(bench_a) as hardware:
        report = recover(store, bench_a, hardware)            # A's own next run or rig safe
        assert not hardware.slot("1").button.energised
    assert report.all_safe and status(store, run) is RunStatus.INTERRUPTED
    assert store.outputs.open(run) == []
    unit = store.runs.load_run(run).units[0]
    assert unit.verdict == Verdict.INTERRUPTED


class StuckHardware:
    """A bench whose relay board is unplugged: releasing the coil fails."""

    def __init__(self, real: BenchHardware) -> None:
        self.real = real

    def slot(self, name: str):
        hw = self.real.slot(name)

        class Button:
            energised = True

            def release(self) -> None:
                raise ActuatorError("relay board main", "not plugged in")

        return type(hw)(hw.slot, hw.power, Button())


def test_a_failed_recovery_leaves_the_run_open_and_the_next_attempt_closes_it(tmp_path,
                                                                                store):
    bench = bench_file(tmp_path, "bench-a")
    run, entry = dead_run_with_a_coil_on(store, "bench-a")
    with BenchHardware(bench) as hardware:
        report = recover(store, bench, StuckHardware(hardware))
    assert not report.all_safe and "NOT made safe" in report.engaged[0]
    assert "not plugged in" in report.engaged[0]
    assert status(store, run) is RunStatus.RUNNING
    assert [e.id for e in store.outputs.open(run)] == [entry]
    with BenchHardware(bench) as hardware:
        report = recover(store, bench, hardware)              # the board is back
    assert report.all_safe and status(store, run) is RunStatus.INTERRUPTED
    assert store.outputs.open(run) == []


def test_rig_safe_on_the_bench_recovers_its_dead_run(tmp_path, store, capsys, monkeypatch):
    bench = bench_file(tmp_path, "bench-a")
    run, _ = dead_run_with_a_coil_on(store, "bench-a")
    monkeypatch.setenv("RIG_DB", str(store.path))
    assert main(["safe", str(bench.path)]) == 0
    assert status(store, run) is RunStatus.INTERRUPTED
    assert store.outputs.open(run) == []
    assert "marked interrupted" in capsys.readouterr().out


def test_a_dead_run_of_another_bench_with_nothing_engaged_is_closed(tmp_path, store):
    bench_b = bench_file(tmp_path, "bench-b", 23)
    run = store.runs.start_run("bench-a", method="hard")
    store.runs.start_unit(run, "1", method="hard")
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET process_start = 'gone' WHERE id = ?", (run,))
    with BenchHardware(bench_b) as hardware:
        report = recover(store, bench_b, hardware)
    assert report.all_safe and status(store, run) is RunStatus.INTERRUPTED
