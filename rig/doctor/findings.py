"""A doctor finding: one fact about one part of the bench, its level, and what to do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rig.vocabulary import DoctorArea, FindingLevel


@dataclass(frozen=True)
class Finding:
    """What the doctor found about ``name`` (a switch, a slot, a file) in ``area``.

    ``message`` says what was seen, in one line; ``fix`` says what to do in one line (empty
    when there is nothing to do). Neither ever holds a secret: probes build them from names,
    never from credential values."""

    area: DoctorArea
    name: str
    level: FindingLevel
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"area": str(self.area), "name": self.name, "level": str(self.level),
                "message": self.message, "fix": self.fix}


def ok(area: DoctorArea, name: str, message: str) -> Finding:
    return Finding(area, name, FindingLevel.OK, message)


def warn(area: DoctorArea, name: str, message: str, fix: str) -> Finding:
    return Finding(area, name, FindingLevel.WARN, message, fix)


def fail(area: DoctorArea, name: str, message: str, fix: str) -> Finding:
    return Finding(area, name, FindingLevel.FAIL, message, fix)


_RANK = {FindingLevel.OK: 0, FindingLevel.WARN: 1, FindingLevel.FAIL: 2}


def worst(findings: Iterable[Finding]) -> FindingLevel:
    """The most serious level among ``findings`` (``ok`` when there are none)."""
    return max((f.level for f in findings), key=_RANK.__getitem__, default=FindingLevel.OK)


def exit_code(findings: Iterable[Finding]) -> int:
    """1 when anything fails; warnings alone still exit 0 (the caller says so)."""
    return 1 if worst(findings) is FindingLevel.FAIL else 0
