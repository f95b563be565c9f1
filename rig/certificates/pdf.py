"""The printable certificate: one page per unit, A4 or Letter, with a QR code and the signed
JSON attached to the PDF (and issued beside it by ``rig certificate``).

Why fpdf2 and not reportlab: fpdf2 is pure Python and small, and its only dependencies
(Pillow, fontTools, defusedxml) are ones rig already uses or that are pure Python too; it draws
a page of text and an image in a few calls and attaches files (``embed_file``, the PDF's
EmbeddedFiles). reportlab does more (flowables, charts) that a one-page form does not need, and
ships C extensions. segno writes the QR code (pure Python, no Pillow needed for its PNG).

The page is for people; the JSON is the certificate. The QR code holds
``rig-certificate:<id>;sha256:<digest of the signed bytes>`` so a scanner can fetch the JSON by
id and check it is the one printed. Text uses the PDF core font Helvetica (no font file to ship,
text extractable by any reader); a character outside Latin-1 prints as "?" on the page only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from rig.certificates.issue import Issued
from rig.vocabulary import Paper

PAPER_FORMATS = {Paper.A4: "A4", Paper.LETTER: "Letter"}
MARGIN_MM = 14
QR_MM = 34


def qr_text(issued: Issued) -> str:
    """What the QR code holds: the certificate id and the digest of its signed bytes."""
    return f"rig-certificate:{issued.certificate_id};sha256:{issued.digest}"


def _latin1(text: Any) -> str:
    return str("-" if text is None else text).encode("latin-1", "replace").decode("latin-1")


#: Body font sizes tried in turn until a certificate fits its one page (a unit with every
#: functional check and long reasons needs the smaller ones).
FONT_SIZES = (8.0, 7.0, 6.0)


def render_pdf(issued: Sequence[Issued], run_id: int, paper: Paper = Paper.A4) -> bytes:
    """One page per certificate in ``issued``, each certificate's signed JSON attached."""
    pdf = _document(paper, f"Certificates of sanitization, run {run_id}")
    for one in issued:
        pdf.add_page()
        _page(pdf, one, _fitting_size(one, paper))
        pdf.embed_file(bytes=one.text.encode("utf-8"), basename=f"{one.file_stem(run_id)}.json",
                       desc=f"signed certificate {one.certificate_id}",
                       mime_type="application/json")
    return bytes(pdf.output())


def _document(paper: Paper, title: str) -> Any:
    from fpdf import FPDF

    pdf = FPDF(format=PAPER_FORMATS[Paper(paper)], unit="mm")
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(False)           # one page per unit: we check the fit ourselves
    pdf.set_title(title)
    pdf.set_creator("rig")
    return pdf


def _fitting_size(issued: Issued, paper: Paper) -> float:
    """The largest body font size at which ``issued`` fits its page (drawn on a scratch
    document first); the smallest one when none does."""
    for size in FONT_SIZES:
        scratch = _document(paper, "")
        scratch.add_page()
        _page(scratch, issued, size)
        if scratch.get_y() <= scratch.h - MARGIN_MM / 2:
            return size
    return FONT_SIZES[-1]


def _page(pdf: Any, issued: Issued, size: float) -> None:
    """One certificate's page: heading and QR code, then the sections."""
    c = issued.envelope["certificate"]
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 8, "Certificate of Sanitization", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(0, 4, "NIST SP 800-88 Rev. 1 Appendix G fields, R2v3 device record",
             new_x="LMARGIN", new_y="NEXT")
    _qr(pdf, issued)
    pdf.ln(2)
    for title, rows in _sections(c, issued):
        _section(pdf, title, rows, size)
    pdf.set_font("Helvetica", "I", size - 1)
    pdf.multi_cell(pdf.epw, size * 0.4, _latin1(
        "The signed JSON is attached to this PDF and issued beside it; it, not this page, is "
        "the certificate. Verify it with `rig certificate verify FILE`, or with any Ed25519 "
        "library over its RFC 8785 canonical form (rig README, Certificates)."),
        new_x="LMARGIN", new_y="NEXT")


