"""``rig activate``: give inactive units the bench's admin password, as SADP Tool's "Activate"
does, and prove each one: Activated=true in a fresh SADP reply and a login that works."""

from __future__ import annotations

import argparse
import json
import os
import sys

DESCRIPTION = """\
Activate units found by SADP: by MAC, serial or slot, or every inactive unit (--all). Each
unit is reached over a route only it answers on (the bench file's identity strategy, or an
address no other unit shares: a unit sharing 192.168.1.64 with others is refused, activate
those in a run's hand-over). Current firmware is activated by the ISAPI challenge exchange,
G5 by the V3 exchange; legacy firmware (no activation) has its factory admin password
changed. The password comes from the environment variable named by --password-env, never the
command line, and is checked against Hikvision's rules (8 to 16 characters, two kinds of
characters, not containing the user name) before anything is sent. Every unit is recorded as
a manual run in the record store, with its evidence."""

EPILOG = """\
exit status: 0 every chosen unit activated and proven, 1 one or more failed or were refused,
2 usage or configuration error (password unset or refused by the rules, unknown unit)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``activate`` subcommand to the rig CLI."""
    parser = sub.add_parser("activate", help="activate units with the bench's admin password",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mac", action="append", default=[], metavar="MAC",
                        help="a unit by MAC (repeat for several)")
    parser.add_argument("--serial", action="append", default=[], metavar="SERIAL",
                        help="a unit by serial (repeat for several)")
    parser.add_argument("--slot", action="append", default=[], metavar="SLOT",
                        help="the unit in this slot of --bench (repeat for several)")
    parser.add_argument("--all", action="store_true", dest="inactive",
                        help="every inactive unit that answers SADP")
    parser.add_argument("--password-env", metavar="VAR", required=True,
                        help="the environment variable that holds the new admin password")
    parser.add_argument("--user", default="admin", help="the admin user (default: admin)")
    parser.add_argument("--bench", default=os.environ.get("RIG_BENCH"), metavar="BENCH.toml",
                        help="bench file: slots and the identity strategy (default: "
                             "$RIG_BENCH)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--interface", "-i", metavar="IF", help="probe SADP on this interface")
    where.add_argument("--bind", "-b", metavar="ADDR",
                       help="probe SADP from this IPv4 address of this host (127.0.0.1 for "
                            "the simulated cameras)")
    parser.add_argument("--timeout", "-t", type=float, default=3.0, metavar="S",
                        help="seconds for SADP and for each HTTP request (default: 3)")
    parser.add_argument("--db", metavar="PATH", help="record store (default: $RIG_DB or "
                                                      "~/.local/share/rig/rig.sqlite)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rig.activate import Selection
    from rig.bench import BenchError, load_bench
    from rig.camera.activation import password_problem
    from rig.camera.isapi_types import Credentials

    password = os.environ.get(args.password_env)
    if password is None:
        return _fail(f"environment variable {args.password_env} is not set")
    problem = password_problem(password, args.user)
    if problem:
        return _fail(f"the password in ${args.password_env} {problem} (Hikvision's rule for "
                     "an admin password)")
    wanted = Selection(args.mac, args.serial, args.slot, args.inactive)
    if not (wanted.macs or wanted.serials or wanted.slots or wanted.inactive):
        return _fail("say which units: --mac, --serial, --slot or --all")
    try:
        bench = load_bench(args.bench) if args.bench else None
    except BenchError as exc:
        return _fail(str(exc))
    try:
        credentials = Credentials(args.user, password)
    except ValueError as exc:                   # a user name HTTP cannot carry, say
        return _fail(str(exc))
    return _activate(args, wanted, bench, credentials)


def _activate(args: argparse.Namespace, wanted, bench, credentials) -> int:
    from rig.activate import METHOD, choose
    from rig.camera.discovery import DiscoveryError, run_discovery
    from rig.camera.profiles import ProfileSet
    from rig.handover import HandoverPlan
    from rig.records import RecordError, RecordStore
    from rig.vocabulary import FinalState, RunStatus

    def probe(expect=()):
        return run_discovery(args.timeout, bind=args.bind, interface=args.interface,
                             expect=expect)

    try:
        found = probe()
        targets = choose(found, wanted, bench)
        store = RecordStore.open(args.db)
    except (DiscoveryError, ValueError, RecordError, OSError) as exc:
        return _fail(str(exc))
    if not targets:
        return _fail("no inactive unit answered SADP", code=1)
    plan = HandoverPlan(FinalState.PROVISIONED, credentials)
    profiles = ProfileSet.load()
    rows = []
    with store:
        run_id = store.runs.start_run(bench.name if bench else "(no bench file)",
                                      method=METHOD, bench_path=bench.path if bench else None)
        for target in targets:
            rows.append(_one(store, run_id, target, found, bench, plan, profiles, probe, args))
        ok = all(row["passed"] for row in rows)
        store.runs.finish_run(run_id, RunStatus.PASSED if ok else RunStatus.FAILED)
    _print(rows, run_id, args.json)
    return 0 if ok else 1


def _one(store, run_id, target, found, bench, plan, profiles, probe, args) -> dict:
    from rig.activate import activate_one, route_to
    from rig.identity import NoRoute

    row = {"slot": target.slot.name if target.slot else None, "mac": target.device.mac,
           "serial": target.device.serial}
    if target.device.activated is True:
        return {**row, "passed": False, "verdict": "skipped", "reason": "already activated"}
    try:
        route = route_to(target, found, bench)
    except NoRoute as exc:
        return {**row, "passed": False, "verdict": "refused", "reason": str(exc)}

    def rediscover(mac: str):
        return next((d for d in probe(expect=[mac]).devices if d.mac == mac), None)

    verdict = activate_one(store, run_id, target, route, plan, profiles, rediscover,
                           args.timeout)
    return {**row, "passed": verdict.passed, "verdict": str(verdict.verdict),
            "reason": verdict.reason, "route": route.to_json()}


def _print(rows: list[dict], run_id: int, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"run": run_id, "units": rows}, indent=2))
        return
    for row in rows:
        print(f"{row['slot'] or '-':<6} {row['mac']:<17} {row['verdict'].upper():<16} "
              f"{row['reason']}")
    passed = sum(row["passed"] for row in rows)
    print(f"run {run_id}: {passed}/{len(rows)} unit(s) activated and proven")


def _fail(message: str, code: int = 2) -> int:
    print(f"rig activate: error: {message}", file=sys.stderr)
    return code
