"""Failed logins per unit, across runs: the count a camera keeps toward its illegal-login lock,
as far as the rig knows it (docs/hikvision-protocols.md §2.5).

A camera locks a client address after a few failed logins (the firmware profile's
``lockout_attempts``) for ``lockout_seconds``, and the bench controller is one address: a lock
blocks the rig from that unit for the whole lock time. Each run spends at most one login, but
runs add up, so the count must outlive the process.

Two halves, as in ``health``: ``LoginBudget`` decides (pure: a unit's record, the time and
SADP's DeviceLock → may one login be spent now, and if not, why), ``LoginLedger`` stores each
login's outcome (a failure adds one, a success clears the count) and operator clears.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from rig.records.db import Database
from rig.records.models import join, ts


@dataclass(frozen=True)
class LoginRecord:
    """One unit's failed logins as stored (``updated_at`` None: never recorded)."""

    mac: str
    count: int
    first_failure: datetime | None
    last_failure: datetime | None
    locked_until: datetime | None     # when a lock the unit reported ends
    note: str
    updated_at: datetime | None


def unknown_unit(mac: str) -> LoginRecord:
    """A unit the store has never seen a failed login from."""
    return LoginRecord(mac, 0, None, None, None, "", None)


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M UTC")


@dataclass(frozen=True)
class LoginBudget:
    """How many failed logins a unit may take: one less than its firmware's lockout, so a login
    from the rig never locks it (and one more from anyone still does not need to)."""

    lockout_attempts: int
    lockout_seconds: float
    cleared_by_power_cycle: bool = False

    @property
    def allowed(self) -> int:
        """Failed logins the unit may have: the lockout minus one."""
        return max(self.lockout_attempts - 1, 0)

    def count(self, record: LoginRecord, now: datetime) -> int:
        """The failures that still count: none once a lock the unit reported has run out (the
        camera clears its count with the lock)."""
        if record.locked_until is not None and now >= record.locked_until:
            return 0
        return record.count

    def refusal(self, record: LoginRecord, now: datetime,
                device_lock: bool | None = None) -> str | None:
        """None when one login may be spent now; otherwise why not, and how long to wait."""
        minutes = f"{self.lockout_seconds / 60:g} min"
        if device_lock:
            until = now + timedelta(seconds=self.lockout_seconds)
            return (f"unit {record.mac} is locked: SADP reports DeviceLock=true, so no login "
                    f"is sent; a lock lasts {minutes}: wait until {_clock(until)} at the latest")
        if record.locked_until is not None and now < record.locked_until:
            return (f"unit {record.mac} is locked: it refused logins after failed attempts "
                    f"until {_clock(record.locked_until)}; no login is sent before then")
        count = self.count(record, now)
        if count + 1 <= self.allowed:
            return None
        cycle = ("a power cycle clears it (firmware profile)" if self.cleared_by_power_cycle
                 else "waiting or a power cycle is not known to clear it")
        return (f"unit {record.mac} is nearly locked: it has {count} failed login(s) of the "
                f"{self.lockout_attempts} its firmware allows before it locks logins for "
                f"{minutes}, so no login is sent; {cycle}: fix the password, then clear the "
                f"count with 'rig logins clear {record.mac} --by NAME'")


class LoginLedger:
    """The ``failed_logins`` table: one row per unit (by MAC)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, mac: str) -> LoginRecord:
        rows = self.db.read("SELECT * FROM failed_logins WHERE mac = ?", (mac,))
        return _from_row(rows[0]) if rows else unknown_unit(mac)

    def counted(self) -> list[LoginRecord]:
        """Every unit with failed logins on record, by MAC."""
        rows = self.db.read("SELECT * FROM failed_logins WHERE count > 0 ORDER BY mac")
        return [_from_row(r) for r in rows]

    def now(self) -> datetime:
        """The store's clock, as the policy compares it with the records."""
        stamp = ts(self.db.now())
        assert stamp is not None
        return stamp

    def failed(self, mac: str, *, camera_count: int | None = None,
               locked_for: float | None = None, note: str = "") -> LoginRecord:
        """One failed login: the count goes up by one (or to what the camera says it counts,
        if more); ``locked_for`` seconds: the unit reported its lock."""
        with self.db.write() as conn:
            now = self.db.now()
            at = ts(now)
            assert at is not None
            old = _row(conn, mac)
            if old.locked_until is not None and at >= old.locked_until:   # the lock ran out
                old = unknown_unit(mac)
            count = max(old.count + 1, camera_count or 0)
            until = at + timedelta(seconds=locked_for) if locked_for else old.locked_until
            first = old.first_failure.isoformat() if old.first_failure and old.count else now
            _store(conn, mac, count, first, now, until, note, now)
        return self.get(mac)

    def succeeded(self, mac: str) -> None:
        """A login that worked: the camera's count is back at zero."""
        self._reset(mac, "")

    def clear(self, mac: str, by: str, note: str = "") -> LoginRecord:
        """Operator action: the unit's count is known to be clear (saying who says so)."""
        if not by:
            raise ValueError("say who does this (by=...)")
        self._reset(mac, join(f"cleared by {by}", note, sep=": "))
        return self.get(mac)

    def power_cycled(self, mac: str) -> None:
        """The unit booted after a power cycle, which its profile says clears the count."""
        if self.get(mac).count:
            self._reset(mac, "cleared by a power cycle (firmware profile)")

    def _reset(self, mac: str, note: str) -> None:
        with self.db.write() as conn:
            now = self.db.now()
            _store(conn, mac, 0, None, None, None, note, now)


def _row(conn: sqlite3.Connection, mac: str) -> LoginRecord:
    row = conn.execute("SELECT * FROM failed_logins WHERE mac = ?", (mac,)).fetchone()
    return _from_row(row) if row else unknown_unit(mac)


def _from_row(r: sqlite3.Row) -> LoginRecord:
    return LoginRecord(r["mac"], r["count"], ts(r["first_failure"]), ts(r["last_failure"]),
                       ts(r["locked_until"]), r["note"], ts(r["updated_at"]))


def _store(conn: sqlite3.Connection, mac: str, count: int, first: str | None,
           last: str | None, until: datetime | None, note: str, now: str) -> None:
    conn.execute("""INSERT INTO failed_logins (mac, count, first_failure, last_failure,
                        locked_until, note, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (mac) DO UPDATE SET count = excluded.count,
                        first_failure = excluded.first_failure,
                        last_failure = excluded.last_failure,
                        locked_until = excluded.locked_until, note = excluded.note,
                        updated_at = excluded.updated_at""",
                 (mac, count, first, last, until.isoformat() if until else None, note, now))
