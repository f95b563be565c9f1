"""``rig serve``: the bench at a glance in a browser, a JSON API, live from the record store."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rig.bench import Bench
    from rig.fleet.pusher import BackgroundSync
    from rig.serve.security import Policy

DESCRIPTION = """\
Serve a live web dashboard of the bench and a JSON API, read from the record store: one card
per slot (idle, the step it is in with its elapsed time, out of service with the reason; the
unit's MAC, serial, model; the last verdict in large colours), the run history with filters,
and each run's report. A `rig run` started anywhere on this machine shows up live (within a
second of each recorded step). The API is described at /api/openapi.json."""

EPILOG = """\
security: by default only loopback (127.0.0.1:8765) and no token. To listen anywhere else a
token is required: $RIG_SERVE_TOKEN, else one generated once into
$XDG_CONFIG_HOME/rig/serve-token (mode 0600). Send it as `Authorization: Bearer TOKEN`, or open
any page once with ?token=TOKEN (it is then kept in a cookie). State-changing requests need the
header `X-Rig-Request: 1` and are refused from other origins.
The record store is --db, else $RIG_DB, else ~/.local/share/rig/rig.sqlite.
notifications: the --bench file's [[notify.webhook]] receivers are sent the store's events
while the server runs (those owed by an earlier rig run included).
exit status: 0 stopped cleanly, 2 usage or configuration error."""

DEFAULT_LISTEN = "127.0.0.1:8765"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand (its web stack is imported only when it runs)."""
    parser = sub.add_parser("serve", help="live web dashboard and JSON API of the bench",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", metavar="PATH|URL",
                        help="record store (default: $RIG_DB or ~/.local/share/rig/rig.sqlite),"
                             " or the fleet's postgresql:// URL (no password in it): the fleet "
                             "page, every bench's slots and runs")
    parser.add_argument("--bench", metavar="BENCH.toml", default=os.environ.get("RIG_BENCH"),
                        help="bench file: show all its slots (default: $RIG_BENCH; without "
                             "one, the newest run's bench and the slots recorded on it)")
    parser.add_argument("--listen", metavar="ADDR:PORT", default=DEFAULT_LISTEN,
                        type=parse_listen, help=f"where to listen (default {DEFAULT_LISTEN})")
    parser.add_argument("--sync-env", metavar="VAR",
                        help="also push the records to the fleet's PostgreSQL whose URL is in "
                             "$VAR while serving (what `rig sync` does)")
    parser.set_defaults(func=run)


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` (``[::1]:PORT`` for IPv6) → (address, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536 or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not ADDR:PORT")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    from rig.commands.history import is_fleet
    if is_fleet(args.db):
        from rig.commands._fleet_serve import run_fleet
        return run_fleet(args)
    from rig.bench import load_bench
    from rig.notify import start_notifier
    from rig.records import RecordError, RecordStore
    from rig.serve.app import create_app
    from rig.serve.security import TokenFileError
    from rig.serve.server import bind, make_server

    host, port = args.listen
    try:
        bench = load_bench(args.bench) if args.bench else None
        policy = policy_for(host)
        store = RecordStore.open(args.db)
        sock = bind(host, port)
        # the bench's webhooks, sent for as long as the server runs (rig.notify)
        notifier = start_notifier(store.path, bench)
        syncer = _start_sync(store.path, args.sync_env)
    except (ValueError, RecordError, TokenFileError, OSError) as exc:    # BenchError: a
        print(f"rig serve: error: {exc}", file=sys.stderr)              # ValueError too
        return 2
    app = create_app(store, policy, bench=bench, secrets=_secrets(bench))
    shown = f"[{host}]" if ":" in host else host
    print(f"rig serve: http://{shown}:{sock.getsockname()[1]}/  (records: {store.path})"
          + ("" if policy.token is None else "; token required (see rig serve --help)"),
          flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for the
    # handler it found: let that be a no-op, so a stop asked for is a clean exit (status 0).
    quiet = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        make_server(app, log_level="info").run(sockets=[sock])
    finally:
        for sig, handler in quiet.items():
            signal.signal(sig, handler)
        if notifier is not None:
            notifier.close()
        if syncer is not None:
            syncer.close()
        store.close()
        sock.close()
    return 0


def _start_sync(db_path: str, env: str | None) -> BackgroundSync | None:
    """The fleet sync on a thread when --sync-env names the URL's variable; TargetError (a
    ValueError) when it is not set."""
    if not env:
        return None
    from rig.fleet.pusher import BackgroundSync
    from rig.fleet.target import resolve
    return BackgroundSync(db_path, resolve(to_env=env),
                          report=lambda line: print(f"rig serve: {line}", file=sys.stderr,
                                                    flush=True)).start()


def policy_for(host: str) -> Policy:
    """Loopback: no token unless $RIG_SERVE_TOKEN sets one. Anywhere else: a token, always."""
    from rig.serve.security import TOKEN_ENV, Policy, is_loopback, load_token
    loopback = is_loopback(host)
    token = load_token() if not loopback or os.environ.get(TOKEN_ENV) else None
    return Policy(token=token, loopback=loopback)


def _secrets(bench: Bench | None) -> list[str]:
    """The camera password, when this process can read it: no answer may contain it."""
    from rig.bench import BenchError
    if bench is None or bench.password is None:
        return []
    try:
        return [bench.password.get()]
    except BenchError:         # its variable is not set here: nothing to compare against
        return []
