"""The guardian (rig.guardian): a rig command killed with SIGKILL leaves no output engaged.

Each case runs a real ``rig`` command in a subprocess against a simulated bench served by this
process (a relay board on a pty, a PoE switch over SNMP), kills it with SIGKILL at the worst
moment, and times how long the coil or the port stays where the dead command left it. Before
the guardian existed a killed command left the coil energised until the next command (the
kill -9 test in test_runner.py asserted exactly that); these tests failed then.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from process_support import gone, guardians_of, wait_for

from rig.bench import RelayOutput
from rig.cli import main
from rig.guardian import GUARDIAN_NOTE, Guardian, GuardianError
from rig.records import RecordStore
from rig.sim.bench import SimBench, SimSlot

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Secret123!"
#: The bound the issue sets for a coil after its command died.
RELEASE_LIMIT_S = 1.0


def rig(*args: str, new_session: bool = False) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                          if p))
    return subprocess.Popen([sys.executable, "-m", "rig.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=new_session)


def button_channel(sim: SimBench, slot: int = 0) -> int:
    button = sim.bench.slots[slot].button
    assert isinstance(button, RelayOutput)
    return button.channel


def ledger_cleared_by_guardian(db: str, kind: str) -> None:
    """Every line of the killed run is cleared, the ``kind`` line by the guardian (which
    records after it acted: wait for it)."""
    def done() -> bool:
        with RecordStore.open(db) as store:
            return store.outputs.open() == []
    wait_for(done, 5.0, step=0.02)
    with RecordStore.open(db) as store:
        lines = [o for o in store.runs.load_run(1).outputs if o.kind == kind]
    assert lines and all(GUARDIAN_NOTE in o.note for o in lines), lines


def kill_and_time_release(proc: subprocess.Popen[str], released: Callable[[], bool], *,
                          group: bool = False) -> tuple[float, list[int]]:
    """SIGKILL the command (its whole process group with ``group``), then the seconds until
    ``released`` held; also the command's guardians, for the caller to see them end."""
    guardians = guardians_of(proc.pid)
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(signal.SIGKILL)
    elapsed = wait_for(released, 5.0)      # without a guardian: stuck until the next command
    proc.wait(timeout=10)
    assert len(guardians) == 1, guardians
    return elapsed, guardians


def test_kill_9_of_rig_run_during_a_hold_releases_the_coil_within_a_second(tmp_path):
    db = str(tmp_path / "records.sqlite")
    with SimBench.start([SimSlot("relay", "current")], directory=tmp_path, time_scale=25.0,
                        first=120, provision=PASSWORD) as sim:
        board, channel = sim.relay_board, button_channel(sim)
        proc = rig("run", str(sim.bench_path), "--method", "hard", "--db", db)
        try:
            seen = []
            for line in proc.stdout:
                seen.append(line)
                if "slot 1" in line and "hold" in line:
                    break
            wait_for(lambda: board.state(channel), 2.0)      # the coil is on, mid-hold
            elapsed, guardians = kill_and_time_release(proc, lambda: not board.state(channel))
            assert proc.returncode == -signal.SIGKILL, seen
            print(f"coil released {elapsed * 1000:.0f} ms after kill -9 of rig run")
            assert elapsed < RELEASE_LIMIT_S
            wait_for(lambda: all(gone(g) for g in guardians), 5.0, step=0.02)
        finally:
            proc.kill()
            proc.wait()
        ledger_cleared_by_guardian(db, "solenoid-on")   # the bench still up: it acts on it


def test_a_killed_rig_press_process_group_releases_the_coil(tmp_path):
    """SIGKILL to the whole process group (what a terminal's job control or a supervisor may
    send): the guardian runs in a session of its own and still releases the coil."""
    db = str(tmp_path / "records.sqlite")
    with SimBench.start([SimSlot("relay", "current")], directory=tmp_path, time_scale=10.0,
                        first=124, boot=False) as sim:
        board, channel = sim.relay_board, button_channel(sim)
        hold = f"{sim.bench.solenoid_max_on_seconds * 0.9:.1f}"    # long, inside the cap
        proc = rig("press", "1", "--seconds", hold, "--bench", str(sim.bench_path), "--db", db,
                   new_session=True)
        try:
            wait_for(lambda: board.state(channel), 10.0)
            elapsed, _ = kill_and_time_release(proc, lambda: not board.state(channel),
                                               group=True)
            print(f"coil released {elapsed * 1000:.0f} ms after SIGKILL of rig press's group")
            assert elapsed < RELEASE_LIMIT_S
        finally:
            proc.kill()
            proc.wait()
        ledger_cleared_by_guardian(db, "solenoid-on")   # the bench still up: it acts on it


