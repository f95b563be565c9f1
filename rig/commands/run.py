"""``rig run BENCH.toml``: reset and verify every slot of a bench, unattended, and record it all."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from rig.vocabulary import Destination, Method, choices

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rig.bench import Bench
    from rig.camera.isapi_types import Credentials
    from rig.notify.sender import Notifier
    from rig.runner import RunResult

#: Seconds ``rig run`` waits on exit for its notifications to go (the rest is sent later).
NOTIFY_DRAIN_S = 5.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run", help="reset and verify every slot of a bench (unattended batch)",
        description="Reset every selected slot in parallel with the chosen method, verify each "
                    "unit over SADP and HTTP, record every step and its evidence, and print a "
                    "verdict per unit. Exit code 0 only if every unit is at factory defaults.")
    parser.add_argument("bench", nargs="?", default=os.environ.get("RIG_BENCH"),
                        help="bench file (TOML); default: $RIG_BENCH (which `rig sim --netns` "
                             "sets for the command it runs)")
    parser.add_argument("--method", choices=sorted(choices(Method)),
                        help="reset method (default: the bench's [defaults] method)")
    parser.add_argument("--slots", help="comma-separated slot names (default: all)")
    parser.add_argument("--user", default="admin", help="web login for web-* and auto methods")
    parser.add_argument("--password-env", metavar="VAR",
                        help="name of the environment variable holding the web password "
                             "(never on the command line: it would show in the process list); "
                             "default: the bench file's [defaults] password_env")
    parser.add_argument("--db", default=None,
                        help="record store (default: $RIG_DB or ~/.local/share/rig/rig.sqlite)")
    parser.add_argument("--operator", metavar="NAME",
                        help="who runs this batch, recorded with the run for its certificates "
                             "(default: the bench file's [certificate] operator)")
    parser.add_argument("--destination", choices=choices(Destination),
                        help="where the units go next, recorded with the run (default: the "
                             "bench file's [certificate] destination)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no live progress lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rig.actuators.base import OutputGuard
    from rig.bench import BenchError, load_bench
    from rig.guardian import Guardian, GuardianError
    from rig.notify import start_notifier
    from rig.records import RecordError, RecordStore, default_db_path
    from rig.runner import Runner
    from rig.wiring import BenchHardware

    if not args.bench:
        print("rig run: error: give a bench file (or set RIG_BENCH)", file=sys.stderr)
        return 2
    try:
        bench = load_bench(args.bench)
        slots = [n.strip() for n in args.slots.split(",")] if args.slots else None
        bench.select(slots)
    except BenchError as exc:
        print(f"rig run: error: {exc}", file=sys.stderr)
        return 2
    try:
        credentials = web_credentials(args, bench)
    except ValueError as exc:         # BenchError, or a login Credentials refuses to send
        print(f"rig run: error: {exc}", file=sys.stderr)
        return 2
    try:
        store = RecordStore.open(args.db)
    except (RecordError, OSError) as exc:
        print(f"rig run: error: record store {args.db or default_db_path()}: {exc}",
              file=sys.stderr)
        return 2
    progress = Progress(quiet=args.quiet or args.json)
    try:        # before any output moves: it rests them if this process dies without its exit
        notifier = start_notifier(store.path, bench)
        guardian = Guardian.start(bench.path, store.path, "run")
    except (GuardianError, ValueError) as exc:
        store.close()
        print(f"rig run: error: {exc}; nothing was moved", file=sys.stderr)
        return 2
    with store, guardian, OutputGuard() as guard, _draining(notifier):
        hardware = BenchHardware(bench, guard=guard)
        try:
            runner = Runner(bench, store, hardware, method=args.method, slots=slots,
                            credentials=credentials, on_event=progress,
                            operator=(args.operator or "").strip() or None,
                            destination=args.destination)
            result = runner.run()
        except KeyboardInterrupt:
            print("rig run: interrupted: outputs at rest, run recorded as interrupted",
                  file=sys.stderr)
            return 130
        except BenchError as exc:           # the hand-over password, checked before moving
            print(f"rig run: error: {exc}", file=sys.stderr)
            return 2
        finally:
            hardware.close()
        print_result(result, args.json)
    return 0 if result.passed else 1


@contextlib.contextmanager
def _draining(notifier: Notifier | None) -> Iterator[None]:
    """The run's notifications sent in the background, and on exit given a short while to go:
    what a receiver has not taken by then stays owed in the record store, for the next
    ``rig run`` or a running ``rig serve`` to send."""
    try:
        yield
    finally:
        if notifier is not None:
            owed = notifier.close(drain_s=NOTIFY_DRAIN_S)
            if owed:
                print(f"rig run: {owed} notification(s) not delivered yet: kept in the record "
                      "store for `rig serve` or the next run to send", file=sys.stderr)


def web_credentials(args: argparse.Namespace, bench: Bench) -> Credentials | None:
    """The web login: the password from ``--password-env``, else from the bench's
    ``[defaults] password_env``; None without either. BenchError naming the variable (and where
    it was named) when it is not set."""
    from rig.bench import BenchError
    from rig.camera.isapi_types import Credentials
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            raise BenchError(f"environment variable {args.password_env} is not set")
        return Credentials(args.user, password)
    if bench.password is None:
        return None
    try:
        return Credentials(args.user, bench.password.get())
    except BenchError as exc:
        raise BenchError(f"{exc} ({bench.path}: defaults.password_env names it)") from None


class Progress:
    """Live per-slot progress: one line per step and per verdict, with the elapsed time."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, slot: str, kind: str, text: str) -> None:
        if kind in ("recovery", "interrupted", "warning"):     # always said, even when quiet
            where = "" if slot == "-" else f"slot {slot}: "
            print(f"rig run: {where}{text}", file=sys.stderr, flush=True)
            return
        if self.quiet:
            return
        with self._lock:
            mark = "=>" if kind == "verdict" else "  "
            print(f"{time.monotonic() - self.started:7.2f}s  slot {slot:<6} {mark} {text}",
                  flush=True)


def print_result(result: RunResult, as_json: bool) -> None:
    rows = sorted(result.results.values(), key=lambda r: _natural(r.slot))
    if as_json:
        print(json.dumps({"run": result.run_id, "status": str(result.status), "units": [
            {"slot": r.slot, "mac": r.mac, "serial": r.serial, **r.verdict.to_json(),
             "final_state": r.final_state and str(r.final_state),
             "grade": r.grade and str(r.grade),
             "notes": list(r.notes)} for r in rows]}, indent=2))
        return
    print()
    graded = any(r.grade for r in rows)
    grade_head = f" {'GRADE':<21}" if graded else ""
    print(f"{'SLOT':<6} {'VERDICT':<16}{grade_head} {'MAC':<17} {'SERIAL':<36} REASON")
    for r in rows:
        grade = f" {str(r.grade or '-'):<21}" if graded else ""
        print(f"{r.slot:<6} {str(r.verdict.verdict).upper():<16}{grade} {r.mac or '-':<17} "
              f"{r.serial or '-':<36} {r.verdict.reason}")
    passed = sum(r.verdict.passed for r in rows)
    states = sorted({str(r.final_state) for r in rows if r.final_state}) or ["factory"]
    print(f"\nrun {result.run_id}: {result.status}: {passed}/{len(rows)} unit(s) left "
          f"{' / '.join(states)}. Report: rig report {result.run_id} --format html")


def _natural(name: str) -> tuple[int, str]:
    # ASCII digits only: a slot named "²" passes str.isdigit() but not int().
    return (int(name), "") if name.isascii() and name.isdigit() else (10**9, name)
