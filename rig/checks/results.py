"""What a functional check found (``Finding``), what the record keeps of it (``CheckResult``)
and the functional grade a unit earns from its results (``grade``).

Kept apart from the checks and the runner: the grade is decided in one place, from results
alone (records, reports and certificates can re-grade from the evidence), and evidence records
carry facts plus the check's own outcome, never the grade.

Grading (R2v3 style), over the checks selected for the unit:

- ``fully-functional``: no check failed or unknown, and at least one passed. A check
  ``skipped`` does not block it: skipped means the unit lacks the function (no IR-cut filter,
  no cloud service), the bench has no minimum for its family, or the bench chose not to look
  (storage policy ``ignore``); none of that is a defect of the unit.
- ``key-functions-tested``: the bench names key checks (``[checks] key``), every one of them
  that was selected passed or was skipped, at least one passed, and some other check failed
  or is unknown.
- ``not-functional``: anything else. ``unknown`` (the unit would not say) blocks a grade
  exactly as ``failed`` does: unknown is never a pass.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rig.checks.config import ChecksConfig
from rig.vocabulary import CheckName, CheckOutcome, Grade

_CLEAR = frozenset({CheckOutcome.PASSED, CheckOutcome.SKIPPED})


@dataclass(frozen=True)
class Snapshot:
    """A snapshot kept as evidence: the JPEG (an attachment) and its thumbnail (in the record,
    for the report)."""

    jpeg: bytes
    sha256: str
    width: int
    height: int
    thumbnail_jpeg: bytes

    def to_json(self) -> dict[str, Any]:
        """The EvidenceKind.SNAPSHOT record."""
        return {"sha256": self.sha256, "width": self.width, "height": self.height,
                "thumbnail_jpeg_b64": base64.b64encode(self.thumbnail_jpeg).decode("ascii")}


@dataclass(frozen=True)
class Finding:
    """What one check found: an outcome, one sentence, the facts it saw (``details``), and
    the snapshot for the check that takes one."""

    outcome: CheckOutcome
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)
    snapshot: Snapshot | None = None


def passed(reason: str, **details: Any) -> Finding:
    """A Finding that passed: ``reason`` one sentence, ``details`` the facts seen."""
    return Finding(CheckOutcome.PASSED, reason, details)


def failed(reason: str, **details: Any) -> Finding:
    return Finding(CheckOutcome.FAILED, reason, details)


def unknown(reason: str, **details: Any) -> Finding:
    return Finding(CheckOutcome.UNKNOWN, reason, details)


def skipped(reason: str, **details: Any) -> Finding:
    return Finding(CheckOutcome.SKIPPED, reason, details)


@dataclass(frozen=True)
class CheckResult:
    """One check's result as recorded (the EvidenceKind.CHECK record is ``to_json()``)."""

    name: CheckName
    outcome: CheckOutcome
    reason: str
    key: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def clear(self) -> bool:
        """Passed, or skipped (the unit lacks the function): nothing against the unit."""
        return self.outcome in _CLEAR

    def to_json(self) -> dict[str, Any]:
        return {"check": str(self.name), "outcome": str(self.outcome), "reason": self.reason,
                "key": self.key, "details": dict(self.details)}


def grade(results: Iterable[CheckResult], config: ChecksConfig) -> Grade:
    """The unit's functional grade from its check results (see the module docstring)."""
    results = list(results)
    any_passed = any(r.outcome is CheckOutcome.PASSED for r in results)
    if results and all(r.clear for r in results) and any_passed:
        return Grade.FULLY_FUNCTIONAL
    key = [r for r in results if r.name in config.key]
    if key and all(r.clear for r in key) and any(r.outcome is CheckOutcome.PASSED for r in key):
        return Grade.KEY_FUNCTIONS_TESTED
    return Grade.NOT_FUNCTIONAL
