"""``rig locate``: blink a unit's LED by SADP ``lamp`` so a technician finds it (rig.locate)."""

from __future__ import annotations

import argparse
import json
import sys

from rig.commands._units import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    UsageError,
    add_place_options,
    expected_macs,
    load_bench_arg,
    place_of,
    resolve,
)

DESCRIPTION = """\
Blink the LED of one unit, named by MAC, serial or bench slot, through SADP `lamp` (multicast,
addressed by MAC: it works while every unit sits on 192.168.1.64). --off stops the blinking.
Where the unit's firmware family has no `lamp` (profile `sadp_lamp = false`) nothing is sent and
rig says so; on a bench with power control it offers to power-cycle the unit's slot instead, so
the technician sees which unit goes dark (--cycle does it without asking)."""

EPILOG = """\
exit status: 0 the unit answered (its LED blinks, or stopped), 1 not supported or refused,
2 usage error, 3 the unit was not found or did not answer."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``rig locate`` to the CLI."""
    parser = sub.add_parser("locate", help="blink a unit's LED (SADP lamp) to find it",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("unit", metavar="MAC|SERIAL|SLOT",
                        help="the unit: a MAC, a slot of --bench, or a serial")
    parser.add_argument("--off", action="store_true", help="stop blinking")
    parser.add_argument("--cycle", action="store_true",
                        help="where lamp is not supported, power-cycle the slot without asking")
    add_place_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the unit by one census, send ``lamp``, report; offer a power cycle if needed."""
    from rig.camera.discovery import DiscoveryError, run_discovery
    from rig.locate import locate
    try:
        bench = load_bench_arg(args, needed=False)
        place = place_of(args, bench)
        census = {d.mac: d for d in run_discovery(
            args.timeout, bind=place.bind, interface=place.interface,
            expect=expected_macs([args.unit], bench)).devices}
        (target,) = resolve([("any", args.unit)], bench, census, args.profile)
    except (UsageError, DiscoveryError) as exc:
        print(f"rig locate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if target.device is None:
        message = f"{target.mac} did not answer the SADP census"
        _print(args, {"mac": target.mac, "outcome": "not-found", "ok": False,
                      "message": message})
        return EXIT_UNREACHABLE
    result = locate(target.mac, on=not args.off, profile=target.profile, place=place,
                    timeout=args.timeout)
    document = dict(result.to_json(), slot=target.slot)
    if str(result.outcome) == "unsupported":
        document["power_cycle"] = _offer(args, target.slot)
    _print(args, document)
    if result.ok:
        return EXIT_OK
    return EXIT_UNREACHABLE if str(result.outcome) == "no-reply" else EXIT_FAILED


def _offer(args: argparse.Namespace, slot: str | None) -> str | None:
    """The power-cycle alternative: the command to run, run at once with --cycle, or after a
    yes at a terminal. None without a bench slot to cycle."""
    if slot is None or not args.bench:
        return None
    command = ["power", slot, "cycle", "--bench", args.bench]
    shown = "rig " + " ".join(command)
    go = args.cycle
    if not go and sys.stdin.isatty() and not args.json:
        answer = input(f"No lamp on this unit. Power-cycle slot {slot} now, so you see which "
                       f"unit goes dark? [y/N] ")
        go = answer.strip().lower() in ("y", "yes")
    if not go:
        return shown
    from rig.cli import main
    status = main(command)
    return f"{shown} (exit {status})"


def _print(args: argparse.Namespace, document: dict) -> None:
    if args.json:
        print(json.dumps(document, indent=2))
        return
    print(document["message"])
    cycle = document.get("power_cycle")
    if cycle:
        print(f"to see which unit it is, power-cycle its slot: {cycle}")
