"""``rig sim relay``: a simulated USB-serial relay board on a pseudo-terminal.

Prints the pty path (and the stable link, if asked for one) and serves the board's protocol
until Ctrl-C or SIGTERM, printing every relay change. Point a SerialRelayBoard, a bench file or
a terminal program at the printed path to try relay code without hardware.

Wired in by ``rig.commands.sim``: ``register(sim_sub)`` adds the ``relay`` parser to the
``rig sim`` subparsers. ``python -m rig.commands.sim_relay ...`` runs it stand-alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from rig.commands._serve import until_stopped

#: The wire protocols the simulated board speaks: rig.sim.serial_board.FIRMWARES' names, here
#: so that the parser needs no simulator (tests/test_cli_startup.py keeps the two equal).
PROTOCOLS = ("kmtronic", "lcus", "numato")
_POWER_ON = {"off": False, "on": True, "keep": None}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=PROTOCOLS, default="lcus",
                        help="wire protocol the board speaks (default lcus)")
    parser.add_argument("--channels", type=int, default=4,
                        help="number of relays, numbered from 1 (default 4)")
    parser.add_argument("--link", metavar="PATH",
                        help="keep a symlink at PATH pointing at the pty, like "
                             "/dev/serial/by-id/... on a bench")
    parser.add_argument("--power-on", choices=sorted(_POWER_ON), default="off",
                        help="relay states when the board powers up (default off)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds instead of waiting for Ctrl-C")
    parser.set_defaults(func=run_relay)


def register(sim_sub: argparse._SubParsersAction) -> None:
    """Add ``relay`` to the ``rig sim`` subcommands."""
    parser = sim_sub.add_parser(
        "relay", help="simulate a USB-serial relay board on a pseudo-terminal",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)


def run_relay(args: argparse.Namespace) -> int:
    from rig.sim.serial_board import SimulatedRelayBoard

    try:
        board = SimulatedRelayBoard(args.protocol, args.channels, link=args.link,
                                    power_on_state=_POWER_ON[args.power_on])
        board.start()
    except (ValueError, OSError) as exc:
        print(f"rig sim relay: error: {exc}", file=sys.stderr)
        return 2
    def reporter(channel: int) -> Callable[[bool], None]:
        def report(on: bool) -> None:
            print(f"channel {channel} {'on' if on else 'off'}", flush=True)
        return report

    try:
        with until_stopped(args.duration) as wait:
            for channel in range(1, args.channels + 1):
                board.attach(channel, reporter(channel))
            where = f"{board.path}" + (f" (link {board.link})" if board.link else "")
            print(f"{args.protocol} relay board, {args.channels} channel(s), on {where}. "
                  "Ctrl-C to stop.", flush=True)
            wait()
    finally:
        board.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rig sim relay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
