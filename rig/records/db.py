"""One SQLite file opened for durability: WAL, ``synchronous=FULL``, foreign keys, a busy
timeout, the versioned schema migrated forward on open, and one way to write.

Every writer in this package goes through ``Database.write()``: one ``BEGIN IMMEDIATE``
transaction, committed (and on disk) before the caller's method returns. That single door is
where the notification outbox hooks in (rig.records.outbox): a ``before_commit`` hook runs inside
each write transaction, so a row it adds commits or rolls back with the record it describes.
"""

from __future__ import annotations

import enum
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rig import __version__
from rig.vocabulary import (
    DeliveryState,
    Fault,
    NotifyEvent,
    RunStatus,
    StepOutcome,
    UnitState,
)

Clock = Callable[[], datetime]
#: Runs inside every write transaction, just before COMMIT (an outbox writes its rows here).
CommitHook = Callable[[sqlite3.Connection], None]

#: Milliseconds a writer waits for another process's write lock before giving up.
DEFAULT_BUSY_TIMEOUT_MS = 10_000


class RecordError(RuntimeError):
    """The store cannot do what was asked: unknown id, a record already closed, a bad file."""


class UnknownRun(RecordError, LookupError):
    """No run with that id in this store."""


def utc_now() -> datetime:
    return datetime.now(UTC)


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


# --- schema -------------------------------------------------------------------------------------

