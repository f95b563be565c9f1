"""Shared by the record store's tests: a deterministic clock, an independent reader, a run."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rig.records import RecordStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """Each reading is one second after the previous: deterministic, ordered timestamps."""

    def __init__(self, start: datetime = T0, step: float = 1.0) -> None:
        self.now, self.step = start, timedelta(seconds=step)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += self.step
            return self.now


def peek(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read through a second, independent connection: sees only what was committed."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def new_run(store: RecordStore, bench: str = "bench-a") -> int:
    return store.runs.start_run(bench, method="hard", argv=["rig", "run"])
