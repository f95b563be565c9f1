"""``rig sim bench``: a whole simulated bench (cameras, power, buttons) and its bench file.

Starts N virtual cameras on loopback addresses, each powered by a GPIO relay, a PoE switch port or
a serial relay channel and pressed by a solenoid, writes a bench file describing them, prints its
path and the slots, and serves until Ctrl-C or SIGTERM.

Which slots another process can drive: PoE slots (SNMP on 127.0.0.1) and relay slots (the board's
pty, through the link in the bench directory) can be switched with ``rig power``/``rig press
--bench FILE`` from another shell. GPIO slots cannot: their pins are mock pins inside this process
(the bench file's gpio_factory = "mock" gives another process a fresh, unwired factory), so drive
them from code that starts the bench itself (rig.sim.bench.SimBench, as ``rig demo`` does).
``register(sim_sub)`` adds the parser to the ``rig sim`` subcommands.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rig.camera.profiles import ProfileError, ProfileSet
from rig.commands._serve import until_stopped
from rig.sim.bench import SimBench, SimSlot
from rig.sim.camera import SimFaults
from rig.sim.media import CODECS, MediaConfig

GPIO_NOTE = ("GPIO slots are mock pins inside this process: `rig power`/`rig press` from another "
             "process cannot drive them (PoE and relay slots they can).")


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


FAULT_HELP = ("a simulated fault, [UNIT:]NAME, repeatable; without UNIT every unit has it. "
              "Names: " + ", ".join(SimFaults.names()))


def add_media_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """--fault, --card, --resolution and --codec, shared by ``rig sim camera`` and ``bench``."""
    parser.add_argument("--fault", action="append", default=[], metavar=f"[{unit}:]NAME",
                        help=FAULT_HELP.replace("UNIT", unit))
    parser.add_argument("--card", nargs="*", action="extend", default=None, metavar=unit,
                        help=f"put an SD card in these {unit.lower()}s (none named: in every "
                             f"one); units have no card otherwise")
    parser.add_argument("--resolution", default="1920x1080",
                        help="main stream size, WIDTHxHEIGHT (default 1920x1080)")
    parser.add_argument("--codec", choices=CODECS, default="H.264",
                        help="main stream codec (default H.264)")


def unit_faults(specs: list[str], units: list[str], extra: dict[str, list[str]] | None = None
                ) -> dict[str, SimFaults]:
    """Unit name → its faults, from ``--fault [UNIT:]NAME`` options (and ``extra`` names per
    unit, e.g. --jammed). Raises ValueError naming the bad option."""
    chosen: dict[str, list[str]] = {u: list((extra or {}).get(u, [])) for u in units}
    for spec in specs:
        where, colon, name = spec.rpartition(":")
        targets = [where] if colon else units
        if colon and where not in chosen:
            raise ValueError(f"--fault {spec}: no unit {where!r}; units are "
                             f"{units[0]}..{units[-1]}")
        for unit in targets:
            chosen[unit].append(name)
    return {unit: SimFaults.from_names(names) for unit, names in chosen.items()}


def media_configs(args: argparse.Namespace, units: list[str]) -> dict[str, MediaConfig]:
    """Unit name → its stream and card, from --resolution, --codec and --card."""
    width, height = MediaConfig.parse_resolution(args.resolution)
    carded = set(units) if args.card == [] else set(args.card or ())
    if carded - set(units):
        raise ValueError(f"--card: no unit {sorted(carded - set(units))[0]!r}; units are "
                         f"{units[0]}..{units[-1]}")
    return {u: MediaConfig(width=width, height=height, codec=args.codec, card=u in carded)
            for u in units}


def register(sim_sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` to the ``rig sim`` subparsers."""
    parser = sim_sub.add_parser(
        "bench", help="start a whole simulated bench and write its bench file",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Note: " + GPIO_NOTE)
    parser.add_argument("--slots", type=int, default=6, help="number of slots (default 6)")
    parser.add_argument("--power", default="gpio,poe,relay",
                        help="power kinds, cycled over the slots: gpio, poe, relay "
                             "(default gpio,poe,relay)")
    parser.add_argument("--profiles", default="current,legacy,g5",
                        help="firmware profiles, cycled over the slots (default "
                             "current,legacy,g5)")
    parser.add_argument("--jammed", nargs="+", action="extend", default=[], metavar="SLOT",
                        help="slots whose reset button is jammed (the press never registers)")
    add_media_options(parser, "SLOT")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="divide boot, hold and lockout times by this, at least 1 "
                             "(default 1: real time); written into the bench file")
    parser.add_argument("--dir", type=Path, default=None,
                        help="directory for the bench file and the relay board link (default: "
                             "a temporary directory, removed at exit)")
    parser.add_argument("--base", default="127.0.1.", help="address prefix (default 127.0.1.)")
    parser.add_argument("--first", type=int, default=40,
                        help="last octet of slot 1's unit (default 40)")
    parser.add_argument("--provision", metavar="PASSWORD", default=None,
                        help="start every unit used: activated with this admin password")
    parser.add_argument("--relay-protocol", choices=("lcus", "numato"), default="numato",
                        help="what the relay board speaks (default numato)")
    parser.add_argument("--no-identity", action="store_true",
                        help="leave the units' MAC and serial out of the bench file")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds instead of waiting for Ctrl-C")
    parser.add_argument("--json", action="store_true",
                        help="print the bench as one line of JSON, then {\"running\": true} "
                             "once every powered unit runs")
    parser.set_defaults(func=run_bench)


