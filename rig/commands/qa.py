"""``rig qa``: run the functional checks on one activated unit, on demand, and record them as a
manual run (the same records a run's hand-over writes: a step and a check record per check,
the snapshot and its thumbnail, the unit's grade)."""

from __future__ import annotations

import argparse
import json
import os
import sys

DESCRIPTION = """\
Run the functional checks (device-info, snapshot, rtsp, ir-cut, storage, firmware-baseline,
cloud) on one activated unit: HOST[:PORT] (its web server), or SLOT of the bench file, found
by a SADP census and reached over the bench's identity strategy. The checks are the bench
file's [checks] run list, every check when it names none (or no bench is given), or the ones
named with --check. One login is spent at most; the password comes from the environment
variable named by --password-env (else the bench file's password_env), never the command
line. The unit is recorded as a manual run with its grade: fully-functional,
key-functions-tested or not-functional."""

EPILOG = """\
exit status: 0 fully-functional (every check passed or was skipped because the unit lacks the
function), 1 a check failed or is unknown, 2 usage or configuration error."""

METHOD = "manual: qa"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``qa`` subcommand to the rig CLI."""
    from rig.vocabulary import CheckName, choices

    parser = sub.add_parser("qa", help="run the functional checks on one unit",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("unit", metavar="HOST|SLOT",
                        help="the unit's address (HOST or HOST:PORT), or a slot of --bench")
    parser.add_argument("--bench", default=os.environ.get("RIG_BENCH"), metavar="BENCH.toml",
                        help="bench file: the [checks] plan, slots, identity (default: "
                             "$RIG_BENCH)")
    parser.add_argument("--check", action="append", choices=choices(CheckName), default=[],
                        metavar="NAME", help="run this check (repeat for several; default: "
                                             "the bench's [checks] run, else all)")
    parser.add_argument("--password-env", metavar="VAR",
                        help="the environment variable that holds the admin password "
                             "(default: the bench file's password_env)")
    parser.add_argument("--user", default="admin", help="the admin user (default: admin)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--interface", "-i", metavar="IF", help="find a SLOT by SADP on IF")
    where.add_argument("--bind", "-b", metavar="ADDR",
                       help="find a SLOT by SADP from this IPv4 address (127.0.0.1 for the "
                            "simulator)")
    parser.add_argument("--timeout", "-t", type=float, default=5.0, metavar="S",
                        help="seconds for SADP and for each HTTP request (default: 5)")
    parser.add_argument("--db", metavar="PATH", help="record store (default: $RIG_DB or "
                                                      "~/.local/share/rig/rig.sqlite)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)


class _Usage(Exception):
    """A command line or bench file that cannot be acted on (exit status 2)."""


def run(args: argparse.Namespace) -> int:
    from rig.bench import BenchError, load_bench
    from rig.camera.isapi_types import Credentials

    try:
        bench = load_bench(args.bench) if args.bench else None
        password = _password(args, bench)
        credentials = Credentials(args.user, password)
        route, device, slot = _where(args, bench)
    except (BenchError, _Usage, ValueError, OSError) as exc:
        return _fail(str(exc))
    return _check(args, bench, credentials, route, device, slot)


def _password(args: argparse.Namespace, bench) -> str:
    """The admin password: --password-env, else the bench's defaults or hand-over variable."""
    name = args.password_env
    if name is None and bench is not None:
        secret = bench.password or bench.handover.password
        name = secret.env if secret is not None else None
    if name is None:
        raise _Usage("say where the admin password is: --password-env VAR (or the bench "
                     "file's [defaults] password_env)")
    value = os.environ.get(name)
    if value is None:
        raise _Usage(f"environment variable {name} is not set")
    return value


def _where(args: argparse.Namespace, bench):
    """(route, SADP reply or None, slot name or None) of the unit named on the command line."""
    from rig.camera.transport import Route

    if bench is not None and any(s.name == args.unit for s in bench.slots):
        return _slot(args, bench)
    host, port = _host_port(args.unit)
    return Route.parse(host, port), None, None


