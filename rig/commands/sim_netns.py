"""``rig sim --netns``: a simulated bench on a real virtual network, every unit on 192.168.1.64.

Needs root: it builds network namespaces (iproute2's ``ip``). Each virtual camera gets a
namespace of its own with its MAC on eth0 and the factory address 192.168.1.64/24, all of them
the same, as on a real bench after a reset. A bridge joins them, a virtual PoE switch powers
them (SNMP on 10.254.0.250:161), a simulated relay board (a pty) presses their reset buttons, and
the controller gets a namespace of its own with eth0 = 192.168.1.2/24 and 10.254.0.2/24. A
powered-off camera's link is down, so it answers no ARP; on power-up it announces itself by
gratuitous ARP. Nothing is configured in the machine's own namespace.

It prints where the bench file is and how to enter the controller namespace, then either runs
COMMAND inside the controller namespace (``ip netns exec <ctl> COMMAND``, with RIG_BENCH set to
the bench file) and exits with COMMAND's exit code (143, COMMAND not run, if SIGTERM arrives
while the bench is being built), or, without a command, serves until Ctrl-C or SIGTERM.
Everything it built is removed when it exits (normally, on an error, on Ctrl-C or SIGTERM);
namespaces left by an earlier run that was killed (kill -9) are removed when it starts.

Identity (written to the bench file's [network] identity):
  serialised        one flat segment; units told apart by MAC/serial, one at a time
  ipv6-link-local   one flat segment; units with IPv6 on keep their EUI-64 fe80:: address
  vlan              slot N's unit alone in VLAN 100+N; the controller has eth0.<100+N>

examples:
  sudo rig sim --netns --count 8 --jammed 2,5 --provision Used-1 --time-scale 50 -- rig run
      (rig run reads the bench file from $RIG_BENCH, which is set for the command)
  sudo rig sim --netns --count 4 -- bash
  sudo rig sim --netns --count 2 --identity vlan      (serves until Ctrl-C)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rig.commands._serve import until_stopped
from rig.commands.sim_bench import _directory, _names
from rig.vocabulary import IdentityStrategy, choices

if TYPE_CHECKING:
    from rig.sim.netns_bench import NetnsBench

#: The identity strategies the simulated network can build (rig.sim.netns_bench IDENTITY_MODES).
IDENTITY_MODES = choices(IdentityStrategy)

PROG = "rig sim --netns"
#: How long COMMAND gets to end after a forwarded SIGTERM before it is killed (seconds).
TERM_GRACE_S = 10.0


def register(sim_sub: argparse._SubParsersAction) -> None:
    """Add ``netns`` to the ``rig sim`` subparsers; ``rig sim --netns …`` is spelled
    ``rig sim netns …`` by rig.cli before parsing."""
    parser = sim_sub.add_parser(
        "netns", help="(also: rig sim --netns) a bench in network namespaces, every unit on "
                      "192.168.1.64; root only",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=f"{PROG} [--count N] [--identity {{{','.join(IDENTITY_MODES)}}}] "
              "[--jammed 2,5] [--time-scale S] [--profiles current,legacy,g5] [-- COMMAND ...]")
    parser.add_argument("--count", type=int, default=4, help="number of slots (default 4)")
    parser.add_argument("--identity", choices=IDENTITY_MODES, default=IdentityStrategy.SERIALISED,
                        help="how the controller is to tell units apart (default serialised)")
    parser.add_argument("--jammed", default="", metavar="SLOTS",
                        help="comma-separated slots whose reset button is jammed (e.g. 2,5)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="divide boot, hold and lockout times by this, at least 1 "
                             "(default 1: real time); written into the bench file")
    parser.add_argument("--profiles", default="current,legacy,g5",
                        help="firmware profiles, cycled over the slots (default "
                             "current,legacy,g5)")
    parser.add_argument("--provision", metavar="PASSWORD", default=None,
                        help="start every unit used: activated with this admin password "
                             "(still on 192.168.1.64)")
    parser.add_argument("--no-identity", action="store_true",
                        help="leave the units' MAC and serial out of the bench file")
    parser.add_argument("--dir", type=Path, default=None,
                        help="directory for the bench file and the relay board link (default: "
                             "a temporary directory, removed at exit)")
    parser.add_argument("--json", action="store_true",
                        help="describe the bench as one line of JSON")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                        help="run COMMAND in the controller namespace and exit with its code")
    parser.set_defaults(func=run_netns)


def run_netns(args: argparse.Namespace) -> int:
    from rig.camera.profiles import ProfileError, ProfileSet
    from rig.sim.netns import NetnsError, NotRootError, require_root
    from rig.sim.netns_bench import NetnsBench, netns_spec

    command = list(args.argv)
    if command and command[0] == "--":
        command = command[1:]
    try:
        require_root()
    except NetnsError as exc:        # NotRootError included: one line, no traceback
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    with _directory(args.dir) as directory:
        try:
            jammed = _names(args.jammed)
            spec = netns_spec(args.count, profiles=_names(args.profiles), jammed=jammed)
            with until_stopped(None) as wait:
                sim = NetnsBench.start(spec, directory=directory, identity=args.identity,
                                       time_scale=args.time_scale, provision=args.provision,
                                       boot=False, expected_identity=not args.no_identity,
                                       profile_set=ProfileSet.load())
                try:
                    if command and wait.stopped:
                        # SIGTERM while the bench was being built: COMMAND is not started.
                        print(f"{PROG}: SIGTERM while building the bench; {command[0]} not run",
                              file=sys.stderr)
                        return 128 + signal.SIGTERM
                    out = sys.stderr if command else sys.stdout
                    announce(sim, args.json, out, serving=not command)
                    if command:
                        return _run_inside(sim, command, lambda: wait.stopped)
                    wait()
                finally:
                    sim.stop()
        except NotRootError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 2
        except (ProfileError, ValueError, OSError, RuntimeError) as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
    return 0


def _run_inside(sim: NetnsBench, command: Sequence[str],
                stopped: Callable[[], bool] = lambda: False) -> int:
    """COMMAND in the controller namespace; its exit code (128+N when killed by signal N).
    Ctrl-C reaches it directly (same process group) and is ignored here meanwhile; SIGTERM to
    this process is passed on to it, and it is killed if it outlives TERM_GRACE_S. ``stopped``
    tells whether a SIGTERM came just before this handler was installed: it is passed on too."""
    import subprocess  # here, not at the top: every rig command line would pay for it

    env = dict(os.environ, RIG_BENCH=str(sim.bench_path))
    try:
        proc = subprocess.Popen(sim.exec_argv(command), env=env)
    except OSError as exc:
        print(f"{PROG}: cannot run {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    terminated = threading.Event()

    def forward(signum: int, frame: Any) -> None:
        terminated.set()
        proc.send_signal(signal.SIGTERM)

    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, forward)
    try:
        if stopped():
            forward(signal.SIGTERM, None)
        while True:
            try:
                code = proc.wait(timeout=TERM_GRACE_S if terminated.is_set() else None)
                break
            except subprocess.TimeoutExpired:
                print(f"{PROG}: {command[0]} did not stop after SIGTERM; killing it",
                      file=sys.stderr)
                proc.kill()
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
    return 128 - code if code < 0 else code


def describe(sim: NetnsBench) -> dict[str, Any]:
    info: dict[str, Any] = {"bench": str(sim.bench_path), "identity": sim.identity,
                            "controller_namespace": sim.controller_ns,
                            "enter": f"sudo ip netns exec {sim.controller_ns} bash",
                            "time_scale": sim.time_scale, "vlan_tagged": sim.tagged,
                            "slots": sim.describe()}
    if sim.switch is not None:
        host, port = sim.switch.address
        info["switch"] = {"host": host, "port": port, "community": "private"}
    if sim.relay_board is not None:
        info["relay_board"] = {"link": str(sim.relay_board.link), "pty": sim.relay_board.path}
    return info


def announce(sim: NetnsBench, as_json: bool, out: Any, *, serving: bool) -> None:
    info = describe(sim)
    if as_json:
        print(json.dumps(info), file=out, flush=True)
        return
    print(f"bench file: {info['bench']}  (identity {sim.identity}, time scale "
          f"{sim.time_scale:g})", file=out)
    print(f"controller namespace: {sim.controller_ns}  (eth0: 192.168.1.2/24, 10.254.0.2/24)"
          f"\n  enter it: {info['enter']}", file=out)
    print(f"{'SLOT':<4} {'NAMESPACE':<22} {'CTL IF':<9} {'PROFILE':<8} {'MAC':<17}  "
          f"{'ADDRESS':<13} FAULT", file=out)
    for row in info["slots"]:
        print(f"{row['slot']:<4} {row['namespace']:<22} {row['controller_interface']:<9} "
              f"{row['profile']:<8} {row['mac']:<17}  {row['address']:<13} "
              f"{','.join(row['faults']) or '-'}", file=out)
    if "switch" in info:
        print(f"PoE switch: SNMP v2c on udp {info['switch']['host']}:{info['switch']['port']} "
              f"(from the controller namespace), community private", file=out)
    if "relay_board" in info:
        print(f"relay board (solenoids): {info['relay_board']['link']} -> "
              f"{info['relay_board']['pty']}", file=out)
    if serving:
        print("Units are booting. Ctrl-C to stop and remove every namespace.", file=out)
    out.flush()
