"""``rig doctor BENCH.toml``: a live, read-only check of every part of a bench before a run.

Each finding is ok, warn or fail with a one-line fix: network, record store, PoE switches
(SNMP credentials, ports, power budget), relay boards, GPIO, the expected units (SADP) and the
clock. Nothing is switched: no port, relay or GPIO output moves. Exit 0 when nothing fails
(warnings are printed and said so), 1 when something fails, 2 for a bad bench file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO


def register(sub: argparse._SubParsersAction) -> None:
    """Only argparse here: the probes' modules (pysnmp, gpiozero, pyserial) load when it runs."""
    parser = sub.add_parser("doctor", help="check every part of a bench, read-only, before a run",
                            description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", help="bench file (TOML)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--db", default=None,
                        help="record store (default $RIG_DB, else ~/.local/share/rig/rig.sqlite)")
    parser.add_argument("--sadp-timeout", type=float, default=3.0, metavar="S",
                        help="how long the SADP census listens for the units (default 3 s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return doctor(args)


def doctor(args: argparse.Namespace, *, pin_factory: Any = None,
           clock_source: Callable[[], Any] | None = None, out: TextIO | None = None) -> int:
    """The command, with the seams a simulated bench needs in-process: its MockFactory
    (``pin_factory``) and, for tests, how clock sync is read (``clock_source``)."""
    import json
    from pathlib import Path

    from rig.bench import BenchError, load_bench
    from rig.doctor import DoctorContext, exit_code, run_doctor
    from rig.doctor.output import as_json, as_table
    from rig.records.db import default_db_path

    out = out or sys.stdout
    if not args.sadp_timeout > 0:
        print("rig doctor: error: --sadp-timeout must be a positive number of seconds",
              file=sys.stderr)
        return 2
    try:
        bench = load_bench(args.bench)
    except BenchError as exc:
        print(f"rig doctor: error: {exc}", file=sys.stderr)
        return 2
    db_path = Path(args.db) if args.db else default_db_path(create_parent=False)
    findings = run_doctor(DoctorContext(bench=bench, db_path=db_path, pin_factory=pin_factory,
                                        sadp_timeout=args.sadp_timeout,
                                        clock_source=clock_source))
    if args.json:
        print(json.dumps(as_json(bench, findings), indent=2), file=out)
    else:
        print(as_table(bench, findings), file=out)
    return exit_code(findings)
