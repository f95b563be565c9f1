"""What the fleet page shows, read from PostgreSQL: each bench with the lag of its sync, and
one bench's slots as last synced (the latest unit seen in each slot, and its latest slot
event: an out-of-service slot says so)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True)
class BenchLine:
    """One bench on the fleet page."""

    bench_id: str
    bench_name: str
    hostname: str
    runs: int
    units: int
    last_run_at: datetime | None
    pushed_at: datetime | None      # the bench's last contact (a batch, or an idle heartbeat)
    seconds_since_contact: float | None
    entries_behind: int             # log entries the bench had not yet pushed at that contact


def bench_lines(conn: psycopg.Connection) -> list[BenchLine]:
    """Every bench that ever pushed, by name, with its counts and its sync's lag."""
    rows = conn.execute(
        """SELECT b.bench_id::text AS bench_id, b.bench_name, b.hostname, b.pushed_at,
                  EXTRACT(EPOCH FROM now() - b.pushed_at)::float8 AS since,
                  GREATEST(b.head_seq - b.pushed_seq, 0) AS behind,
                  (SELECT COUNT(*) FROM rig.runs r WHERE r.bench_id = b.bench_id) AS runs,
                  (SELECT COUNT(*) FROM rig.units u WHERE u.bench_id = b.bench_id) AS units,
                  (SELECT MAX(started_at) FROM rig.runs r WHERE r.bench_id = b.bench_id)
                      AS last_run_at
           FROM rig.benches b ORDER BY b.bench_name, b.bench_id""").fetchall()
    return [BenchLine(r["bench_id"], r["bench_name"], r["hostname"], r["runs"], r["units"],
                      r["last_run_at"], r["pushed_at"], r["since"], r["behind"]) for r in rows]


def slots(conn: psycopg.Connection, bench_id: str) -> list[dict[str, Any]]:
    """Per slot of the bench: its latest unit (run, state, verdict, identity, times) and its
    latest slot event, in slot order (numbers as numbers)."""
    units = {r["slot"]: r for r in conn.execute(
        """SELECT DISTINCT ON (slot) slot, run_id, state, verdict, reason,
                  COALESCE(serial, expected_serial) AS serial, COALESCE(mac, expected_mac) AS mac,
                  started_at, finished_at
           FROM rig.units WHERE bench_id = %s ORDER BY slot, run_id DESC, id DESC""",
        (bench_id,))}
    events = {r["slot"]: r for r in conn.execute(
        """SELECT DISTINCT ON (slot) slot, event, reason, at FROM rig.slot_events
           WHERE bench_id = %s ORDER BY slot, id DESC""", (bench_id,))}
    names = sorted(set(units) | set(events), key=_slot_order)
    return [{"slot": name, "unit": units.get(name), "event": events.get(name)}
            for name in names]


def _slot_order(slot: str) -> tuple[int, str]:
    return (int(slot), "") if slot.isdigit() else (1 << 30, slot)


def known_bench(conn: psycopg.Connection, bench_id: str) -> str | None:
    """The bench's name, or None when the fleet has no such bench (or ``bench_id`` is not a
    UUID at all)."""
    row = conn.execute("SELECT bench_name FROM rig.benches WHERE bench_id::text = %s",
                       (bench_id,)).fetchone()
    return None if row is None else row["bench_name"]
