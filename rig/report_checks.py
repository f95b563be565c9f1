"""The functional checks in the HTML report: the unit's grade, each check's result, and the
snapshot's thumbnail (issue "functional checks": "its report shows each unit's snapshot").

Apart from rig.report because it reads one family of evidence (``check`` and ``snapshot``)
and owns the one piece of binary the report embeds. The thumbnail comes from the record, which
a hostile unit's answers fed: it is embedded only if it decodes as base64 to JPEG bytes, and
re-encoded by us, so nothing from the record reaches the page unescaped.
"""

from __future__ import annotations

import base64
import binascii
import html
from typing import Any

from rig.records import Unit
from rig.vocabulary import CheckOutcome, EvidenceKind, Grade

# Class names come from these fixed tables, never from record text (rig.report's CSS).
GRADE_CLASS = {Grade.FULLY_FUNCTIONAL.value: "v-pass",
               Grade.KEY_FUNCTIONS_TESTED.value: "v-unreach",
               Grade.NOT_FUNCTIONAL.value: "v-fail"}
CHECK_CLASS = {CheckOutcome.PASSED.value: "v-pass", CheckOutcome.FAILED.value: "v-fail",
               CheckOutcome.UNKNOWN.value: "v-unreach", CheckOutcome.SKIPPED.value: "v-skipped"}
#: A thumbnail is at most 240 px wide: a few kB. Anything far larger is not one.
MAX_THUMBNAIL_B64 = 200_000

CSS = """
figure.snapshot { margin: .5rem 0; } figure.snapshot img { max-width: 240px;
  border: 1px solid #d1d9e0; border-radius: .3rem; display: block; }
figure.snapshot figcaption { font-size: .8rem; color: #59636e; }
"""


def _e(value: object) -> str:
    return html.escape("-" if value is None else str(value), quote=True)


def _badge(text: str, css: str) -> str:
    return f'<span class="badge {css}">{_e(text)}</span>'


def grade_badge(grade: str | None) -> str:
    return _badge(grade, GRADE_CLASS.get(grade, "v-skipped")) if grade else "-"


def thumbnail_src(data: dict[str, Any]) -> str | None:
    """A ``data:`` URL for the snapshot evidence's thumbnail, or None when it is not a JPEG."""
    text = data.get("thumbnail_jpeg_b64")
    if not isinstance(text, str) or len(text) > MAX_THUMBNAIL_B64:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(b"\xff\xd8"):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(raw).decode("ascii")


def checks_section(unit: Unit) -> list[str]:
    """The unit's functional checks: grade, one row per check, the snapshot's thumbnail."""
    results = [e.data for e in unit.evidence if e.kind == EvidenceKind.CHECK]
    if not results:
        return []
    grade = unit.grade.value if unit.grade else None
    out = ["<h3>Functional checks</h3>", f"<p>Grade: {grade_badge(grade)}</p>", "<table>",
           "<thead><tr><th>Check</th><th>Result</th><th>Key</th><th>Reason</th></tr></thead>",
           "<tbody>"]
    for r in results:
        outcome = str(r.get("outcome"))
        out.append(f"<tr><td>{_e(r.get('check'))}</td>"
                   f"<td>{_badge(outcome, CHECK_CLASS.get(outcome, 'v-skipped'))}</td>"
                   f"<td>{'key' if r.get('key') is True else ''}</td>"
                   f"<td>{_e(r.get('reason'))}</td></tr>")
    out += ["</tbody>", "</table>"]
    for shot in (e.data for e in unit.evidence if e.kind == EvidenceKind.SNAPSHOT):
        src = thumbnail_src(shot)
        if src:
            caption = (f"snapshot {_e(shot.get('width'))}×{_e(shot.get('height'))}, "
                       f"SHA-256 {_e(str(shot.get('sha256', ''))[:16])}…")
            out.append(f'<figure class="snapshot"><img alt="snapshot of slot {_e(unit.slot)}" '
                       f'src="{src}"><figcaption>{caption}</figcaption></figure>')
    return out


def evidence_for_display(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Evidence as the report prints it: a snapshot's thumbnail is shown above, not as text."""
    if kind == EvidenceKind.SNAPSHOT and "thumbnail_jpeg_b64" in data:
        return {**data, "thumbnail_jpeg_b64": "(shown above)"}
    return data
