"""Push a bench's sync log to the fleet's PostgreSQL: one batch per PostgreSQL transaction,
in sequence order, resumable after a crash of either side.

One batch: in a PostgreSQL transaction, lock the bench's row of ``rig.benches`` (two pushers of
one bench, say ``rig serve`` and the systemd unit, take turns instead of interleaving), start
after the lower of the two cursors (the bench's own in SQLite and the one PostgreSQL committed
with the rows: a restored or emptied database is refilled, a crash between the two commits is
replayed), upsert the batch's rows keyed by (bench id, local id), move the PostgreSQL cursor,
commit; then move the SQLite cursor. Every failure before the PostgreSQL commit leaves nothing
there; every failure after it replays rows that are already there, which the upserts rewrite.

``SyncWorker`` loops over batches: it drains the backlog, then polls, and on a lost server
waits a bounded, doubling back-off before reconnecting.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from rig import __version__
from rig.fleet import pg_schema
from rig.fleet.target import masked
from rig.records import RecordStore
from rig.vocabulary import SyncedTable

log = logging.getLogger(__name__)

#: Log entries per batch: large enough to amortise a round trip, small enough that a batch
#: commits in well under a second on a Pi.
DEFAULT_BATCH = 2000
#: An idle pusher still tells the fleet it is there this often (``rig.benches.pushed_at``).
HEARTBEAT_S = 30.0


@dataclass(frozen=True)
class PushResult:
    """One batch pushed: how many rows, and the sequence numbers it covered."""

    rows: int
    first_seq: int
    last_seq: int


class Pusher:
    """One bench's store and one fleet database, over one connection (opened lazily)."""

    def __init__(self, store: RecordStore, conninfo: str, *, batch: int = DEFAULT_BATCH,
                 connect_timeout: float = 5.0, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.store = store
        self.conninfo = conninfo
        self.batch = batch
        self.connect_timeout = connect_timeout
        self.heartbeat_s = heartbeat_s
        self.bench_id = store.sync.bench_id()
        self.target = ""                       # user@host:port/dbname once connected
        self._conn: psycopg.Connection | None = None
        self._last_contact: float | None = None   # monotonic time of the last batch committed

    def describe(self) -> str:
        """The target as it may be printed (no password)."""
        return masked(self.conninfo)

    def connect(self) -> psycopg.Connection:
        """The open connection, opening it (and migrating the fleet schema) when needed."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(self.conninfo, connect_timeout=max(1, int(self.connect_timeout)),
                               application_name="rig sync", autocommit=True)
        try:
            pg_schema.migrate(conn, __version__)
        except BaseException:
            conn.close()
            raise
        info = conn.info
        self.target = f"{info.user}@{info.host}:{info.port}/{info.dbname}"
        self.store.sync.register(self.target)
        self._conn, self._last_contact = conn, None
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def backlog(self) -> int:
        """Log entries recorded here and not yet acknowledged by this target."""
        return self.store.sync.head() - self.store.sync.cursor(self.target)

    def push_once(self) -> PushResult | None:
        """Push the next batch; None when there was nothing to push. Raises psycopg.Error
        (the server went away) with nothing half-done."""
        conn = self.connect()
        local = self.store.sync.cursor(self.target)
        if self._idle(local):
            return None                          # idle: no PostgreSQL round trip at all
        with conn.transaction():
            remote = self._lock_bench(conn)
            start = min(local, remote)
            if start < self.store.sync.pruned_to():      # needs entries no longer logged
                start = self.store.sync.relog()
                remote = local = start
            batch = self.store.sync.batch(start, self.batch, pg_schema.COLUMNS)
            if batch is not None:
                self._write(conn, batch.rows)
            head = self.store.sync.head()
            conn.execute("UPDATE rig.benches SET pushed_seq = GREATEST(pushed_seq, %s), "
                         "head_seq = %s, pushed_at = now(), bench_name = %s, hostname = %s, "
                         "rig_version = %s WHERE bench_id = %s",
                         (batch.last_seq if batch else start, head,
                          self.store.sync.bench_name(), socket.gethostname(), __version__,
                          self.bench_id))
        self._last_contact = time.monotonic()
        if batch is None:
            if remote > local:
                self.store.sync.advance(self.target, remote)
            return None
        self.store.sync.advance(self.target, batch.last_seq)
        return PushResult(batch.count, batch.first_seq, batch.last_seq)

    def _idle(self, local: int) -> bool:
        """Nothing new since ``local``, the PostgreSQL cursor was read on this connection, and
        the fleet heard from this bench less than ``heartbeat_s`` ago (its page shows the time
        of the last contact: an idle bench is not a lagging one)."""
        return (self._last_contact is not None and self.store.sync.head() <= local
                and time.monotonic() - self._last_contact < self.heartbeat_s)

    def _lock_bench(self, conn: psycopg.Connection) -> int:
        """This bench's row, created if new and locked until the commit; its cursor."""
        conn.execute("INSERT INTO rig.benches (bench_id) VALUES (%s) ON CONFLICT DO NOTHING",
                     (self.bench_id,))
        return conn.execute("SELECT pushed_seq FROM rig.benches WHERE bench_id = %s "
                            "FOR UPDATE", (self.bench_id,)).fetchone()[0]

    def _write(self, conn: psycopg.Connection, rows: dict[SyncedTable, list[dict]]) -> None:
        """Upsert every row, parents first (SyncedTable's order)."""
        with conn.cursor() as cur:
            for table in SyncedTable:
                if rows.get(table):
                    columns = pg_schema.COLUMNS[table]
                    cur.executemany(pg_schema.upsert_sql(table),
                                    [(self.bench_id, *(r[c] for c in columns))
                                     for r in rows[table]])

    def drain(self) -> int:
        """Push until nothing is left; the rows pushed."""
        total = 0
        while (result := self.push_once()) is not None:
            total += result.rows
        return total


class SyncWorker:
    """The loop of ``rig sync`` (and of a thread in ``rig serve``): drain, poll, and on a
    failure wait ``min(max_backoff_s, first_backoff_s * 2**(n-1))`` after the n-th in a row."""

    def __init__(self, pusher: Pusher, *, poll_s: float = 1.0, first_backoff_s: float = 0.5,
                 max_backoff_s: float = 60.0, stop: threading.Event | None = None,
                 report: Callable[[str], None] = log.info) -> None:
        self.pusher = pusher
        self.poll_s = poll_s
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stop = stop or threading.Event()
        self.report = report
        self.failures = 0
        self.pushed = 0

    def backoff(self) -> float:
        """How long to wait after the current run of failures (bounded)."""
        return min(self.max_backoff_s, self.first_backoff_s * 2 ** max(0, self.failures - 1))

    def step(self) -> float:
        """One iteration; how long to wait before the next (0: more to push now)."""
        try:
            result = self.pusher.push_once()
        except (psycopg.Error, OSError) as exc:
            self.pusher.close()
            self.failures += 1
            why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
            if self.pusher.target:
                self.pusher.store.sync.failed(self.pusher.target, why)
            wait = self.backoff()
            self.report(f"sync to {self.pusher.describe()} failed ({why}); retry in {wait:g} s")
            return wait
        if self.failures:
            self.report(f"sync to {self.pusher.describe()} resumed")
            self.failures = 0
        if result is None:
            return self.poll_s
        self.pushed += result.rows
        return 0.0

    def run(self) -> None:
        """Until ``stop`` is set."""
        try:
            while not self.stop.is_set():
                wait = self.step()
                if wait:
                    self.stop.wait(wait)
        finally:
            self.pusher.close()


class BackgroundSync:
    """A SyncWorker on a thread of its own with its own store connection (``rig serve
    --sync-env VAR``): the server's requests and the pushes never wait on one lock."""

    def __init__(self, db_path: str, conninfo: str,
                 report: Callable[[str], None] = log.info) -> None:
        self.store = RecordStore(db_path, create=False)
        self.worker = SyncWorker(Pusher(self.store, conninfo), report=report)
        self.thread = threading.Thread(target=self.worker.run, name="rig-sync", daemon=True)

    def start(self) -> BackgroundSync:
        self.thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the batch in flight (it commits or rolls back), then close the store."""
        self.worker.stop.set()
        self.thread.join(timeout)
        self.store.close()
