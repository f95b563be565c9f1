"""The notification outbox: events to tell webhooks about, kept in the record store with each
webhook's delivery state, so that none is lost when a receiver is down or rig restarts.

How an event gets here: triggers (``db.MIGRATIONS`` 6) add a row to ``outbox`` inside the very
transaction that records its cause (a run closed, a bench-fault verdict, a slot taken out of
service), whichever process writes it; ``PayloadHook``, the store's ``before_commit`` hook, then
fills in the event's document in that same transaction. So an event exists if and only if its
cause was committed: a crash can lose neither one without the other.

How it leaves: a sender (rig.notify.sender) registers each webhook as a *target*, queues for it
the events recorded since (``enqueue``), ``claim``s a few at a time (one write transaction: two
senders, say ``rig run`` and ``rig serve``, never claim the same row; a claim is a lease, so a
sender that died mid-request leaves it to be claimed again), and records the outcome:
``delivered`` after a 2xx, else ``retry`` at a later time. Delivery is at least once: a crash
between the receiver's 2xx and our commit sends that event again, with the same event id.

Storage only: which events a webhook wants and how long to wait before a retry are the
sender's; the words are rig.vocabulary's.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rig.records.db import Database
from rig.vocabulary import PASSING_VERDICTS, DeliveryState, NotifyEvent

#: Non-passing units listed in a run-finished event (the counts cover all of them).
MAX_LISTED_UNITS = 20


@dataclass(frozen=True)
class OutboxEvent:
    """One event as claimed for one target: what to send, and how many attempts went before."""

    id: int
    event_id: str            # random, stable across retries: the receiver's idempotency key
    kind: NotifyEvent
    created_at: str
    bench_name: str
    payload: dict[str, Any]
    target: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class Delivery:
    """One event's delivery state for one target (for tests, the API and the metrics)."""

    event: int
    target: str
    state: DeliveryState
    attempts: int
    next_attempt_at: str
    last_error: str
    delivered_at: str | None


# --- in the writer's transaction: the event's document --------------------------------------------

class PayloadHook:
    """The ``before_commit`` hook: fill in the document of every event the triggers added in
    this transaction. One indexed probe per write when there is none."""

    def __init__(self) -> None:
        self.ready = False       # the outbox table exists (a store being migrated may lack it)

    def __call__(self, conn: sqlite3.Connection) -> None:
        if not self.ready:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                            "name = 'outbox'").fetchone() is None:
                return
            self.ready = True
        for row in conn.execute("SELECT * FROM outbox WHERE payload IS NULL").fetchall():
            conn.execute("UPDATE outbox SET payload = ? WHERE id = ?",
                         (json.dumps(event_document(conn, row), ensure_ascii=False), row["id"]))


