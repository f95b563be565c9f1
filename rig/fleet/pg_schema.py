"""The fleet's PostgreSQL schema, created and migrated forward by rig itself.

Everything lives in the schema ``rig`` (``rig.runs``, ``rig.units``, …) so that the database can
hold other things. Every synced table has the bench's own columns plus ``bench_id``; its primary
key is (bench_id, id): the same local run number on two benches is two rows, and a row pushed
twice is one. There are no foreign keys: a bench's rows arrive in its commit order (parents
first within a batch), and a constraint across a network cut would only turn a late row into a
failed batch. Times are ``timestamptz``; evidence documents are ``jsonb``; attachments are
their metadata (name, type, SHA-256) only: the bytes stay on the bench.

``MIGRATIONS[n]`` takes the schema from version n to n + 1: append, never edit. ``migrate``
applies what is missing under an advisory lock, so two benches connecting at once do not race.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from psycopg.rows import tuple_row

from rig.vocabulary import SyncedTable

#: pg_advisory_xact_lock key while migrating ("rigfleet" as digits of no importance).
MIGRATION_LOCK = 0x7269_6766_6C74

_KEY = "bench_id uuid NOT NULL, id {id_type} NOT NULL"


def _table(name: str, columns: str, id_type: str = "bigint") -> str:
    return (f"CREATE TABLE rig.{name} ({_KEY.format(id_type=id_type)}, {columns}, "
            f"PRIMARY KEY (bench_id, id))")


MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE rig.benches (
            bench_id    uuid PRIMARY KEY,
            bench_name  text NOT NULL DEFAULT '',
            hostname    text NOT NULL DEFAULT '',
            first_seen  timestamptz NOT NULL DEFAULT now(),
            pushed_seq  bigint NOT NULL DEFAULT 0,
            head_seq    bigint NOT NULL DEFAULT 0,
            pushed_at   timestamptz,
            rig_version text NOT NULL DEFAULT '')""",
        _table("runs", """started_at timestamptz NOT NULL, finished_at timestamptz,
            status text NOT NULL, bench_name text NOT NULL, bench_path text, bench_sha256 text,
            method text NOT NULL, rig_version text NOT NULL, hostname text NOT NULL,
            pid integer NOT NULL, boot_id text NOT NULL, process_start text NOT NULL,
            argv text NOT NULL, note text NOT NULL, operator text NOT NULL,
            destination text NOT NULL"""),
        "CREATE INDEX runs_by_time ON rig.runs (started_at DESC)",
        _table("units", """run_id bigint NOT NULL, slot text NOT NULL, method text NOT NULL,
            profile text, expected_mac text, expected_serial text, started_at timestamptz,
            finished_at timestamptz, state text NOT NULL, verdict text, reason text NOT NULL,
            fault text, mac text, serial text, check_name text, final_state text,
            grade text"""),
        "CREATE INDEX units_by_run ON rig.units (bench_id, run_id)",
        "CREATE INDEX units_by_serial ON rig.units (serial)",
        _table("steps", """unit_id bigint NOT NULL, seq integer NOT NULL, name text NOT NULL,
            started_at timestamptz NOT NULL, finished_at timestamptz, outcome text NOT NULL,
            detail text NOT NULL"""),
        "CREATE INDEX steps_by_unit ON rig.steps (bench_id, unit_id)",
        _table("evidence", """unit_id bigint NOT NULL, step_id bigint, kind text NOT NULL,
            created_at timestamptz NOT NULL, data jsonb NOT NULL"""),
        "CREATE INDEX evidence_by_unit ON rig.evidence (bench_id, unit_id)",
        _table("outputs", """run_id bigint NOT NULL, slot text NOT NULL, kind text NOT NULL,
            target text NOT NULL, since timestamptz NOT NULL, cleared_at timestamptz,
            note text NOT NULL"""),
        _table("slot_events", """bench_name text NOT NULL, slot text NOT NULL,
            at timestamptz NOT NULL, event text NOT NULL, reason text NOT NULL,
            actor text NOT NULL"""),
        _table("slot_pins", """bench_name text NOT NULL, slot text NOT NULL, mac text,
            serial text, pinned_by text NOT NULL, pinned_at timestamptz NOT NULL,
            cleared_by text, cleared_at timestamptz, used_by_run bigint"""),
        _table("certificates", """run_id bigint NOT NULL, unit_id bigint NOT NULL, serial text,
            key_id text NOT NULL, digest text NOT NULL, evidence_digest text NOT NULL,
            issued_at timestamptz NOT NULL, signed text NOT NULL""", id_type="text"),
        "CREATE INDEX certificates_by_serial ON rig.certificates (serial)",
        _table("attachments", """unit_id bigint NOT NULL, evidence_id bigint,
            name text NOT NULL, content_type text NOT NULL, sha256 text NOT NULL,
            created_at timestamptz NOT NULL"""),
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