def _qr(pdf: Any, issued: Issued) -> None:
    import segno

    buffer = io.BytesIO()
    segno.make(qr_text(issued), error="m").save(buffer, kind="png", scale=6, border=2)
    buffer.seek(0)
    pdf.image(buffer, x=pdf.w - MARGIN_MM - QR_MM, y=MARGIN_MM - 2, w=QR_MM, h=QR_MM)


def _section(pdf: Any, title: str, rows: Sequence[tuple[str, Any]], size: float) -> None:
    """A bold heading and label/value rows; long values wrap within the printable width (and
    beside the QR code while the rows are level with it)."""
    pdf.set_font("Helvetica", "B", size + 2)
    pdf.cell(0, size * 0.75, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    label_w, line = 38, size * 0.475
    for label, value in rows:
        pdf.set_font("Helvetica", "B", size)
        pdf.cell(label_w, line, _latin1(label))
        pdf.set_font("Helvetica", "", size)
        beside_qr = pdf.get_y() < MARGIN_MM + QR_MM
        pdf.multi_cell(pdf.epw - label_w - (QR_MM if beside_qr else 0), line,
                       _latin1(value), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(size / 8)


def _recorded(fact: dict[str, Any]) -> str:
    """An operator or destination, saying when it is the bench file's default, not the run's."""
    if fact["value"] is None:
        return "(not recorded)"
    return fact["value"] + ("" if fact["recorded_with_run"] else
                            " (the bench file's default; not recorded with the run)")


def _outcome(part: dict[str, Any]) -> str:
    return f"{part['outcome']}: {part['detail']}" if part["detail"] else part["outcome"]


def _checks(rows: Sequence[dict[str, Any]], name: str, result: str) -> str:
    return "; ".join(f"{r[name]}: {r[result]}" for r in rows) or "none ran"


def _sections(c: dict[str, Any], issued: Issued) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The page's sections, in the order of NIST SP 800-88 Appendix G."""
    d, s, v, t, r = (c["device"], c["sanitization"], c["verification"], c["tool"], c["run"])
    sig = issued.envelope["signature"]
    operator, destination = c["operator"], c["destination"]
    return [
        ("Certificate", [("Certificate id", c["id"]), ("Issued", c["issued_at"]),
                         ("Issuer", c["issuer"]["organisation"] or "(organisation not set)"),
                         ("Bench / host", f"{c['issuer']['bench']} on {c['issuer']['host']}")]),
        ("Person performing", [("Operator", _recorded(operator))]),
        ("Media", [("Manufacturer", d["manufacturer"]), ("Model", d["model"]),
                   ("Serial number", d["serial"]), ("MAC address", d["mac"]),
                   ("Firmware", d["firmware"]), ("Media type", "IP camera configuration")]),
        ("Sanitization", [
            ("Category", f"{s['nist_sp_800_88_category']} (NIST SP 800-88)"),
            ("Method used", f"{s['method']}: {s['method_description']}"),
            ("Why Clear", s["category_note"]),
            ("Memory card", _outcome(s["storage"])), ("Cloud binding", _outcome(s["cloud"]))]),
        ("Verification", [
            ("How", v["how"]), ("Verdict", f"{v['verdict']}; left {v['final_state']}"),
            ("Checks", _checks(v["checks"], "name", "result")),
            ("Functional checks", _checks(v["functional_checks"], "check", "outcome")),
            ("Functional grade", c["functional_grade"] or "not graded (no functional checks)"),
            ("Evidence SHA-256", f"{v['evidence_digest']['value']} "
                                 f"({v['evidence_digest']['records']} records, RFC 8785)")]),
        ("Tool and run", [
            ("Tool", f"{t['name']} {t['version']}"), ("Bench file SHA-256", t["bench_sha256"]),
            ("Run / unit / slot", f"run {r['id']}, unit {r['unit_id']}, slot {r['slot']}"),
            ("Unit started", r["unit_started_at"]), ("Unit finished", r["unit_finished_at"]),
            ("Destination", _recorded(destination))]),
        ("Signature", [("Algorithm / key id", f"{sig['alg']} / {sig['key_id']}"),
                       ("Signed bytes SHA-256", issued.digest), ("Signature", sig["value"])]),
    ]
