"""Read-only views of the record store for the dashboard: the slot cards of one bench, and the
run history filtered by verdict, slot and serial.

Only SELECTs through ``Database.read``/``snapshot``: the page's read path never writes, so a
browser left open on the bench page cannot contend with ``rig run`` for the write lock.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rig.records import RecordStore, RunSummary
from rig.records.models import run_from_row, slot_from_row

#: Evidence kinds whose data carries the unit's model (SADP replies), newest wins.
_MODEL_KINDS = ("sadp-after", "sadp-before")
#: Step details that state a bound: "up to 12.0 s" (a wait), "2 s off", "0.50 s from power-on".
_BOUND = re.compile(r"(?:up to )?(\d+(?:\.\d+)?) s\b")
#: Keys whose values never leave the server, whatever a record holds (defence in depth: the
#: recorder never stores a password, and tests assert it).
#: A whole key, e.g. "password", "admin_password", "auth_key"; not "passed" nor the boolean
#: fact "is_default_password" (only text values are masked).
SECRET_KEY = re.compile(r"(?!is_)(?:\w*_)?(?:password|passwd|secret|token|auth_?key|priv_?key|"
                        r"community)", re.I)


@dataclass(frozen=True)
class RunFilter:
    """The history page's filters; None or "" means any."""

    verdict: str | None = None
    slot: str | None = None
    serial: str | None = None
    bench: str | None = None
    limit: int = 50


