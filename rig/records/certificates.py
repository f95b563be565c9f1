"""Certificates issued, and the audits of them: which unit got which certificate, signed with
which key, pinning which bytes (R2v3 keeps per-device records; an auditor asks "show me every
certificate of last month").

Storage only: what a certificate says is rig.certificates' business, and the sampling policy
is rig.certificates.audit's. The signed document is kept whole as issued, so a lost file can be
handed out again byte for byte and an audit re-verifies what the buyer holds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rig.records.db import Database, RecordError
from rig.records.models import ts


@dataclass(frozen=True)
class IssuedCertificate:
    """One certificate as recorded when it was issued."""

    id: str                  # the certificate id (a UUID)
    run_id: int
    unit_id: int
    serial: str | None
    key_id: str
    digest: str              # SHA-256 (hex) of the signed bytes: the canonical certificate
    evidence_digest: str
    issued_at: datetime
    signed: str              # the signed envelope as issued (JSON text)


@dataclass(frozen=True)
class AuditSample:
    """One draw of certificates for independent re-verification."""

    id: int
    drawn_at: datetime
    seed: str
    percent: float
    since: str | None
    population: int
    drawn_by: str
    certificate_ids: tuple[str, ...]


@dataclass(frozen=True)
class AuditResult:
    id: int
    certificate_id: str
    sample_id: int | None
    recorded_at: datetime
    auditor: str
    outcome: str
    note: str


def certificate_from_row(r: sqlite3.Row) -> IssuedCertificate:
    return IssuedCertificate(id=r["id"], run_id=r["run_id"], unit_id=r["unit_id"],
                             serial=r["serial"], key_id=r["key_id"], digest=r["digest"],
                             evidence_digest=r["evidence_digest"],
                             issued_at=ts(r["issued_at"]), signed=r["signed"])


class CertificateLog:
    """The certificates table (and the audit tables beside it), written durably."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, certificate_id: str, unit_id: int, *, key_id: str, digest: str,
               evidence_digest: str, issued_at: str, signed: str) -> None:
        """Keep one issued certificate. ``issued_at`` is the time the certificate states."""
        with self.db.write() as conn:
            unit = self.db.row(conn, "unit", "units", unit_id)
            conn.execute(
                "INSERT INTO certificates (id, run_id, unit_id, serial, key_id, digest, "
                "evidence_digest, issued_at, signed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (certificate_id, unit["run_id"], unit_id, unit["serial"], key_id, digest,
                 evidence_digest, issued_at, signed))

    def get(self, certificate_id: str) -> IssuedCertificate:
        rows = self.db.read("SELECT * FROM certificates WHERE id = ?", (certificate_id,))
        if not rows:
            raise RecordError(f"no certificate {certificate_id} in {self.db.path}")
        return certificate_from_row(rows[0])

    def for_run(self, run_id: int) -> list[IssuedCertificate]:
        return [certificate_from_row(r) for r in self.db.read(
            "SELECT * FROM certificates WHERE run_id = ? ORDER BY issued_at, id", (run_id,))]

    def issued_since(self, since: str | None = None) -> list[IssuedCertificate]:
        """Every certificate issued at or after ``since`` (ISO 8601), oldest first."""
        return [certificate_from_row(r) for r in self.db.read(
            "SELECT * FROM certificates WHERE ? IS NULL OR issued_at >= ? ORDER BY issued_at, id",
            (since, since))]

    # --- audits ----------------------------------------------------------------------------------

    def add_sample(self, *, seed: str, percent: float, since: str | None, population: int,
                   drawn_by: str, certificate_ids: Sequence[str]) -> int:
        """Record a draw (its seed, so anyone can redraw it) and the certificates drawn."""
        with self.db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO audit_samples (drawn_at, seed, percent, since, population, drawn_by)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (self.db.now(), seed, percent, since, population, drawn_by))
            sample_id = int(cursor.lastrowid)
            conn.executemany("INSERT INTO audit_sample_items VALUES (?, ?)",
                             [(sample_id, c) for c in certificate_ids])
            return sample_id

    def sample(self, sample_id: int) -> AuditSample:
        rows = self.db.read("SELECT * FROM audit_samples WHERE id = ?", (sample_id,))
        if not rows:
            raise RecordError(f"no audit sample {sample_id}")
        r = rows[0]
        items = self.db.read("SELECT certificate_id FROM audit_sample_items WHERE sample_id = ? "
                             "ORDER BY certificate_id", (sample_id,))
        return AuditSample(id=r["id"], drawn_at=ts(r["drawn_at"]), seed=r["seed"],
                           percent=r["percent"], since=r["since"], population=r["population"],
                           drawn_by=r["drawn_by"], certificate_ids=tuple(i[0] for i in items))

    def samples(self) -> list[AuditSample]:
        return [self.sample(r[0]) for r in self.db.read("SELECT id FROM audit_samples ORDER BY id")]

    def add_result(self, certificate_id: str, *, auditor: str, outcome: str, note: str = "",
                   sample_id: int | None = None) -> int:
        """Record one re-verification of a certified unit."""
        with self.db.write() as conn:
            self.db.row(conn, "certificate", "certificates", certificate_id)
            if sample_id is not None:
                self.db.row(conn, "audit sample", "audit_samples", sample_id)
            cursor = conn.execute(
                "INSERT INTO audit_results (certificate_id, sample_id, recorded_at, auditor, "
                "outcome, note) VALUES (?, ?, ?, ?, ?, ?)",
                (certificate_id, sample_id, self.db.now(), auditor, outcome, note))
            return int(cursor.lastrowid)

    def results(self, sample_id: int | None = None) -> list[AuditResult]:
        """Every re-verification recorded (of one sample's certificates, when given)."""
        rows = self.db.read(
            "SELECT * FROM audit_results WHERE ? IS NULL OR sample_id = ? ORDER BY id",
            (sample_id, sample_id))
        return [AuditResult(r["id"], r["certificate_id"], r["sample_id"], ts(r["recorded_at"]),
                            r["auditor"], r["outcome"], r["note"]) for r in rows]
