"""Which units of a run get a certificate, and issuing them: build, sign, record, in that
order, so that the store knows every certificate that ever left the bench.

A unit gets one only when its verdict passed (``PASSING_VERDICTS``) by a method that resets
the whole configuration (``content.SANITIZING_METHODS``): ``web-basic`` keeps users and network
settings and ``poe-cycle`` is a reboot, so neither sanitizes, whatever their verdict says.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rig.certificates.content import SANITIZING_METHODS, Issuer, build_certificate
from rig.certificates.signing import digest, envelope_text, sign
from rig.records import RecordStore, Unit, utc_now
from rig.vocabulary import PASSING_VERDICTS

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class Refusal:
    """A unit that got no certificate, and why."""

    slot: str
    unit_id: int
    serial: str | None
    reason: str


@dataclass(frozen=True)
class Issued:
    """One certificate issued: the envelope, its file text and the digest of its signed bytes."""

    slot: str
    unit_id: int
    serial: str | None
    envelope: dict[str, Any]
    text: str
    digest: str

    @property
    def certificate_id(self) -> str:
        return self.envelope["certificate"]["id"]

    def file_stem(self, run_id: int) -> str:
        """``certificate-run3-slot7-<first 8 of the id>``: unique and safe in any file system."""
        slot = re.sub(r"[^A-Za-z0-9_-]+", "_", self.slot)
        return f"certificate-run{run_id}-slot{slot}-{self.certificate_id[:8]}"


@dataclass(frozen=True)
class IssueOutcome:
    run_id: int
    issued: tuple[Issued, ...]
    refused: tuple[Refusal, ...]


def refusal(unit: Unit) -> str | None:
    """Why ``unit`` gets no certificate; None when it gets one."""
    if unit.verdict not in PASSING_VERDICTS:
        verdict = unit.verdict or f"no verdict ({unit.state})"
        return f"verdict {verdict}" + (f": {unit.reason}" if unit.reason else "")
    if unit.method not in SANITIZING_METHODS:
        return (f"method {unit.method} does not reset the whole configuration (certified: "
                f"{', '.join(SANITIZING_METHODS)})")
    return None


def select_units(units: Sequence[Unit], slots: Sequence[str] | None) -> list[Unit]:
    """The units of the named slots (all when None); ValueError naming an unknown slot."""
    if not slots:
        return list(units)
    by_slot = {u.slot: u for u in units}
    unknown = [s for s in slots if s not in by_slot]
    if unknown:
        raise ValueError(f"no slot {unknown[0]!r} in this run; slots: {', '.join(by_slot)}")
    return [by_slot[s] for s in slots]


def issue(store: RecordStore, run_id: int, issuer: Issuer, key: Ed25519PrivateKey, *,
          slots: Sequence[str] | None = None, clock: Callable[[], datetime] = utc_now,
          new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> IssueOutcome:
    """Issue a certificate for every passing unit of run ``run_id`` (of ``slots``), each
    recorded in the store before it is returned. Raises UnknownRun, ValueError (slot)."""
    record = store.runs.load_run(run_id)
    issued, refused = [], []
    for unit in select_units(record.units, slots):
        why = refusal(unit)
        if why is not None:
            refused.append(Refusal(unit.slot, unit.id, unit.serial, why))
            continue
        certificate = build_certificate(record.run, unit, store.attachments.for_unit(unit.id),
                                        issuer, certificate_id=new_id(), issued_at=clock())
        envelope = sign(certificate, key)
        text = envelope_text(envelope)
        store.certificates.record(
            certificate["id"], unit.id, key_id=envelope["signature"]["key_id"],
            digest=digest(certificate), issued_at=certificate["issued_at"], signed=text,
            evidence_digest=certificate["verification"]["evidence_digest"]["value"])
        issued.append(Issued(unit.slot, unit.id, unit.serial, envelope, text,
                             digest(certificate)))
    return IssueOutcome(run_id, tuple(issued), tuple(refused))