def build_spec(args: argparse.Namespace) -> list[SimSlot]:
    """The slots asked for on the command line. Raises ValueError naming the bad option."""
    if args.slots < 1:
        raise ValueError(f"--slots must be at least 1, not {args.slots}")
    powers, profiles = _names(args.power), _names(args.profiles)
    if not powers or not profiles:
        raise ValueError("--power and --profiles need at least one name each")
    names = [str(i + 1) for i in range(args.slots)]
    unknown = [slot for slot in args.jammed if slot not in names]
    if unknown:
        raise ValueError(f"--jammed: no slot {unknown[0]!r}; slots are 1..{args.slots}")
    faults = unit_faults(args.fault, names,
                         {name: ["jammed-button"] for name in args.jammed})
    media = media_configs(args, names)
    return [SimSlot(power=powers[i % len(powers)], profile=profiles[i % len(profiles)],
                    faults=faults[name], media=media[name])
            for i, name in enumerate(names)]


@contextmanager
def _directory(given: Path | None) -> Iterator[Path]:
    """The bench directory: the one given (kept), or a temporary one removed afterwards."""
    if given is not None:
        yield given
        return
    path = Path(tempfile.mkdtemp(prefix="rig-sim-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_bench(args: argparse.Namespace) -> int:
    with _directory(args.dir) as directory:
        try:
            spec = build_spec(args)
            sim = SimBench.start(spec, directory=directory, time_scale=args.time_scale,
                                 base=args.base, first=args.first, provision=args.provision,
                                 boot=False, expected_identity=not args.no_identity,
                                 relay_protocol=args.relay_protocol,
                                 profile_set=ProfileSet.load())
        except (ProfileError, ValueError, OSError, RuntimeError) as exc:
            print(f"rig sim bench: error: {exc}", file=sys.stderr)
            return 2
        try:
            with until_stopped(args.duration) as wait:
                announce(sim, args.json)
                done = threading.Event()
                watcher = threading.Thread(target=_report_running, args=(sim, args.json, done),
                                           name="sim bench boot watch", daemon=True)
                watcher.start()
                try:
                    wait()
                finally:
                    done.set()
                    watcher.join(timeout=1.0)
        finally:
            sim.stop()
    return 0


def describe(sim: SimBench) -> dict[str, Any]:
    """The bench as plain data, for --json and for anyone scripting around it."""
    bench = sim.bench
    info: dict[str, Any] = {"bench": str(sim.bench_path), "name": bench.name,
                            "time_scale": bench.time_scale, "slots": sim.describe(),
                            "gpio_note": GPIO_NOTE}
    if sim.switch is not None:
        host, port = sim.switch.address
        info["switch"] = {"host": host, "port": port, "community": "private"}
    if sim.relay_board is not None:
        info["relay_board"] = {"link": str(sim.relay_board.link), "pty": sim.relay_board.path,
                               "protocol": sim.relay_board.protocol}
    return info


def announce(sim: SimBench, as_json: bool) -> None:
    """Print the bench file's path and the slots, as a table or one line of JSON."""
    info = describe(sim)
    if as_json:
        print(json.dumps(info), flush=True)
        return
    print(f"bench file: {info['bench']}  (time scale {info['time_scale']:g})")
    print(f"{'SLOT':<4} {'POWER':<27} {'BUTTON':<27} {'PROFILE':<8} {'MAC':<17}  "
          f"{'ADDRESS':<15} {'HTTP':>5} {'RTSP':>5}  FAULT")
    for row in info["slots"]:
        print(f"{row['slot']:<4} {row['power']:<27} {row['button']:<27} {row['profile']:<8} "
              f"{row['mac']:<17}  {row['address']:<15} {row['http_port']:>5} "
              f"{row['rtsp_port']:>5}  {','.join(row['faults']) or '-'}")
    if "switch" in info:
        sw = info["switch"]
        print(f"PoE switch: SNMP v2c on udp {sw['host']}:{sw['port']}, community "
              f"{sw['community']}")
    if "relay_board" in info:
        rb = info["relay_board"]
        print(f"relay board: {rb['protocol']} on {rb['link']} -> {rb['pty']}")
    print(f"Note: {GPIO_NOTE}")
    print("Units are booting. Ctrl-C to stop.", flush=True)


def _report_running(sim: SimBench, as_json: bool, done: threading.Event) -> None:
    """Say once when every powered unit runs (boot takes the profile's time / time scale)."""
    while not done.is_set():
        if sim.wait_running(0.2):
            print(json.dumps({"running": True}) if as_json else
                  f"all {len(sim.cameras)} unit(s) running", flush=True)
            return