def scrub(value: Any) -> Any:
    """``value`` with every secret-looking key's value masked (evidence from devices goes to
    browsers; a password must not, even if some future evidence kind carried one)."""
    if isinstance(value, dict):
        return {k: "***" if isinstance(v, str) and SECRET_KEY.fullmatch(str(k)) else scrub(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def step_bound(detail: str) -> float | None:
    """The timeout or duration a step's detail states, in seconds; None when it states none."""
    found = _BOUND.search(detail or "")
    return float(found.group(1)) if found else None


def current_bench(store: RecordStore) -> str | None:
    """The bench of the newest run: what the page shows when no bench file was given."""
    rows = store.db.read("SELECT bench_name FROM runs ORDER BY id DESC LIMIT 1")
    return rows[0][0] if rows else None


def known_slots(store: RecordStore, bench: str) -> list[str]:
    """Every slot the store has heard of on ``bench`` (units and health), in natural order."""
    rows = store.db.read("SELECT DISTINCT u.slot FROM units u JOIN runs r ON u.run_id = r.id "
                         "WHERE r.bench_name = ? UNION SELECT slot FROM slot_health "
                         "WHERE bench_name = ?", (bench, bench))
    return sorted((r[0] for r in rows), key=_natural)


def _natural(name: str) -> tuple[int, str]:
    # ASCII digits only: a slot named "²" passes str.isdigit() but not int().
    return (int(name), "") if name.isascii() and name.isdigit() else (1 << 30, name)


def slot_cards(store: RecordStore, bench: str, slots: list[str]) -> list[dict[str, Any]]:
    """One card per slot: its state (idle, in a step, out of service), the unit in it, its last
    verdict. Read in one snapshot so a card never mixes two moments."""
    with store.db.snapshot() as conn:
        return [_card(conn, bench, slot) for slot in slots]


def _card(conn: sqlite3.Connection, bench: str, slot: str) -> dict[str, Any]:
    unit = conn.execute("SELECT u.*, r.status AS run_status FROM units u JOIN runs r "
                        "ON u.run_id = r.id WHERE r.bench_name = ? AND u.slot = ? "
                        "ORDER BY u.id DESC LIMIT 1", (bench, slot)).fetchone()
    health_row = conn.execute("SELECT * FROM slot_health WHERE bench_name = ? AND slot = ?",
                              (bench, slot)).fetchone()
    health = slot_from_row(health_row) if health_row else None
    step = None
    if unit is not None and unit["verdict"] is None and unit["run_status"] == "running":
        step = conn.execute("SELECT * FROM steps WHERE unit_id = ? ORDER BY seq DESC LIMIT 1",
                            (unit["id"],)).fetchone()
    last = conn.execute("SELECT u.* FROM units u JOIN runs r ON u.run_id = r.id "
                        "WHERE r.bench_name = ? AND u.slot = ? AND u.verdict IS NOT NULL "
                        "ORDER BY u.id DESC LIMIT 1", (bench, slot)).fetchone()
    out = bool(health and health.out_of_service)
    pin = conn.execute("SELECT * FROM slot_pins WHERE bench_name = ? AND slot = ? AND "
                       "cleared_at IS NULL AND used_by_run IS NULL ORDER BY id DESC LIMIT 1",
                       (bench, slot)).fetchone()
    return {
        "slot": slot,
        "state": _state(unit, step, out),
        "step": _step_json(step) if step is not None else None,
        "unit": _unit_json(conn, unit) if unit is not None else None,
        "last": _last_json(last) if last is not None else None,
        "health": {"out_of_service": out, "reason": health.reason if health else "",
                   "consecutive_bench_faults": health.consecutive_bench_faults if health else 0},
        "pin": None if pin is None else {"mac": pin["mac"], "serial": pin["serial"],
                                         "by": pin["pinned_by"], "at": pin["pinned_at"]},
    }


def _state(unit: sqlite3.Row | None, step: sqlite3.Row | None, out: bool) -> str:
    """running (in a step), waiting (planned in a running run, its turn not come), out of
    service, or idle."""
    if unit is not None and unit["verdict"] is None and unit["run_status"] == "running":
        return "running" if step is not None or unit["state"] == "running" else "waiting"
    return "out-of-service" if out else "idle"


def _step_json(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "seq": row["seq"], "name": row["name"],
            "started_at": row["started_at"], "finished_at": row["finished_at"],
            "outcome": row["outcome"], "detail": row["detail"],
            "timeout_s": step_bound(row["detail"])}


def _unit_json(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    marks = ", ".join("?" * len(_MODEL_KINDS))
    sadp = conn.execute(f"SELECT data FROM evidence WHERE unit_id = ? AND kind IN ({marks}) "
                        "ORDER BY id DESC LIMIT 1", (row["id"], *_MODEL_KINDS)).fetchone()
    model = json.loads(sadp[0]).get("model") if sadp else None
    return {"id": row["id"], "run_id": row["run_id"], "state": row["state"],
            "mac": row["mac"] or row["expected_mac"],
            "serial": row["serial"] or row["expected_serial"], "model": model,
            "profile": row["profile"], "method": row["method"],
            "started_at": row["started_at"]}


def _last_json(row: sqlite3.Row) -> dict[str, Any]:
    return {"unit_id": row["id"], "run_id": row["run_id"], "verdict": row["verdict"],
            "reason": row["reason"], "check": row["check_name"], "fault": row["fault"],
            "finished_at": row["finished_at"], "mac": row["mac"], "serial": row["serial"]}


def runs(store: RecordStore, flt: RunFilter) -> list[RunSummary]:
    """Runs newest first with their verdict counts, keeping those with a unit that matches every
    filter given (verdict, slot, serial substring)."""
    where, params = ["1 = 1"], []
    if flt.bench:
        where.append("r.bench_name = ?")
        params.append(flt.bench)
    unit_where = []
    for column, value in (("u.verdict", flt.verdict), ("u.slot", flt.slot)):
        if value:
            unit_where.append(f"{column} = ?")
            params.append(value)
    if flt.serial:
        unit_where.append("(u.serial LIKE ? ESCAPE '\\' OR u.expected_serial LIKE ? "
                          "ESCAPE '\\' OR u.mac LIKE ? ESCAPE '\\')")
        pattern = "%" + re.sub(r"([%_\\])", r"\\\1", flt.serial) + "%"
        params += [pattern] * 3
    if unit_where:
        where.append("EXISTS (SELECT 1 FROM units u WHERE u.run_id = r.id AND "
                     + " AND ".join(unit_where) + ")")
    rows = store.db.read(f"SELECT r.* FROM runs r WHERE {' AND '.join(where)} "
                         "ORDER BY r.id DESC LIMIT ?", [*params, max(1, min(flt.limit, 500))])
    found = [run_from_row(r) for r in rows]
    if not found:
        return []
    marks = ", ".join("?" * len(found))
    counts: dict[int, dict[str, int]] = {run.id: {} for run in found}
    for row in store.db.read(f"SELECT run_id, COALESCE(verdict, 'unfinished'), COUNT(*) "
                             f"FROM units WHERE run_id IN ({marks}) GROUP BY 1, 2",
                             [run.id for run in found]):
        counts[row[0]][row[1]] = row[2]
    return [RunSummary(run, sum(counts[run.id].values()), counts[run.id]) for run in found]


def summary_json(summary: RunSummary) -> dict[str, Any]:
    run = summary.run
    return {"id": run.id, "bench": run.bench_name, "status": run.status.value,
            "method": run.method, "started_at": iso(run.started_at),
            "finished_at": iso(run.finished_at), "units": summary.units,
            "counts": summary.counts, "note": run.note}


def slot_events(store: RecordStore, bench: str, slot: str) -> list[dict[str, Any]]:
    """A slot's health history, newest first."""
    return [{"id": e.id, "at": iso(e.at), "event": e.event, "reason": e.reason,
             "actor": e.actor} for e in store.slots.events(bench, slot)]
