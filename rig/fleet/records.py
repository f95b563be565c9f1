"""The fleet's copy of one bench's records in the shape ``rig certificate verify`` checks a
certificate against (``store.certificates.get``, ``store.runs.load_unit``,
``store.attachments.for_unit``), so that an auditor with the fleet's database can recompute a
certificate's evidence digest without the bench's own SQLite.

A certificate id is a UUID: it names one certificate across the fleet, and so the bench whose
records the other two look-ups then read. Attachments come back without their bytes (they stay
on the bench); the evidence digest pins their SHA-256, which is synced.
"""

from __future__ import annotations

import json

import psycopg

from rig.fleet.reader import as_stored
from rig.records.certificates import IssuedCertificate, certificate_from_row
from rig.records.db import RecordError
from rig.records.models import (
    Attachment,
    Unit,
    attachment_from_row,
    evidence_from_row,
    step_from_row,
    unit_from_row,
)


class FleetRecords:
    """Certificates, units and attachments' metadata of the fleet, read from PostgreSQL.
    ``runs``, ``certificates`` and ``attachments`` are this object itself: the verifier calls
    ``store.runs.load_unit`` and the like, and one connection serves them all."""

    def __init__(self, conn: psycopg.Connection, where: str) -> None:
        self.conn = conn
        self.path = where                      # named in messages, as a store's path is
        self.bench_id: str | None = None
        self.runs = self.certificates = self.attachments = self

    def get(self, certificate_id: str) -> IssuedCertificate:
        """The certificate recorded with this id, on whichever bench issued it."""
        rows = self.conn.execute("SELECT * FROM rig.certificates WHERE id = %s",
                                 (certificate_id,)).fetchall()
        if len(rows) != 1:
            raise RecordError(f"{'no' if not rows else 'more than one'} certificate "
                              f"{certificate_id} in {self.path}")
        self.bench_id = str(rows[0]["bench_id"])
        return certificate_from_row(as_stored(rows[0]))

    def load_unit(self, unit_id: int) -> Unit:
        """The certificate's bench's unit, with its steps and evidence."""
        key = {"b": self.bench_id, "u": unit_id}
        with self.conn.transaction():
            unit = self.conn.execute("SELECT * FROM rig.units WHERE bench_id = %(b)s AND "
                                     "id = %(u)s", key).fetchone()
            steps = self.conn.execute("SELECT * FROM rig.steps WHERE bench_id = %(b)s AND "
                                      "unit_id = %(u)s ORDER BY seq", key).fetchall()
            evidence = self.conn.execute("SELECT * FROM rig.evidence WHERE bench_id = %(b)s "
                                         "AND unit_id = %(u)s ORDER BY id", key).fetchall()
        if unit is None:
            raise RecordError(f"no unit {unit_id} of bench {self.bench_id} in {self.path}")
        return unit_from_row(
            as_stored(unit), [step_from_row(as_stored(s)) for s in steps],
            [evidence_from_row(as_stored(e) | {"data": json.dumps(e["data"])})
             for e in evidence])

    def for_unit(self, unit_id: int) -> list[Attachment]:
        """The unit's attachments, metadata only (``data`` empty: the bytes stay on the
        bench)."""
        rows = self.conn.execute("SELECT * FROM rig.attachments WHERE bench_id = %s AND "
                                 "unit_id = %s ORDER BY id", (self.bench_id, unit_id))
        return [attachment_from_row(as_stored(r) | {"data": b""}) for r in rows]

    def close(self) -> None:
        self.conn.close()
