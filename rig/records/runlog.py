"""The run log: runs, the units in them, each unit's steps and evidence, and recovery of runs
whose process died. Every method that writes commits before it returns (``Database.write``), so
the record is on disk before the rig takes its next step."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rig import __version__
from rig.records.db import Database, RecordError
from rig.records.health import SlotHealth
from rig.records.liveness import Host, is_orphaned
from rig.records.models import RecoveredRun, Run, join, run_from_row
from rig.records.queries import RunQueries
from rig.vocabulary import (
    DEFAULT_FAULT,
    PASSING_VERDICTS,
    Fault,
    FinalState,
    Grade,
    RunStatus,
    StepOutcome,
    UnitState,
    Verdict,
)

INTERRUPTED_REASON = "run interrupted (rig stopped: crash, kill or power cut)"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, hex: ties a run to the exact bench file it used."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


class RunLog(RunQueries):
    """Writes runs, units, steps and evidence; reads them back through ``RunQueries``.

    ``health`` is told each unit's verdict inside the transaction that records it. ``host``
    (default: this one) is what ``start_run`` stamps on a run and what tells a dead run from a
    live one.
    """

    def __init__(self, db: Database, health: SlotHealth, host: Host | None = None) -> None:
        super().__init__(db)
        self.health = health
        self.host = host or Host.here()

    def is_orphaned(self, run: Run) -> bool:
        """True for a run still marked running whose process is gone from this host."""
        return is_orphaned(run, self.host)

    # --- runs ------------------------------------------------------------------------------------

    def start_run(self, bench_name: str, *, method: str,
                  bench_path: str | os.PathLike[str] | None = None,
                  bench_sha256: str | None = None, argv: Sequence[str] | None = None,
                  note: str = "", rig_version: str = __version__, hostname: str | None = None,
                  pid: int | None = None, operator: str = "", destination: str = "") -> int:
        """Record a new run as ``running`` and return its id.

        The bench file's SHA-256 is computed from ``bench_path`` when not given. ``hostname`` and
        ``pid`` default to this process: they are how ``recover_interrupted`` tells a live run
        from a dead one, so pass them only when recording for another process.
        """
        if bench_sha256 is None and bench_path is not None:
            try:
                bench_sha256 = file_sha256(bench_path)
            except OSError:
                bench_sha256 = None
        pid = os.getpid() if pid is None else pid
        args = list(sys.argv if argv is None else argv)
        with self.db.write() as conn:
            cursor = conn.execute(
                """INSERT INTO runs (started_at, status, bench_name, bench_path, bench_sha256,
                       method, rig_version, hostname, pid, boot_id, process_start, argv, note,
                       operator, destination)
                   VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (self.db.now(), bench_name, None if bench_path is None else str(bench_path),
                 bench_sha256, method, rig_version, hostname or self.host.hostname, pid,
                 self.host.boot_id, self.host.process_start(pid) or "", json.dumps(args), note,
                 operator, destination))
            return int(cursor.lastrowid)

    def finish_run(self, run_id: int, status: RunStatus | str, note: str = "") -> None:
        """Close a run with a final status (not ``running``).

        Units still pending or running are closed as ``interrupted`` (with their open steps), so
        a closed run never holds a unit without a verdict; the reason names the run's status.
        ``note``, when given, is appended to the run's note.
        """
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise ValueError("finish_run needs a final status, not 'running'")
        with self.db.write() as conn:
            run = self.db.row(conn, "run", "runs", run_id)
            if run["status"] != RunStatus.RUNNING:
                raise RecordError(f"run {run_id} is already closed ({run['status']})")
            now = self.db.now()
            close_open_units(conn, run_id, now, f"run {status} before this unit finished")
            conn.execute("UPDATE runs SET status = ?, finished_at = ?, note = ? WHERE id = ?",
                         (status.value, now, join(run["note"], note), run_id))

    def annotate(self, run_id: int, note: str, operator: str = "") -> None:
        """Add ``note`` to a run's note and, when it has none yet, record its ``operator``: an
        operator's action on a run (started or stopped from the dashboard) whichever process
        writes the run (``finish_run`` keeps what is there)."""
        with self.db.write() as conn:
            run = self.db.row(conn, "run", "runs", run_id)
            conn.execute("UPDATE runs SET note = ?, operator = CASE operator WHEN '' THEN ? "
                         "ELSE operator END WHERE id = ?",
                         (join(run["note"], note), operator, run_id))

    # --- units -----------------------------------------------------------------------------------

    def plan_unit(self, run_id: int, slot: str, *, method: str, profile: str | None = None,
                  expected_mac: str | None = None, expected_serial: str | None = None) -> int:
        """Record a unit the run will work on, as ``pending``: a crash before its turn still
        leaves it in the record. Its first ``start_step`` makes it ``running``."""
        return self._add_unit(run_id, slot, method, profile, expected_mac, expected_serial,
                              UnitState.PENDING)

    def start_unit(self, run_id: int, slot: str, *, method: str, profile: str | None = None,
                   expected_mac: str | None = None, expected_serial: str | None = None) -> int:
        """Record a unit the run starts on now (``running``). One unit per slot per run; a slot
        already planned with ``plan_unit`` is started by its first step instead."""
        return self._add_unit(run_id, slot, method, profile, expected_mac, expected_serial,
                              UnitState.RUNNING)

    def _add_unit(self, run_id: int, slot: str, method: str, profile: str | None,
                  expected_mac: str | None, expected_serial: str | None,
                  state: UnitState) -> int:
        with self.db.write() as conn:
            run = self.db.row(conn, "run", "runs", run_id)
            if run["status"] != RunStatus.RUNNING:
                raise RecordError(f"run {run_id} is closed ({run['status']}); cannot add a unit")
            if conn.execute("SELECT 1 FROM units WHERE run_id = ? AND slot = ?",
                            (run_id, str(slot))).fetchone():
                raise RecordError(f"run {run_id} already has a unit in slot {slot!r}")
            now = self.db.now() if state is UnitState.RUNNING else None
            cursor = conn.execute(
                """INSERT INTO units (run_id, slot, method, profile, expected_mac,
                       expected_serial, started_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (run_id, str(slot), method, profile, expected_mac, expected_serial, now,
                 state.value))
            return int(cursor.lastrowid)

    def finish_unit(self, unit_id: int, verdict: Verdict | str, reason: str,
                    fault: Fault | str | None = None, check: str | None = None,
                    mac: str | None = None, serial: str | None = None, *,
                    final_state: FinalState | None = None, grade: Grade | None = None,
                    count_health: bool = True) -> None:
        """Give a unit its verdict, once. ``reason`` is one sentence a person can act on.

        ``fault`` defaults to what the verdict implies (``DEFAULT_FAULT``); a factory-default unit
        cannot carry a fault and a bench-fault verdict must be a bench fault. ``mac`` and
        ``serial`` are what the unit turned out to be (from SADP); ``final_state`` the state it
        was proven to be left in; ``grade`` its functional category where checks ran. Steps still
        open are closed as interrupted. With ``count_health`` the slot's health moves in the same
        transaction (see ``SlotHealth.record_outcome``) for the verdicts the policy counts: do not
        also call ``record_outcome`` for the same unit.
        """
        verdict, fault, reason = _verdict(verdict, fault, reason)
        state = UnitState.INTERRUPTED if verdict is Verdict.INTERRUPTED else UnitState.DONE
        with self.db.write() as conn:
            unit = self.db.row(conn, "unit", "units", unit_id)
            if unit["state"] in (UnitState.DONE, UnitState.INTERRUPTED):
                raise RecordError(f"unit {unit_id} (slot {unit['slot']!r}) already has a "
                                  f"verdict: {unit['verdict']}")
            now = self.db.now()
            conn.execute("UPDATE steps SET outcome = 'interrupted', finished_at = ?, detail = "
                         "CASE detail WHEN '' THEN 'unit finished while this step was open' "
                         "ELSE detail END WHERE unit_id = ? AND outcome = 'running'",
                         (now, unit_id))
            conn.execute("""UPDATE units SET state = ?, verdict = ?, reason = ?, fault = ?,
                                check_name = ?, mac = COALESCE(?, mac),
                                serial = COALESCE(?, serial), finished_at = ?,
                                started_at = COALESCE(started_at, ?), final_state = ?,
                                grade = ?
                            WHERE id = ?""",
                         (state.value, verdict.value, reason, fault.value, check, mac, serial,
                          now, now, None if final_state is None else FinalState(final_state).value,
                          None if grade is None else Grade(grade).value, unit_id))
            if count_health:
                bench = conn.execute("SELECT bench_name FROM runs WHERE id = ?",
                                     (unit["run_id"],)).fetchone()[0]
                self.health.record_verdict(conn, bench, unit["slot"], verdict,
                                           fault is Fault.BENCH, reason, now)

    # --- steps -----------------------------------------------------------------------------------

    def start_step(self, unit_id: int, name: str, detail: str = "") -> int:
        """Record that a step begins, before it acts, and return its id. Starts a pending unit."""
        if not name:
            raise ValueError("a step needs a name")
        with self.db.write() as conn:
            unit = self.db.row(conn, "unit", "units", unit_id)
            if unit["state"] not in (UnitState.PENDING, UnitState.RUNNING):
                raise RecordError(f"unit {unit_id} (slot {unit['slot']!r}) is closed "
                                  f"({unit['verdict']}); cannot start step {name!r}")
            now = self.db.now()
            if unit["state"] == UnitState.PENDING:
                conn.execute("UPDATE units SET state = 'running', started_at = ? WHERE id = ?",
                             (now, unit_id))
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM steps WHERE unit_id = ?",
                               (unit_id,)).fetchone()[0]
            cursor = conn.execute(
                "INSERT INTO steps (unit_id, seq, name, started_at, outcome, detail) "
                "VALUES (?, ?, ?, ?, 'running', ?)", (unit_id, seq, name, now, detail))
            return int(cursor.lastrowid)

    def finish_step(self, step_id: int, outcome: StepOutcome | str, detail: str = "") -> None:
        """Close a step with its outcome; a non-empty ``detail`` replaces the one it started
        with (say what happened: "port 3 off, 0.0 W after 2 s")."""
        outcome = StepOutcome(outcome)
        if outcome is StepOutcome.RUNNING:
            raise ValueError("finish_step needs a final outcome, not 'running'")
        with self.db.write() as conn:
            step = self.db.row(conn, "step", "steps", step_id)
            if step["outcome"] != StepOutcome.RUNNING:
                raise RecordError(f"step {step_id} ({step['name']!r}) is already closed "
                                  f"({step['outcome']})")
            conn.execute("UPDATE steps SET outcome = ?, finished_at = ?, detail = ? WHERE id = ?",
                         (outcome.value, self.db.now(), detail or step["detail"], step_id))

    @contextmanager
    def step(self, unit_id: int, name: str, detail: str = "") -> Iterator[int]:
        """A recorded step around a block: ``ok`` when it ends, ``timeout`` on TimeoutError,
        ``interrupted`` on KeyboardInterrupt/SystemExit, ``failed`` on any other exception (which
        is re-raised). A block that closed the step itself (``finish_step(id, SKIPPED)``) is left
        as it said."""
        step_id = self.start_step(unit_id, name, detail)
        try:
            yield step_id
        except BaseException as exc:
            if isinstance(exc, TimeoutError):
                outcome = StepOutcome.TIMEOUT
            elif isinstance(exc, KeyboardInterrupt | SystemExit):
                outcome = StepOutcome.INTERRUPTED
            else:
                outcome = StepOutcome.FAILED
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self._finish_if_open(step_id, outcome, why)
            raise
        self._finish_if_open(step_id, StepOutcome.OK, "")

    def _finish_if_open(self, step_id: int, outcome: StepOutcome, detail: str) -> None:
        with self.db.lock:
            rows = self.db.read("SELECT outcome FROM steps WHERE id = ?", (step_id,))
            if rows and rows[0]["outcome"] == StepOutcome.RUNNING:
                self.finish_step(step_id, outcome, detail)

    # --- evidence --------------------------------------------------------------------------------

    def add_evidence(self, unit_id: int, kind: str, data: Mapping[str, Any],
                     step_id: int | None = None) -> int:
        """Attach what was observed (a SADP reply, an HTTP answer, a power reading) to a unit.

        ``data`` must be a JSON object of plain values (str keys; str, numbers, bool, None, lists,
        dicts); anything else raises TypeError here rather than being stored as something the
        report cannot read back. ``step_id``, if given, must be a step of the same unit.
        """
        text = _evidence_json(kind, data)
        if not kind:
            raise ValueError("evidence needs a kind")
        with self.db.write() as conn:
            self.db.row(conn, "unit", "units", unit_id)
            if step_id is not None:
                step = self.db.row(conn, "step", "steps", step_id)
                if step["unit_id"] != unit_id:
                    raise RecordError(f"step {step_id} belongs to unit {step['unit_id']}, "
                                      f"not unit {unit_id}")
            cursor = conn.execute("INSERT INTO evidence (unit_id, step_id, kind, created_at, "
                                  "data) VALUES (?, ?, ?, ?, ?)",
                                  (unit_id, step_id, kind, self.db.now(), text))
            return int(cursor.lastrowid)

    # --- recovery --------------------------------------------------------------------------------

    def dead_runs(self, force: bool = False) -> list[Run]:
        """Runs still marked running whose process is gone from this host (``force``: every run
        still marked running, on any host — only when you know no other rig process uses this
        store), oldest first. Nothing is changed: see ``close_dead_run``."""
        candidates = [run_from_row(r) for r in self.db.read(
            "SELECT * FROM runs WHERE status = 'running' ORDER BY id")]
        return [run for run in candidates if force or self.is_orphaned(run)]

    def close_dead_run(self, run: Run) -> RecoveredRun | None:
        """Close a dead ``run`` as ``interrupted``: its unfinished units get the verdict
        ``interrupted`` with a reason naming the step the rig was in, its open steps become
        ``interrupted``, times are its last sign of life (the moment of the crash is unknown).
        Returns those units and the run's outputs still engaged, or None when the run was no
        longer running (another process recovered it meanwhile).

        Close a run only once its outputs are safe (rig.recovery does): a closed run is never
        looked at again, so an output still engaged would be forgotten."""
        units = self._close_dead_run(run)
        if units is None:
            return None
        record = self.load_run(run.id)
        return RecoveredRun(run=record.run, units=tuple(u for u in record.units if u.id in units),
                            outputs=tuple(o for o in record.outputs if o.cleared_at is None))

    def recover_interrupted(self, force: bool = False) -> list[RecoveredRun]:
        """Close every dead run (see ``dead_runs``) whatever its outputs: for tests and for
        stores no bench drives any more. A bench recovers through rig.recovery, which closes a
        run only once every output it left engaged is proven safe. Idempotent."""
        return [r for r in (self.close_dead_run(run) for run in self.dead_runs(force)) if r]

    def _close_dead_run(self, run: Run) -> list[int] | None:
        """Close ``run`` as interrupted at its last sign of life; the units it closed, or None
        when the run was no longer running."""
        with self.db.write() as conn:
            current = conn.execute("SELECT status FROM runs WHERE id = ?", (run.id,)).fetchone()
            if current["status"] != RunStatus.RUNNING:
                return None
            last = last_sign_of_life(conn, run.id)
            units = close_open_units(conn, run.id, last, INTERRUPTED_REASON)
            note = (f"recovered at {self.db.now()} by pid {os.getpid()} on "
                    f"{self.host.hostname}: process {run.pid} on {run.hostname} had stopped")
            conn.execute("UPDATE runs SET status = 'interrupted', finished_at = ?, note = ? "
                         "WHERE id = ?", (last, join(run.note, note), run.id))
            return units


# --- in a write transaction ---------------------------------------------------------------------

def close_open_units(conn: sqlite3.Connection, run_id: int, at: str, why: str) -> list[int]:
    """Mark a run's unfinished units and their open steps interrupted; returns the unit ids."""
    closed = []
    for unit in conn.execute("SELECT id, state FROM units WHERE run_id = ? AND state IN "
                             "('pending', 'running') ORDER BY id", (run_id,)).fetchall():
        last = conn.execute("SELECT name, outcome FROM steps WHERE unit_id = ? "
                            "ORDER BY seq DESC LIMIT 1", (unit["id"],)).fetchone()
        if last is None:
            where = ("before this unit started" if unit["state"] == UnitState.PENDING
                     else "before its first step")
        elif last["outcome"] == StepOutcome.RUNNING:
            where = f"during step {last['name']!r}"
        else:
            where = f"after step {last['name']!r}"
        conn.execute("UPDATE steps SET outcome = 'interrupted', finished_at = ? "
                     "WHERE unit_id = ? AND outcome = 'running'", (at, unit["id"]))
        conn.execute("""UPDATE units SET state = 'interrupted', verdict = 'interrupted',
                            fault = 'none', reason = ?, finished_at = ?,
                            started_at = COALESCE(started_at, ?)
                        WHERE id = ?""", (f"{why} {where}", at, at, unit["id"]))
        closed.append(unit["id"])
    return closed


def last_sign_of_life(conn: sqlite3.Connection, run_id: int) -> str:
    """The latest time recorded anywhere in a run: when its process was last seen alive."""
    return conn.execute(
        """SELECT MAX(t) FROM (
               SELECT started_at AS t FROM runs WHERE id = :r
               UNION ALL SELECT MAX(COALESCE(finished_at, started_at)) FROM units
                   WHERE run_id = :r
               UNION ALL SELECT MAX(COALESCE(s.finished_at, s.started_at)) FROM steps s
                   JOIN units u ON s.unit_id = u.id WHERE u.run_id = :r
               UNION ALL SELECT MAX(e.created_at) FROM evidence e
                   JOIN units u ON e.unit_id = u.id WHERE u.run_id = :r
               UNION ALL SELECT MAX(COALESCE(cleared_at, since)) FROM outputs
                   WHERE run_id = :r)""", {"r": run_id}).fetchone()[0]


# --- checks before writing ----------------------------------------------------------------------

def _verdict(verdict: Verdict | str, fault: Fault | str | None,
             reason: str) -> tuple[Verdict, Fault, str]:
    """A verdict, its fault and its reason as stored, or ValueError if they contradict."""
    verdict = Verdict(verdict)
    fault = DEFAULT_FAULT[verdict] if fault is None else Fault(fault)
    if verdict in PASSING_VERDICTS and fault is not Fault.NONE:
        raise ValueError(f"a {verdict} unit has no fault")
    if verdict is Verdict.BENCH_FAULT and fault is not Fault.BENCH:
        raise ValueError("a bench-fault verdict is a bench fault")
    reason = " ".join(str(reason).split())
    if not reason:
        raise ValueError("a verdict needs a reason")
    return verdict, fault, reason


def _evidence_json(kind: str, data: Mapping[str, Any]) -> str:
    """Evidence as stored text; TypeError for anything that would not read back as written."""
    if not isinstance(data, Mapping):
        raise TypeError(f"evidence data must be a dict, not {type(data).__name__}")
    _check_json_keys(data)
    try:
        return json.dumps(dict(data), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"evidence {kind!r} is not JSON-serialisable: {exc}") from None


def _check_json_keys(value: Any) -> None:
    """json.dumps turns int keys into strings: the evidence would not read back as written."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"evidence keys must be strings, not {key!r}")
            _check_json_keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json_keys(item)
