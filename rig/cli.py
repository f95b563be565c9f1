"""The ``rig`` command: one subcommand per module in rig.commands, each with its own --help."""

from __future__ import annotations

import argparse
import importlib
import sys

from rig import __version__

#: Subcommand modules, in the order ``rig --help`` lists them. Each defines (one or more)
#: ``register(subparsers)`` and sets ``func(args) -> int`` on the parser it adds.
COMMANDS = ("demo", "run", "check", "doctor", "discover", "verify", "activate", "qa", "net",
            "locate", "power", "history", "logins", "report", "certificate", "audit", "serve",
            "sync", "sim")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rig",
        description="Factory-reset Hikvision IP cameras on a bench and prove each one is back "
                    "at factory defaults.")
    parser.add_argument("--version", action="version", version=f"rig {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"rig.commands.{name}").register(sub)
    return parser


def _respell(argv: list[str]) -> list[str]:
    """``rig sim --netns …`` is ``rig sim netns …``: argparse cannot hand an option everything
    after it (``-- COMMAND`` included), a subcommand it can. ``rig certificate RUN`` is
    ``rig certificate issue RUN``: argparse cannot take a positional where subcommands go."""
    if argv[:2] == ["sim", "--netns"]:
        return ["sim", "netns", *argv[2:]]
    if argv[:1] == ["certificate"] and len(argv) > 1 and (argv[1].isdigit() or argv[1] == "last"):
        return ["certificate", "issue", *argv[1:]]     # rig certificate RUN …
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_respell(sys.argv[1:] if argv is None else list(argv)))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("rig: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
