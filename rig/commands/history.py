"""``rig history``: the latest runs in the record store, with their unit counts per verdict."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from rig.vocabulary import Grade, RunStatus

if TYPE_CHECKING:
    from rig.records import RecordStore, RunSummary

DESCRIPTION = """\
List the latest runs recorded in the record store, newest first: when, on which bench, with
which method, how each ended, how many units got each verdict and the final states its units
were proven left in (LEFT: factory, provisioned, factory-after-checks) and, where functional
checks ran, how many units were graded fully functional / key functions tested / not
functional (GRADES F/K/N). A run shown as "running
(orphaned)" belongs to a rig process that is gone (crash, kill, power cut); the next rig run
closes it as interrupted and makes its outputs safe."""

EPILOG = """\
The record store is --db, else $RIG_DB, else ~/.local/share/rig/rig.sqlite. With --db
postgresql://USER@HOST/DB (the fleet's database, where `rig sync` pushes) it lists every bench's
runs, with each bench's id (BENCH ID); --bench then takes a name or an id prefix. The password
comes from ~/.pgpass, $PGPASSWORD or a libpq service (--db "service=NAME"), never the URL.
exit status: 0 listed (even none), 2 no record store or not a usable one."""

#: Table columns after the run's own: (heading, verdicts counted in it).
COUNT_COLUMNS = (("PASS", ("factory-default", "provisioned")),
                 ("NOT-DEF", ("not-default", "handover-failed")),
                 ("UNREACH", ("unreachable",)), ("BENCH", ("bench-fault",)),
                 ("OTHER", ("interrupted", "skipped", "out-of-service", "unfinished")))


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``history`` subcommand to the rig CLI."""
    parser = sub.add_parser("history", help="list the latest recorded runs",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", metavar="PATH|URL",
                        help="record store (default: $RIG_DB or ~/.local/share/rig/rig.sqlite),"
                             " or the fleet's postgresql:// URL")
    parser.add_argument("--limit", "-n", type=_count, default=20, metavar="N",
                        help="show at most N runs (default: %(default)s)")
    parser.add_argument("--bench", metavar="NAME", help="only runs of this bench")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    parser.set_defaults(func=run)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def open_store(db: str | None, command: str) -> RecordStore | None:
    """The store the user named, without creating one; prints why not and returns None."""
    from rig.records import RecordError, RecordStore, default_db_path
    path = db if db is not None else default_db_path(create_parent=False)
    try:
        return RecordStore(path, create=False)
    except RecordError as exc:
        hint = "" if db else " (set --db or $RIG_DB to use another store)"
        print(f"rig {command}: error: {exc}{hint}", file=sys.stderr)
        return None


def is_fleet(db: str | None) -> bool:
    """``--db`` names the fleet's PostgreSQL rather than a SQLite file (a URL or a libpq
    service); the check needs no import of the fleet's modules."""
    return bool(db) and db.lower().startswith(("postgresql://", "postgres://", "service="))


def run(args: argparse.Namespace) -> int:
    if is_fleet(args.db):
        return run_fleet(args)
    store = open_store(args.db, "history")
    if store is None:
        return 2
    with store:
        summaries = store.runs.history(limit=args.limit, bench=args.bench)
        orphaned = {s.run.id for s in summaries if store.runs.is_orphaned(s.run)}
    if args.json:
        print(json.dumps([as_json(s, s.run.id in orphaned) for s in summaries], indent=2))
    elif not summaries:
        where = f" for bench {args.bench!r}" if args.bench else ""
        print(f"no runs recorded{where} in {store.path}")
    else:
        print(as_table(summaries, orphaned))
    return 0


def run_fleet(args: argparse.Namespace) -> int:
    """``rig history --db postgresql://…``: every bench's runs, from the fleet's database."""
    import psycopg

    from rig.fleet import reader
    from rig.fleet.target import TargetError, masked, resolve
    try:
        conninfo = resolve(to=args.db)
        with reader.connect(conninfo) as conn:
            runs = reader.history(conn, limit=args.limit, bench=args.bench)
    except (TargetError, RuntimeError) as exc:
        print(f"rig history: error: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"rig history: error: cannot read {masked(args.db)}: "
              f"{(str(exc).strip() or type(exc).__name__).splitlines()[0]}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{"bench_id": r.bench_id} | as_json(r.summary) for r in runs],
                         indent=2))
    elif not runs:
        where = f" for bench {args.bench!r}" if args.bench else ""
        print(f"no runs recorded{where} in {masked(args.db)}")
    else:
        print(as_table([r.summary for r in runs], bench_ids=[r.bench_id[:8] for r in runs]))
    return 0


def status_text(summary: RunSummary, orphaned: bool) -> str:
    status = summary.run.status.value
    return f"{status} (orphaned)" if orphaned and summary.run.status is RunStatus.RUNNING \
        else status


def as_json(summary: RunSummary, orphaned: bool = False) -> dict:
    run = summary.run
    return {"id": run.id, "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "status": run.status.value, "orphaned": orphaned, "bench": run.bench_name,
            "method": run.method, "hostname": run.hostname, "units": summary.units,
            "counts": dict(summary.counts), "final_states": dict(summary.final_states),
            "grades": dict(summary.grades),
            "note": run.note}


def as_table(summaries: list[RunSummary], orphaned: set[int] = frozenset(),
             bench_ids: list[str] | None = None) -> str:
    """The runs as a text table; with ``bench_ids`` (a fleet's) a BENCH ID column first."""
    from rig.report import format_duration
    heads = ["RUN", "STARTED (UTC)", "DURATION", "BENCH", "METHOD", "STATUS", "UNITS"]
    heads += [name for name, _ in COUNT_COLUMNS] + ["GRADES F/K/N", "LEFT"]
    rows = []
    for s in summaries:
        run = s.run
        duration = ((run.finished_at - run.started_at).total_seconds()
                    if run.finished_at else None)
        row = [str(run.id), run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
               format_duration(duration), _printable(run.bench_name), _printable(run.method),
               status_text(s, run.id in orphaned), str(s.units)]
        row += [str(sum(s.counts.get(v, 0) for v in verdicts)) for _, verdicts in COUNT_COLUMNS]
        row += [grades_text(s), left_text(s)]
        rows.append(row)
    if bench_ids is not None:
        heads = ["BENCH ID", *heads]
        rows = [[bench_id, *row] for bench_id, row in zip(bench_ids, rows, strict=True)]
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                     for r in [heads, *rows])


def grades_text(summary: RunSummary) -> str:
    """Units fully functional / key functions tested / not functional ("6/0/1"), "-" when no
    unit of the run was checked."""
    if not summary.grades:
        return "-"
    return "/".join(str(summary.grades.get(g.value, 0)) for g in Grade)


def left_text(summary: RunSummary) -> str:
    """The final states the run's units were proven left in ("7 provisioned"), "-" for none."""
    return ", ".join(f"{n} {state}" for state, n in sorted(summary.final_states.items())) or "-"


def _printable(text: str) -> str:
    """No control characters from a record reach the terminal (escape sequences)."""
    return "".join(c if c.isprintable() else "?" for c in text)
