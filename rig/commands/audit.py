"""``rig audit``: draw a random sample of certified units for independent re-verification,
record each re-verification against its certificate, and show the sampling rate achieved."""

from __future__ import annotations

import argparse
import secrets
import sys
from datetime import UTC, datetime

from rig.commands.history import open_store
from rig.vocabulary import AuditOutcome, choices

DESCRIPTION = """\
R2v3 asks that at least 5 % of logically sanitized devices be re-verified independently.
`sample` draws certified units at random (each unit's latest certificate, issued since DATE)
and records the draw with its seed, so anyone can redraw it. `record` stores one
re-verification's result against its certificate. `report` shows, for each sample, how many
were drawn and re-verified: the sampling rate achieved."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``audit`` (sample, record, report) to the rig CLI."""
    parser = sub.add_parser("audit", help="sample certified units for re-verification",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sample = actions.add_parser("sample", help="draw a random sample of certified units")
    sample.add_argument("--percent", type=float, default=5.0,
                        help="share of certified units to draw (default: %(default)g)")
    sample.add_argument("--since", type=_date, metavar="DATE",
                        help="only certificates issued on or after DATE (ISO 8601)")
    sample.add_argument("--seed", help="the draw's seed (default: a random one, recorded)")
    sample.add_argument("--by", default="", metavar="NAME", help="who drew it")
    sample.set_defaults(func=run_sample)
    record = actions.add_parser("record", help="record one re-verification's result")
    record.add_argument("certificate", metavar="CERTIFICATE_ID")
    record.add_argument("--outcome", required=True, choices=choices(AuditOutcome))
    record.add_argument("--auditor", required=True, metavar="NAME")
    record.add_argument("--note", default="")
    record.add_argument("--sample", type=int, metavar="N",
                        help="the sample it was drawn in (default: the latest one holding it)")
    record.set_defaults(func=run_record)
    report = actions.add_parser("report", help="each sample: drawn, re-verified, rate achieved")
    report.set_defaults(func=run_report)
    for each in (sample, record, report):
        each.add_argument("--db", metavar="PATH", help="record store (default: $RIG_DB or "
                          "~/.local/share/rig/rig.sqlite)")


def _date(text: str) -> str:
    """An ISO 8601 date or time as UTC text comparable with the stored issue times (a time
    without a zone is taken as UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def run_sample(args: argparse.Namespace) -> int:
    from rig.certificates.audit import draw, population

    store = open_store(args.db, "audit")
    if store is None:
        return 2
    seed = args.seed or secrets.token_hex(8)
    with store:
        ids = population(store.certificates.issued_since(args.since))
        try:
            chosen = draw(ids, args.percent, seed)
        except ValueError as exc:
            print(f"rig audit: error: {exc}", file=sys.stderr)
            return 2
        sample_id = store.certificates.add_sample(
            seed=seed, percent=args.percent, since=args.since, population=len(ids),
            drawn_by=args.by, certificate_ids=chosen)
        serials = {c.id: c.serial for c in store.certificates.issued_since(args.since)}
    print(f"sample {sample_id}: {len(chosen)} of {len(ids)} certified unit(s) "
          f"({args.percent:g} % asked), seed {seed}")
    for cert_id in chosen:
        print(f"  {cert_id}  {serials.get(cert_id) or '-'}")
    return 0


def run_record(args: argparse.Namespace) -> int:
    store = open_store(args.db, "audit")
    if store is None:
        return 2
    with store:
        sample_id = args.sample
        if sample_id is None:
            holding = [s.id for s in store.certificates.samples()
                       if args.certificate in s.certificate_ids]
            sample_id = holding[-1] if holding else None
        from rig.records import RecordError

        try:
            store.certificates.add_result(args.certificate, auditor=args.auditor,
                                          outcome=args.outcome, note=args.note,
                                          sample_id=sample_id)
        except RecordError as exc:
            print(f"rig audit: error: {exc}", file=sys.stderr)
            return 2
    where = f" (sample {sample_id})" if sample_id is not None else " (in no sample)"
    print(f"recorded {args.outcome} for certificate {args.certificate}{where}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from rig.certificates.audit import status

    store = open_store(args.db, "audit")
    if store is None:
        return 2
    with store:
        results = store.certificates.results()
        rows = [status(s, results) for s in store.certificates.samples()]
    if not rows:
        print("no audit samples drawn (rig audit sample)")
        return 0
    print(f"{'SAMPLE':<7} {'DRAWN AT':<26} {'ASKED':>6} {'POP':>5} {'DRAWN':>6} "
          f"{'CHECKED':>8} {'ACHIEVED':>9}  OUTCOMES")
    for row in rows:
        s = row.sample
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(row.outcomes.items())) or "-"
        print(f"{s.id:<7} {s.drawn_at.isoformat(timespec='seconds'):<26} {s.percent:>5g}% "
              f"{s.population:>5} {len(s.certificate_ids):>6} {row.verified:>8} "
              f"{row.achieved_rate:>8.1f}%  {outcomes}  (seed {s.seed})")
    return 0
