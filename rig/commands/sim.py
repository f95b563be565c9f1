"""``rig sim``: run parts of the simulated bench from the command line.

``rig sim camera --count N`` puts N virtual cameras on 127.0.1.N addresses: each answers SADP on
the loopback interface and ISAPI over HTTP, so ``rig discover --bind 127.0.0.1`` and
``rig verify`` can be tried without any hardware.

``rig sim --netns …`` (root) builds a bench in network namespaces where every unit answers on
192.168.1.64, as on a real bench; see ``rig sim --netns --help``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from rig.camera.profiles import ProfileError, ProfileSet
from rig.commands._serve import until_stopped
from rig.commands.sim_bench import add_media_options, media_configs, unit_faults
from rig.sim.bench_plan import fault_names
from rig.sim.fleet import CameraFleet

#: Other simulated parts, one module each with ``register(sim_subparsers)``.
_PARTS = ("sim_switch", "sim_relay", "sim_bench", "sim_netns")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sim", help="run parts of the simulated bench (cameras, PoE switch, relay board)",
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sim_sub = parser.add_subparsers(dest="sim_command", metavar="PART", required=True)
    cam = sim_sub.add_parser(
        "camera", help="start virtual cameras on loopback addresses and run until stopped",
        description="Start N virtual Hikvision cameras, one per address BASE+FIRST.. "
                    "(127.0.1.10, 127.0.1.11, ...), print their addresses, and serve SADP and "
                    "ISAPI until Ctrl-C or SIGTERM.")
    cam.add_argument("--count", type=int, default=4, help="number of cameras (default 4)")
    cam.add_argument("--profiles", default="current,legacy,g5",
                     help="firmware profiles, cycled over the units (default current,legacy,g5)")
    cam.add_argument("--base", default="127.0.1.", help="address prefix (default 127.0.1.)")
    cam.add_argument("--first", type=int, default=10, help="last octet of unit 1 (default 10)")
    cam.add_argument("--http-port", type=int, default=8080,
                     help="HTTP port of every unit (default 8080; 0 = any free port)")
    cam.add_argument("--time-scale", type=float, default=1.0,
                     help="divide boot, hold and lockout times by this (default 1: real time)")
    cam.add_argument("--sadp-interface", default="127.0.0.1",
                     help="address of the interface SADP is served on (default 127.0.0.1)")
    cam.add_argument("--cold", action="store_true",
                     help="boot the units (taking the profile's boot time) instead of starting "
                          "them already running")
    cam.add_argument("--duration", type=float, default=None,
                     help="stop after this many seconds instead of waiting for Ctrl-C")
    cam.add_argument("--rtsp-port", type=int, default=8554,
                     help="RTSP port of every unit (default 8554; 0 = any free port)")
    add_media_options(cam, "UNIT")
    cam.add_argument("--json", action="store_true", help="print the units as JSON")
    cam.set_defaults(func=run_cameras)
    for part in _PARTS:
        importlib.import_module(f"rig.commands.{part}").register(sim_sub)


def run_cameras(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.profiles.split(",") if n.strip()]
    try:
        profile_set = ProfileSet.load()
        for name in names:
            profile_set.get(name)
        units = [str(i + 1) for i in range(max(args.count, 1))]
        faults = unit_faults(args.fault, units)
        media = media_configs(args, units)
        fleet = CameraFleet.start(args.count, profiles=names, base=args.base, first=args.first,
                                  http_port=args.http_port, rtsp_port=args.rtsp_port,
                                  time_scale=args.time_scale,
                                  booted=not args.cold, sadp_interface=args.sadp_interface,
                                  profile_set=profile_set,
                                  faults={i: faults[u] for i, u in enumerate(units)},
                                  media={i: media[u] for i, u in enumerate(units)})
    except (ProfileError, ValueError, OSError) as exc:
        print(f"rig sim camera: error: {exc}", file=sys.stderr)
        return 2
    try:
        with until_stopped(args.duration) as wait:
            _announce(fleet, args)
            wait()
    finally:
        fleet.stop()
    return 0


def _print_event(event: str, details: dict[str, object]) -> None:
    """With --json, each SADP lamp change or accepted update is one more JSON line:
    ``{"event": "lamp", "mac": ..., "lamp": true}``, so a test or a technician sees it."""
    print(json.dumps({"event": event, **details}), flush=True)


def _announce(fleet: CameraFleet, args: argparse.Namespace) -> None:
    """Print the units, as a table or one line of JSON."""
    units = [{"address": c.address, "http_port": c.http_port, "rtsp_port": c.rtsp_port,
              "mac": c.mac, "serial": c.serial, "profile": c.profile.name,
              "firmware": c.firmware, "activated": c.activated, "lamp": c.lamp,
              "faults": fault_names(c.faults), "card": c.media.has_card,
              "resolution": f"{c.media.config.width}x{c.media.config.height}",
              "codec": c.media.config.codec}
             for c in fleet.cameras]
    if args.json:
        print(json.dumps({"cameras": units}))
        for camera in fleet.cameras:
            camera.sadp_actions.observers.append(_print_event)
    else:
        print(f"{'ADDRESS':<15} {'HTTP':>5}  {'MAC':<17}  {'PROFILE':<8} SERIAL")
        for u in units:
            print(f"{u['address']:<15} {u['http_port']:>5}  {u['mac']:<17}  "
                  f"{u['profile']:<8} {u['serial']}")
        print(f"{len(units)} virtual camera(s) running; SADP on {args.sadp_interface}. "
              "Ctrl-C to stop.")
    sys.stdout.flush()
