"""``rig certificate`` end to end: a simulated bench run by an operator, certificates issued as
PDF and JSON for the unit that passed and none for the jammed one, verified, tampered with,
and the PDF's text read back with poppler's pdftotext.

Without pdftotext the PDF text test skips on a workstation and FAILS in CI (CI=true): .ci/run
installs poppler-utils, so a missing tool there is a broken CI, not a reason to pass."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from certificates_support import BENCH_TOML, SERIALS, recorded_run

from rig.certificates.config import CertificateConfig
from rig.cli import main
from rig.records import RecordStore
from rig.runner import Runner
from rig.sim.bench import SimBench, SimSlot
from rig.sim.camera import SimFaults
from rig.vocabulary import Destination
from rig.wiring import BenchHardware

ROOT = Path(__file__).resolve().parents[1]


def need_pdftotext() -> str:
    """pdftotext, or a skip (a failure when CI is set)."""
    tool = shutil.which("pdftotext")
    if tool is None:
        why = "pdftotext (poppler-utils) is not installed"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(why + " and CI is set: .ci/run should have installed it")
        pytest.skip(why)
    return tool


def pdf_text(path: Path) -> list[str]:
    """Each page's text, by pdftotext."""
    out = subprocess.run([need_pdftotext(), "-layout", str(path), "-"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return out.split("\f")[:-1]


def test_a_certified_simulated_run_verifies_and_a_tampered_copy_does_not(tmp_path, capsys):
    spec = [SimSlot("gpio", "current"), SimSlot("gpio", "current", SimFaults(jammed_button=True))]
    db = tmp_path / "rig.sqlite"
    with SimBench.start(spec, directory=tmp_path / "bench", time_scale=100.0,
                        base="127.0.31.", first=10,      # addresses no other test uses
                        name="certbench", provision="Used-Unit-77") as sim:
        with RecordStore.open(db) as store:
            # the destination comes from the bench's [certificate] default, the operator from
            # the command line (which wins over the bench's)
            bench = dataclasses.replace(sim.bench, certificate=CertificateConfig(
                "Sim Org", "Bench Default", Destination.REUSE))
            hardware = BenchHardware(bench, pin_factory=sim.pin_factory)
            try:
                result = Runner(bench, store, hardware, method="hard", argv=["test"],
                                operator="R. Tester").run()
            finally:
                hardware.close()
        serial = result.results["1"].serial
        assert not result.results["2"].verdict.passed
        out = tmp_path / "out"
        code = main(["certificate", str(result.run_id), "--db", str(db), "--out", str(out),
                     "--paper", "letter"])
    printed = capsys.readouterr().out
    assert code == 1                                  # one unit got none: listed, exit 1
    assert "slot 2" in printed and "NO CERTIFICATE: verdict not-default" in printed
    (cert,) = sorted(out.glob("*.json"))
    envelope = json.loads(cert.read_text())
    assert envelope["certificate"]["device"]["serial"] == serial
    assert envelope["certificate"]["operator"] == {"value": "R. Tester",
                                                   "recorded_with_run": True}
    assert envelope["certificate"]["destination"] == {"value": "reuse",
                                                      "recorded_with_run": True}
    assert main(["certificate", "verify", str(cert), "--db", str(db)]) == 0
    assert "VALID: certificate" in capsys.readouterr().out
    tampered = tmp_path / "tampered.json"
    tampered.write_text(cert.read_text().replace(serial, serial[:-1] + "9"))
    assert main(["certificate", "verify", str(tampered), "--db", str(db)]) == 1
    assert "INVALID: signature: the Ed25519 signature does not match" in capsys.readouterr().out
    pages = pdf_text(out / f"certificates-run{result.run_id}.pdf")
    assert len(pages) == 1 and serial in pages[0]
    assert envelope["certificate"]["id"] in pages[0]
    assert "Clear (NIST SP 800-88)" in pages[0]


def _issue(tmp_path: Path, *extra: str) -> tuple[Path, Path, int]:
    db = tmp_path / "rig.sqlite"
    bench = tmp_path / "bench.toml"
    bench.write_text(BENCH_TOML)
    recorded_run(db, bench)
    out = tmp_path / "out"
    code = main(["certificate", "1", "--db", str(db), "--out", str(out), *extra])
    return db, out, code


def test_pdf_has_one_page_per_unit_with_the_signed_json_attached(tmp_path, capsys):
    _, out, code = _issue(tmp_path, "--format", "pdf")
    assert code == 1
    pdf = out / "certificates-run1.pdf"
    pages = pdf_text(pdf)
    assert len(pages) == 2
    certs = sorted(out.glob("*.json"))
    for page, slot in zip(pages, ("1", "2"), strict=True):
        assert SERIALS[slot] in page and "Example Refurb Ltd" in page
    ids = {json.loads(c.read_text())["certificate"]["id"] for c in certs}
    assert {i for i in ids if any(i in p for p in pages)} == ids
    detach = shutil.which("pdfdetach")
    if detach:
        listed = subprocess.run([detach, "-list", str(pdf)], capture_output=True, text=True,
                                timeout=30).stdout
        assert all(c.name in listed for c in certs)
    assert b"/MediaBox [0 0 595.28 841.89]" in pdf.read_bytes()        # A4 by default


def test_json_only_and_one_slot(tmp_path, capsys):
    _, out, code = _issue(tmp_path, "--format", "json", "--slot", "2")
    assert code == 0
    assert [p.suffix for p in out.iterdir()] == [".json"]
    assert "slot 2" in capsys.readouterr().out
    assert main(["certificate", "1", "--db", str(tmp_path / "rig.sqlite"), "--slot", "9",
                 "--out", str(out)]) == 2
    assert "no slot '9' in this run" in capsys.readouterr().err


def test_key_export_verify_with_key_and_usage_errors(tmp_path, capsys, monkeypatch):
    db, out, _ = _issue(tmp_path, "--format", "json")
    capsys.readouterr()
    assert main(["certificate", "key", "--export", "--db", str(db)]) == 0
    pem = capsys.readouterr().out
    assert pem.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in pem
    (tmp_path / "issuer.pem").write_text(pem)
    cert = sorted(out.glob("*.json"))[0]
    elsewhere = tmp_path / "elsewhere.sqlite"        # a buyer: no keyring, no store of ours
    assert main(["certificate", "verify", str(cert), "--key", str(tmp_path / "issuer.pem"),
                 "--db", str(elsewhere)]) == 2       # a store named must exist
    monkeypatch.delenv("RIG_DB", raising=False)
    assert main(["certificate", "verify", str(cert), "--key", str(tmp_path / "issuer.pem")]) == 0
    assert "not checked against a record store" in capsys.readouterr().out
    assert main(["certificate", "verify", str(tmp_path / "missing.json")]) == 2
    assert main(["certificate", "key", "--rotate", "--db", str(db)]) == 0
    assert "retired" in capsys.readouterr().out
    assert main(["certificate", "verify", str(cert), "--db", str(db)]) == 0


def test_a_world_readable_key_stops_issuing(tmp_path, capsys):
    db, out, _ = _issue(tmp_path, "--format", "json")
    key = db.parent / "certificate-keys" / "signing-key.pem"
    key.chmod(0o644)
    assert main(["certificate", "1", "--db", str(db), "--out", str(tmp_path / "o2")]) == 2
    assert "refusing to sign" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_rig_help_loads_no_pdf_qr_or_canonical_json_library():
    code = ("import sys; from rig.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('fpdf', 'segno', 'rfc8785') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_the_readme_shows_a_buyer_how_to_verify_without_rig(tmp_path, capsys):
    """The README's Python block, run as it is on an issued certificate and its exported key."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- buyer-verify", 1)[1].split("```python\n", 1)[1].split("```")[0]
    db, out, _ = _issue(tmp_path, "--format", "json")
    capsys.readouterr()
    assert main(["certificate", "key", "--export", "--db", str(db)]) == 0
    (tmp_path / "key.pem").write_text(capsys.readouterr().out)
    (tmp_path / "buyer.py").write_text(block)
    cert = sorted(out.glob("*.json"))[0]
    ok = subprocess.run([sys.executable, "buyer.py", str(cert), "key.pem"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("valid:"), ok.stderr
    cert.write_text(cert.read_text().replace('"hard"', '"web-full"'))
    bad = subprocess.run([sys.executable, "buyer.py", str(cert), "key.pem"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "InvalidSignature" in bad.stderr


def test_a_unit_with_every_check_and_long_reasons_still_fits_one_letter_page(tmp_path):
    from rig.certificates.content import Issuer
    from rig.certificates.issue import issue
    from rig.certificates.keys import BenchKeys
    from rig.certificates.pdf import FONT_SIZES, _fitting_size, render_pdf
    from rig.vocabulary import CheckName, Paper

    recorded_run(tmp_path / "rig.sqlite")
    with RecordStore.open(tmp_path / "rig.sqlite") as store:
        one = issue(store, 1, Issuer("O" * 90, "bench-a", CertificateConfig()),
                    BenchKeys(tmp_path / "k").signing_key()).issued[0]
    long = "a reason that goes on for a while, as the checks' reasons do " * 3
    certificate = json.loads(json.dumps(one.envelope["certificate"]))
    certificate["verification"]["functional_checks"] = [
        {"check": str(n), "outcome": "passed", "key": True, "reason": long} for n in CheckName]
    certificate["verification"]["checks"] *= 120
    certificate["sanitization"]["storage"]["detail"] = long
    certificate["sanitization"]["cloud"]["detail"] = long
    big = dataclasses.replace(one, envelope={**one.envelope, "certificate": certificate})
    assert _fitting_size(big, Paper.LETTER) < FONT_SIZES[0]
    pdf = tmp_path / "big.pdf"
    pdf.write_bytes(render_pdf([big], 1, Paper.LETTER))
    (page,) = pdf_text(pdf)
    assert "RFC 8785 canonical form" in page and SERIALS["1"] in page


def test_rig_run_takes_an_operator_and_a_known_destination(capsys):
    from rig.cli import build_parser

    args = build_parser().parse_args(["run", "b.toml", "--operator", "A. Person",
                                      "--destination", "reuse"])
    assert (args.operator, args.destination) == ("A. Person", "reuse")
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", "b.toml", "--destination", "landfill"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
