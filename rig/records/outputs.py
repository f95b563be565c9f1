"""The outputs ledger: every output the rig moves away from its rest state (a solenoid
energised, a port or a relay switched), written *before* it moves and cleared once it is back.

After a crash the open lines are exactly what may still be engaged: recovery makes them safe;
``rig power``, ``rig press`` and ``rig safe`` record their manual moves in the same ledger.
"""

from __future__ import annotations

from rig.records.db import Database
from rig.records.models import OutputEntry, join, output_from_row
from rig.vocabulary import OutputKind


class OutputsLedger:
    """The ``outputs`` table: one line per output engaged, closed when it is cleared."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def engaged(self, run_id: int, slot: str, kind: OutputKind, target: str,
                note: str = "") -> int:
        """Record an output about to leave its safe state — call it *before* switching, so a
        crash in between leaves an entry (making an already-safe output safe is harmless)."""
        if not kind or not target:
            raise ValueError("an output needs a kind and a target")
        with self.db.write() as conn:
            self.db.row(conn, "run", "runs", run_id)
            cursor = conn.execute("INSERT INTO outputs (run_id, slot, kind, target, since, note) "
                                  "VALUES (?, ?, ?, ?, ?, ?)",
                                  (run_id, str(slot), str(kind), target, self.db.now(), note))
            return int(cursor.lastrowid)

    def cleared(self, entry_id: int, note: str = "") -> bool:
        """Record an output back in its safe state. Returns False if it already was (clearing
        twice is fine: recovery and a ``finally`` may both do it)."""
        with self.db.write() as conn:
            row = self.db.row(conn, "output", "outputs", entry_id)
            if row["cleared_at"] is not None:
                return False
            conn.execute("UPDATE outputs SET cleared_at = ?, note = ? WHERE id = ?",
                         (self.db.now(), join(row["note"], note), entry_id))
            return True

    def clear_target(self, target: str, note: str) -> int:
        """Record ``target`` back at rest: clear every open line for it, whichever run left it
        (an operator's ``rig power on`` ends what a crashed run's power-off began). Returns how
        many lines were open."""
        with self.db.write() as conn:
            rows = conn.execute("SELECT id, note FROM outputs WHERE cleared_at IS NULL AND "
                                "target = ? ORDER BY id", (target,)).fetchall()
            now = self.db.now() if rows else ""
            for row in rows:
                conn.execute("UPDATE outputs SET cleared_at = ?, note = ? WHERE id = ?",
                             (now, join(row["note"], note), row["id"]))
            return len(rows)

    def open(self, run_id: int | None = None) -> list[OutputEntry]:
        """Outputs not yet cleared, oldest first: of one run, or of every run in the store
        (including runs of other live rig processes: make safe only those of dead runs)."""
        if run_id is None:
            rows = self.db.read("SELECT * FROM outputs WHERE cleared_at IS NULL ORDER BY id")
        else:
            rows = self.db.read("SELECT * FROM outputs WHERE cleared_at IS NULL AND run_id = ? "
                                "ORDER BY id", (run_id,))
        return [output_from_row(r) for r in rows]
