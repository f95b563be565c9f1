"""The evidence digest: the one place that says which bytes of a unit's record a certificate
pins, so that ``rig certificate verify --db`` recomputes exactly what issuing computed.

Definition (README, Certificates): SHA-256, in lowercase hex, of the RFC 8785 canonical form of

    {"evidence": [{"kind": K, "created_at": T, "step": S, "data": D}, ...],
     "attachments": [{"name": N, "sha256": H}, ...]}

with the unit's evidence records in the order they were recorded (id order): K the kind, T the
stored timestamp (ISO 8601, UTC, microseconds), S the step's sequence number within the unit
(null for evidence outside a step), D the recorded data; and the unit's attachments in id order,
each by name and the SHA-256 of its bytes (the bytes themselves are not re-read: the store
computed that digest when it kept them). An integer in D beyond I-JSON's exact range (±2^53−1),
which RFC 8785 cannot write as a number, is taken as its decimal text.

Why a digest and not the evidence itself: the evidence holds raw SADP replies and HTTP bodies a
buyer does not need, but an auditor with the record store can prove the certificate was issued
on exactly this record, and that the record has not changed since.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rig.certificates.canonical import SAFE_INTEGER, canonical
from rig.records.models import Attachment, Unit

ALGORITHM = "SHA-256"
CANONICAL_FORM = "RFC 8785"


def stored_time(moment: datetime) -> str:
    """A timestamp as the record store writes it (``Database.now``)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _safe(value: Any) -> Any:
    """``value`` with every integer beyond I-JSON's exact range given as its decimal text."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and abs(value) > SAFE_INTEGER:
        return str(value)
    if isinstance(value, list):
        return [_safe(item) for item in value]
    if isinstance(value, dict):
        return {key: _safe(item) for key, item in value.items()}
    return value


def evidence_document(unit: Unit, attachments: Iterable[Attachment]) -> dict[str, Any]:
    """The value whose canonical form is digested (see the module docstring)."""
    seq = {step.id: step.seq for step in unit.steps}
    return {
        "evidence": [{"kind": e.kind, "created_at": stored_time(e.created_at),
                      "step": None if e.step_id is None else seq.get(e.step_id),
                      "data": _safe(e.data)}
                     for e in sorted(unit.evidence, key=lambda e: e.id)],
        "attachments": [{"name": a.name, "sha256": a.sha256}
                        for a in sorted(attachments, key=lambda a: a.id)],
    }


def evidence_digest(unit: Unit, attachments: Iterable[Attachment]) -> str:
    """SHA-256 (hex) of the unit's evidence in canonical form."""
    return hashlib.sha256(canonical(evidence_document(unit, attachments))).hexdigest()
