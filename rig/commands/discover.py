"""``rig discover``: list the cameras on the bench network, as SADP sees them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rig.camera.discovery import DiscoveryResult
    from rig.camera.sadp import SadpDevice

DESCRIPTION = """\
Send a SADP inquiry (Hikvision's discovery protocol, UDP multicast 239.255.255.250:37020) and
list every camera that answers: MAC, serial, model, IPv4, HTTP port, firmware, whether it is
activated and whether it is in its login lock. Cameras answer whatever their IP settings, so this
also finds units on 192.168.1.64 that the bench cannot reach over HTTP yet."""

EPILOG = """\
A large bench answers in one burst: --expect N sizes the receive buffer for N units and returns
as soon as N have answered. Replies the kernel dropped are counted and reported, with how to
raise the limit (net.core.rmem_max).

exit status: 0 when at least one unit answered (with --expect N: at least N), 1 when none did
(fewer than N), 2 for a usage or configuration error (unknown interface, address not on this
host, bad timeout)."""

COLUMNS = ("MAC", "SERIAL", "MODEL", "IPV4", "HTTP", "FIRMWARE", "ACTIVATED", "LOCK")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``discover`` subcommand to the rig CLI."""
    parser = sub.add_parser("discover", help="find cameras on the bench network by SADP",
                            description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--interface", "-i", metavar="IF", action="append",
                       help="probe on this interface only (e.g. eth1); repeat it to probe several "
                            "in one window, as on a VLAN bench (-i eth0.101 -i eth0.102: the "
                            "table then says where each unit answered); default: every "
                            "interface that is up with an IPv4 address")
    where.add_argument("--bind", "-b", metavar="ADDR",
                       help="probe from this IPv4 address of this host only (e.g. 127.0.0.1 "
                            "for the simulated bench)")
    parser.add_argument("--timeout", "-t", type=float, default=3.0, metavar="S",
                        help="seconds to listen for replies (default: %(default)s)")
    parser.add_argument("--expect", type=_positive_int, metavar="N",
                        help="the bench has N units: size the receive buffer for their burst "
                             "and return as soon as N have answered (the timeout stays the "
                             "bound)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document (devices, skipped replies, interfaces, "
                             "kernel drops, re-probes)")
    parser.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Run one discovery and print it; see EPILOG for the exit status."""
    from rig.camera.discovery import DiscoveryError, run_discovery
    try:
        names = args.interface or []
        result = run_discovery(args.timeout, bind=args.bind,
                               interface=names[0] if len(names) == 1 else None,
                               interfaces=names if len(names) > 1 else None,
                               expect_count=args.expect)
    except DiscoveryError as exc:
        print(f"rig discover: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_table(result))
        for message in result.send_errors:
            print(f"rig discover: warning: {message}", file=sys.stderr)
        if result.drop_hint:
            print(f"rig discover: warning: {result.drop_hint}", file=sys.stderr)
    return 0 if len(result.devices) >= (args.expect or 1) else 1


def format_table(result: DiscoveryResult) -> str:
    """One row per unit, then a summary line (and a hint when replies were skipped)."""
    lines: list[str] = []
    if result.devices:
        several = len(result.interfaces) > 1 and result.heard_on
        rows = [(*COLUMNS, "HEARD ON") if several else COLUMNS, *(
            (*_row(d), ",".join(result.heard_on.get(d.mac, ())) or "-") if several else _row(d)
            for d in result.devices)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                     strict=True)).rstrip()
                  for row in rows]
    lines.append(f"{len(result.devices)} unit(s) found in {result.elapsed:.1f} s")
    if result.drops:
        lines.append(f"{result.drops} datagram(s) dropped by the kernel (see the warning)")
    if result.skipped:
        lines.append(f"{len(result.skipped)} datagram(s) skipped (see --json for why)")
    return "\n".join(lines)


def _row(device: SadpDevice) -> Sequence[str]:
    return (device.mac, device.serial or "-", device.model or "-", device.ipv4 or "-",
            str(device.http_port) if device.http_port is not None else "-",
            device.firmware or "-", _yes_no(device.activated), _yes_no(device.device_lock))


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")
