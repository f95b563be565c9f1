"""Binary evidence: the bytes a JSON evidence record cannot hold (a snapshot JPEG).

Why a table of its own: the evidence table stays small JSON that every report reads whole; the
image is read only by whoever shows or certifies it, and its SHA-256 is computed here, once, so
the evidence record and the certificate can name the exact bytes kept.
"""

from __future__ import annotations

import hashlib

from rig.records.db import Database, RecordError
from rig.records.models import Attachment, attachment_from_row

#: A snapshot of a 4K sensor is a few MB; anything far larger is not evidence but a mistake.
MAX_ATTACHMENT_BYTES = 16 * 1024 * 1024


class Attachments:
    """The attachments of units' evidence, written durably like the rest of the record."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, unit_id: int, name: str, content_type: str, data: bytes,
            evidence_id: int | None = None) -> int:
        """Keep ``data`` for a unit (beside the evidence record ``evidence_id`` that describes
        it); returns the attachment's id."""
        if not name or not content_type:
            raise ValueError("an attachment needs a name and a content type")
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise ValueError(f"attachment {name!r} is {len(data)} bytes, over the "
                             f"{MAX_ATTACHMENT_BYTES}-byte limit")
        digest = hashlib.sha256(data).hexdigest()
        with self.db.write() as conn:
            unit = self.db.row(conn, "unit", "units", unit_id)
            if evidence_id is not None:
                evidence = self.db.row(conn, "evidence", "evidence", evidence_id)
                if evidence["unit_id"] != unit["id"]:
                    raise RecordError(f"evidence {evidence_id} belongs to unit "
                                      f"{evidence['unit_id']}, not unit {unit_id}")
            cursor = conn.execute(
                "INSERT INTO attachments (unit_id, evidence_id, name, content_type, sha256, "
                "created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (unit_id, evidence_id, name, content_type, digest, self.db.now(), data))
            return int(cursor.lastrowid)

    def for_unit(self, unit_id: int) -> list[Attachment]:
        return [attachment_from_row(r) for r in self.db.read(
            "SELECT * FROM attachments WHERE unit_id = ? ORDER BY id", (unit_id,))]

    def get(self, attachment_id: int) -> Attachment:
        rows = self.db.read("SELECT * FROM attachments WHERE id = ?", (attachment_id,))
        if not rows:
            raise RecordError(f"no attachment {attachment_id}")
        return attachment_from_row(rows[0])
