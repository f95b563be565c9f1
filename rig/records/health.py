"""Slot health (LAVA's health check idea): consecutive bench faults per (bench, slot), and a slot
taken out of service at a limit until an operator clears it, so one broken solenoid does not
fail every unit put in that slot.

Two halves: ``SlotHealthPolicy`` decides (pure: previous status + outcome → new status and the
events to record; no database), ``SlotHealth`` stores what it decided and the operators' actions.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime

from rig.records.db import Database
from rig.records.models import SlotEvent, SlotStatus, join, slot_event_from_row, slot_from_row, ts
from rig.vocabulary import Verdict

#: Consecutive bench faults after which a slot is taken out of service.
DEFAULT_BENCH_FAULT_LIMIT = 3

#: Verdicts from a unit the rig actually worked on: only these move the slot health counter
#: (an interrupted, skipped or out-of-service unit says nothing about the slot).
HEALTH_VERDICTS = frozenset({Verdict.FACTORY_DEFAULT, Verdict.PROVISIONED,
                             Verdict.HANDOVER_FAILED, Verdict.NOT_DEFAULT, Verdict.UNREACHABLE,
                             Verdict.BENCH_FAULT})


@dataclass(frozen=True)
class HealthEvent:
    """A line to add to a slot's health history."""

    event: str                 # ok | bench-fault | out-of-service | cleared | taken-out
    reason: str
    actor: str = "rig"


@dataclass(frozen=True)
class SlotChange:
    """What one outcome does to a slot: its status afterwards and the events that say why."""

    status: SlotStatus
    events: tuple[HealthEvent, ...]


@dataclass(frozen=True)
class SlotHealthPolicy:
    """When a slot goes out of service, and which verdicts count towards it."""

    bench_fault_limit: int = DEFAULT_BENCH_FAULT_LIMIT
    counted: frozenset[Verdict] = HEALTH_VERDICTS

    def __post_init__(self) -> None:
        if self.bench_fault_limit < 1:
            raise ValueError("bench_fault_limit must be at least 1")

    def counts(self, verdict: Verdict) -> bool:
        """Whether a unit's verdict moves its slot's counter."""
        return verdict in self.counted

    def after(self, previous: SlotStatus, bench_fault: bool, reason: str,
              at: datetime) -> SlotChange:
        """The slot after one outcome: a bench fault adds one to the count, anything else resets
        it; at the limit the slot goes out of service, and only an operator brings it back."""
        count = previous.consecutive_bench_faults + 1 if bench_fault else 0
        out = previous.out_of_service
        kept = previous.reason if out else ""
        events = [HealthEvent("bench-fault" if bench_fault else "ok", reason)]
        if bench_fault and count >= self.bench_fault_limit and not out:
            out = True
            kept = f"{count} consecutive bench faults; last: {reason}"
            events.append(HealthEvent("out-of-service", kept))
        status = replace(previous, consecutive_bench_faults=count, out_of_service=out,
                         reason=kept or reason, updated_at=at)
        return SlotChange(status, tuple(events))


def unknown_slot(bench_name: str, slot: str) -> SlotStatus:
    """A slot the store has never heard of: healthy."""
    return SlotStatus(bench_name, str(slot), 0, False, "", None)