def _in(values: type[enum.StrEnum] | tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


#: The verdicts schema version 1 knew (frozen: migration 1 must create the same table forever).
_V1_VERDICTS = ("factory-default", "not-default", "unreachable", "bench-fault", "interrupted",
                "skipped", "out-of-service")

#: The audit outcomes schema version 8 knows (rig.vocabulary.AuditOutcome; frozen like V1's).
_V8_AUDIT_OUTCOMES = ("confirmed", "discrepancy", "inconclusive")

#: The tables schema version 9 logs for the fleet sync (rig.vocabulary.SyncedTable; frozen).
_V9_SYNCED = ("runs", "units", "steps", "evidence", "outputs", "slot_events", "slot_pins",
              "certificates", "attachments")

#: A random (version 4) UUID in SQLite's own SQL: the bench identity, made once per store.
_UUID4_SQL = ("lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || "
              "substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1) "
              "|| substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))")

#: The units table's columns before version 2 (copied across by its rebuild).
_V1_UNIT_COLUMNS = ("id, run_id, slot, method, profile, expected_mac, expected_serial, "
                    "started_at, finished_at, state, verdict, reason, fault, mac, serial, "
                    "check_name")


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
            verdict         TEXT CHECK (verdict IN {_in(_V1_VERDICTS)}),
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
    (   # 2: the final state a unit was left in (hand-over), and verdicts beyond version 1's:
        # the verdict's CHECK goes (SQLite cannot alter one; rig validates verdicts itself).
        f"""CREATE TABLE units_v2 (
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
            verdict         TEXT,
            reason          TEXT NOT NULL DEFAULT '',
            fault           TEXT CHECK (fault IN {_in(Fault)}),
            mac             TEXT,
            serial          TEXT,
            check_name      TEXT,
            final_state     TEXT,
            UNIQUE (run_id, slot),
            CHECK ((state IN ('done', 'interrupted')) = (verdict IS NOT NULL)))""",
        f"INSERT INTO units_v2 ({_V1_UNIT_COLUMNS}) SELECT {_V1_UNIT_COLUMNS} FROM units",
        "DROP TABLE units",
        "ALTER TABLE units_v2 RENAME TO units",
    ),
    (   # 3: failed logins per unit across runs (rig.records.logins)
        """CREATE TABLE failed_logins (
            mac           TEXT PRIMARY KEY,
            count         INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
            first_failure TEXT,
            last_failure  TEXT,
            locked_until  TEXT,
            note          TEXT NOT NULL DEFAULT '',
            updated_at    TEXT NOT NULL)""",
    ),
    (   # 4: failed SADP update attempts per MAC (rig.records.sadp_attempts)
        """CREATE TABLE sadp_update_attempts (
            mac             TEXT PRIMARY KEY,
            failures        INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
            last_failure_at TEXT,
            last_detail     TEXT NOT NULL DEFAULT '',
            updated_at      TEXT NOT NULL)""",
    ),
    (   # 5: functional checks and certificates: a unit's grade, who ran a run and where its
        # units go, and binary evidence (snapshots) kept beside its evidence record
        "ALTER TABLE units ADD COLUMN grade TEXT",
        "ALTER TABLE runs ADD COLUMN operator TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN destination TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE attachments (
            id           INTEGER PRIMARY KEY,
            unit_id      INTEGER NOT NULL REFERENCES units (id),
            evidence_id  INTEGER REFERENCES evidence (id),
            name         TEXT NOT NULL,
            content_type TEXT NOT NULL,
            sha256       TEXT NOT NULL,
            created_at   TEXT NOT NULL,
            data         BLOB NOT NULL)""",
        "CREATE INDEX attachments_by_unit ON attachments (unit_id, id)",
    ),
    (   # 6: the notification outbox (rig.records.outbox). The triggers write an event row in
        # the transaction that records its cause, whichever process and code path writes it;
        # the store's before-commit hook fills in its payload in that same transaction. (A
        # later migration that rebuilds runs, units or slot_events must re-create its trigger.)
        f"""CREATE TABLE outbox (
            id         INTEGER PRIMARY KEY,
            event_id   TEXT NOT NULL UNIQUE,
            kind       TEXT NOT NULL CHECK (kind IN {_in(NotifyEvent)}),
            created_at TEXT NOT NULL,
            bench_name TEXT NOT NULL,
            run_id     INTEGER,
            unit_id    INTEGER,
            slot       TEXT,
            payload    TEXT)""",
        "CREATE INDEX outbox_unfilled ON outbox (id) WHERE payload IS NULL",
        f"""CREATE TRIGGER outbox_run_finished AFTER UPDATE OF status ON runs
            WHEN OLD.status = 'running' AND NEW.status != 'running'
            BEGIN
                INSERT INTO outbox (event_id, kind, created_at, bench_name, run_id)
                VALUES (lower(hex(randomblob(16))), '{NotifyEvent.RUN_FINISHED}',
                        NEW.finished_at, NEW.bench_name, NEW.id);
            END""",
        f"""CREATE TRIGGER outbox_bench_fault AFTER UPDATE OF verdict ON units
            WHEN OLD.verdict IS NULL AND NEW.fault = 'bench'
                 AND NEW.verdict != 'out-of-service'
            BEGIN
                INSERT INTO outbox (event_id, kind, created_at, bench_name, run_id, unit_id,
                                    slot)
                VALUES (lower(hex(randomblob(16))), '{NotifyEvent.BENCH_FAULT}',
                        NEW.finished_at,
                        (SELECT bench_name FROM runs WHERE id = NEW.run_id),
                        NEW.run_id, NEW.id, NEW.slot);
            END""",
        f"""CREATE TRIGGER outbox_slot_out_of_service AFTER INSERT ON slot_events
            WHEN NEW.event IN ('out-of-service', 'taken-out')
            BEGIN
                INSERT INTO outbox (event_id, kind, created_at, bench_name, slot)
                VALUES (lower(hex(randomblob(16))), '{NotifyEvent.SLOT_OUT_OF_SERVICE}',
                        NEW.at, NEW.bench_name, NEW.slot);
            END""",
        f"""CREATE TABLE outbox_deliveries (
            event           INTEGER NOT NULL REFERENCES outbox (id),
            target          TEXT NOT NULL,
            state           TEXT NOT NULL CHECK (state IN {_in(DeliveryState)}),
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            claimed_by      TEXT,
            claimed_until   TEXT,
            last_error      TEXT NOT NULL DEFAULT '',
            delivered_at    TEXT,
            PRIMARY KEY (event, target))""",
        "CREATE INDEX outbox_due ON outbox_deliveries (target, next_attempt_at) "
        "WHERE state != 'delivered'",
        """CREATE TABLE outbox_targets (
            target     TEXT PRIMARY KEY,
            bench_name TEXT NOT NULL,
            since      INTEGER NOT NULL,
            queued_to  INTEGER NOT NULL,
            created_at TEXT NOT NULL)""",
    ),
    (   # 7: an identity pinned to a slot for its next run (a barcode scanned on the dashboard)
        """CREATE TABLE slot_pins (
            id          INTEGER PRIMARY KEY,
            bench_name  TEXT NOT NULL,
            slot        TEXT NOT NULL,
            mac         TEXT,
            serial      TEXT,
            pinned_by   TEXT NOT NULL,
            pinned_at   TEXT NOT NULL,
            cleared_by  TEXT,
            cleared_at  TEXT,
            used_by_run INTEGER REFERENCES runs (id),
            CHECK ((mac IS NULL) != (serial IS NULL)))""",
        "CREATE INDEX slot_pins_open ON slot_pins (bench_name, slot) "
        "WHERE cleared_at IS NULL AND used_by_run IS NULL",
    ),
    (   # 8: certificates of sanitization issued (rig.records.certificates), and audit samples
        # of them with each independent re-verification's result
        """CREATE TABLE certificates (
            id              TEXT PRIMARY KEY,
            run_id          INTEGER NOT NULL REFERENCES runs (id),
            unit_id         INTEGER NOT NULL REFERENCES units (id),
            serial          TEXT,
            key_id          TEXT NOT NULL,
            digest          TEXT NOT NULL,
            evidence_digest TEXT NOT NULL,
            issued_at       TEXT NOT NULL,
            signed          TEXT NOT NULL)""",
        "CREATE INDEX certificates_by_unit ON certificates (unit_id, issued_at)",
        "CREATE INDEX certificates_by_time ON certificates (issued_at)",
        """CREATE TABLE audit_samples (
            id          INTEGER PRIMARY KEY,
            drawn_at    TEXT NOT NULL,
            seed        TEXT NOT NULL,
            percent     REAL NOT NULL CHECK (percent > 0 AND percent <= 100),
            since       TEXT,
            population  INTEGER NOT NULL,
            drawn_by    TEXT NOT NULL DEFAULT '')""",
        """CREATE TABLE audit_sample_items (
            sample_id      INTEGER NOT NULL REFERENCES audit_samples (id),
            certificate_id TEXT NOT NULL REFERENCES certificates (id),
            PRIMARY KEY (sample_id, certificate_id))""",
        f"""CREATE TABLE audit_results (
            id             INTEGER PRIMARY KEY,
            certificate_id TEXT NOT NULL REFERENCES certificates (id),
            sample_id      INTEGER REFERENCES audit_samples (id),
            recorded_at    TEXT NOT NULL,
            auditor        TEXT NOT NULL,
            outcome        TEXT NOT NULL CHECK (outcome IN {_in(_V8_AUDIT_OUTCOMES)}),
            note           TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX audit_results_by_certificate ON audit_results (certificate_id, id)",
    ),
    (   # 9: the fleet (rig.records.sync, rig.fleet): this store's bench identity, and the sync
        # log the triggers below write in the transaction of every insert or update of a synced
        # record, whichever process writes it. Rows already recorded are logged once here, so a
        # first sync pushes the store's whole history. (A later migration that rebuilds one of
        # these tables must re-create its two sync triggers, like the outbox's of version 6;
        # tests/test_fleet_sync.py checks that every synced table has them.)
        """CREATE TABLE bench_identity (
            id         INTEGER PRIMARY KEY CHECK (id = 1),
            bench_id   TEXT NOT NULL,
            created_at TEXT NOT NULL)""",
        f"INSERT INTO bench_identity VALUES (1, {_UUID4_SQL}, "
        "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))",
        # AUTOINCREMENT: a seq is never reused, even after the log's head is pruned
        """CREATE TABLE sync_log (
            seq    INTEGER PRIMARY KEY AUTOINCREMENT,
            tbl    TEXT NOT NULL,
            row_id NOT NULL)""",
        """CREATE TABLE sync_targets (
            target     TEXT PRIMARY KEY,
            pushed_to  INTEGER NOT NULL DEFAULT 0,
            pushed_at  TEXT,
            last_error TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL)""",
        *(f"INSERT INTO sync_log (tbl, row_id) SELECT '{t}', id FROM {t} ORDER BY id"
          for t in _V9_SYNCED),
        *(f"""CREATE TRIGGER sync_{t}_{event.lower()} AFTER {event} ON {t}
              BEGIN INSERT INTO sync_log (tbl, row_id) VALUES ('{t}', NEW.id); END"""
          for t in _V9_SYNCED for event in ("INSERT", "UPDATE")),
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


# --- the database -------------------------------------------------------------------------------

class Database:
    """The open SQLite file. Thread-safe: one connection behind one lock, shared by every store
    object built on it and by the worker threads.

    Several processes may use the same file (``rig history`` while ``rig run`` writes): WAL lets
    readers go on during a write, and writers wait up to ``busy_timeout_ms`` for each other.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = utc_now,
                 create: bool = True, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
                 migrations: Sequence[Sequence[str]] = MIGRATIONS,
                 before_commit: Sequence[CommitHook] = ()) -> None:
        """Open (or, with ``create``, create) the file at ``path`` and migrate it forward.

        ``clock`` returns an aware datetime (tests pass a fake one). ``path`` may be
        ``":memory:"`` for a throwaway store, which is of course not durable. ``migrations`` is
        the schema's history (tests pass a longer or shorter one); ``before_commit`` hooks run
        inside every write transaction.
        """
        self.path = str(path)
        self.lock = threading.RLock()
        self._clock = clock
        self._migrations = tuple(tuple(m) for m in migrations)
        self._before_commit = tuple(before_commit)
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
        """Bring the schema forward. Foreign keys are off meanwhile (SQLite's way to rebuild a
        table others refer to; it takes effect only outside a transaction) and checked before
        the commit: a migration that broke one rolls back."""
        self._conn.execute("PRAGMA foreign_keys = OFF")
        try:
            self._apply_migrations()
        finally:
            self._conn.execute("PRAGMA foreign_keys = ON")

    def _apply_migrations(self) -> None:
        known = len(self._migrations)
        with self.write() as conn:
            conn.execute("""CREATE TABLE IF NOT EXISTS schema_version (
                                version     INTEGER PRIMARY KEY,
                                applied_at  TEXT NOT NULL,
                                rig_version TEXT NOT NULL)""")
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version"
                                   ).fetchone()[0]
            if current > known:
                raise RecordError(f"{self.path} has schema version {current}, written by a newer "
                                  f"rig; this rig ({__version__}) knows up to {known}")
            for version in range(current + 1, known + 1):
                for statement in self._migrations[version - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                             (version, self.now(), __version__))
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RecordError(f"{self.path}: migrating to version {known} broke "
                                  f"{len(broken)} reference(s), e.g. {tuple(broken[0])}")

    def schema_version(self) -> int:
        return self.read("SELECT MAX(version) FROM schema_version")[0][0]

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the ways in -----------------------------------------------------------------------------

    def now(self) -> str:
        """The injected clock's reading as stored: ISO 8601 text in UTC."""
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the record store's clock must return an aware datetime")
        return now.astimezone(UTC).isoformat(timespec="microseconds")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed before the caller's method returns.

        BEGIN IMMEDIATE takes the write lock up front, so two processes never both read and then
        fail to upgrade (SQLITE_BUSY without waiting). The ``before_commit`` hooks run last,
        inside the transaction: what they write commits, or rolls back, with the record.
        """
        with self.lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                for hook in self._before_commit:
                    hook(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several queries see one consistent state (no half-written run)."""
        with self.lock:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """One query's rows."""
        with self.lock:
            return self._conn.execute(sql, params).fetchall()

    @staticmethod
    def row(conn: sqlite3.Connection, what: str, table: str, row_id: int) -> sqlite3.Row:
        """The row ``row_id`` of ``table``; UnknownRun or RecordError ("no unit 7") if none."""
        row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone()
        if row is None:
            if table == "runs":
                raise UnknownRun(f"no run {row_id}")
            raise RecordError(f"no {what} {row_id}")
        return row
