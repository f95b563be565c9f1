"""The fleet's records read back from PostgreSQL, as the bench-side readers' own dataclasses,
so that ``rig history`` prints a fleet with the code that prints one bench.

A run on the fleet is named by (bench id, local run id): the same number on two benches is two
runs. Whether a ``running`` run's process is still alive cannot be told from here (it ran on
another machine), so the fleet never calls a run orphaned; its bench's own ``rig history`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from rig.fleet import pg_schema
from rig.records.db import RecordError, UnknownRun
from rig.records.models import (
    Evidence,
    RunRecord,
    RunSummary,
    Step,
    evidence_from_row,
    output_from_row,
    run_from_row,
    step_from_row,
    unit_from_row,
)


class NoFleet(RuntimeError):
    """The database holds no fleet records this rig can read (none yet, or a newer schema)."""


@dataclass(frozen=True)
class FleetRun:
    """One run of one bench, with its unit counts, as synced."""

    bench_id: str
    summary: RunSummary


@dataclass(frozen=True)
class FleetBench:
    """One bench as the fleet knows it: what it last pushed, and when."""

    bench_id: str
    bench_name: str
    hostname: str
    pushed_seq: int
    head_seq: int              # the bench's log head when it last pushed (its lag, in entries)
    pushed_at: datetime | None


def connect(conninfo: str) -> psycopg.Connection:
    """A read connection in UTC; refuses a database rig has not made (or a newer one's)."""
    conn = psycopg.connect(conninfo, application_name="rig history", row_factory=dict_row,
                           autocommit=True,
                           connect_timeout=10)
    conn.execute("SET TIME ZONE 'UTC'")
    version = pg_schema.schema_version(conn)
    if version == 0 or version > pg_schema.SCHEMA_VERSION:
        conn.close()
        raise NoFleet("that database holds no fleet records rig can read "
                           f"(schema version {version}; rig sync creates it)")
    return conn


def history(conn: psycopg.Connection, limit: int = 20, bench: str | None = None
            ) -> list[FleetRun]:
    """The latest runs of every bench (or of the bench named, by name or id prefix), newest
    first, with unit counts per verdict, final state and grade."""
    runs = conn.execute(
        """SELECT * FROM rig.runs WHERE %(b)s::text IS NULL OR bench_name = %(b)s
               OR bench_id::text LIKE %(b)s || '%%'
           ORDER BY started_at DESC, bench_id, id DESC LIMIT %(n)s""",
        {"b": bench, "n": max(0, limit)}).fetchall()
    tallies: dict[tuple[str, int], dict[str, dict[str, int]]] = {
        (str(r["bench_id"]), r["id"]): {"verdict": {}, "final_state": {}, "grade": {}}
        for r in runs}
    if runs:
        for row in conn.execute(
                """SELECT bench_id::text AS b, run_id, COALESCE(verdict, 'unfinished') AS verdict,
                          final_state, grade, COUNT(*) AS n FROM rig.units
                   WHERE (bench_id::text, run_id) IN (SELECT * FROM unnest(%s::text[],
                                                                           %s::bigint[]))
                   GROUP BY 1, 2, 3, 4, 5""",
                ([k[0] for k in tallies], [k[1] for k in tallies])):
            tally = tallies[(row["b"], row["run_id"])]
            for column in ("verdict", "final_state", "grade"):
                if row[column] is not None:
                    tally[column][row[column]] = tally[column].get(row[column], 0) + row["n"]
    return [_fleet_run(r, tallies[(str(r["bench_id"]), r["id"])]) for r in runs]


def bench_id(conn: psycopg.Connection, bench: str) -> str:
    """The one bench named by ``bench`` (a name or an id prefix); RecordError when none or
    several match (a name two benches share: use the id)."""
    rows = conn.execute("SELECT bench_id::text AS id FROM rig.benches WHERE bench_name = %(b)s "
                        "OR bench_id::text LIKE %(b)s || '%%'", {"b": bench}).fetchall()
    if len(rows) != 1:
        known = ", ".join(f"{b.bench_name} ({b.bench_id[:8]})" for b in benches(conn)) or "none"
        raise RecordError(f"{'no' if not rows else 'more than one'} bench {bench!r} in the "
                          f"fleet (benches: {known})")
    return rows[0]["id"]


def last_run_id(conn: psycopg.Connection, bench: str) -> int | None:
    """The latest run of ``bench`` (its bench id)."""
    row = conn.execute("SELECT MAX(id) AS id FROM rig.runs WHERE bench_id = %s",
                       (bench,)).fetchone()
    return row["id"]


def load_run(conn: psycopg.Connection, bench: str, run_id: int) -> RunRecord:
    """One bench's run, whole, as of one snapshot (the fleet's copy of ``runs.load_run``).
    Evidence documents come back from jsonb: the same values, keys perhaps reordered."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        key = {"b": bench, "r": run_id}
        run = conn.execute("SELECT * FROM rig.runs WHERE bench_id = %(b)s AND id = %(r)s",
                           key).fetchone()
        if run is None:
            raise UnknownRun(f"no run {run_id} of bench {bench}")
        units = conn.execute("SELECT * FROM rig.units WHERE bench_id = %(b)s AND run_id = %(r)s "
                             "ORDER BY id", key).fetchall()
        steps = conn.execute("SELECT s.* FROM rig.steps s JOIN rig.units u ON u.bench_id = "
                             "s.bench_id AND u.id = s.unit_id WHERE u.bench_id = %(b)s AND "
                             "u.run_id = %(r)s ORDER BY s.unit_id, s.seq", key).fetchall()
        evidence = conn.execute("SELECT e.* FROM rig.evidence e JOIN rig.units u ON "
                                "u.bench_id = e.bench_id AND u.id = e.unit_id WHERE "
                                "u.bench_id = %(b)s AND u.run_id = %(r)s ORDER BY e.id",
                                key).fetchall()
        outputs = conn.execute("SELECT * FROM rig.outputs WHERE bench_id = %(b)s AND "
                               "run_id = %(r)s ORDER BY id", key).fetchall()
    by_steps: dict[int, list[Step]] = {}
    for row in steps:
        by_steps.setdefault(row["unit_id"], []).append(step_from_row(as_stored(row)))
    by_evidence: dict[int, list[Evidence]] = {}
    for row in evidence:
        stored = as_stored(row) | {"data": json.dumps(row["data"])}
        by_evidence.setdefault(row["unit_id"], []).append(evidence_from_row(stored))
    return RunRecord(
        run=run_from_row(as_stored(run)),
        units=tuple(unit_from_row(as_stored(u), by_steps.get(u["id"], ()),
                                  by_evidence.get(u["id"], ())) for u in units),
        outputs=tuple(output_from_row(as_stored(o)) for o in outputs))


def as_stored(row: dict[str, Any]) -> dict[str, Any]:
    """A PostgreSQL row as the bench's SQLite has it: times as ISO 8601 text in UTC."""
    return {k: v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v
            for k, v in row.items()}


def _fleet_run(row: dict[str, Any], tally: dict[str, dict[str, int]]) -> FleetRun:
    counts = tally["verdict"]
    return FleetRun(str(row["bench_id"]),
                    RunSummary(run_from_row(as_stored(row)), sum(counts.values()), counts,
                               tally["final_state"], tally["grade"]))


def benches(conn: psycopg.Connection) -> list[FleetBench]:
    """Every bench that ever pushed, by name."""
    return [FleetBench(str(r["bench_id"]), r["bench_name"], r["hostname"], r["pushed_seq"],
                       r["head_seq"], r["pushed_at"])
            for r in conn.execute("SELECT * FROM rig.benches ORDER BY bench_name, bench_id")]