#: The columns each synced table keeps, as named in the bench's SQLite (``id`` first).
COLUMNS: MappingProxyType[SyncedTable, tuple[str, ...]] = MappingProxyType({
    SyncedTable.RUNS: ("id", "started_at", "finished_at", "status", "bench_name", "bench_path",
                       "bench_sha256", "method", "rig_version", "hostname", "pid", "boot_id",
                       "process_start", "argv", "note", "operator", "destination"),
    SyncedTable.UNITS: ("id", "run_id", "slot", "method", "profile", "expected_mac",
                        "expected_serial", "started_at", "finished_at", "state", "verdict",
                        "reason", "fault", "mac", "serial", "check_name", "final_state",
                        "grade"),
    SyncedTable.STEPS: ("id", "unit_id", "seq", "name", "started_at", "finished_at",
                        "outcome", "detail"),
    SyncedTable.EVIDENCE: ("id", "unit_id", "step_id", "kind", "created_at", "data"),
    SyncedTable.OUTPUTS: ("id", "run_id", "slot", "kind", "target", "since", "cleared_at",
                          "note"),
    SyncedTable.SLOT_EVENTS: ("id", "bench_name", "slot", "at", "event", "reason", "actor"),
    SyncedTable.SLOT_PINS: ("id", "bench_name", "slot", "mac", "serial", "pinned_by",
                            "pinned_at", "cleared_by", "cleared_at", "used_by_run"),
    SyncedTable.CERTIFICATES: ("id", "run_id", "unit_id", "serial", "key_id", "digest",
                               "evidence_digest", "issued_at", "signed"),
    SyncedTable.ATTACHMENTS: ("id", "unit_id", "evidence_id", "name", "content_type",
                              "sha256", "created_at"),
})


def upsert_sql(table: SyncedTable) -> str:
    """The statement that writes one row of ``table`` whether or not it is there already: a
    replayed batch rewrites the same values instead of adding a row."""
    columns = COLUMNS[table]
    names = ", ".join(("bench_id", *columns))
    values = ", ".join(["%s"] * (len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "id")
    return (f"INSERT INTO rig.{table} ({names}) VALUES ({values}) "
            f"ON CONFLICT (bench_id, id) DO UPDATE SET {updates}")


def schema_version(conn: Any) -> int:
    """The version the database is at (0: rig has never been there)."""
    with conn.cursor(row_factory=tuple_row) as cur:     # whatever the connection's rows are
        if cur.execute("SELECT to_regclass('rig.schema_version')").fetchone()[0] is None:
            return 0
        return cur.execute("SELECT COALESCE(MAX(version), 0) FROM rig.schema_version"
                           ).fetchone()[0]


def migrate(conn: Any, rig_version: str) -> int:
    """Bring the database forward to SCHEMA_VERSION in one transaction; the version reached.

    A database written by a newer rig is refused (RuntimeError) rather than written into with
    an older idea of its tables."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS rig")
        conn.execute("""CREATE TABLE IF NOT EXISTS rig.schema_version (
                            version     integer PRIMARY KEY,
                            applied_at  timestamptz NOT NULL DEFAULT now(),
                            rig_version text NOT NULL)""")
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise RuntimeError(f"the fleet database has schema version {current}, written by "
                               f"a newer rig; this rig knows up to {SCHEMA_VERSION}")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO rig.schema_version (version, rig_version) "
                         "VALUES (%s, %s)", (version, rig_version))
    return SCHEMA_VERSION
