"""``rig certificate``: issue signed certificates of sanitization for a run's passing units,
verify one, and manage the bench's signing key.

``rig certificate RUN …`` is short for ``rig certificate issue RUN …`` (rig.cli respells it).
Heavy libraries (cryptography, fpdf2, segno, rfc8785) load inside the functions that run, so
``rig --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rig.commands.history import is_fleet, open_store
from rig.vocabulary import CertificateFormat, Paper, choices

if TYPE_CHECKING:
    from rig.certificates.content import Issuer
    from rig.certificates.issue import IssueOutcome
    from rig.certificates.keys import BenchKeys
    from rig.fleet.records import FleetRecords
    from rig.records import RecordStore, Run

DESCRIPTION = """\
Issue one signed certificate of sanitization per unit of RUN that passed (NIST SP 800-88
Appendix G fields, the R2v3 device record), list the units that got none and why, and record
each certificate in the record store. JSON: the signed certificate, one file per unit. PDF: one
page per unit in one file (A4 or Letter), each page with a QR code and its signed JSON attached,
and the JSON files beside it. The issuer's organisation comes from the bench file's
[certificate] table; the signing key is created on first use beside the record store."""

EPILOG = """\
rig certificate RUN … is short for rig certificate issue RUN ….
exit status: 0 every selected unit got a certificate, 1 some got none (listed), 2 usage,
unknown run, no record store, or a key that cannot be used."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``certificate`` (issue, verify, key) to the rig CLI."""
    parser = sub.add_parser("certificate", help="issue and verify signed certificates of "
                            "sanitization", description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    issue = actions.add_parser("issue", help="certificates for a run's passing units "
                               "(rig certificate RUN is short for this)",
                               description=DESCRIPTION, epilog=EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    issue.add_argument("run_ref", metavar="RUN", help='run id (see rig history) or "last"')
    issue.add_argument("--slot", action="append", metavar="S", dest="slots",
                       help="only this slot (repeat for several; default: every unit)")
    issue.add_argument("--format", choices=choices(CertificateFormat),
                       default=CertificateFormat.PDF.value, help="default: %(default)s")
    issue.add_argument("--out", metavar="DIR", default=".", help="where to write (default: .)")
    issue.add_argument("--paper", choices=choices(Paper), default=Paper.A4.value,
                       help="PDF page size (default: %(default)s)")
    issue.add_argument("--bench", default=os.environ.get("RIG_BENCH"),
                       help="bench file naming the issuer (default: $RIG_BENCH, else the file "
                            "the run recorded)")
    _db(issue)
    issue.set_defaults(func=run_issue)
    _register_verify(actions)
    _register_key(actions)


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH",
                        help="record store (default: $RIG_DB or ~/.local/share/rig/rig.sqlite); "
                             "the signing keys live beside it, in certificate-keys/")


def _register_verify(actions: argparse._SubParsersAction) -> None:
    verify = actions.add_parser(
        "verify", help="check a certificate's signature (and, with the store, its evidence)",
        description="Check a certificate file: its form, its key, its Ed25519 signature over "
                    "the canonical certificate and, with the record store (--db, else $RIG_DB), "
                    "that it is the certificate recorded "
                    "and that the unit's evidence still has the digest it pins.",
        epilog="exit status: 0 valid, 1 invalid (the reason is printed), 2 usage or an "
               "unreadable file or key.")
    verify.add_argument("file", metavar="FILE", help="the certificate's JSON file")
    verify.add_argument("--key", metavar="PEM", help="the issuer's public key (PEM file) "
                        "instead of the bench keyring beside the record store")
    verify.add_argument("--db", metavar="PATH|URL",
                        help="record store (default: $RIG_DB), or the fleet's postgresql:// URL "
                             "(no password in it; then --key is needed)")
    verify.set_defaults(func=run_verify)


def _register_key(actions: argparse._SubParsersAction) -> None:
    key = actions.add_parser(
        "key", help="print the bench's public key, or rotate its signing key",
        description="The bench's Ed25519 signing key lives beside the record store "
                    "(certificate-keys/signing-key.pem, owner-only). --export prints its public "
                    "key as PEM (give it to buyers); --rotate replaces the signing key and keeps "
                    "the old public key in the keyring, so certificates it signed still verify.",
        epilog="exit status: 0 done, 2 a key that cannot be used.")
    what = key.add_mutually_exclusive_group(required=True)
    what.add_argument("--export", action="store_true", help="print the public key (PEM)")
    what.add_argument("--rotate", action="store_true", help="make a new signing key")
    what.add_argument("--list", action="store_true", help="list the keyring's keys")
    _db(key)
    key.set_defaults(func=run_key)


def _keys_for(db: str | None) -> BenchKeys:
    from rig.certificates.keys import BenchKeys, key_dir
    from rig.records import default_db_path

    return BenchKeys(key_dir(db if db is not None else default_db_path(create_parent=False)))


def _issuer(args: argparse.Namespace, run: Run) -> Issuer:
    """The issuer: organisation and defaults from the bench file (``--bench``, $RIG_BENCH, else
    the file the run recorded), the bench's name as the run recorded it. A bench file named
    explicitly must load (BenchError); the run's own may be gone (a warning, no organisation)."""
    from rig.bench import load_bench
    from rig.certificates.config import CertificateConfig
    from rig.certificates.content import Issuer
    from rig.records.runlog import file_sha256

    path = args.bench or run.bench_path
    config = CertificateConfig()
    if path and (args.bench or Path(path).exists()):
        config = load_bench(path).certificate
        try:
            if run.bench_sha256 and file_sha256(path) != run.bench_sha256:
                _warn(f"{path} changed since run {run.id}: the issuer is read from it as it is "
                      "now; the certificate keeps the run's bench SHA-256")
        except OSError:
            pass
        if not config.organisation:
            _warn(f"{path}: [certificate] organisation is not set: the certificate names no "
                  "issuing organisation")
    else:
        _warn(f"bench file {path or '(none recorded)'} not found: the certificate names no "
              "issuing organisation (pass --bench)")
    return Issuer(organisation=config.organisation, bench=run.bench_name, config=config)


def _warn(text: str) -> None:
    print(f"rig certificate: warning: {text}", file=sys.stderr)


def _run_id(store: RecordStore, ref: str) -> int:
    """RUN as an id ("last": the newest); UnknownRun when there is no such run."""
    from rig.records import UnknownRun

    if ref == "last":
        last = store.runs.last_run_id()
        if last is None:
            raise UnknownRun(f"no runs recorded in {store.path}")
        return last
    if not ref.isdigit():
        raise UnknownRun(f'{ref!r} is not a run id (a number) or "last"')
    return int(ref)


def run_issue(args: argparse.Namespace) -> int:
    """Issue, record, then write: a certificate that could not be written is still recorded
    (and its text kept in the store), so nothing signed goes unaccounted for."""
    from rig.bench import BenchError
    from rig.certificates.issue import issue
    from rig.certificates.keys import KeyFileError
    from rig.records import RecordError, UnknownRun

    store = open_store(args.db, "certificate")
    if store is None:
        return 2
    with store:
        try:
            run_id = _run_id(store, args.run_ref)
            issuer = _issuer(args, store.runs.load_run(run_id).run)
            key = _keys_for(store.path).signing_key()
            outcome = issue(store, run_id, issuer, key, slots=args.slots)
        except (UnknownRun, BenchError, KeyFileError, ValueError, RecordError) as exc:
            print(f"rig certificate: error: {exc}", file=sys.stderr)
            return 2
    try:
        written = write_outcome(outcome, Path(args.out), CertificateFormat(args.format),
                                Paper(args.paper))
    except OSError as exc:
        print(f"rig certificate: error: cannot write to {args.out}: {exc} (the certificates "
              f"are recorded in {store.path})", file=sys.stderr)
        return 2
    for one in outcome.issued:
        print(f"slot {one.slot:<6} {one.serial or '-':<36} certificate {one.certificate_id}")
    for no in outcome.refused:
        print(f"slot {no.slot:<6} {no.serial or '-':<36} NO CERTIFICATE: {no.reason}")
    for path in written:
        print(path)
    return 1 if outcome.refused else 0


def write_outcome(outcome: IssueOutcome, out: Path, fmt: CertificateFormat,
                  paper: Paper) -> list[Path]:
    """Write each signed certificate as JSON (always) and, for PDF, the run's pages in one
    file; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for one in outcome.issued:
        path = out / f"{one.file_stem(outcome.run_id)}.json"
        path.write_text(one.text, encoding="utf-8")
        written.append(path)
    if fmt is CertificateFormat.PDF and outcome.issued:
        from rig.certificates.pdf import render_pdf

        path = out / f"certificates-run{outcome.run_id}.pdf"
        path.write_bytes(render_pdf(outcome.issued, outcome.run_id, paper))
        written.append(path)
    return written


def run_verify(args: argparse.Namespace) -> int:
    """Print every finding, then VALID or INVALID with the first failure's reason."""
    from rig.certificates.keys import KeyFileError, load_public_pem
    from rig.certificates.signing import key_id
    from rig.certificates.verify import verify_bytes
    if is_fleet(args.db) and not args.key:
        print("rig certificate verify: error: with the fleet's database give --key PEM, the "
              "issuing bench's public key (rig certificate key --export on it)",
              file=sys.stderr)
        return 2
    try:
        data = Path(args.file).read_bytes()
        if args.key:
            public = load_public_pem(Path(args.key).read_bytes())
            keys = {key_id(public): public}
        else:
            keys = _keys_for(args.db).public_keys()
    except (OSError, ValueError, KeyFileError) as exc:
        print(f"rig certificate verify: error: {exc}", file=sys.stderr)
        return 2
    store = _verify_store(args.db)
    if store is None and (args.db or os.environ.get("RIG_DB")):
        return 2                                    # the store named cannot be opened (said)
    try:
        report = verify_bytes(data, keys, store)
    finally:
        if store is not None:
            store.close()
    for finding in report.findings:
        print(f"{'ok  ' if finding.ok else 'FAIL'}  {finding.name:<16} {finding.detail}")
    if store is None and report.valid:
        print("note: not checked against a record store (give --db to recompute the evidence "
              "digest)")
    if report.valid:
        c = report.certificate or {}
        print(f"VALID: certificate {c.get('id')} for serial {c.get('device', {}).get('serial')}")
        return 0
    print(f"INVALID: {report.reason}")
    return 1


def _verify_store(db: str | None) -> RecordStore | FleetRecords | None:
    """The record store to check against: --db, else $RIG_DB; None (signature checks only)
    when neither names one. A buyer verifies without any. A postgresql:// --db is the fleet's
    copy of every bench's records (rig.fleet.records)."""
    if is_fleet(db):
        return _fleet_records(db)
    named = db or os.environ.get("RIG_DB")
    return None if not named else open_store(named, "certificate verify")


def _fleet_records(db: str) -> FleetRecords | None:
    """The fleet's records to verify against; None (the reason printed) when unreachable."""
    import psycopg

    from rig.fleet import reader
    from rig.fleet.records import FleetRecords
    from rig.fleet.target import TargetError, masked, resolve
    try:
        return FleetRecords(reader.connect(resolve(to=db)), masked(db))
    except (TargetError, RuntimeError, psycopg.Error) as exc:
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        print(f"rig certificate verify: error: {text}", file=sys.stderr)
        return None


def run_key(args: argparse.Namespace) -> int:
    """Only public keys are ever printed; the private key stays in its owner-only file."""
    from rig.certificates.keys import KeyFileError, public_pem

    keys = _keys_for(args.db)
    try:
        if args.export:
            sys.stdout.write(public_pem(keys.signing_key().public_key()))
        elif args.rotate:
            old, new = keys.rotate()
            print(f"new signing key {new}" + (f"; {old} retired (kept in the keyring, so its "
                                             "certificates still verify)" if old else ""))
        else:
            for entry in keys.keyring():
                state = f"retired {entry.retired_at}" if entry.retired_at else "current"
                print(f"{entry.key_id}  created {entry.created_at}  {state}")
    except KeyFileError as exc:
        print(f"rig certificate key: error: {exc}", file=sys.stderr)
        return 2
    return 0