def event_document(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    """What a webhook receives (before its format): the event and the records it is about, as
    they stand in this transaction."""
    kind = NotifyEvent(row["kind"])
    head = {"event": kind.value, "event_id": row["event_id"], "at": row["created_at"],
            "bench": row["bench_name"]}
    if kind is NotifyEvent.RUN_FINISHED:
        return head | _run_document(conn, row["run_id"])
    if kind is NotifyEvent.BENCH_FAULT:
        unit = conn.execute("SELECT * FROM units WHERE id = ?", (row["unit_id"],)).fetchone()
        return head | {"run": {"id": row["run_id"]}, "slot": row["slot"],
                       "unit": _unit_document(unit)}
    event = conn.execute("SELECT * FROM slot_events WHERE bench_name = ? AND slot = ? AND "
                         "event IN ('out-of-service', 'taken-out') ORDER BY id DESC LIMIT 1",
                         (row["bench_name"], row["slot"])).fetchone()
    health = conn.execute("SELECT * FROM slot_health WHERE bench_name = ? AND slot = ?",
                          (row["bench_name"], row["slot"])).fetchone()
    return head | {"slot": row["slot"],
                   "reason": health["reason"] if health else (event["reason"] if event else ""),
                   "by": event["actor"] if event else "",
                   "consecutive_bench_faults":
                       health["consecutive_bench_faults"] if health else 0}


def _run_document(conn: sqlite3.Connection, run_id: int) -> dict[str, Any]:
    run = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    units = conn.execute("SELECT * FROM units WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
    counts: dict[str, int] = {}
    for unit in units:
        counts[unit["verdict"]] = counts.get(unit["verdict"], 0) + 1
    problems = [u for u in units if u["verdict"] not in PASSING_VERDICTS]
    return {"run": {"id": run["id"], "status": run["status"], "method": run["method"],
                    "started_at": run["started_at"], "finished_at": run["finished_at"],
                    "operator": run["operator"], "note": run["note"]},
            "units": len(units), "counts": counts,
            "problems": [_unit_document(u) for u in problems[:MAX_LISTED_UNITS]]}


def _unit_document(unit: sqlite3.Row) -> dict[str, Any]:
    return {"id": unit["id"], "slot": unit["slot"], "verdict": unit["verdict"],
            "fault": unit["fault"], "check": unit["check_name"], "reason": unit["reason"],
            "mac": unit["mac"] or unit["expected_mac"],
            "serial": unit["serial"] or unit["expected_serial"]}


# --- the senders' side ----------------------------------------------------------------------------

class Outbox:
    """Targets, their queues and delivery states, on one Database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _after(self, now: str, seconds: float) -> str:
        """``now`` plus ``seconds``, as stored (ISO 8601 UTC text compares in time order)."""
        return (datetime.fromisoformat(now) + timedelta(seconds=seconds)).isoformat(
            timespec="microseconds")

    def register(self, target: str, bench_name: str) -> None:
        """Know ``target`` from now on: it is sent the events recorded after its first
        registration (not a store's whole history), and after that nothing is skipped, even
        while no sender runs."""
        with self.db.write() as conn:
            last = conn.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0]
            conn.execute("INSERT OR IGNORE INTO outbox_targets (target, bench_name, since, "
                         "queued_to, created_at) VALUES (?, ?, ?, ?, ?)",
                         (target, bench_name, last, last, self.db.now()))

    def enqueue(self, target: str, kinds: Iterable[NotifyEvent]) -> int:
        """Queue for ``target`` the new events of its bench and of ``kinds``; how many."""
        wanted = [NotifyEvent(k).value for k in kinds]
        marks = ", ".join("?" * len(wanted)) or "NULL"
        news = self.db.read("SELECT (SELECT COALESCE(MAX(id), 0) FROM outbox) > queued_to "
                            "FROM outbox_targets WHERE target = ?", (target,))
        if news and not news[0][0]:
            return 0                  # nothing new: no write transaction (an idle poll is cheap)
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM outbox_targets WHERE target = ?",
                               (target,)).fetchone()
            if row is None:
                raise LookupError(f"target {target} is not registered")
            top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0]
            cursor = conn.execute(
                f"""INSERT OR IGNORE INTO outbox_deliveries (event, target, state,
                        next_attempt_at)
                    SELECT id, ?, 'pending', created_at FROM outbox
                    WHERE id > ? AND id <= ? AND bench_name = ? AND kind IN ({marks})""",
                (target, row["queued_to"], top, row["bench_name"], *wanted))
            conn.execute("UPDATE outbox_targets SET queued_to = ? WHERE target = ?",
                         (top, target))
            return cursor.rowcount

    def claim(self, target: str, owner: str, lease_s: float, limit: int = 10
              ) -> list[OutboxEvent]:
        """Take up to ``limit`` due deliveries of ``target`` (pending and due, or claimed by a
        sender whose lease ran out), oldest event first, for ``lease_s`` seconds."""
        if not self.db.read("SELECT 1 FROM outbox_deliveries WHERE target = ? AND state != "
                            "'delivered' AND next_attempt_at <= ? LIMIT 1",
                            (target, self.db.now())):
            return []                 # nothing due: no write transaction
        with self.db.write() as conn:
            now = self.db.now()
            rows = conn.execute(
                """SELECT o.*, d.attempts FROM outbox_deliveries d JOIN outbox o
                       ON o.id = d.event
                   WHERE d.target = ? AND d.state != 'delivered' AND d.next_attempt_at <= ?
                     AND (d.state = 'pending' OR d.claimed_until <= ?)
                   ORDER BY d.event LIMIT ?""", (target, now, now, limit)).fetchall()
            until = self._after(now, lease_s)
            for row in rows:
                conn.execute("UPDATE outbox_deliveries SET state = 'sending', claimed_by = ?, "
                             "claimed_until = ?, next_attempt_at = ? "
                             "WHERE event = ? AND target = ?",
                             (owner, until, until, row["id"], target))
            return [OutboxEvent(r["id"], r["event_id"], NotifyEvent(r["kind"]),
                                r["created_at"], r["bench_name"],
                                json.loads(r["payload"] or "{}"), target, r["attempts"])
                    for r in rows]

    def delivered(self, event: OutboxEvent, owner: str) -> bool:
        """The receiver answered 2xx: never send this event to this target again. False when
        the claim was no longer ours (our lease ran out and another sender took it over)."""
        with self.db.write() as conn:
            cursor = conn.execute(
                "UPDATE outbox_deliveries SET state = 'delivered', delivered_at = ?, "
                "attempts = attempts + 1, last_error = '', claimed_until = NULL "
                "WHERE event = ? AND target = ? AND state = 'sending' AND claimed_by = ?",
                (self.db.now(), event.id, event.target, owner))
            return cursor.rowcount == 1

    def retry(self, event: OutboxEvent, owner: str, after_s: float, error: str) -> None:
        """The attempt failed (``error`` must hold no credential): try again in ``after_s``."""
        with self.db.write() as conn:
            now = self.db.now()
            conn.execute(
                "UPDATE outbox_deliveries SET state = 'pending', attempts = attempts + 1, "
                "next_attempt_at = ?, last_error = ?, claimed_by = NULL, claimed_until = NULL "
                "WHERE event = ? AND target = ? AND state = 'sending' AND claimed_by = ?",
                (self._after(now, after_s), error[:500], event.id, event.target, owner))

    def backlog(self, targets: Iterable[str] | None = None, within_s: float | None = None
                ) -> int:
        """Deliveries not yet acknowledged (of ``targets``, or of all); with ``within_s``, only
        those whose next attempt is due within that many seconds."""
        where, params = ["state != 'delivered'"], []
        if targets is not None:
            chosen = list(targets)
            where.append(f"target IN ({', '.join('?' * len(chosen)) or 'NULL'})")
            params += chosen
        if within_s is not None:
            where.append("next_attempt_at <= ?")
            params.append(self._after(self.db.now(), within_s))
        return self.db.read(f"SELECT COUNT(*) FROM outbox_deliveries WHERE "
                            f"{' AND '.join(where)}", params)[0][0]

    def events(self, bench_name: str | None = None) -> list[OutboxEvent]:
        """Every event recorded (of one bench), oldest first."""
        rows = self.db.read("SELECT * FROM outbox WHERE ? IS NULL OR bench_name = ? ORDER BY id",
                            (bench_name, bench_name))
        return [OutboxEvent(r["id"], r["event_id"], NotifyEvent(r["kind"]), r["created_at"],
                            r["bench_name"], json.loads(r["payload"] or "{}")) for r in rows]

    def deliveries(self, target: str | None = None) -> list[Delivery]:
        """Delivery states (of one target), by event."""
        rows = self.db.read("SELECT * FROM outbox_deliveries WHERE ? IS NULL OR target = ? "
                            "ORDER BY event, target", (target, target))
        return [Delivery(r["event"], r["target"], DeliveryState(r["state"]), r["attempts"],
                         r["next_attempt_at"], r["last_error"], r["delivered_at"])
                for r in rows]