def _host_port(text: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[V6]:PORT`` → (host, port); a bare IPv6 keeps port 80."""
    if text.startswith("[") and "]" in text:
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise _Usage(f"{text!r}: the port must be a number")
    return host, int(port) if port else 80


def _slot(args: argparse.Namespace, bench):
    """A slot's unit: found by SADP, reached over a route only it answers on."""
    from rig.activate import Selection, choose, route_to
    from rig.camera.discovery import DiscoveryError, run_discovery
    from rig.identity import NoRoute

    bind = args.bind or (None if args.interface else bench.network.address)
    interface = args.interface or (None if bind else bench.network.interface)
    try:
        mac = bench.slot(args.unit).mac          # known: the census ends when it answers
        found = run_discovery(args.timeout, bind=bind, interface=interface,
                              expect=[mac] if mac else ())
        [target] = choose(found, Selection(slots=[args.unit]), bench)
        route = route_to(target, found, bench)
    except (DiscoveryError, NoRoute) as exc:
        raise _Usage(f"slot {args.unit}: {exc}") from None
    return route.route, target.device, args.unit


def _check(args: argparse.Namespace, bench, credentials, route, device, slot) -> int:
    from rig.camera.isapi import IsapiClient
    from rig.camera.profiles import ProfileSet
    from rig.checks import CheckTarget, run_checks
    from rig.checks.config import ChecksConfig
    from rig.logins import LoginAllowance
    from rig.recorder import Recorder
    from rig.records import RecordError, RecordStore
    from rig.vocabulary import CheckName

    config = bench.checks if bench is not None else ChecksConfig()
    only = [CheckName(c) for c in args.check] or (None if config.enabled else list(CheckName))
    profiles = ProfileSet.load()
    family = bench.slot(slot).profile if slot else (
        profiles.for_firmware(device.firmware or "") if device else None)
    try:
        store = RecordStore.open(args.db)
    except (RecordError, OSError) as exc:
        return _fail(str(exc))
    label = slot or route.describe()
    with store:
        run_id = store.runs.start_run(bench.name if bench else "(no bench file)", method=METHOD,
                                      bench_path=bench.path if bench else None)
        unit_id = store.runs.start_unit(run_id, label, method=METHOD,
                                        expected_mac=device.mac if device else None)
        rec = Recorder(store, run_id, unit_id, label)
        logins = LoginAllowance(store.logins, profiles, family or profiles.get("current"))
        target = CheckTarget(device.mac if device else None, device,
                             family.name if family else None)
        with IsapiClient.at(route, timeout=args.timeout) as client:
            result = run_checks(client, rec, target, config, credentials, logins, only=only,
                                time_scale=bench.time_scale if bench else 1.0)
        _finish(store, run_id, unit_id, result, device)
    _print(args.json, run_id, label, route.describe(), result)
    return 0 if result.passed else 1


def _finish(store, run_id: int, unit_id: int, result, device) -> None:
    """The unit's record: no reset in this run (verdict skipped), its grade; the run's status."""
    from rig.vocabulary import RunStatus, Verdict

    grade = result.grade
    bad = [f"{r.name} {r.outcome}" for r in result.results if not r.clear]
    reason = (f"functional checks only (rig qa), no reset: {grade}"
              + (f" ({', '.join(bad)})" if bad else ""))
    store.runs.finish_unit(unit_id, Verdict.SKIPPED, reason, mac=device.mac if device else None,
                           serial=device.serial if device else None, grade=grade,
                           count_health=False)
    store.runs.finish_run(run_id, RunStatus.PASSED if result.passed else RunStatus.FAILED)


def _print(as_json: bool, run_id: int, label: str, where: str, result) -> None:
    if as_json:
        print(json.dumps({"run": run_id, "unit": label, "target": where, **result.to_json()},
                         indent=2))
        return
    print(f"{'CHECK':<18} {'OUTCOME':<8} {'KEY':<4} REASON")
    for r in result.results:
        print(f"{r.name:<18} {r.outcome.upper():<8} {'key' if r.key else '':<4} {r.reason}")
    print(f"{label}: {result.grade or 'no check run'} (run {run_id})")


def _fail(message: str, code: int = 2) -> int:
    print(f"rig qa: error: {message}", file=sys.stderr)
    return code
