"""The bench's side of the fleet sync: its identity, and the log of records to push.

How a change gets logged: triggers (``db.MIGRATIONS`` 9) add a ``sync_log`` row, with a
sequence number that only grows, inside the very transaction that inserts or updates a synced
record (rig.vocabulary.SyncedTable), whichever process writes it. So a record is in the log if
and only if it was committed, and the log's order is the order of the commits.

How it leaves: a pusher (rig.fleet.pusher) reads the log after its target's cursor, a batch at a
time, loads each named row *as it stands now* (a row changed twice in a batch is pushed once, in
its latest state; an older state never overwrites a newer one because a later change always has
a later sequence number), upserts them into PostgreSQL keyed by (bench id, local id), commits
there, and only then moves the cursor here (``advance``). A crash between the two commits
replays the batch: the upserts make that harmless.

The log does not grow for ever: once every target known here has pushed past an entry, the
entry goes (``advance`` prunes in its own transaction). A target that starts from before what
is left (a new server, or one restored from an old dump) gets every synced row logged once
more (``relog``), so it still receives the whole history; a target that is never coming back
holds the log until it is forgotten (``forget``).

Storage only: where a target is and how often to push are the pusher's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rig.records.db import Database
from rig.vocabulary import SyncedTable


@dataclass(frozen=True)
class SyncBatch:
    """Records changed after a cursor: the rows to push per table (parents first), and the
    sequence number the cursor moves to once they are pushed."""

    first_seq: int
    last_seq: int
    rows: dict[SyncedTable, list[dict[str, Any]]]

    @property
    def count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


@dataclass(frozen=True)
class SyncTarget:
    """One target's cursor as stored here."""

    target: str
    pushed_to: int
    pushed_at: str | None
    last_error: str


class SyncLog:
    """The bench identity, the sync log and the per-target cursors, on one Database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def bench_id(self) -> str:
        """This store's UUID, made once when the store reached schema version 9."""
        return self.db.read("SELECT bench_id FROM bench_identity WHERE id = 1")[0][0]

    def bench_name(self) -> str:
        """The bench name of the latest run ('' before any): runs carry it."""
        rows = self.db.read("SELECT bench_name FROM runs ORDER BY id DESC LIMIT 1")
        return rows[0][0] if rows else ""

    def head(self) -> int:
        """The latest sequence number ever logged (0 when none), pruned or not."""
        return self.db.read("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE "
                            "name = 'sync_log'), 0)")[0][0]

    def register(self, target: str) -> None:
        """Keep the log for ``target`` from now on (its cursor starts at 0): entries it has not
        pushed are not pruned for the others."""
        with self.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO sync_targets (target, updated_at) "
                         "VALUES (?, ?)", (target, self.db.now()))

    def cursor(self, target: str) -> int:
        """What ``target`` has acknowledged: everything up to this sequence number."""
        rows = self.db.read("SELECT pushed_to FROM sync_targets WHERE target = ?", (target,))
        return rows[0][0] if rows else 0

    def targets(self) -> list[SyncTarget]:
        return [SyncTarget(r["target"], r["pushed_to"], r["pushed_at"], r["last_error"])
                for r in self.db.read("SELECT * FROM sync_targets ORDER BY target")]

    def batch(self, after: int, limit: int,
              columns: dict[SyncedTable, Sequence[str]]) -> SyncBatch | None:
        """Up to ``limit`` log entries after ``after``, their rows loaded in one consistent
        read (``columns`` per table: what the target keeps); None when nothing is new."""
        with self.db.snapshot() as conn:
            log = conn.execute("SELECT seq, tbl, row_id FROM sync_log WHERE seq > ? "
                               "ORDER BY seq LIMIT ?", (after, limit)).fetchall()
            if not log:
                return None
            wanted: dict[SyncedTable, dict[Any, None]] = {t: {} for t in SyncedTable}
            for entry in log:
                wanted[SyncedTable(entry["tbl"])][entry["row_id"]] = None
            rows = {table: self._load(conn, table, list(ids), columns[table])
                    for table, ids in wanted.items() if ids}
        return SyncBatch(log[0]["seq"], log[-1]["seq"], rows)

    @staticmethod
    def _load(conn: Any, table: SyncedTable, ids: list[Any],
              columns: Sequence[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), 500):          # SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            out += [dict(r) for r in conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE id IN ({marks}) ORDER BY id",
                chunk)]
        return out

    def pruned_to(self) -> int:
        """Entries up to this sequence number are gone from the log (0: none pruned)."""
        rows = self.db.read("SELECT (SELECT MIN(seq) FROM sync_log), "
                            "(SELECT seq FROM sqlite_sequence WHERE name = 'sync_log')")
        first, top = rows[0][0], rows[0][1] or 0
        return top if first is None else first - 1

    def relog(self) -> int:
        """Log every synced row once more (a target that needs what was pruned gets it all);
        the head before, from where such a target then starts."""
        with self.db.write() as conn:
            head = self._sequence(conn)
            for table in SyncedTable:
                conn.execute(f"INSERT INTO sync_log (tbl, row_id) SELECT '{table}', id "
                             f"FROM {table} ORDER BY id")
            return head

    @staticmethod
    def _sequence(conn: Any) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'sync_log'").fetchone()
        return row[0] if row else 0

    def forget(self, target: str) -> bool:
        """Stop keeping the log for ``target`` (a server gone for good); False if unknown."""
        with self.db.write() as conn:
            known = conn.execute("DELETE FROM sync_targets WHERE target = ?",
                                 (target,)).rowcount == 1
            _prune(conn)
            return known

    def advance(self, target: str, to_seq: int) -> None:
        """``target`` committed everything up to ``to_seq`` (never moves a cursor back); the
        entries every target has pushed are pruned."""
        with self.db.write() as conn:
            now = self.db.now()
            conn.execute("INSERT INTO sync_targets (target, pushed_to, pushed_at, updated_at) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (target) DO UPDATE SET "
                         "pushed_to = max(pushed_to, excluded.pushed_to), "
                         "pushed_at = excluded.pushed_at, last_error = '', "
                         "updated_at = excluded.updated_at", (target, to_seq, now, now))
            _prune(conn)

    def failed(self, target: str, error: str) -> None:
        """The last attempt to push to ``target`` failed (``error`` holds no credential)."""
        with self.db.write() as conn:
            now = self.db.now()
            conn.execute("INSERT INTO sync_targets (target, last_error, updated_at) "
                         "VALUES (?, ?, ?) ON CONFLICT (target) DO UPDATE SET "
                         "last_error = excluded.last_error, updated_at = excluded.updated_at",
                         (target, error[:500], now))


def _prune(conn: Any) -> None:
    """Drop the entries every target has pushed (none while no target is known)."""
    conn.execute("DELETE FROM sync_log WHERE seq <= (SELECT MIN(pushed_to) FROM sync_targets)")
