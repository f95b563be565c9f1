"""What a certificate says, built from a recorded unit: the fields of NIST SP 800-88 Rev. 1
Appendix G ("Certificate of Sanitization") and of the R2v3 per-device record.

Facts only come from the record store (the run, the unit, its evidence); the issuer's name from
the bench file. Every value is a text, an integer, a boolean or null (``canonical.plain``), so
the signed bytes are the same in every JSON library. README "Certificates" documents the format.

Why "Clear" and nothing more: a factory reset restores the camera's configuration through its
own firmware. NIST SP 800-88 calls sanitization through the device's own interface, protecting
against simple non-invasive recovery, Clear. Nothing here proves the flash was cryptographically
erased (Purge) or the device destroyed, and the certificate says so in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rig.certificates.canonical import plain
from rig.certificates.config import CertificateConfig
from rig.certificates.evidence import ALGORITHM, CANONICAL_FORM, evidence_digest
from rig.records.models import Attachment, Evidence, Run, Unit
from rig.vocabulary import (
    CheckName,
    CheckOutcome,
    CloudOutcome,
    EvidenceKind,
    Method,
    SanitizationCategory,
    StorageOutcome,
    StoragePolicy,
)

#: The format's name and version, first in every certificate: a verifier knows what it reads.
CERTIFICATE_TYPE = "rig-certificate-of-sanitization"
CERTIFICATE_VERSION = 1
MANUFACTURER = "Hikvision"    # SADP and ISAPI are Hikvision's: a unit that answered both is one

CATEGORY_NOTE = (
    "A factory reset restores the camera's configuration (accounts, passwords, network "
    "settings, cloud binding) to the manufacturer's defaults through the device's own "
    "firmware. In NIST SP 800-88 terms this is Clear at most: no cryptographic or block erase "
    "of the internal flash is proven (Purge), and the device is not destroyed (Destroy). A "
    "memory card is reported under storage.")

#: The methods whose verdict proves a full reset, with what they do (the certificate says it).
SANITIZING_METHODS: Mapping[str, str] = {
    Method.HARD: "reset button held through power-up (the hardware factory reset)",
    Method.WEB_FULL: "ISAPI factoryReset mode=full (the web page's Default: everything)",
    Method.AUTO: "ISAPI factoryReset mode=full when the admin password worked, else the reset "
                 "button held through power-up",
}

VERIFICATION_HOW = (
    "SADP census by MAC after the reset, and named ISAPI (HTTP) checks over a route proven to "
    "reach this unit alone; each check's result is listed, and the recorded evidence is pinned "
    "by its digest")


@dataclass(frozen=True)
class Issuer:
    """Who issues: the bench file's organisation and bench name, the host from the run."""

    organisation: str
    bench: str
    config: CertificateConfig


