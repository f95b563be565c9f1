"""Choosing units for ``rig net set`` and ``rig locate``: by MAC, serial, bench slot or "every
unit found", always through one SADP census, because a MAC is the only name that stays true
while every unit sits on 192.168.1.64. Also the options both commands share (where SADP goes,
the bench, the firmware family) and their exit codes.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:       # imported where used: the parsers (add_place_options) need none of it
    from rig.camera.profiles import FirmwareProfile, ProfileSet
    from rig.camera.sadp import SadpDevice

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class UsageError(ValueError):
    """A command line or bench file that cannot be acted on (exit status 2)."""


class Target(NamedTuple):
    """One unit to act on: its MAC, its census reply (None: not heard), its slot, its family.
    (A NamedTuple, not a dataclass: ``dataclasses`` costs the parser ~6 ms of imports.)"""

    mac: str
    device: SadpDevice | None
    slot: str | None
    profile: FirmwareProfile | None


def add_place_options(parser: argparse.ArgumentParser) -> None:
    """--bind / -i (where SADP goes), --bench, --profile, --timeout, --json."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--bind", "-b", metavar="ADDR",
                       help="send SADP from this IPv4 address of this host (127.0.0.1 for the "
                            "simulator)")
    where.add_argument("--interface", "-i", metavar="IF",
                       help="send SADP on this interface (default: the bench file's "
                            "[network] interface, else every interface)")
    parser.add_argument("--bench", default=os.environ.get("RIG_BENCH"), metavar="BENCH",
                        help="bench file, for slots and their firmware family "
                             "(default: $RIG_BENCH)")
    parser.add_argument("--profile", metavar="NAME",
                        help="firmware family to assume (default: the slot's, else the one "
                             "the unit's SADP firmware version falls in)")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="S",
                        help="seconds to wait for each SADP answer (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def expected_macs(names: list[str], bench: object | None) -> list[str]:
    """The MACs among ``names`` (a MAC, or a slot whose bench-file entry gives one): the
    census ends as soon as all of them answered instead of waiting out its window. Empty
    when any name is known only by serial (then the whole window is needed)."""
    from rig.camera.sadp import SadpError, normalize_mac
    macs = []
    for name in names:
        try:
            macs.append(normalize_mac(name))
            continue
        except SadpError:
            pass
        slot = next((s for s in getattr(bench, "slots", ()) if s.name == name), None)
        if slot is None or not slot.mac:
            return []
        macs.append(slot.mac)
    return macs


def place_of(args: argparse.Namespace, bench: object | None) -> object:
    """The SadpPlace from --bind / -i, else the bench file's network section."""
    from rig.netsetup import SadpPlace
    if args.bind or args.interface:
        return SadpPlace(bind=args.bind, interface=args.interface)
    network = getattr(bench, "network", None)
    if network is not None and (network.interface or network.address):
        if network.interface:
            return SadpPlace(interface=network.interface)
        return SadpPlace(bind=network.address)
    return SadpPlace()


def load_bench_arg(args: argparse.Namespace, needed: bool) -> object | None:
    """The bench named by --bench (UsageError if it is needed and missing or invalid)."""
    if not args.bench:
        if needed:
            raise UsageError("a slot needs the bench file: --bench BENCH or $RIG_BENCH")
        return None
    from rig.bench import BenchError, load_bench
    try:
        return load_bench(args.bench)
    except (BenchError, OSError) as exc:
        raise UsageError(str(exc)) from None


def resolve(names: list[tuple[str, str]], bench: object | None, census: dict[str, SadpDevice],
            profile_name: str | None) -> list[Target]:
    """Targets for (kind, value) pairs, kind one of mac, serial, slot, any (MAC, slot name or
    serial, in that order). UsageError for a name that cannot be resolved."""
    from rig.camera.profiles import ProfileSet
    profiles = ProfileSet.load()
    forced = _profile(profiles, profile_name)
    targets: list[Target] = []
    for kind, value in names:
        mac, slot, slot_profile = _name_to_mac(kind, value, bench, census)
        device = census.get(mac)
        family = forced or slot_profile or (
            profiles.for_firmware(device.firmware) if device and device.firmware else None)
        targets.append(Target(mac, device, slot, family))
    return targets


def _profile(profiles: ProfileSet, name: str | None) -> FirmwareProfile | None:
    if name is None:
        return None
    try:
        return profiles.get(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _name_to_mac(kind: str, value: str, bench: object | None, census: dict[str, SadpDevice]
                 ) -> tuple[str, str | None, FirmwareProfile | None]:
    from rig.camera.sadp import SadpError, normalize_mac
    if kind in ("mac", "any"):
        try:
            return normalize_mac(value), None, None
        except SadpError:
            if kind == "mac":
                raise UsageError(f"not a MAC address: {value!r}") from None
    slots = {s.name: s for s in getattr(bench, "slots", ())}
    if kind == "slot" or (kind == "any" and value in slots):
        slot = slots.get(value)
        if slot is None:
            raise UsageError(f"no slot {value!r} in the bench file" if bench else
                             "a slot needs the bench file: --bench BENCH or $RIG_BENCH")
        if slot.mac:
            return normalize_mac(slot.mac), slot.name, slot.profile
        if slot.serial:
            return _by_serial(slot.serial, census), slot.name, slot.profile
        raise UsageError(f"slot {value!r} has no mac or serial in the bench file")
    return _by_serial(value, census), None, None


def _by_serial(serial: str, census: dict[str, SadpDevice]) -> str:
    found = [d.mac for d in census.values() if d.serial and (
        d.serial == serial or d.serial.endswith(serial))]
    if len(found) != 1:
        raise UsageError(f"serial {serial!r} matches {len(found)} unit(s) in the SADP census "
                         f"({', '.join(found) or 'none'}); give the MAC")
    return found[0]
