"""``rig report RUN``: write one recorded run as CSV, JSON or a self-contained HTML page."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rig.commands.history import is_fleet, open_store
from rig.vocabulary import ReportFormat, choices

if TYPE_CHECKING:
    from rig.records import RunRecord

DESCRIPTION = """\
Write the record of one run: CSV (one row per unit: verdict, fault, failed check, reason, MAC,
serial, times), JSON (the whole record with every step and every piece of evidence) or HTML (one
self-contained page: summary, verdict table, a timeline of each unit's steps, its evidence).
RUN is a run id from `rig history`, or "last"."""

EPILOG = """\
Without --output, CSV and JSON go to standard output and HTML to rig-report-RUN.html in the
current directory (its path is printed); --output - writes any format to standard output.
The record store is --db, else $RIG_DB, else ~/.local/share/rig/rig.sqlite. With --db
postgresql://USER@HOST/DB (the fleet's database) --bench names the bench (its name, or a prefix
of its id from `rig history --db postgresql://…`); the password comes from ~/.pgpass,
$PGPASSWORD or a libpq service, never the URL.
exit status: 0 written, 2 unknown run, no record store, or the output cannot be written."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand to the rig CLI."""
    parser = sub.add_parser("report", help="write a run's report (CSV, JSON or HTML)",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_ref", metavar="RUN", type=_run_ref,
                        help='run id (see rig history) or "last"')
    parser.add_argument("--db", metavar="PATH|URL",
                        help="record store (default: $RIG_DB or ~/.local/share/rig/rig.sqlite),"
                             " or the fleet's postgresql:// URL")
    parser.add_argument("--bench", metavar="NAME|ID",
                        help="with a fleet's --db: the bench whose run RUN is")
    parser.add_argument("--format", "-f", choices=choices(ReportFormat), default="html",
                        help="report format (default: %(default)s)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help='write to FILE ("-" for standard output)')
    parser.set_defaults(func=run)


def _run_ref(text: str) -> int | str:
    if text == "last":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a run id (a number) or "last"')
    return int(text)


def run(args: argparse.Namespace) -> int:
    from rig.records import UnknownRun
    from rig.report import render

    if is_fleet(args.db):
        record = _fleet_record(args)
        if record is None:
            return 2
        return _emit(render(record, args.format), args, record.run.id)
    store = open_store(args.db, "report")
    if store is None:
        return 2
    with store:
        run_id = store.runs.last_run_id() if args.run_ref == "last" else args.run_ref
        if run_id is None:
            print(f"rig report: error: no runs recorded in {store.path}", file=sys.stderr)
            return 2
        try:
            record = store.runs.load_run(run_id)
        except UnknownRun:
            last = store.runs.last_run_id()
            print(f"rig report: error: no run {run_id} in {store.path} (latest run: {last}; "
                  "see rig history)", file=sys.stderr)
            return 2
    return _emit(render(record, args.format), args, run_id)


def _fleet_record(args: argparse.Namespace) -> RunRecord | None:
    """RUN of --bench from the fleet's PostgreSQL; None (the reason printed) when it cannot."""
    import psycopg

    from rig.fleet import reader
    from rig.fleet.target import TargetError, masked, resolve
    from rig.records import RecordError
    if not args.bench:
        print("rig report: error: a fleet holds many benches: name one with --bench",
              file=sys.stderr)
        return None
    try:
        with reader.connect(resolve(to=args.db)) as conn:
            bench = reader.bench_id(conn, args.bench)
            run_id = reader.last_run_id(conn, bench) if args.run_ref == "last" \
                else args.run_ref
            if run_id is None:
                raise RecordError(f"no runs of bench {args.bench!r} in the fleet")
            return reader.load_run(conn, bench, run_id)
    except (TargetError, RuntimeError, RecordError) as exc:
        print(f"rig report: error: {exc}", file=sys.stderr)
    except psycopg.Error as exc:
        print(f"rig report: error: cannot read {masked(args.db)}: "
              f"{(str(exc).strip() or type(exc).__name__).splitlines()[0]}", file=sys.stderr)
    return None


def _emit(text: str, args: argparse.Namespace, run_id: int) -> int:
    """Write ``text`` where --output says (HTML to rig-report-RUN.html by default)."""
    output = args.output
    if output is None and args.format == "html":
        output = f"rig-report-{run_id}.html"
    if output is None or output == "-":
        sys.stdout.write(text)
        return 0
    try:
        _write(Path(output), text)
    except OSError as exc:
        print(f"rig report: error: cannot write {output}: {exc}", file=sys.stderr)
        return 2
    print(output)
    return 0


def _write(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a crash never leaves half a report."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # newline="": the CSV writer already ends rows with \r\n, as RFC 4180 asks.
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
