"""``rig logins``: the failed logins the rig has counted per unit, and the operator's clear.

A unit's count stops the rig from logging in to it before the camera's illegal-login lock
would (rig.records.logins); once the password is fixed, or the unit is known to have forgotten
its count, an operator clears it here, saying who.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from rig.commands.history import open_store

if TYPE_CHECKING:
    from datetime import datetime

    from rig.records import LoginRecord

DESCRIPTION = """\
List the units whose failed logins the rig has counted (the record store's failed_logins), or
clear one unit's count. The rig sends no login that could bring a unit to its firmware's
lockout; a cleared count lets it try again (one failed login per run at most)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``logins`` subcommand to the rig CLI."""
    parser = sub.add_parser("logins", help="failed logins counted per unit; clear one",
                            description=DESCRIPTION)
    parser.add_argument("--db", metavar="PATH",
                        help="record store (default: $RIG_DB or ~/.local/share/rig/rig.sqlite)")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument("action", nargs="?", choices=("list", "clear"), default="list")
    parser.add_argument("mac", nargs="?", help="the unit to clear (SADP MAC)")
    parser.add_argument("--by", help="who clears it (required with clear)")
    parser.add_argument("--note", default="", help="why, for the record")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    from rig.camera.sadp import SadpError, normalize_mac

    if args.action == "clear" and (not args.mac or not args.by):
        args.parser.error("clear needs the unit's MAC and --by NAME")
    store = open_store(args.db, "logins")
    if store is None:
        return 2
    with store:
        if args.action == "clear":
            try:
                mac = normalize_mac(args.mac)
            except SadpError as exc:
                args.parser.error(str(exc))
            cleared = store.logins.clear(mac, by=args.by, note=args.note)
            print(f"{mac}: failed-login count cleared ({cleared.note})")
            return 0
        counted = store.logins.counted()
    if args.json:
        print(json.dumps([as_json(r) for r in counted], indent=2))
    elif not counted:
        print(f"no failed logins counted in {store.path}")
    for r in [] if args.json else counted:
        until = f", locked until {r.locked_until:%Y-%m-%d %H:%M} UTC" if r.locked_until else ""
        last = f"{r.last_failure:%Y-%m-%d %H:%M}" if r.last_failure else "-"
        print(f"{r.mac}  {r.count} failed, last {last} UTC{until}")
    return 0


def as_json(r: LoginRecord) -> dict:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {"mac": r.mac, "count": r.count, "first_failure": when(r.first_failure),
            "last_failure": when(r.last_failure), "locked_until": when(r.locked_until),
            "note": r.note}
