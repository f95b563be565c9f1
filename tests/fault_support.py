"""Kill -9 at a chosen step of a real ``rig run``, from outside, with no hook in the product.

The parent (the test) runs ``rig run`` in a child process against a simulated bench it serves
itself (PoE power and relay-board buttons: both reachable from another process) and watches the
child's record store. Each record the child commits bumps SQLite's ``PRAGMA data_version`` on
the parent's connection; at each bump the parent takes the store's write lock (``BEGIN
IMMEDIATE``) and looks. Once the step it waits for is recorded, it keeps the lock, reads every
row, and kills the child while holding it: a child blocked on the lock cannot commit anything
more, so what the parent read is exactly what the child left. The kill lands after the step
began and before the next one begins (inside the step, or past its last commit when the child
committed several records between two looks). The outputs ledger is written before any output
moves, so a kill as a step begins leaves the outputs as the previous step left them: each case
is a step boundary as the recovery code sees it.

``StoreGate`` is the watcher; ``kill_at`` runs one case and returns a ``Kill`` for the
assertions (tests/test_fault_injection.py).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from process_support import gone, guardians_of, wait_for

from rig.bench import PoeOutput, RelayOutput
from rig.sim.bench import SimBench

ROOT = Path(__file__).resolve().parents[1]

#: The steps a hard reset records for a unit, in order (rig.procedures.hard, then verification).
HARD_STEPS = ("power off", "settle", "press", "power on", "hold", "release", "wait for boot",
              "verify")
#: The same for a poe-cycle (rig.procedures.poe_cycle).
POE_CYCLE_STEPS = ("power off", "settle", "power on", "wait for boot", "verify")
#: The record store's tables a run writes into, and the column that ties a row to its run.
RUN_TABLES = {"runs": "id", "units": "run_id", "outputs": "run_id"}
UNIT_TABLES = ("steps", "evidence")

Rows = dict[str, list[dict[str, Any]]]


class StoreGate:
    """A connection to the child's record store that can stop the child's next commit.

    Opened read-write without creating the file (the child creates and migrates it) and in
    autocommit mode, so ``BEGIN IMMEDIATE`` / ``COMMIT`` are the only transactions it holds.
    """

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None,
                                    timeout=0.0, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.holding = False

    @classmethod
    def open(cls, path: Path, proc: subprocess.Popen[str], timeout: float) -> StoreGate:
        """Wait until the child has created the store (its schema, too), then open it."""
        def ready() -> bool:
            assert proc.poll() is None, f"rig run ended first: {proc.stdout.read()}"
            return path.exists()
        wait_for(ready, timeout, step=0.001)
        return cls(path)

    def hold_when_step(self, slot: str, step: str, proc: subprocess.Popen[str],
                       timeout: float, *, after: str | None = None) -> None:
        """Return holding the write lock once ``slot``'s unit has a step named ``step``.

        Until the step before it (``after``) has begun it polls every millisecond without the
        lock; from then on it spins, and takes the lock without SQLite's busy handler (whose
        first back-off is a whole millisecond): between two of the child's commits there are
        only microseconds of Python, and every one the parent loses lets the child run on.
        Spinning only near the target keeps the simulator (served by this process's threads)
        fast for the rest of the run."""
        deadline = time.monotonic() + timeout
        armed, last = False, None
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"rig run ended before step {step!r} of slot {slot}: "
                                     f"{proc.stdout.read() if proc.stdout else ''}")
            assert time.monotonic() < deadline, f"no step {step!r} within {timeout:g} s"
            try:
                if not armed:
                    armed = self._has_step(slot, after) if after else self._has_unit(slot)
                    time.sleep(0 if armed else 0.001)
                    continue
                version = self.conn.execute("PRAGMA data_version").fetchone()[0]
                if version != last and self._lock():
                    last = version
                    if self._has_step(slot, step):
                        return
                    self.release()
            except sqlite3.OperationalError:      # the schema is not there yet
                self.release()

    def _lock(self) -> bool:
        """Try to take the write lock now; False when the child holds it."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise
        self.holding = True
        return True

    def _has_unit(self, slot: str) -> bool:
        return self.conn.execute("SELECT 1 FROM units WHERE slot = ?", (slot,)).fetchone() \
            is not None

    def _has_step(self, slot: str, step: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM steps JOIN units ON units.id = steps.unit_id "
            "WHERE units.slot = ? AND steps.name = ? LIMIT 1", (slot, step)).fetchone()
        return row is not None

    def release(self) -> None:
        """Let the child (or the guardian, or recovery) commit again."""
        if self.holding and self.conn.in_transaction:
            self.conn.execute("COMMIT")
        self.holding = False

    def close(self) -> None:
        self.release()
        self.conn.close()


def run_rows(conn: sqlite3.Connection, run_id: int) -> Rows:
    """Every row the run ``run_id`` owns, table by table, in id order."""
    rows: Rows = {}
    for table, column in RUN_TABLES.items():
        rows[table] = [dict(r) for r in conn.execute(
            f"SELECT * FROM {table} WHERE {column} = ? ORDER BY id", (run_id,))]
    units = [u["id"] for u in rows["units"]]
    marks = ",".join("?" * len(units))
    for table in UNIT_TABLES:
        rows[table] = [dict(r) for r in conn.execute(
            f"SELECT * FROM {table} WHERE unit_id IN ({marks}) ORDER BY id", units)]
    return rows


def read_rows(path: Path, run_id: int) -> Rows:
    """``run_rows`` through a fresh connection (once nothing holds the lock any more)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return run_rows(conn, run_id)
    finally:
        conn.close()


@dataclass(frozen=True)
class Kill:
    """One kill: where it landed and what the store held when the child died."""

    step: str                     # the step the parent waited for
    rows: Rows                    # every row of run 1, read under the lock, before the kill
    guardians: tuple[int, ...]    # the child's guardian processes (killed too with power_cut)
    power_cut: bool
    seconds: float                # from starting rig run to the kill


def rig_run(bench_path: Path, db: Path, method: str,
            extra: Sequence[str] = ()) -> subprocess.Popen[str]:
    """``rig run`` in a child process, on this checkout's code."""
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                          if p))
    return subprocess.Popen([sys.executable, "-m", "rig.cli", "run", str(bench_path),
                             "--method", method, "--db", str(db), "--quiet", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def kill_at(sim: SimBench, db: Path, method: str, steps: Sequence[str], step: str, *,
            slot: str = "1", power_cut: bool = False, timeout: float = 30.0) -> Kill:
    """Run ``rig run`` and SIGKILL it once ``slot`` has begun ``step`` (one of ``steps``, the
    method's steps in order). ``power_cut``: its guardian is killed first, as when everything
    of rig dies at once, so that only recovery can make the outputs safe. Returns once the
    child is reaped (and the guardian gone when it was killed too)."""
    started = time.monotonic()
    proc = rig_run(sim.bench_path, db, method)
    gate: StoreGate | None = None
    try:
        gate = StoreGate.open(db, proc, timeout)
        before = steps.index(step)
        gate.hold_when_step(slot, step, proc, timeout,
                            after=steps[before - 1] if before else None)
        rows = run_rows(gate.conn, 1)
        guardians = tuple(guardians_of(proc.pid))
        if rows["runs"][0]["status"] == "running":     # else it may have stopped after "done"
            assert guardians, "rig run reached a step without its guardian"
        if power_cut:
            for pid in guardians:
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: all(gone(g) for g in guardians), 5.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        seconds = time.monotonic() - started
    finally:
        if gate is not None:
            gate.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return Kill(step, rows, guardians, power_cut, seconds)


def away_from_rest(sim: SimBench) -> dict[tuple[str, str], str]:
    """The simulator's own view of every output not at rest: (slot, "button"/"power") → what.
    At rest: relay channels off (a coil released), PoE ports enabled (a camera powered)."""
    found = {}
    for slot in sim.bench.slots:
        if isinstance(slot.button, RelayOutput):
            board = sim.relay_boards[slot.button.board]
            if board.state(slot.button.channel):
                found[(slot.name, "button")] = f"relay channel {slot.button.channel} on"
        if isinstance(slot.power, PoeOutput):
            assert sim.switch is not None
            if not sim.switch.state(slot.power.port).enabled:
                found[(slot.name, "power")] = f"PoE port {slot.power.port} off"
    return found