def test_a_poe_port_turned_off_by_a_killed_power_cycle_is_turned_back_on(tmp_path):
    db = str(tmp_path / "records.sqlite")
    with SimBench.start([SimSlot("poe", "current")], directory=tmp_path, time_scale=10.0,
                        first=128, boot=False) as sim:
        switch, port = sim.switch, sim.bench.slots[0].power.port
        assert switch is not None and switch.state(port).enabled
        proc = rig("power", "1", "cycle", "--off-seconds", "30", "--bench",
                   str(sim.bench_path), "--db", db)
        try:
            wait_for(lambda: not switch.state(port).enabled, 10.0)
            elapsed, _ = kill_and_time_release(proc, lambda: switch.state(port).enabled)
            print(f"PoE port back on {elapsed * 1000:.0f} ms after kill -9 of rig power")
        finally:
            proc.kill()
            proc.wait()
        ledger_cleared_by_guardian(db, "power-off")     # the bench still up: it acts on it


def test_a_clean_press_leaves_the_guardian_nothing_to_do(tmp_path):
    db = str(tmp_path / "records.sqlite")
    with SimBench.start([SimSlot("relay", "current")], directory=tmp_path, time_scale=10.0,
                        first=132, boot=False) as sim:
        board, channel = sim.relay_board, button_channel(sim)
        board.clear_records()
        proc = rig("press", "1", "--seconds", "0.2", "--bench", str(sim.bench_path),
                   "--db", db)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        frames = list(board.frames)
        assert frames[0] == b"relay on 1\r" and not board.state(channel)
        time.sleep(0.3)                       # a guardian acting now would show in the frames
        assert "guardian" not in out
        assert board.frames == frames
    with RecordStore.open(db) as store:
        (line,) = store.runs.load_run(1).outputs
        assert line.cleared_at is not None and GUARDIAN_NOTE not in line.note


def test_the_guardian_ignores_sigint_and_sigterm_and_stops_on_done(tmp_path):
    with SimBench.start([SimSlot("relay", "current")], directory=tmp_path, first=136,
                        boot=False) as sim:
        guardian = Guardian.start(sim.bench_path, str(tmp_path / "r.sqlite"), "press")
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            guardian.process.send_signal(signum)
        time.sleep(0.2)
        assert guardian.process.poll() is None
        frames = list(sim.relay_board.frames)
        guardian.done()
        assert guardian.process.returncode == 0
        assert sim.relay_board.frames == frames         # it touched nothing


def test_a_guardian_that_cannot_load_the_bench_stops_the_command_before_anything_moves(
        tmp_path, monkeypatch):
    with pytest.raises(GuardianError, match="did not start"):
        Guardian.start(tmp_path / "missing.toml", str(tmp_path / "r.sqlite"), "run")


def test_a_clean_rig_run_leaves_the_guardian_nothing_to_do(tmp_path):
    db = str(tmp_path / "records.sqlite")
    with SimBench.start([SimSlot("relay", "current")], directory=tmp_path, time_scale=100.0,
                        first=140, provision=PASSWORD) as sim:
        board = sim.relay_board
        proc = rig("run", str(sim.bench_path), "--method", "hard", "--db", db, "--quiet")
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        frames = list(board.frames)
        time.sleep(0.3)                       # a guardian acting now would show in the frames
        assert board.frames == frames and "guardian" not in out
    with RecordStore.open(db) as store:
        lines = store.runs.load_run(1).outputs
        assert lines and all(o.cleared_at and GUARDIAN_NOTE not in o.note for o in lines)


