"""``rig serve --db postgresql://…``: the fleet's pages instead of one bench's (rig.fleet.web)."""

from __future__ import annotations

import argparse
import signal
import sys


def run_fleet(args: argparse.Namespace) -> int:
    """Serve the fleet until SIGINT or SIGTERM; 2 when the database or the address is not
    usable (said on stderr, the password never)."""
    import psycopg

    from rig.commands.serve import policy_for
    from rig.fleet import reader
    from rig.fleet.target import TargetError, masked, resolve
    from rig.fleet.web import FleetSource, create_fleet_app
    from rig.serve.security import TokenFileError
    from rig.serve.server import bind, make_server

    host, port = args.listen
    try:
        source = FleetSource(resolve(to=args.db))
        source.call(reader.benches)                  # reachable, and a fleet rig can read
        policy = policy_for(host)
        sock = bind(host, port)
    except (TargetError, RuntimeError, TokenFileError, OSError, psycopg.Error) as exc:
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        print(f"rig serve: error: {text}", file=sys.stderr)
        return 2
    shown = f"[{host}]" if ":" in host else host
    print(f"rig serve: http://{shown}:{sock.getsockname()[1]}/  (fleet: {masked(args.db)})"
          + ("" if policy.token is None else "; token required (see rig serve --help)"),
          flush=True)
    quiet = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        make_server(create_fleet_app(source, policy), log_level="info").run(sockets=[sock])
    finally:
        for sig, handler in quiet.items():
            signal.signal(sig, handler)
        source.close()
        sock.close()
    return 0
