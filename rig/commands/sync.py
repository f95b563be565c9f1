"""``rig sync``: push this bench's records to the fleet's PostgreSQL."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rig.fleet.pusher import Pusher
    from rig.records import RecordStore

#: The same default as rig.fleet.target.DEFAULT_ENV (the parser must not import psycopg).
DEFAULT_URL_ENV = "RIG_FLEET_URL"

DESCRIPTION = """\
Push this bench's records (runs, units, steps, evidence, outputs, slot events, pins,
certificates, attachments' metadata) to the fleet's PostgreSQL, where `rig history --db
postgresql://…` shows every bench. The bench's record store stays the source of truth and keeps
working while the server is away; the sync picks up where it stopped, and nothing is ever counted
twice (rows are keyed by this bench's id and their own). rig creates and migrates the schema
`rig` in that database itself.

Without --once it runs until SIGTERM or Ctrl-C: it pushes what is waiting, then polls every
--poll seconds; when the server is unreachable it retries after 0.5 s, 1 s, 2 s, … up to
--max-backoff."""

EPILOG = """\
where the server is: $RIG_FLEET_URL (or the variable --to-env names) holds its URL, e.g.
postgresql://rig:PASSWORD@fleet.lan/rig?sslmode=verify-full; or --service NAME (a libpq service
in ~/.pg_service.conf, password in ~/.pgpass); or --to with a URL holding no password (libpq
finds it in ~/.pgpass). A password on the command line is refused, and never printed.
The record store is --db, else $RIG_DB, else ~/.local/share/rig/rig.sqlite.
exit status: 0 pushed (or nothing to push), 1 the server could not be reached or refused,
2 usage, configuration or record store error."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sync`` subcommand to the rig CLI."""
    parser = sub.add_parser("sync", help="push this bench's records to the fleet's PostgreSQL",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", metavar="PATH",
                        help="record store (default: $RIG_DB or ~/.local/share/rig/rig.sqlite)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--to-env", metavar="VAR", default=DEFAULT_URL_ENV,
                       help="environment variable holding the fleet's URL "
                            "(default: %(default)s)")
    where.add_argument("--service", metavar="NAME", help="a libpq service instead")
    where.add_argument("--to", metavar="URL", help="the fleet's URL, without a password")
    parser.add_argument("--once", action="store_true",
                        help="push everything waiting, then exit")
    parser.add_argument("--batch", type=_positive, default=2000, metavar="N",
                        help="log entries per PostgreSQL transaction (default: %(default)s)")
    parser.add_argument("--poll", type=float, default=1.0, metavar="S",
                        help="seconds between looks for new records (default: %(default)s)")
    parser.add_argument("--max-backoff", type=float, default=60.0, metavar="S",
                        help="longest wait between retries (default: %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="--once, --status: print the result as JSON")
    parser.add_argument("--status", action="store_true",
                        help="list the targets this bench has pushed to (cursor, backlog, last "
                             "error) and exit; needs no server")
    parser.add_argument("--forget", metavar="TARGET",
                        help="stop keeping the log for TARGET (as --status names it: a server "
                             "gone for good holds the log until then) and exit")
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from rig.commands.history import open_store
    if args.status or args.forget:
        store = open_store(args.db, "sync")
        if store is None:
            return 2
        with store:
            return _status(store, args.json) if args.status else _forget(store, args.forget)
    from rig.fleet.target import TargetError, resolve
    try:
        conninfo = resolve(args.to, args.to_env, args.service)
    except TargetError as exc:
        print(f"rig sync: error: {exc}", file=sys.stderr)
        return 2
    store = open_store(args.db, "sync")
    if store is None:
        return 2
    from rig.fleet.pusher import Pusher
    with store:
        pusher = Pusher(store, conninfo, batch=args.batch)
        return _once(pusher, args.json) if args.once else _forever(pusher, args)


def _status(store: RecordStore, as_json: bool) -> int:
    """The bench's identity and each target's cursor, from the record store alone."""
    head = store.sync.head()
    targets = [{"target": t.target, "pushed_to": t.pushed_to, "backlog": head - t.pushed_to,
                "pushed_at": t.pushed_at, "last_error": t.last_error}
               for t in store.sync.targets()]
    if as_json:
        print(json.dumps({"bench_id": store.sync.bench_id(), "head": head,
                          "targets": targets}, indent=2))
        return 0
    print(f"bench {store.sync.bench_id()}: {head} log entries recorded")
    for t in targets:
        error = f"; last error: {t['last_error']}" if t["last_error"] else ""
        print(f"  {t['target']}: pushed to {t['pushed_to']} ({t['backlog']} waiting), "
              f"last at {t['pushed_at'] or 'never'}{error}")
    if not targets:
        print("  never pushed anywhere")
    return 0


def _forget(store: RecordStore, target: str) -> int:
    if not store.sync.forget(target):
        print(f"rig sync: error: no target {target!r} (see rig sync --status)", file=sys.stderr)
        return 2
    print(f"forgot {target}: the log is no longer kept for it")
    return 0


def _once(pusher: Pusher, as_json: bool) -> int:
    """Push the backlog and exit: 1 when the server failed us (what was pushed stays)."""
    import psycopg
    try:
        rows = pusher.drain()
    except (psycopg.Error, OSError) as exc:
        print(f"rig sync: cannot push to {pusher.describe()}: {_first_line(exc)}",
              file=sys.stderr)
        return 1
    finally:
        pusher.close()
    result = {"target": pusher.describe(), "bench_id": pusher.bench_id,
              "bench": pusher.store.sync.bench_name(), "rows": rows,
              "pushed_to": pusher.store.sync.cursor(pusher.target), "backlog": pusher.backlog()}
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"pushed {rows} rows to {result['target']} (bench {result['bench'] or '-'} "
              f"{result['bench_id']}); up to log entry {result['pushed_to']}, "
              f"{result['backlog']} waiting")
    return 0


def _forever(pusher: Pusher, args: argparse.Namespace) -> int:
    """Until SIGTERM or Ctrl-C; each change of state is one line on stderr."""
    from rig.fleet.pusher import SyncWorker
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = SyncWorker(pusher, poll_s=args.poll, max_backoff_s=args.max_backoff, stop=stop,
                        report=lambda line: print(f"rig sync: {line}", file=sys.stderr,
                                                  flush=True))
    print(f"rig sync: bench {pusher.bench_id} to {pusher.describe()}", file=sys.stderr,
          flush=True)
    try:
        worker.run()
    except KeyboardInterrupt:
        pass
    print(f"rig sync: stopped after pushing {worker.pushed} rows", file=sys.stderr)
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
