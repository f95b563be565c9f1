"""Failed SADP ``update`` attempts per MAC, kept across invocations.

Why in the record store and not in memory: the firmware counts wrong ``update`` passwords and
locks the command after a few (6 on the documented firmware, for 30 minutes;
docs/hikvision-protocols.md §1.5). ``rig net set`` run twice, or a run after it, must see the
failures the earlier process spent, or together they would spend the lock. The count is rig's
own, so it is conservative: every attempt that did not end in a confirmed success counts
(a lost reply may have been a refusal). Only a success, or a reset or power cycle of the unit
that rig performed or was told of (``cleared``), starts it again, because only those end the
firmware's count. Its own module and table (not the ISAPI login ledger): a different lock, kept
by a different part of the firmware.
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.records.db import Database


@dataclass(frozen=True)
class SadpAttemptCount:
    """One MAC's failed ``update`` attempts since its last success or clear."""

    mac: str
    failures: int
    last_failure_at: str | None
    last_detail: str


class SadpAttempts:
    """The ``sadp_update_attempts`` table: one row per MAC that ever failed an ``update``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, mac: str) -> SadpAttemptCount:
        rows = self.db.read("SELECT * FROM sadp_update_attempts WHERE mac = ?", (mac,))
        if not rows:
            return SadpAttemptCount(mac, 0, None, "")
        row = rows[0]
        return SadpAttemptCount(mac, int(row["failures"]), row["last_failure_at"],
                                row["last_detail"])

    def failures(self, mac: str) -> int:
        return self.get(mac).failures

    def failed(self, mac: str, detail: str) -> int:
        """Count one failed attempt (written before the caller goes on); returns the new count.
        ``detail`` must never carry the password."""
        with self.db.write() as conn:
            now = self.db.now()
            conn.execute(
                "INSERT INTO sadp_update_attempts (mac, failures, last_failure_at, last_detail,"
                " updated_at) VALUES (?, 1, ?, ?, ?) ON CONFLICT (mac) DO UPDATE SET "
                "failures = failures + 1, last_failure_at = excluded.last_failure_at, "
                "last_detail = excluded.last_detail, updated_at = excluded.updated_at",
                (mac, now, detail, now))
            return int(conn.execute("SELECT failures FROM sadp_update_attempts WHERE mac = ?",
                                    (mac,)).fetchone()[0])

    def cleared(self, mac: str, why: str) -> None:
        """The firmware's count is back at zero: an accepted ``update``, or a reset or power
        cycle of the unit (``why`` says which)."""
        with self.db.write() as conn:
            conn.execute("UPDATE sadp_update_attempts SET failures = 0, last_detail = ?, "
                         "updated_at = ? WHERE mac = ?", (why, self.db.now(), mac))
