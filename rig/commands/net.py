"""``rig net set``: give units their IPv4 settings by MAC, as SADP Tool does (rig.netsetup)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from rig.commands._units import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Target,
    UsageError,
    add_place_options,
    expected_macs,
    load_bench_arg,
    place_of,
    resolve,
)

DESCRIPTION = """\
Assign IPv4 settings (static, or DHCP on) to one unit or to many at once from an address pool
(SADP Tool's "start IP, increment"), through SADP `update` addressed by MAC, so it works while
every unit still sits on 192.168.1.64. Families without SADP update (profile `sadp_update =
false`) get ISAPI PUT ipAddress instead, at an address only that unit answers on (or through
-i, a VLAN bench's slot interface). Success means a fresh SADP census shows the new settings for
that MAC and the new address answers HTTP.

The admin password comes from the environment variable named by --password-env, never from the
command line. A wrong password costs one of the unit's few attempts: the firmware locks
`update` after `sadp_update_lockout_attempts` failures (6 for 30 minutes on the documented
firmware), so rig keeps a per-MAC count in its record store and never spends more than one
fewer, across runs. After a reset or power cycle of the unit, --clear-attempts starts the
count again."""

EPILOG = """\
examples:
  rig net set --mac 44:47:cc:f0:00:0a --ip 192.168.1.100 --gateway 192.168.1.1 \\
      --password-env CAM_PASSWORD -i eth1
  rig net set --all-found --pool-start 192.168.1.100 --gateway 192.168.1.1 \\
      --password-env CAM_PASSWORD --bind 127.0.0.1

exit status: 0 every unit confirmed on its new settings, 1 a unit refused or was not
confirmed (wrong password, budget spent, refused), 2 usage error, 3 every failed unit was
not found or did not answer."""

_UNREACHABLE = ("not-found", "no-reply", "no-http")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``rig net`` (with ``set``) to the CLI."""
    net = sub.add_parser("net", help="set units' network settings by MAC (SADP update)",
                         description="Network settings of the bench's units.")
    net_sub = net.add_subparsers(dest="net_command", metavar="ACTION", required=True)
    parser = net_sub.add_parser("set", help="assign IPv4 settings by MAC, one unit or a pool",
                                description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--mac", action="append", metavar="MAC", help="a unit by MAC (repeat)")
    who.add_argument("--serial", action="append", metavar="SERIAL",
                     help="a unit by serial, as SADP reports it (repeat)")
    who.add_argument("--slot", action="append", metavar="SLOT",
                     help="a unit by bench slot (needs --bench; repeat)")
    who.add_argument("--all-found", action="store_true",
                     help="every unit that answers the SADP census")
    addr = parser.add_mutually_exclusive_group()
    addr.add_argument("--ip", metavar="ADDR", help="the address (one unit only)")
    addr.add_argument("--pool-start", metavar="ADDR",
                      help="first address of the pool; the next units get the next addresses")
    parser.add_argument("--count", type=int, metavar="N",
                        help="pool size (default: the number of units)")
    parser.add_argument("--mask", default="255.255.255.0", help="subnet mask (default %(default)s)")
    parser.add_argument("--gateway", help="default gateway (required unless --dhcp)")
    parser.add_argument("--dhcp", action="store_true", help="turn DHCP on instead")
    parser.add_argument("--password-env", metavar="VAR",
                        help="name of the environment variable holding the admin password")
    parser.add_argument("--user", default="admin", help="admin user (ISAPI fallback)")
    parser.add_argument("--confirm-timeout", type=float, default=30.0, metavar="S",
                        help="seconds to wait for the census to show the new settings")
    parser.add_argument("--db", help="record store (default: $RIG_DB, else "
                                     "~/.local/share/rig/rig.sqlite)")
    parser.add_argument("--clear-attempts", action="store_true",
                        help="only reset rig's failed-attempt count of these units (after "
                             "resetting or power-cycling them), then exit")
    add_place_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the units, plan their settings, apply them, print the results."""
    from rig.records import RecordError, RecordStore
    try:
        bench = load_bench_arg(args, needed=bool(args.slot))
        store = RecordStore.open(args.db)
    except (UsageError, RecordError) as exc:
        print(f"rig net set: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with store:
        try:
            return _run(args, bench, store)
        except UsageError as exc:
            print(f"rig net set: error: {exc}", file=sys.stderr)
            return EXIT_USAGE


def _run(args: argparse.Namespace, bench: object | None, store: Any) -> int:
    from rig.camera.discovery import DiscoveryError, run_discovery
    from rig.camera.transport import Route
    from rig.netsetup import set_networks
    place = place_of(args, bench)
    password = None if args.clear_attempts else _password(args)
    try:
        named = [] if args.all_found else [*(args.mac or ()), *(args.slot or ())]
        expect = [] if args.serial else expected_macs(named, bench)
        census = {d.mac: d for d in run_discovery(args.timeout, bind=place.bind,
                                                  interface=place.interface,
                                                  expect=expect).devices}
    except DiscoveryError as exc:
        raise UsageError(str(exc)) from None
    targets = resolve(_names(args, census), bench, census, args.profile)
    if args.clear_attempts:
        for target in targets:
            store.sadp_attempts.cleared(target.mac, "operator: unit reset or power-cycled")
            print(f"{target.mac}: failed SADP update attempts cleared")
        return EXIT_OK
    missing = [t.mac for t in targets if t.profile is None and t.device is not None]
    if missing:
        raise UsageError(f"firmware family unknown for {', '.join(missing)}: give --profile")
    plans = _plans(args, targets)
    routes = {t.mac: Route.parse(t.device.ipv4, t.device.http_port or 80, args.interface)
              for t in targets if t.device and t.device.ipv4
              and (args.interface or _alone(t, census))}
    profiles = {t.mac: t.profile for t in targets if t.profile is not None}
    results = set_networks([(t.mac, p) for t, p in zip(targets, plans, strict=True)],
                           password or "", profiles=profiles, place=place,
                           attempts=store.sadp_attempts, routes=routes, user=args.user,
                           reply_timeout=args.timeout, confirm_timeout=args.confirm_timeout)
    return _report(args, targets, results)


def _password(args: argparse.Namespace) -> str:
    if not args.password_env:
        raise UsageError("--password-env VAR is required (the password itself is never "
                         "given on the command line)")
    value = os.environ.get(args.password_env)
    if not value:
        raise UsageError(f"environment variable {args.password_env} is not set")
    return value


def _names(args: argparse.Namespace, census: dict) -> list[tuple[str, str]]:
    if args.all_found:
        if not census:
            raise UsageError("no unit answered the SADP census")
        return [("mac", mac) for mac in census]
    for kind in ("mac", "serial", "slot"):
        values = getattr(args, kind)
        if values:
            return [(kind, v) for v in values]
    raise UsageError("name the units: --mac, --serial, --slot or --all-found")


def _plans(args: argparse.Namespace, targets: list[Target]) -> list:
    from rig.netsetup import Ipv4Plan, NetSetupError, address_pool
    try:
        if args.dhcp:
            gateway = args.gateway or "0.0.0.0"
            return [Ipv4Plan(args.ip, args.mask, gateway, dhcp=True) for _ in targets]
        if not args.gateway:
            raise UsageError("--gateway is required for static settings")
        if args.ip:
            if len(targets) != 1:
                raise UsageError(f"--ip gives one address for {len(targets)} units: use "
                                 "--pool-start")
            return [Ipv4Plan(args.ip, args.mask, args.gateway)]
        if not args.pool_start:
            raise UsageError("give --ip, --pool-start or --dhcp")
        count = args.count or len(targets)
        if count < len(targets):
            raise UsageError(f"a pool of {count} cannot address {len(targets)} units")
        return address_pool(args.pool_start, count, args.mask, args.gateway)[:len(targets)]
    except NetSetupError as exc:
        raise UsageError(str(exc)) from None


def _alone(target: Target, census: dict) -> bool:
    """No other unit of the census answers on the target's address: HTTP there reaches it."""
    assert target.device is not None
    return sum(d.ipv4 == target.device.ipv4 for d in census.values()) == 1


def _report(args: argparse.Namespace, targets: list[Target], results: list) -> int:
    if args.json:
        rows = [dict(r.to_json(), slot=t.slot) for t, r in zip(targets, results, strict=True)]
        print(json.dumps({"results": rows}, indent=2))
    else:
        for result in results:
            mark = "ok  " if result.ok else "FAIL"
            print(f"{mark} {result.message}")
    if all(r.ok for r in results):
        return EXIT_OK
    if all(str(r.outcome) in _UNREACHABLE for r in results if not r.ok):
        return EXIT_UNREACHABLE
    return EXIT_FAILED
