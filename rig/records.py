"""The durable record of every run: what the rig did to each unit, what it saw, and what it
concluded, written as it happens (OpenHTF's test record, kept in SQLite).

The contract is **written before the next step begins**: every write method commits (and, with
``synchronous=FULL`` in WAL mode, the commit is on disk) before it returns. So after a crash, a
``kill -9`` or a power cut the store holds everything up to the last call that returned, and what
was in flight is still marked ``running``. ``recover_interrupted()`` turns those leftovers into
an honest record ("interrupted during step 'press reset'") and hands back the outputs the dead
process had energised, so the caller can make them safe.

How the runner uses it (one store per process, shared by the per-slot worker threads)::

    store = RecordStore.open()                          # $RIG_DB or ~/.local/share/rig/rig.sqlite
    for lost in store.recover_interrupted():            # a previous run died: make its outputs safe
        for out in lost.outputs: make_safe(out); store.output_cleared(out.id, "made safe")
    run = store.start_run(bench.name, method="hard", bench_path=bench.path, argv=sys.argv)
    unit = store.start_unit(run, slot.name, method="hard", profile="current")
    with store.step(unit, "power off", detail="switch main port 3"):   # ok / failed / timeout
        out = store.output_engaged(run, slot.name, OutputKind.POWER_OFF, "switch main port 3")
        power.off()
    store.add_evidence(unit, "sadp-after", {"mac": ..., "serial": ...})
    store.finish_unit(unit, Verdict.FACTORY_DEFAULT, "inactive after reset", Fault.NONE)
    store.finish_run(run, RunStatus.PASSED)

Faults follow LAVA: a ``bench`` fault is the rig's (a relay that did not switch, a switch that did
not answer), a ``unit`` fault is the camera's. ``finish_unit`` counts consecutive bench faults per
(bench, slot) in the same transaction, and takes a slot out of service at the limit until an
operator clears it, so one broken solenoid does not fail every unit put in that slot.

The database is one SQLite file; where it lives is ``default_db_path()``. Timestamps are stored as
ISO 8601 text in UTC, JSON as text; the schema (below, ``MIGRATIONS``) is versioned and migrated
forward on open.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import socket
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rig import __version__
from rig.vocabulary import (  # noqa: F401 - re-exported until callers import the vocabulary
    DEFAULT_FAULT,
    Fault,
    OutputKind,
    RunStatus,
    StepOutcome,
    UnitState,
    Verdict,
)

Clock = Callable[[], datetime]

#: Consecutive bench faults after which a slot is taken out of service (LAVA's health check idea).
DEFAULT_BENCH_FAULT_LIMIT = 3
#: Milliseconds a writer waits for another process's write lock before giving up.
DEFAULT_BUSY_TIMEOUT_MS = 10_000


class RecordError(RuntimeError):
    """The store cannot do what was asked: unknown id, a record already closed, a bad file."""


class UnknownRun(RecordError, LookupError):
    """No run with that id in this store."""


#: Verdicts from a unit the rig actually worked on: only these move the slot health counter
#: (an interrupted, skipped or out-of-service unit says nothing about the slot).
HEALTH_VERDICTS = frozenset({Verdict.FACTORY_DEFAULT, Verdict.NOT_DEFAULT, Verdict.UNREACHABLE,
                             Verdict.BENCH_FAULT})

INTERRUPTED_REASON = "run interrupted (rig stopped: crash, kill or power cut)"


# --- records ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    id: int
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    bench_name: str
    bench_path: str | None
    bench_sha256: str | None
    method: str
    rig_version: str
    hostname: str
    pid: int
    argv: tuple[str, ...]
    note: str
    boot_id: str = ""              # /proc/sys/kernel/random/boot_id when the run started
    process_start: str = ""        # the pid's start time (clock ticks since boot): pid reuse guard


@dataclass(frozen=True)
class Step:
    id: int
    unit_id: int
    seq: int                       # 1, 2, … within the unit, in the order the steps started
    name: str
    started_at: datetime
    finished_at: datetime | None
    outcome: StepOutcome
    detail: str


@dataclass(frozen=True)
class Evidence:
    id: int
    unit_id: int
    step_id: int | None
    kind: str
    created_at: datetime
    data: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Unit:
    id: int
    run_id: int
    slot: str
    method: str
    profile: str | None
    expected_mac: str | None
    expected_serial: str | None
    started_at: datetime | None
    finished_at: datetime | None
    state: UnitState
    verdict: Verdict | None
    reason: str
    fault: Fault | None
    mac: str | None
    serial: str | None
    check: str | None              # the check that failed, if any
    steps: tuple[Step, ...] = ()
    evidence: tuple[Evidence, ...] = ()

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class OutputEntry:
    """One line of the outputs ledger: something the rig switched that must be made safe."""

    id: int
    run_id: int
    slot: str
    kind: str
    target: str
    since: datetime
    cleared_at: datetime | None
    note: str


@dataclass(frozen=True)
class RunRecord:
    """A whole run as stored: the run, its units (each with steps and evidence), its outputs."""

    run: Run
    units: tuple[Unit, ...]
    outputs: tuple[OutputEntry, ...]


@dataclass(frozen=True)
class RunSummary:
    run: Run
    units: int
    counts: dict[str, int] = field(hash=False)   # verdict → units; "unfinished" for none yet


@dataclass(frozen=True)
class RecoveredRun:
    """A run found dead by ``recover_interrupted`` and closed as interrupted."""

    run: Run
    units: tuple[Unit, ...]             # the units this recovery marked interrupted
    outputs: tuple[OutputEntry, ...]    # still engaged: make these safe, then output_cleared()


@dataclass(frozen=True)
class SlotStatus:
    bench_name: str
    slot: str
    consecutive_bench_faults: int
    out_of_service: bool
    reason: str
    updated_at: datetime | None         # None: the store has never heard of this slot


@dataclass(frozen=True)
class SlotEvent:
    """The slot health history: each counted outcome and each operator action."""

    id: int
    bench_name: str
    slot: str
    at: datetime
    event: str                          # ok | bench-fault | out-of-service | cleared | taken-out
    reason: str
    actor: str


# --- schema -------------------------------------------------------------------------------------

def _in(values: type[enum.StrEnum]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


#: Forward migrations: MIGRATIONS[n] takes the schema from version n to n + 1. Append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"""CREATE TABLE runs (
            id            INTEGER PRIMARY KEY,
            started_at    TEXT NOT NULL,
            finished_at   TEXT,
            status        TEXT NOT NULL CHECK (status IN {_in(RunStatus)}),
            bench_name    TEXT NOT NULL,
            bench_path    TEXT,
            bench_sha256  TEXT,
            method        TEXT NOT NULL,
            rig_version   TEXT NOT NULL,
            hostname      TEXT NOT NULL,
            pid           INTEGER NOT NULL,
            boot_id       TEXT NOT NULL DEFAULT '',
            process_start TEXT NOT NULL DEFAULT '',
            argv          TEXT NOT NULL DEFAULT '[]',
            note          TEXT NOT NULL DEFAULT '',
            CHECK ((status = 'running') = (finished_at IS NULL)))""",
        "CREATE INDEX runs_by_bench ON runs (bench_name, id)",
        "CREATE INDEX runs_running ON runs (status) WHERE status = 'running'",
        f"""CREATE TABLE units (
            id              INTEGER PRIMARY KEY,
            run_id          INTEGER NOT NULL REFERENCES runs (id),
            slot            TEXT NOT NULL,
            method          TEXT NOT NULL,
            profile         TEXT,
            expected_mac    TEXT,
            expected_serial TEXT,
            started_at      TEXT,
            finished_at     TEXT,
            state           TEXT NOT NULL CHECK (state IN {_in(UnitState)}),
            verdict         TEXT CHECK (verdict IN {_in(Verdict)}),
            reason          TEXT NOT NULL DEFAULT '',
            fault           TEXT CHECK (fault IN {_in(Fault)}),
            mac             TEXT,
            serial          TEXT,
            check_name      TEXT,
            UNIQUE (run_id, slot),
            CHECK ((state IN ('done', 'interrupted')) = (verdict IS NOT NULL)))""",
        f"""CREATE TABLE steps (
            id          INTEGER PRIMARY KEY,
            unit_id     INTEGER NOT NULL REFERENCES units (id),
            seq         INTEGER NOT NULL,
            name        TEXT NOT NULL,
            started_at  TEXT NOT NULL,
            finished_at TEXT,
            outcome     TEXT NOT NULL CHECK (outcome IN {_in(StepOutcome)}),
            detail      TEXT NOT NULL DEFAULT '',
            UNIQUE (unit_id, seq))""",
        """CREATE TABLE evidence (
            id         INTEGER PRIMARY KEY,
            unit_id    INTEGER NOT NULL REFERENCES units (id),
            step_id    INTEGER REFERENCES steps (id),
            kind       TEXT NOT NULL,
            created_at TEXT NOT NULL,
            data       TEXT NOT NULL)""",
        "CREATE INDEX evidence_by_unit ON evidence (unit_id, id)",
        """CREATE TABLE outputs (
            id         INTEGER PRIMARY KEY,
            run_id     INTEGER NOT NULL REFERENCES runs (id),
            slot       TEXT NOT NULL,
            kind       TEXT NOT NULL,
            target     TEXT NOT NULL,
            since      TEXT NOT NULL,
            cleared_at TEXT,
            note       TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX outputs_open ON outputs (run_id) WHERE cleared_at IS NULL",
        """CREATE TABLE slot_health (
            bench_name               TEXT NOT NULL,
            slot                     TEXT NOT NULL,
            consecutive_bench_faults INTEGER NOT NULL DEFAULT 0,
            out_of_service           INTEGER NOT NULL DEFAULT 0 CHECK (out_of_service IN (0, 1)),
            reason                   TEXT NOT NULL DEFAULT '',
            updated_at               TEXT NOT NULL,
            PRIMARY KEY (bench_name, slot))""",
        """CREATE TABLE slot_events (
            id         INTEGER PRIMARY KEY,
            bench_name TEXT NOT NULL,
            slot       TEXT NOT NULL,
            at         TEXT NOT NULL,
            event      TEXT NOT NULL,
            reason     TEXT NOT NULL DEFAULT '',
            actor      TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX slot_events_by_slot ON slot_events (bench_name, slot, id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def default_db_path(create_parent: bool = True) -> Path:
    """Where the rig keeps its records: ``$RIG_DB`` when set, else
    ``$XDG_DATA_HOME/rig/rig.sqlite`` (``~/.local/share/rig/rig.sqlite`` by default).

    A service should set ``RIG_DB`` (e.g. ``/var/lib/rig/rig.sqlite``) so that the records do not
    depend on whose home directory the unit runs in. The parent directory is created unless
    ``create_parent`` is false (a reader that must not create anything).
    """
    if os.environ.get("RIG_DB"):
        path = Path(os.environ["RIG_DB"]).expanduser()
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
        path = base / "rig" / "rig.sqlite"
    if create_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, hex: ties a run to the exact bench file it used."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- process identity: is the process that owns a 'running' run still alive? --------------------

def _boot_id() -> str:
    """Changes at every boot (Linux): a run from an earlier boot is dead whatever its pid says."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str | None:
    """The start time of a live process ('' where the platform cannot tell), None if none.

    A pid alone is not an identity: after a restart another process may hold it. Linux gives
    the start time in /proc/PID/stat (field 22, clock ticks since boot); a zombie (killed, not yet
    reaped) counts as dead.
    """
    if pid <= 0:
        return None
    if Path("/proc/self/stat").exists():
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = text.rpartition(")")[2].split()   # the command name may hold spaces or ')'
        if len(fields) < 20 or fields[0] in ("Z", "X"):
            return None
        return fields[19]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


# --- the store ----------------------------------------------------------------------------------

class RecordStore:
    """The durable store. Thread-safe: one connection behind a lock, shared by worker threads.

    Several processes may use the same file (``rig history`` while ``rig run`` writes): WAL lets
    readers go on during a write, and writers wait up to ``busy_timeout_ms`` for each other.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = utc_now,
                 create: bool = True, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
                 bench_fault_limit: int = DEFAULT_BENCH_FAULT_LIMIT) -> None:
        """Open (or, with ``create``, create) the store at ``path`` and migrate it forward.

        ``clock`` returns an aware datetime (tests pass a fake one). ``path`` may be
        ``":memory:"`` for a throwaway store, which is of course not durable.
        """
        if bench_fault_limit < 1:
            raise ValueError("bench_fault_limit must be at least 1")
        self.path = str(path)
        self._clock = clock
        self._limit = bench_fault_limit
        self._lock = threading.RLock()
        self._hostname = socket.gethostname()
        self._boot = _boot_id()
        memory = self.path == ":memory:"
        if not memory and not create and not Path(self.path).exists():
            raise RecordError(f"no record store at {self.path}")
        if not memory and create:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing is left in an
            # implicit transaction the way the sqlite3 module's default mode does.
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000,
                                         isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise RecordError(f"cannot open the record store {self.path}: {exc}") from None
        try:
            self._conn.row_factory = sqlite3.Row
            self._configure(memory, busy_timeout_ms)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise RecordError(f"{self.path} is not a usable record store: {exc}") from None
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> RecordStore:
        """The store at ``path``, or at ``default_db_path()`` when None."""
        return cls(default_db_path() if path is None else path, **kwargs)

    def _configure(self, memory: bool, busy_timeout_ms: int) -> None:
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if not memory and str(mode).lower() != "wal":
            raise RecordError(f"{self.path}: the file system refused WAL mode (got {mode!r}); "
                              "keep the records on a local disk")
        # FULL: the WAL is synced at every commit, so a commit that returned survives power loss
        # (NORMAL would only protect against a crash of the process, not of the machine).
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")

    def _migrate(self) -> None:
        with self._write() as conn:
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_version (
                                version     INTEGER PRIMARY KEY,
                                applied_at  TEXT NOT NULL,
                                rig_version TEXT NOT NULL)""")
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version"
                                   ).fetchone()[0]
            if current > len(MIGRATIONS):
                raise RecordError(f"{self.path} has schema version {current}, written by a newer "
                                  f"rig; this rig ({__version__}) knows up to {len(MIGRATIONS)}")
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[version - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                             (version, self._now(), __version__))

    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------------

    def _now(self) -> str:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the record store's clock must return an aware datetime")
        return now.astimezone(UTC).isoformat(timespec="microseconds")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed before the caller's method returns.

        BEGIN IMMEDIATE takes the write lock up front, so two processes never both read and then
        fail to upgrade (SQLITE_BUSY without waiting).
        """
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    @staticmethod
    def _row(conn: sqlite3.Connection, what: str, table: str, row_id: int) -> sqlite3.Row:
        row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone()
        if row is None:
            if table == "runs":
                raise UnknownRun(f"no run {row_id}")
            raise RecordError(f"no {what} {row_id}")
        return row

    # --- runs ------------------------------------------------------------------------------------

    def start_run(self, bench_name: str, *, method: str,
                  bench_path: str | os.PathLike[str] | None = None,
                  bench_sha256: str | None = None, argv: Sequence[str] | None = None,
                  note: str = "", rig_version: str = __version__, hostname: str | None = None,
                  pid: int | None = None) -> int:
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
        with self._write() as conn:
            cursor = conn.execute(
                """INSERT INTO runs (started_at, status, bench_name, bench_path, bench_sha256,
                       method, rig_version, hostname, pid, boot_id, process_start, argv, note)
                   VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (self._now(), bench_name, None if bench_path is None else str(bench_path),
                 bench_sha256, method, rig_version, hostname or self._hostname, pid,
                 self._boot, _process_start(pid) or "", json.dumps(args), note))
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
        with self._write() as conn:
            run = self._row(conn, "run", "runs", run_id)
            if run["status"] != RunStatus.RUNNING:
                raise RecordError(f"run {run_id} is already closed ({run['status']})")
            now = self._now()
            self._close_open_units(conn, run_id, now, f"run {status} before this unit finished")
            conn.execute("UPDATE runs SET status = ?, finished_at = ?, note = ? WHERE id = ?",
                         (status.value, now, _join(run["note"], note), run_id))

    def _close_open_units(self, conn: sqlite3.Connection, run_id: int, at: str,
                          why: str) -> list[int]:
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
        with self._write() as conn:
            run = self._row(conn, "run", "runs", run_id)
            if run["status"] != RunStatus.RUNNING:
                raise RecordError(f"run {run_id} is closed ({run['status']}); cannot add a unit")
            if conn.execute("SELECT 1 FROM units WHERE run_id = ? AND slot = ?",
                            (run_id, str(slot))).fetchone():
                raise RecordError(f"run {run_id} already has a unit in slot {slot!r}")
            now = self._now() if state is UnitState.RUNNING else None
            cursor = conn.execute(
                """INSERT INTO units (run_id, slot, method, profile, expected_mac,
                       expected_serial, started_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (run_id, str(slot), method, profile, expected_mac, expected_serial, now,
                 state.value))
            return int(cursor.lastrowid)

    def finish_unit(self, unit_id: int, verdict: Verdict | str, reason: str,
                    fault: Fault | str | None = None, check: str | None = None,
                    mac: str | None = None, serial: str | None = None, *,
                    count_health: bool = True) -> None:
        """Give a unit its verdict, once. ``reason`` is one sentence a person can act on.

        ``fault`` defaults to what the verdict implies (``DEFAULT_FAULT``); a factory-default unit
        cannot carry a fault and a bench-fault verdict must be a bench fault. ``mac`` and
        ``serial`` are what the unit turned out to be (from SADP). Steps still open are closed as
        interrupted. With ``count_health`` the slot's health counter moves in the same
        transaction (see ``record_slot_outcome``) for verdicts in ``HEALTH_VERDICTS``: do not
        also call ``record_slot_outcome`` for the same unit.
        """
        verdict = Verdict(verdict)
        fault = DEFAULT_FAULT[verdict] if fault is None else Fault(fault)
        if verdict is Verdict.FACTORY_DEFAULT and fault is not Fault.NONE:
            raise ValueError("a factory-default unit has no fault")
        if verdict is Verdict.BENCH_FAULT and fault is not Fault.BENCH:
            raise ValueError("a bench-fault verdict is a bench fault")
        reason = " ".join(str(reason).split())
        if not reason:
            raise ValueError("a verdict needs a reason")
        state = UnitState.INTERRUPTED if verdict is Verdict.INTERRUPTED else UnitState.DONE
        with self._write() as conn:
            unit = self._row(conn, "unit", "units", unit_id)
            if unit["state"] in (UnitState.DONE, UnitState.INTERRUPTED):
                raise RecordError(f"unit {unit_id} (slot {unit['slot']!r}) already has a "
                                  f"verdict: {unit['verdict']}")
            now = self._now()
            conn.execute("UPDATE steps SET outcome = 'interrupted', finished_at = ?, detail = "
                         "CASE detail WHEN '' THEN 'unit finished while this step was open' "
                         "ELSE detail END WHERE unit_id = ? AND outcome = 'running'",
                         (now, unit_id))
            conn.execute("""UPDATE units SET state = ?, verdict = ?, reason = ?, fault = ?,
                                check_name = ?, mac = COALESCE(?, mac),
                                serial = COALESCE(?, serial), finished_at = ?,
                                started_at = COALESCE(started_at, ?)
                            WHERE id = ?""",
                         (state.value, verdict.value, reason, fault.value, check, mac, serial,
                          now, now, unit_id))
            if count_health and verdict in HEALTH_VERDICTS:
                bench = conn.execute("SELECT bench_name FROM runs WHERE id = ?",
                                     (unit["run_id"],)).fetchone()[0]
                self._slot_outcome(conn, bench, unit["slot"], fault is Fault.BENCH, reason,
                                   self._limit, now)

    # --- steps -----------------------------------------------------------------------------------

    def start_step(self, unit_id: int, name: str, detail: str = "") -> int:
        """Record that a step begins, before it acts, and return its id. Starts a pending unit."""
        if not name:
            raise ValueError("a step needs a name")
        with self._write() as conn:
            unit = self._row(conn, "unit", "units", unit_id)
            if unit["state"] not in (UnitState.PENDING, UnitState.RUNNING):
                raise RecordError(f"unit {unit_id} (slot {unit['slot']!r}) is closed "
                                  f"({unit['verdict']}); cannot start step {name!r}")
            now = self._now()
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
        with self._write() as conn:
            step = self._row(conn, "step", "steps", step_id)
            if step["outcome"] != StepOutcome.RUNNING:
                raise RecordError(f"step {step_id} ({step['name']!r}) is already closed "
                                  f"({step['outcome']})")
            conn.execute("UPDATE steps SET outcome = ?, finished_at = ?, detail = ? WHERE id = ?",
                         (outcome.value, self._now(), detail or step["detail"], step_id))

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
        with self._lock:
            row = self._conn.execute("SELECT outcome FROM steps WHERE id = ?",
                                     (step_id,)).fetchone()
            if row is not None and row["outcome"] == StepOutcome.RUNNING:
                self.finish_step(step_id, outcome, detail)

    # --- evidence --------------------------------------------------------------------------------

    def add_evidence(self, unit_id: int, kind: str, data: Mapping[str, Any],
                     step_id: int | None = None) -> int:
        """Attach what was observed (a SADP reply, an HTTP answer, a power reading) to a unit.

        ``data`` must be a JSON object of plain values (str keys; str, numbers, bool, None, lists,
        dicts); anything else raises TypeError here rather than being stored as something the
        report cannot read back. ``step_id``, if given, must be a step of the same unit.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"evidence data must be a dict, not {type(data).__name__}")
        _check_json_keys(data)
        try:
            text = json.dumps(dict(data), allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"evidence {kind!r} is not JSON-serialisable: {exc}") from None
        if not kind:
            raise ValueError("evidence needs a kind")
        with self._write() as conn:
            self._row(conn, "unit", "units", unit_id)
            if step_id is not None:
                step = self._row(conn, "step", "steps", step_id)
                if step["unit_id"] != unit_id:
                    raise RecordError(f"step {step_id} belongs to unit {step['unit_id']}, "
                                      f"not unit {unit_id}")
            cursor = conn.execute("INSERT INTO evidence (unit_id, step_id, kind, created_at, "
                                  "data) VALUES (?, ?, ?, ?, ?)",
                                  (unit_id, step_id, kind, self._now(), text))
            return int(cursor.lastrowid)

    # --- outputs ledger --------------------------------------------------------------------------

    def output_engaged(self, run_id: int, slot: str, kind: OutputKind | str, target: str,
                       note: str = "") -> int:
        """Record an output about to leave its safe state — call it *before* switching, so a
        crash in between leaves an entry (making an already-safe output safe is harmless)."""
        if not kind or not target:
            raise ValueError("an output needs a kind and a target")
        with self._write() as conn:
            self._row(conn, "run", "runs", run_id)
            cursor = conn.execute("INSERT INTO outputs (run_id, slot, kind, target, since, note) "
                                  "VALUES (?, ?, ?, ?, ?, ?)",
                                  (run_id, str(slot), str(kind), target, self._now(), note))
            return int(cursor.lastrowid)

    def output_cleared(self, output_id: int, note: str = "") -> bool:
        """Record an output back in its safe state. Returns False if it already was (clearing
        twice is fine: recovery and a ``finally`` may both do it)."""
        with self._write() as conn:
            row = self._row(conn, "output", "outputs", output_id)
            if row["cleared_at"] is not None:
                return False
            conn.execute("UPDATE outputs SET cleared_at = ?, note = ? WHERE id = ?",
                         (self._now(), _join(row["note"], note), output_id))
            return True

    def open_outputs(self, run_id: int | None = None) -> list[OutputEntry]:
        """Outputs not yet cleared, oldest first: of one run, or of every run in the store
        (including runs of other live rig processes: make safe only those of dead runs)."""
        if run_id is None:
            rows = self._read("SELECT * FROM outputs WHERE cleared_at IS NULL ORDER BY id")
        else:
            rows = self._read("SELECT * FROM outputs WHERE cleared_at IS NULL AND run_id = ? "
                              "ORDER BY id", (run_id,))
        return [_output(r) for r in rows]

    # --- slot health -----------------------------------------------------------------------------

    def record_slot_outcome(self, bench_name: str, slot: str, bench_fault: bool, reason: str,
                            threshold: int | None = None) -> SlotStatus:
        """Count a bench fault (or reset the count on any other outcome) for a slot; at
        ``threshold`` consecutive bench faults (default: the store's limit, 3) the slot goes out
        of service until ``clear_slot``. ``finish_unit`` already does this for each unit."""
        limit = self._limit if threshold is None else threshold
        if limit < 1:
            raise ValueError("threshold must be at least 1")
        with self._write() as conn:
            self._slot_outcome(conn, bench_name, str(slot), bench_fault, reason, limit,
                               self._now())
        return self.slot_status(bench_name, slot)

    def _slot_outcome(self, conn: sqlite3.Connection, bench: str, slot: str, bench_fault: bool,
                      reason: str, limit: int, now: str) -> None:
        row = conn.execute("SELECT * FROM slot_health WHERE bench_name = ? AND slot = ?",
                           (bench, slot)).fetchone()
        count = row["consecutive_bench_faults"] if row else 0
        out = bool(row["out_of_service"]) if row else False
        kept = row["reason"] if row and out else ""
        count = count + 1 if bench_fault else 0
        events = [("bench-fault" if bench_fault else "ok", reason)]
        if bench_fault and count >= limit and not out:
            out = True
            kept = f"{count} consecutive bench faults; last: {reason}"
            events.append(("out-of-service", kept))
        conn.execute("""INSERT INTO slot_health (bench_name, slot, consecutive_bench_faults,
                            out_of_service, reason, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (bench_name, slot) DO UPDATE SET
                            consecutive_bench_faults = excluded.consecutive_bench_faults,
                            out_of_service = excluded.out_of_service,
                            reason = excluded.reason, updated_at = excluded.updated_at""",
                     (bench, slot, count, int(out), kept or reason, now))
        for event, why in events:
            conn.execute("INSERT INTO slot_events (bench_name, slot, at, event, reason, actor) "
                         "VALUES (?, ?, ?, ?, ?, 'rig')", (bench, slot, now, event, why))

    def slot_status(self, bench_name: str, slot: str) -> SlotStatus:
        """A slot's health; a slot never recorded is healthy (``updated_at`` None)."""
        rows = self._read("SELECT * FROM slot_health WHERE bench_name = ? AND slot = ?",
                          (bench_name, str(slot)))
        if not rows:
            return SlotStatus(bench_name, str(slot), 0, False, "", None)
        return _slot(rows[0])

    def out_of_service_slots(self, bench_name: str) -> list[SlotStatus]:
        rows = self._read("SELECT * FROM slot_health WHERE bench_name = ? AND out_of_service = 1 "
                          "ORDER BY slot", (bench_name,))
        return [_slot(r) for r in rows]

    def clear_slot(self, bench_name: str, slot: str, by: str, note: str = "") -> SlotStatus:
        """Operator action: put a slot back in service (count reset), saying who did it."""
        return self._set_slot(bench_name, str(slot), False, by, note, "cleared",
                              "returned to service")

    def take_slot_out(self, bench_name: str, slot: str, by: str, note: str = "") -> SlotStatus:
        """Operator action: take a slot out of service (a solenoid that sticks, a loose cable)."""
        return self._set_slot(bench_name, str(slot), True, by, note, "taken-out",
                              "taken out of service")

    def _set_slot(self, bench: str, slot: str, out: bool, by: str, note: str, event: str,
                  what: str) -> SlotStatus:
        if not by:
            raise ValueError("say who does this (by=...)")
        with self._write() as conn:
            now = self._now()
            reason = _join(f"{what} by {by} at {now}", note, sep=": ")
            conn.execute("""INSERT INTO slot_health (bench_name, slot, consecutive_bench_faults,
                                out_of_service, reason, updated_at) VALUES (?, ?, 0, ?, ?, ?)
                            ON CONFLICT (bench_name, slot) DO UPDATE SET
                                consecutive_bench_faults = 0,
                                out_of_service = excluded.out_of_service,
                                reason = excluded.reason, updated_at = excluded.updated_at""",
                         (bench, slot, int(out), reason, now))
            conn.execute("INSERT INTO slot_events (bench_name, slot, at, event, reason, actor) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (bench, slot, now, event, note, by))
        return self.slot_status(bench, slot)

    def slot_events(self, bench_name: str, slot: str, limit: int = 50) -> list[SlotEvent]:
        """The slot's health history, newest first."""
        rows = self._read("SELECT * FROM slot_events WHERE bench_name = ? AND slot = ? "
                          "ORDER BY id DESC LIMIT ?", (bench_name, str(slot), limit))
        return [SlotEvent(r["id"], r["bench_name"], r["slot"], _ts(r["at"]), r["event"],
                          r["reason"], r["actor"]) for r in rows]

    # --- recovery --------------------------------------------------------------------------------

    def is_orphaned(self, run: Run) -> bool:
        """True for a run still marked running whose process is gone from this host (it crashed,
        was killed, or the machine lost power). Runs of other hosts are never orphaned here."""
        if run.status is not RunStatus.RUNNING or run.hostname != self._hostname:
            return False
        if run.boot_id and self._boot and run.boot_id != self._boot:
            return True
        start = _process_start(run.pid)
        if start is None:
            return True
        return bool(run.process_start and start and start != run.process_start)

    def recover_interrupted(self, force: bool = False) -> list[RecoveredRun]:
        """Close every orphaned run (``force``: every run still marked running, on any host —
        only when you know no other rig process uses this store) as ``interrupted``.

        Its unfinished units get the verdict ``interrupted`` with a reason naming the step the
        rig was in; its open steps become ``interrupted``. Times are set to the run's last sign
        of life (the latest time recorded in it), since the moment of the crash is unknown.
        Returns, per run, those units and the run's outputs still engaged: make each safe and
        ``output_cleared()`` it. Idempotent: a recovered run is no longer running.
        """
        candidates = [_run(r) for r in self._read("SELECT * FROM runs WHERE status = 'running' "
                                                  "ORDER BY id")]
        recovered = []
        for run in candidates:
            if not (force or self.is_orphaned(run)):
                continue
            with self._write() as conn:
                current = conn.execute("SELECT status FROM runs WHERE id = ?",
                                       (run.id,)).fetchone()
                if current["status"] != RunStatus.RUNNING:
                    continue                      # another process recovered it meanwhile
                last = self._last_sign_of_life(conn, run.id)
                units = self._close_open_units(conn, run.id, last, INTERRUPTED_REASON)
                note = (f"recovered at {self._now()} by pid {os.getpid()} on {self._hostname}: "
                        f"process {run.pid} on {run.hostname} had stopped")
                conn.execute("UPDATE runs SET status = 'interrupted', finished_at = ?, note = ? "
                             "WHERE id = ?", (last, _join(run.note, note), run.id))
            record = self.load_run(run.id)
            recovered.append(RecoveredRun(
                run=record.run, units=tuple(u for u in record.units if u.id in units),
                outputs=tuple(o for o in record.outputs if o.cleared_at is None)))
        return recovered

    @staticmethod
    def _last_sign_of_life(conn: sqlite3.Connection, run_id: int) -> str:
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

    # --- queries ---------------------------------------------------------------------------------

    def last_run_id(self, bench: str | None = None) -> int | None:
        rows = self._read("SELECT MAX(id) FROM runs WHERE ? IS NULL OR bench_name = ?",
                          (bench, bench))
        return rows[0][0]

    def history(self, limit: int = 20, bench: str | None = None) -> list[RunSummary]:
        """The latest runs, newest first, with unit counts per verdict."""
        runs = [_run(r) for r in self._read(
            "SELECT * FROM runs WHERE ? IS NULL OR bench_name = ? ORDER BY id DESC LIMIT ?",
            (bench, bench, max(0, limit)))]
        if not runs:
            return []
        marks = ", ".join("?" * len(runs))
        counts: dict[int, dict[str, int]] = {run.id: {} for run in runs}
        for row in self._read(f"SELECT run_id, COALESCE(verdict, 'unfinished'), COUNT(*) "
                              f"FROM units WHERE run_id IN ({marks}) GROUP BY 1, 2",
                              [run.id for run in runs]):
            counts[row[0]][row[1]] = row[2]
        return [RunSummary(run, sum(counts[run.id].values()), counts[run.id]) for run in runs]

    def load_run(self, run_id: int) -> RunRecord:
        """A whole run, read in one consistent snapshot. Raises UnknownRun."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")          # one read transaction: no half-written run
            try:
                run = _run(self._row(conn, "run", "runs", run_id))
                units = conn.execute("SELECT * FROM units WHERE run_id = ? ORDER BY id",
                                     (run_id,)).fetchall()
                steps = conn.execute("SELECT s.* FROM steps s JOIN units u ON s.unit_id = u.id "
                                     "WHERE u.run_id = ? ORDER BY s.unit_id, s.seq",
                                     (run_id,)).fetchall()
                evidence = conn.execute("SELECT e.* FROM evidence e JOIN units u ON "
                                        "e.unit_id = u.id WHERE u.run_id = ? ORDER BY e.id",
                                        (run_id,)).fetchall()
                outputs = conn.execute("SELECT * FROM outputs WHERE run_id = ? ORDER BY id",
                                       (run_id,)).fetchall()
            finally:
                conn.execute("COMMIT")
        by_unit_steps: dict[int, list[Step]] = {}
        for row in steps:
            by_unit_steps.setdefault(row["unit_id"], []).append(_step(row))
        by_unit_evidence: dict[int, list[Evidence]] = {}
        for row in evidence:
            by_unit_evidence.setdefault(row["unit_id"], []).append(_evidence(row))
        return RunRecord(run=run,
                         units=tuple(_unit(r, by_unit_steps.get(r["id"], ()),
                                           by_unit_evidence.get(r["id"], ())) for r in units),
                         outputs=tuple(_output(r) for r in outputs))

    def load_unit(self, unit_id: int) -> Unit:
        """One unit with its steps and evidence."""
        with self._lock:
            row = self._row(self._conn, "unit", "units", unit_id)
            steps = [_step(r) for r in self._conn.execute(
                "SELECT * FROM steps WHERE unit_id = ? ORDER BY seq", (unit_id,))]
            evidence = [_evidence(r) for r in self._conn.execute(
                "SELECT * FROM evidence WHERE unit_id = ? ORDER BY id", (unit_id,))]
        return _unit(row, steps, evidence)


# --- row → record -------------------------------------------------------------------------------

def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _join(first: str, second: str, sep: str = "; ") -> str:
    return sep.join(part for part in (first, second) if part)


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


def _run(r: sqlite3.Row) -> Run:
    return Run(id=r["id"], started_at=_ts(r["started_at"]), finished_at=_ts(r["finished_at"]),
               status=RunStatus(r["status"]), bench_name=r["bench_name"],
               bench_path=r["bench_path"], bench_sha256=r["bench_sha256"], method=r["method"],
               rig_version=r["rig_version"], hostname=r["hostname"], pid=r["pid"],
               argv=tuple(json.loads(r["argv"])), note=r["note"], boot_id=r["boot_id"],
               process_start=r["process_start"])


def _unit(r: sqlite3.Row, steps: Sequence[Step], evidence: Sequence[Evidence]) -> Unit:
    return Unit(id=r["id"], run_id=r["run_id"], slot=r["slot"], method=r["method"],
                profile=r["profile"], expected_mac=r["expected_mac"],
                expected_serial=r["expected_serial"], started_at=_ts(r["started_at"]),
                finished_at=_ts(r["finished_at"]), state=UnitState(r["state"]),
                verdict=None if r["verdict"] is None else Verdict(r["verdict"]),
                reason=r["reason"], fault=None if r["fault"] is None else Fault(r["fault"]),
                mac=r["mac"], serial=r["serial"], check=r["check_name"], steps=tuple(steps),
                evidence=tuple(evidence))


def _step(r: sqlite3.Row) -> Step:
    return Step(id=r["id"], unit_id=r["unit_id"], seq=r["seq"], name=r["name"],
                started_at=_ts(r["started_at"]), finished_at=_ts(r["finished_at"]),
                outcome=StepOutcome(r["outcome"]), detail=r["detail"])


def _evidence(r: sqlite3.Row) -> Evidence:
    return Evidence(id=r["id"], unit_id=r["unit_id"], step_id=r["step_id"], kind=r["kind"],
                    created_at=_ts(r["created_at"]), data=json.loads(r["data"]))


def _output(r: sqlite3.Row) -> OutputEntry:
    return OutputEntry(id=r["id"], run_id=r["run_id"], slot=r["slot"], kind=r["kind"],
                       target=r["target"], since=_ts(r["since"]),
                       cleared_at=_ts(r["cleared_at"]), note=r["note"])


def _slot(r: sqlite3.Row) -> SlotStatus:
    return SlotStatus(bench_name=r["bench_name"], slot=r["slot"],
                      consecutive_bench_faults=r["consecutive_bench_faults"],
                      out_of_service=bool(r["out_of_service"]), reason=r["reason"],
                      updated_at=_ts(r["updated_at"]))