class SlotHealth:
    """Slot health as stored: the ``slot_health`` row per slot and its ``slot_events``."""

    def __init__(self, db: Database, policy: SlotHealthPolicy | None = None) -> None:
        self.db = db
        self.policy = policy or SlotHealthPolicy()

    def record_outcome(self, bench_name: str, slot: str, bench_fault: bool, reason: str,
                       threshold: int | None = None) -> SlotStatus:
        """Count a bench fault (or reset the count on any other outcome) for a slot; at
        ``threshold`` consecutive bench faults (default: the policy's limit, 3) the slot goes out
        of service until ``clear``. ``RunLog.finish_unit`` already does this for each unit."""
        policy = self.policy
        if threshold is not None:
            if threshold < 1:
                raise ValueError("threshold must be at least 1")
            policy = replace(policy, bench_fault_limit=threshold)
        with self.db.write() as conn:
            self._record(conn, policy, bench_name, str(slot), bench_fault, reason, self.db.now())
        return self.status(bench_name, slot)

    def record_verdict(self, conn: sqlite3.Connection, bench_name: str, slot: str,
                       verdict: Verdict, bench_fault: bool, reason: str, now: str) -> None:
        """Inside the caller's write transaction: count a unit's verdict for its slot, if the
        policy counts that verdict (the unit and its slot's health commit together)."""
        if self.policy.counts(verdict):
            self._record(conn, self.policy, bench_name, str(slot), bench_fault, reason, now)

    def _record(self, conn: sqlite3.Connection, policy: SlotHealthPolicy, bench_name: str,
                slot: str, bench_fault: bool, reason: str, now: str) -> None:
        row = conn.execute("SELECT * FROM slot_health WHERE bench_name = ? AND slot = ?",
                           (bench_name, slot)).fetchone()
        previous = slot_from_row(row) if row else unknown_slot(bench_name, slot)
        change = policy.after(previous, bench_fault, reason, ts(now))
        _store(conn, change, now)

    def status(self, bench_name: str, slot: str) -> SlotStatus:
        """A slot's health; a slot never recorded is healthy (``updated_at`` None)."""
        rows = self.db.read("SELECT * FROM slot_health WHERE bench_name = ? AND slot = ?",
                            (bench_name, str(slot)))
        return slot_from_row(rows[0]) if rows else unknown_slot(bench_name, slot)

    def out_of_service(self, bench_name: str) -> list[SlotStatus]:
        """The bench's slots out of service, by slot name."""
        rows = self.db.read("SELECT * FROM slot_health WHERE bench_name = ? "
                            "AND out_of_service = 1 ORDER BY slot", (bench_name,))
        return [slot_from_row(r) for r in rows]

    def clear(self, bench_name: str, slot: str, by: str, note: str = "") -> SlotStatus:
        """Operator action: put a slot back in service (count reset), saying who did it."""
        return self._operator(bench_name, str(slot), False, by, note, "cleared",
                              "returned to service")

    def take_out(self, bench_name: str, slot: str, by: str, note: str = "") -> SlotStatus:
        """Operator action: take a slot out of service (a solenoid that sticks, a loose cable)."""
        return self._operator(bench_name, str(slot), True, by, note, "taken-out",
                              "taken out of service")

    def _operator(self, bench_name: str, slot: str, out: bool, by: str, note: str, event: str,
                  what: str) -> SlotStatus:
        if not by:
            raise ValueError("say who does this (by=...)")
        with self.db.write() as conn:
            now = self.db.now()
            status = SlotStatus(bench_name, slot, 0, out,
                                join(f"{what} by {by} at {now}", note, sep=": "), ts(now))
            _store(conn, SlotChange(status, (HealthEvent(event, note, by),)), now)
        return self.status(bench_name, slot)

    def events(self, bench_name: str, slot: str, limit: int = 50) -> list[SlotEvent]:
        """The slot's health history, newest first."""
        rows = self.db.read("SELECT * FROM slot_events WHERE bench_name = ? AND slot = ? "
                            "ORDER BY id DESC LIMIT ?", (bench_name, str(slot), limit))
        return [slot_event_from_row(r) for r in rows]


def _store(conn: sqlite3.Connection, change: SlotChange, now: str) -> None:
    """Write a decided change: the slot's row, then its events (all stamped ``now``)."""
    s = change.status
    conn.execute("""INSERT INTO slot_health (bench_name, slot, consecutive_bench_faults,
                        out_of_service, reason, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (bench_name, slot) DO UPDATE SET
                        consecutive_bench_faults = excluded.consecutive_bench_faults,
                        out_of_service = excluded.out_of_service,
                        reason = excluded.reason, updated_at = excluded.updated_at""",
                 (s.bench_name, s.slot, s.consecutive_bench_faults, int(s.out_of_service),
                  s.reason, now))
    for e in change.events:
        conn.execute("INSERT INTO slot_events (bench_name, slot, at, event, reason, actor) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (s.bench_name, s.slot, now, e.event, e.reason,
                                                   e.actor))
