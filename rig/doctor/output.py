"""The doctor's findings as a table grouped by area (people) or one JSON document (scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rig.bench import Bench
from rig.doctor.findings import Finding, worst
from rig.vocabulary import DoctorArea, FindingLevel

_MARK = {FindingLevel.OK: "ok", FindingLevel.WARN: "WARN", FindingLevel.FAIL: "FAIL"}


def counts(findings: Sequence[Finding]) -> dict[str, int]:
    return {str(level): sum(1 for f in findings if f.level is level) for level in FindingLevel}


def summary(findings: Sequence[Finding]) -> str:
    """The last line: how many of each, and what the exit status means."""
    n = counts(findings)
    text = ", ".join(f"{n[str(level)]} {level}" for level in FindingLevel)
    level = worst(findings)
    if level is FindingLevel.FAIL:
        return f"{text}: the bench is not ready (fix each FAIL above)"
    if level is FindingLevel.WARN:
        return f"{text}: warnings only, the bench can run (look at each WARN above)"
    return f"{text}: all ok"


def as_table(bench: Bench, findings: Sequence[Finding]) -> str:
    lines = [f"rig doctor: bench {bench.name!r} ({bench.path})"]
    width = max((len(f.name) for f in findings), default=10)
    width = min(max(width, 10), 44)
    for area in DoctorArea:
        group = [f for f in findings if f.area is area]
        if not group:
            continue
        lines.append(str(area))
        for f in group:
            lines.append(f"  {_MARK[f.level]:<4}  {f.name:<{width}}  {f.message}")
            if f.fix and f.level is not FindingLevel.OK:
                lines.append(f"  {'':<4}  {'':<{width}}  fix: {f.fix}")
    lines.append(summary(findings))
    return "\n".join(lines)


def as_json(bench: Bench, findings: Sequence[Finding]) -> dict[str, Any]:
    return {"bench": bench.name, "path": str(bench.path), "level": str(worst(findings)),
            "counts": counts(findings), "findings": [f.to_json() for f in findings]}