def when(moment: datetime | None) -> str | None:
    """A time as certificates write it: ISO 8601, UTC, whole seconds."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def latest(evidence: Iterable[Evidence], kind: str) -> Evidence | None:
    """The last record of ``kind``: a retried step records again, and the last word counts."""
    found = [e for e in evidence if e.kind == kind]
    return max(found, key=lambda e: e.id) if found else None


def checks_by_name(evidence: Iterable[Evidence]) -> dict[str, Mapping[str, Any]]:
    """The functional checks' latest result per check name (evidence kind ``check``)."""
    out: dict[str, Mapping[str, Any]] = {}
    for e in sorted(evidence, key=lambda e: e.id):
        if e.kind == EvidenceKind.CHECK and isinstance(e.data.get("check"), str):
            out[e.data["check"]] = e.data
    return out


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def device(unit: Unit, checks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Manufacturer, model, serial, MAC and firmware. MAC and serial are the unit's as the run
    recorded them (its identity); the rest comes from deviceInfo (the device-info check) first,
    then the SADP reply after the reset, then the one before it. ``sources`` names which."""
    device_info = checks.get(CheckName.DEVICE_INFO, {})
    # deviceInfo only when its check passed: a failed one disagrees with SADP or lacks facts
    info = (device_info.get("details") or {}) if device_info.get("outcome") == \
        CheckOutcome.PASSED else {}
    after = latest(unit.evidence, EvidenceKind.SADP_AFTER)
    before = latest(unit.evidence, EvidenceKind.SADP_BEFORE)
    sources = [("isapi-deviceInfo", info), ("sadp-after", after.data if after else {}),
               ("sadp-before", before.data if before else {})]
    facts: dict[str, Any] = {"manufacturer": MANUFACTURER, "model": None,
                             "serial": unit.serial, "mac": unit.mac, "firmware": None}
    used: list[str] = []
    for key in ("model", "serial", "mac", "firmware"):
        for name, data in sources:
            if facts[key] is None and _text(data.get(key)):
                facts[key] = data[key]
            if facts[key] is not None and facts[key] == data.get(key) and name not in used:
                used.append(name)
    facts["sources"] = [name for name, _ in sources if name in used]
    return facts


def storage(checks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The memory card's outcome from the storage check (README, Certificates)."""
    check = checks.get(CheckName.STORAGE)
    if check is None:
        return {"outcome": StorageOutcome.NOT_CHECKED.value, "detail": "no storage check ran"}
    details = check.get("details") or {}
    outcome, cards = check.get("outcome"), details.get("cards")
    formatted = details.get("formatted") or []
    if details.get("policy") == StoragePolicy.IGNORE or outcome == CheckOutcome.SKIPPED:
        result = StorageOutcome.NOT_CHECKED
    elif outcome == CheckOutcome.UNKNOWN or not isinstance(cards, list):
        result = StorageOutcome.UNKNOWN
    elif not cards:
        result = StorageOutcome.ABSENT
    elif outcome == CheckOutcome.PASSED and formatted:
        result = StorageOutcome.FORMATTED
    else:                        # flagged, or a format that failed: the card is not sanitized
        result = StorageOutcome.CARD_PRESENT
    return {"outcome": result.value, "detail": str(check.get("reason") or ""),
            "cards": len(cards) if isinstance(cards, list) else None,
            "formatted": len(formatted) if isinstance(formatted, list) else None}


def cloud(checks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The cloud (Hik-Connect) binding's outcome from the cloud check."""
    check = checks.get(CheckName.CLOUD)
    if check is None:
        return {"outcome": CloudOutcome.NOT_CHECKED.value, "detail": "no cloud check ran"}
    details = check.get("details") or {}
    bound = details.get("bound")
    if check.get("outcome") == CheckOutcome.SKIPPED:
        result = CloudOutcome.NOT_CHECKED              # e.g. no cloud service on this unit
    elif bound is True:
        result = CloudOutcome.BOUND
    elif bound is False:
        result = CloudOutcome.UNBOUND
    elif details.get("enabled") is False:
        result = CloudOutcome.OFF
    else:
        result = CloudOutcome.UNKNOWN
    return {"outcome": result.value, "detail": str(check.get("reason") or "")}


def verification_checks(unit: Unit) -> list[dict[str, Any]]:
    """The judge's named checks, as its verdict evidence records them."""
    verdict = latest(unit.evidence, EvidenceKind.VERDICT)
    checks = verdict.data.get("checks") if verdict else None
    return [{"name": str(c.get("name")), "result": "passed" if c.get("passed") else "failed",
             "detail": str(c.get("detail") or "")}
            for c in checks or [] if isinstance(c, dict)]


def functional_checks(checks: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each functional check's outcome, in the vocabulary's order."""
    order = {name: i for i, name in enumerate(CheckName)}
    return [{"check": name, "outcome": str(data.get("outcome")), "key": bool(data.get("key")),
             "reason": str(data.get("reason") or "")}
            for name, data in sorted(checks.items(), key=lambda kv: order.get(kv[0], 99))]


def recorded_or_default(recorded: str, default: str | None) -> dict[str, Any]:
    """A run's operator or destination: what the run recorded, else the bench file's default
    now (``recorded_with_run`` false says which)."""
    if recorded:
        return {"value": recorded, "recorded_with_run": True}
    return {"value": default or None, "recorded_with_run": False}


def build_certificate(run: Run, unit: Unit, attachments: Iterable[Attachment], issuer: Issuer,
                      *, certificate_id: str, issued_at: datetime) -> dict[str, Any]:
    """The certificate object (unsigned) for one unit of ``run``. The caller decides whether
    the unit deserves one (rig.certificates.issue)."""
    checks = checks_by_name(unit.evidence)
    destination = issuer.config.destination
    cert = {
        "type": CERTIFICATE_TYPE, "version": CERTIFICATE_VERSION,
        "id": certificate_id, "issued_at": when(issued_at),
        "issuer": {"organisation": issuer.organisation or None, "bench": issuer.bench,
                   "host": run.hostname},
        "operator": recorded_or_default(run.operator, issuer.config.operator),
        "destination": recorded_or_default(run.destination,
                                           None if destination is None else str(destination)),
        "device": device(unit, checks),
        "sanitization": {
            "method": unit.method,
            "method_description": SANITIZING_METHODS.get(unit.method, ""),
            "nist_sp_800_88_category": SanitizationCategory.CLEAR.value,
            "category_note": CATEGORY_NOTE,
            "storage": storage(checks), "cloud": cloud(checks)},
        "verification": {
            "how": VERIFICATION_HOW,
            "verdict": None if unit.verdict is None else str(unit.verdict),
            "final_state": None if unit.final_state is None else str(unit.final_state),
            "checks": verification_checks(unit),
            "functional_checks": functional_checks(checks),
            "evidence_digest": {"algorithm": ALGORITHM, "canonical_form": CANONICAL_FORM,
                                "value": evidence_digest(unit, attachments),
                                "records": len(unit.evidence)}},
        "functional_grade": None if unit.grade is None else str(unit.grade),
        "tool": {"name": "rig", "version": run.rig_version, "bench_sha256": run.bench_sha256},
        "run": {"id": run.id, "unit_id": unit.id, "slot": unit.slot,
                "started_at": when(run.started_at), "finished_at": when(run.finished_at),
                "unit_started_at": when(unit.started_at),
                "unit_finished_at": when(unit.finished_at)},
    }
    return plain(cert)
