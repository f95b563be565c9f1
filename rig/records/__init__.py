"""The durable record of every run: what the rig did to each unit, what it saw, and what it
concluded, written as it happens (OpenHTF's test record, kept in SQLite).

The contract is **written before the next step begins**: every write commits (and, with
``synchronous=FULL`` in WAL mode, the commit is on disk) before it returns. So after a crash, a
``kill -9`` or a power cut the store holds everything up to the last call that returned, and what
was in flight is still marked ``running``. ``runs.dead_runs()`` finds those leftovers;
``runs.close_dead_run()`` turns one into an honest record ("interrupted during step 'press
reset'"), to be called only once the outputs it left engaged are safe (rig.recovery does both).

One package, one concern per module:

- ``db``        the SQLite file (WAL, FULL sync, migrations) and its one write door
- ``models``    the record dataclasses and row → record functions
- ``runlog``    runs, units, steps, evidence, recovery (``queries``: reading them back)
- ``outputs``   the outputs ledger: what the rig moved and has not yet put back
- ``health``    slot health: the policy (pure) and its store
- ``logins``    failed logins per unit across runs: the budget (pure) and its ledger
- ``sadp_attempts``  failed SADP ``update`` attempts per unit across invocations
- ``attachments``  binary evidence (snapshot JPEGs), with its SHA-256
- ``certificates``  certificates of sanitization issued, and the audits of them
- ``liveness``  is the process that wrote a running run still alive?
- ``outbox``    notification events, written with their cause, and their webhook deliveries
- ``pins``      identities pinned to slots for their next run (the dashboard's barcode field)
- ``sync``      the bench identity and the log of records to push to the fleet's PostgreSQL

How the runner uses it (one store per process, shared by the per-slot worker threads)::

    store = RecordStore.open()                          # $RIG_DB or ~/.local/share/rig/rig.sqlite
    for dead in store.runs.dead_runs():                 # a previous run died (rig.recovery):
        for out in store.outputs.open(dead.id):         # its outputs made safe first,
            make_safe(out); store.outputs.cleared(out.id, "made safe")
        store.runs.close_dead_run(dead)                 # then, all safe, the run closed
    run = store.runs.start_run(bench.name, method=Method.HARD, bench_path=bench.path, argv=sys.argv)
    unit = store.runs.start_unit(run, slot.name, method=Method.HARD, profile="current")
    with store.runs.step(unit, "power off", detail="switch main port 3"):   # ok/failed/timeout
        out = store.outputs.engaged(run, slot.name, OutputKind.POWER_OFF, "switch main port 3")
        power.off()
    store.runs.add_evidence(unit, "sadp-after", {"mac": ..., "serial": ...})
    store.runs.finish_unit(unit, Verdict.FACTORY_DEFAULT, "inactive after reset", Fault.NONE)
    store.runs.finish_run(run, RunStatus.PASSED)

Faults follow LAVA: a ``bench`` fault is the rig's (a relay that did not switch, a switch that did
not answer), a ``unit`` fault is the camera's. ``finish_unit`` counts consecutive bench faults per
(bench, slot) in the same transaction, and takes a slot out of service at the limit until an
operator clears it (``store.slots``), so one broken solenoid does not fail every unit put in it.

The database is one SQLite file; where it lives is ``default_db_path()``. Timestamps are stored as
ISO 8601 text in UTC, JSON as text; the schema (``db.MIGRATIONS``) is versioned and migrated
forward on open. The words (verdicts, faults, outcomes) live in ``rig.vocabulary``.
"""

from __future__ import annotations

import os
from typing import Any

from rig.records.attachments import Attachments
from rig.records.certificates import CertificateLog
from rig.records.db import (
    DEFAULT_BUSY_TIMEOUT_MS,
    Clock,
    Database,
    RecordError,
    UnknownRun,
    default_db_path,
    utc_now,
)
from rig.records.health import DEFAULT_BENCH_FAULT_LIMIT, SlotHealth, SlotHealthPolicy
from rig.records.logins import LoginBudget, LoginLedger, LoginRecord
from rig.records.models import (
    Evidence,
    OutputEntry,
    RecoveredRun,
    Run,
    RunRecord,
    RunSummary,
    SlotEvent,
    SlotStatus,
    Step,
    Unit,
)
from rig.records.outbox import Outbox, OutboxEvent, PayloadHook
from rig.records.outputs import OutputsLedger
from rig.records.pins import SlotPin, SlotPins
from rig.records.runlog import RunLog, file_sha256
from rig.records.sadp_attempts import SadpAttemptCount, SadpAttempts
from rig.records.sync import SyncBatch, SyncLog, SyncTarget

__all__ = [
    "Database", "Evidence", "LoginBudget", "LoginLedger", "LoginRecord", "OutputEntry",
    "Outbox", "OutboxEvent", "OutputsLedger", "RecordError", "RecordStore",
    "RecoveredRun", "Run", "RunLog", "RunRecord", "RunSummary", "SlotEvent", "SlotHealth",
    "SadpAttemptCount", "SadpAttempts", "SlotHealthPolicy", "SlotPin", "SlotPins",
    "SlotStatus", "Step", "SyncBatch", "SyncLog", "SyncTarget", "Unit",
    "UnknownRun", "default_db_path",
    "file_sha256", "utc_now",
]


class RecordStore:
    """One open store: ``runs`` (the run log), ``outputs`` (the ledger), ``slots`` (health),
    ``logins`` (failed logins per unit) and ``sadp_attempts`` (failed SADP ``update`` attempts
    per MAC), ``outbox`` (notifications) and ``pins`` (identities pinned to slots), all on one
    Database, so they share its connection, its lock and its transactions."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = utc_now,
                 create: bool = True, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
                 bench_fault_limit: int = DEFAULT_BENCH_FAULT_LIMIT) -> None:
        """Open (or, with ``create``, create) the store at ``path`` and migrate it forward.

        ``clock`` returns an aware datetime (tests pass a fake one). ``path`` may be
        ``":memory:"`` for a throwaway store, which is of course not durable.
        """
        policy = SlotHealthPolicy(bench_fault_limit)      # a bad limit fails before the file
        # The outbox's hook: every write transaction fills in the events it caused.
        self.db = Database(path, clock=clock, create=create, busy_timeout_ms=busy_timeout_ms,
                           before_commit=[PayloadHook()])
        self.slots = SlotHealth(self.db, policy)
        self.runs = RunLog(self.db, self.slots)
        self.outputs = OutputsLedger(self.db)
        self.logins = LoginLedger(self.db)
        #: Failed SADP ``update`` attempts per MAC (``rig net set`` never spends the lock).
        self.sadp_attempts = SadpAttempts(self.db)
        #: Binary evidence (snapshots) beside the evidence records that describe it.
        self.attachments = Attachments(self.db)
        #: Notification events and their webhook deliveries (rig.notify sends them).
        self.outbox = Outbox(self.db)
        #: Identities pinned to slots for their next run.
        self.pins = SlotPins(self.db)
        #: Certificates of sanitization issued, and audit samples of them.
        self.certificates = CertificateLog(self.db)
        #: The bench identity and the log of records to push to the fleet (rig sync).
        self.sync = SyncLog(self.db)

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> RecordStore:
        """The store at ``path``, or at ``default_db_path()`` when None."""
        return cls(default_db_path() if path is None else path, **kwargs)

    @property
    def path(self) -> str:
        return self.db.path

    def schema_version(self) -> int:
        return self.db.schema_version()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
