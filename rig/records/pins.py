"""Identities pinned to slots: the serial or MAC an operator scanned (a keyboard-wedge barcode
scanner on the dashboard) for the unit just put in a slot, expected by the slot's next run.

Why a store of its own and not the bench file: a pin is about one unit for one run, made at the
bench by whoever holds the scanner, and it is history (who pinned what, when, and which run used
it). A pin is open until a run takes it (``take``, in that run's records) or an operator clears
it; pinning again replaces the open pin.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from rig.records.db import Database


@dataclass(frozen=True)
class SlotPin:
    """One pin: exactly one of ``mac`` and ``serial``."""

    id: int
    bench_name: str
    slot: str
    mac: str | None
    serial: str | None
    pinned_by: str
    pinned_at: str
    cleared_by: str | None = None
    cleared_at: str | None = None
    used_by_run: int | None = None


def _pin(row: sqlite3.Row) -> SlotPin:
    return SlotPin(row["id"], row["bench_name"], row["slot"], row["mac"], row["serial"],
                   row["pinned_by"], row["pinned_at"], row["cleared_by"], row["cleared_at"],
                   row["used_by_run"])


_OPEN = "bench_name = ? AND cleared_at IS NULL AND used_by_run IS NULL"


class SlotPins:
    """The ``slot_pins`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def pin(self, bench_name: str, slot: str, *, by: str, mac: str | None = None,
            serial: str | None = None) -> SlotPin:
        """Pin ``mac`` or ``serial`` (one of them) to a slot, replacing its open pin."""
        if (mac is None) == (serial is None):
            raise ValueError("pin a MAC or a serial (one of them)")
        if not by:
            raise ValueError("say who pins it (by=...)")
        with self.db.write() as conn:
            now = self.db.now()
            conn.execute(f"UPDATE slot_pins SET cleared_by = ?, cleared_at = ? WHERE {_OPEN} "
                         "AND slot = ?", (f"{by} (replaced)", now, bench_name, str(slot)))
            cursor = conn.execute("INSERT INTO slot_pins (bench_name, slot, mac, serial, "
                                  "pinned_by, pinned_at) VALUES (?, ?, ?, ?, ?, ?)",
                                  (bench_name, str(slot), mac, serial, by, now))
            row = conn.execute("SELECT * FROM slot_pins WHERE id = ?",
                               (cursor.lastrowid,)).fetchone()
        return _pin(row)

    def clear(self, bench_name: str, slot: str, *, by: str) -> SlotPin | None:
        """Clear a slot's open pin; the pin cleared, or None when there was none."""
        with self.db.write() as conn:
            row = conn.execute(f"SELECT * FROM slot_pins WHERE {_OPEN} AND slot = ?",
                               (bench_name, str(slot))).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE slot_pins SET cleared_by = ?, cleared_at = ? WHERE id = ?",
                         (by, self.db.now(), row["id"]))
        return _pin(row)

    def open(self, bench_name: str) -> dict[str, SlotPin]:
        """The bench's open pins by slot."""
        rows = self.db.read(f"SELECT * FROM slot_pins WHERE {_OPEN} ORDER BY id", (bench_name,))
        return {r["slot"]: _pin(r) for r in rows}

    def take(self, bench_name: str, slots: list[str], run_id: int) -> dict[str, SlotPin]:
        """The open pins of ``slots``, marked used by ``run_id`` (one run uses a pin: the next
        unit in the slot is another one)."""
        with self.db.write() as conn:
            marks = ", ".join("?" * len(slots)) or "NULL"
            rows = conn.execute(f"SELECT * FROM slot_pins WHERE {_OPEN} AND slot IN ({marks})",
                                (bench_name, *slots)).fetchall()
            for row in rows:
                conn.execute("UPDATE slot_pins SET used_by_run = ? WHERE id = ?",
                             (run_id, row["id"]))
        return {r["slot"]: _pin(r) for r in rows}

    def history(self, bench_name: str, slot: str, limit: int = 20) -> list[SlotPin]:
        """A slot's pins, newest first."""
        rows = self.db.read("SELECT * FROM slot_pins WHERE bench_name = ? AND slot = ? "
                            "ORDER BY id DESC LIMIT ?", (bench_name, str(slot), limit))
        return [_pin(r) for r in rows]