def test_what_the_guardian_cannot_make_safe_it_names_loudly_and_leaves_in_the_ledger(tmp_path):
    """The relay board is unplugged mid-press, then rig press is killed: the guardian cannot
    reach the coil, says so at CRITICAL within its bound, and the ledger line stays open for
    ``rig safe`` and recovery."""
    db = str(tmp_path / "records.sqlite")
    with SimBench.start([SimSlot("relay", "current")], directory=tmp_path, time_scale=10.0,
                        first=144, boot=False) as sim:
        board, channel = sim.relay_board, button_channel(sim)
        hold = f"{sim.bench.solenoid_max_on_seconds * 0.9:.1f}"
        proc = rig("press", "1", "--seconds", hold, "--bench", str(sim.bench_path), "--db", db)
        try:
            wait_for(lambda: board.state(channel), 10.0)
            guardians = guardians_of(proc.pid)
            board.unplug()
            proc.send_signal(signal.SIGKILL)
            started = time.monotonic()
            out = proc.stdout.read()          # to EOF: the guardian holds the pipe until it ends
            assert time.monotonic() - started < 15
            assert guardians
            wait_for(lambda: all(gone(g) for g in guardians), 5.0, step=0.02)
        finally:
            proc.kill()
            proc.wait()
    assert "CRITICAL" in out and "NOT MADE SAFE" in out and "slot 1 solenoid-on" in out, out
    with RecordStore.open(db) as store:
        (line,) = store.outputs.open()
        assert line.kind == "solenoid-on" and GUARDIAN_NOTE not in line.note


def test_without_its_guardian_a_command_moves_nothing(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise GuardianError("the guardian process did not start: test")

    monkeypatch.setattr(Guardian, "start", refuse)
    with SimBench.start([SimSlot("relay", "current")], directory=tmp_path, first=148,
                        boot=False) as sim:
        sim.relay_board.clear_records()
        bench, db = str(sim.bench_path), str(tmp_path / "r.sqlite")
        assert main(["press", "1", "--seconds", "0.1", "--bench", bench, "--db", db]) == 2
        assert main(["power", "1", "off", "--bench", bench, "--db", db]) == 2
        assert main(["run", bench, "--method", "hard", "--db", db]) == 2
        assert sim.relay_board.frames == []
    assert capsys.readouterr().err.count("nothing was moved") == 3


def test_the_guardian_rests_gpio_outputs_by_claiming_their_pins(tmp_path, monkeypatch):
    """In-process, on the bench file's own (fresh, mock) pin factory: the GPIO path of the
    guardian claims the solenoid's pin at its inactive level and clears the line. On a Pi this
    is what releases a coil whose dead owner's line kept its level (no strict_gpiod)."""
    from rig.actuators.gpio import make_pin_factory
    from rig.guardian import watch as guardian_watch
    from rig.vocabulary import OutputKind
    from rig.wiring import BenchHardware

    opened: list[BenchHardware] = []

    def hardware(bench):
        factory = make_pin_factory(bench.gpio_factory)
        factory.pin(bench.slots[0].button.pin).drive_high()   # a line its dead owner left high
        opened.append(BenchHardware(bench, pin_factory=factory))
        return opened[-1]

    monkeypatch.setattr(guardian_watch, "BenchHardware", hardware)

    with SimBench.start([SimSlot("gpio", "current")], directory=tmp_path, first=152,
                        boot=False) as sim:
        bench = sim.bench
        db = str(tmp_path / "r.sqlite")
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
        pid = int(dead.stdout)
        with RecordStore.open(db) as store:
            run = store.runs.start_run(bench.name, method="hard", pid=pid)
            slot = bench.slots[0]
            store.outputs.engaged(run, slot.name, OutputKind.SOLENOID_ON, "GPIO", "pressed")
            store.outputs.engaged(run, slot.name, OutputKind.POWER_OFF, "GPIO", "off")
        watch = guardian_watch.Watch(bench, db, pid, "", "run", 5.0)
        assert guardian_watch.make_safe(watch) == 0
        (hw,) = opened
        pin = hw.pin_factory.pin(slot.button.pin)
        assert [bool(s.state) for s in pin.states][-2:] == [True, False]   # claimed: released
    with RecordStore.open(db) as store:
        lines = store.runs.load_run(run).outputs
        assert len(lines) == 2 and all(GUARDIAN_NOTE in o.note and o.cleared_at for o in lines)
