"""``rig power``, ``rig press`` and ``rig safe``: drive one slot's hands by hand, from a bench file.

These are the technician's tools for setting up and checking a bench: switch a slot's camera
power, read it back, press a reset button for a few seconds, or put every output of the bench in
its rest state (the unattended service runs ``rig safe`` after it stops).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING

from rig.vocabulary import OutputKind, RunStatus

if TYPE_CHECKING:
    from rig.bench import Bench
    from rig.guardian import Guardian
    from rig.records import RecordStore
    from rig.wiring import BenchHardware


def _open_run(args: argparse.Namespace, bench: Bench, method: str,
              command: str) -> tuple[RecordStore, int] | None:
    """Open the record store and record the manual operation as a run first: rig does not drive
    hardware it cannot record. Every output it leaves off or energised goes in the outputs
    ledger, so ``rig history``, reports and recovery after a crash know about it."""
    from rig.records import RecordError, RecordStore, file_sha256
    try:
        store = RecordStore.open(args.db)
    except (RecordError, OSError, ValueError) as exc:
        print(f"rig {command}: error: record store: {exc}", file=sys.stderr)
        return None
    try:
        run_id = store.runs.start_run(bench.name, method=method, bench_path=bench.path,
                                      bench_sha256=file_sha256(bench.path), argv=sys.argv)
    except (RecordError, OSError, ValueError) as exc:
        store.close()
        print(f"rig {command}: error: record store: {exc}", file=sys.stderr)
        return None
    return store, run_id


def _guardian(store: RecordStore, run_id: int, bench: Bench, command: str) -> Guardian | None:
    """The guardian that rests this command's outputs if it dies without its exit path (kill
    -9); None, with the run closed and the reason printed, when it cannot start: then nothing
    may move."""
    from rig.guardian import Guardian, GuardianError
    try:
        return Guardian.start(bench.path, store.path, command)
    except GuardianError as exc:
        print(f"rig {command}: error: {exc}; nothing was moved", file=sys.stderr)
        _finish(store, run_id, False, str(exc))
        return None


def _finish(store: RecordStore, run_id: int, ok: bool, note: str = "") -> None:
    """Close the manual operation's run and the store."""
    store.runs.finish_run(run_id, RunStatus.PASSED if ok else RunStatus.FAILED, note)
    store.close()


def register(sub: argparse._SubParsersAction) -> None:
    power = sub.add_parser(
        "power", help="switch a slot's camera power on, off, cycle it, or read it back",
        description="Switch or read the power of bench slots (GPIO relay, serial relay channel "
                    "or PoE port). SLOT is a slot name, a comma-separated list, or 'all'.")
    power.add_argument("slot", help="slot name(s), comma-separated, or 'all'")
    power.add_argument("action", choices=("on", "off", "cycle", "status"))
    _bench_argument(power)
    power.add_argument("--off-seconds", type=float, default=None,
                       help="cycle: how long power stays off (default: the bench's settle time)")
    power.add_argument("--hold", action="store_true",
                       help="keep GPIO outputs in the new state until Ctrl-C (a GPIO line only "
                            "holds while rig runs)")
    power.add_argument("--json", action="store_true", help="print the readings as JSON")
    power.set_defaults(func=run_power)

    press = sub.add_parser(
        "press", help="press a slot's reset button with its solenoid for a few seconds",
        description="Energise a slot's reset-button solenoid for SECONDS and release it. A press "
                    "longer than the bench's solenoid cap is refused before anything moves.")
    press.add_argument("slot", help="slot name")
    press.add_argument("--seconds", type=float, required=True, help="how long to press")
    _bench_argument(press)
    press.set_defaults(func=run_press)

    safe = sub.add_parser(
        "safe", help="put every output of a bench in its rest state (after a crash or stop)",
        description="Release every solenoid, turn back on every PoE port of the bench, and "
                    "switch relay-driven camera power off (the relays' unpowered state).")
    safe.add_argument("bench_file", metavar="BENCH", help="bench file (TOML)")
    _db_argument(safe)
    safe.set_defaults(func=run_safe)


def _bench_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bench", default=os.environ.get("RIG_BENCH"),
                        help="bench file (TOML); default: $RIG_BENCH")
    _db_argument(parser)


def _db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None,
                        help="record store (default: $RIG_DB or ~/.local/share/rig/rig.sqlite)")


def _load(args: argparse.Namespace, command: str) -> Bench | None:
    from rig.bench import BenchError, load_bench
    path = getattr(args, "bench", None) or getattr(args, "bench_file", None)
    if not path:
        print(f"rig {command}: error: no bench file: give --bench FILE or set RIG_BENCH",
              file=sys.stderr)
        return None
    try:
        return load_bench(path)
    except BenchError as exc:
        print(f"rig {command}: error: {exc}", file=sys.stderr)
        return None


def _slot_names(bench: Bench, text: str) -> list[str]:
    names = [s.name for s in bench.slots] if text == "all" else [
        n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        bench.slot(name)          # BenchError names the known slots
    return names


def run_power(args: argparse.Namespace) -> int:
    from rig.actuators.base import OutputGuard
    from rig.actuators.gpio import GpioPower
    from rig.bench import BenchError
    from rig.wiring import BenchHardware

    bench = _load(args, "power")
    if bench is None:
        return 2
    try:
        names = _slot_names(bench, args.slot)
    except BenchError as exc:
        print(f"rig power: error: {exc}", file=sys.stderr)
        return 2
    opened = _open_run(args, bench, f"manual: power {args.action}", "power")
    if opened is None:
        return 2
    store, run_id = opened
    guardian = None                    # reading back moves nothing: no guardian needed
    if args.action != "status":
        guardian = _guardian(store, run_id, bench, "power")
        if guardian is None:
            return 2
    guard = OutputGuard().install()
    hardware = BenchHardware(bench, guard=guard)
    readings: dict[str, dict] = {}
    failed = False
    try:
        for name in names:
            readings[name] = _switch(store, run_id, hardware, name, args, bench)
            failed = failed or "error" in readings[name]
        _print(readings, args.json)
        gpio = any(isinstance(hardware.slot(n).power, GpioPower) for n in names
                   if "error" not in readings[n])
        if gpio and args.action in ("on", "cycle"):
            if args.hold:
                print("holding GPIO outputs; Ctrl-C to release", file=sys.stderr)
                _wait_forever()
            else:
                print("note: GPIO-driven power returns to its rest state (off) when rig exits; "
                      "use --hold to keep it on", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        # An explicit on/off is what the operator asked for: leave it, except GPIO lines,
        # which cannot outlive this process. On errors and signals the guard rests everything.
        hardware.close(rest=failed)
        if failed:
            guard.close()
        else:
            guard.uninstall()
        if guardian is not None:       # the outputs are where this exit path leaves them
            guardian.done()
        _finish(store, run_id, not failed)
    return 1 if failed else 0


def _switch(store: RecordStore, run_id: int, hardware: BenchHardware, name: str,
            args: argparse.Namespace, bench: Bench) -> dict:
    """One slot's action with its ledger line: the reading, or {"error": ...}."""
    from rig.actuators.base import ActuatorError
    from rig.bench import describe_output
    target = describe_output(bench.slot(name).power)
    # A cycle's off is recorded too: a command killed in between leaves a line for the
    # guardian (and recovery) to turn the output back on.
    entry = (store.outputs.engaged(run_id, name, OutputKind.POWER_OFF, target,
                                   f"turned off by the operator ({args.action})")
             if args.action in ("off", "cycle") else None)
    try:
        reading = _act(hardware, name, args, bench)
    except (ActuatorError, ValueError) as exc:
        if entry is not None:
            store.outputs.clear_target(target, (
                f"power off failed, output unchanged: {exc}" if args.action == "off"
                else f"power cycle failed ({exc}); rested as rig power exits"))
        return {"error": str(exc)}
    if args.action in ("on", "cycle"):
        store.outputs.clear_target(target, "turned on by the operator")
    return reading


def _act(hardware: BenchHardware, name: str, args: argparse.Namespace, bench: Bench) -> dict:
    from rig.actuators.base import ActuatorError, PowerState
    from rig.bench import describe_output
    power = hardware.slot(name).power
    if args.action == "on":
        power.on()
    elif args.action == "off":
        power.off()
    elif args.action == "cycle":
        power.off()
        time.sleep(bench.settle_seconds if args.off_seconds is None else args.off_seconds)
        power.on()
    reading = power.read()
    expected = {"on": PowerState.ON, "off": PowerState.OFF, "cycle": PowerState.ON}
    if args.action in expected and reading.state not in (expected[args.action],
                                                         PowerState.UNKNOWN):
        raise ActuatorError(power.name, f"read back {reading.state.value} after {args.action}")
    return {"output": describe_output(bench.slot(name).power), "state": reading.state.value,
            "drawing_power": reading.drawing_power, "detail": reading.detail}


def _print(readings: dict[str, dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"slots": readings}, indent=2))
        return
    for name, r in readings.items():
        if "error" in r:
            print(f"{name:<8} ERROR  {r['error']}")
            continue
        drawing = {True: "drawing power", False: "not drawing power",
                   None: ""}[r["drawing_power"]]
        line = f"{name:<8} {r['state'].upper():<7} {r['output']:<34} {drawing} {r['detail']}"
        print(line.rstrip())


def _wait_forever() -> None:
    while True:
        time.sleep(3600)


def run_press(args: argparse.Namespace) -> int:
    from rig.actuators.base import ActuatorError, OutputGuard
    from rig.bench import BenchError, describe_output
    from rig.wiring import BenchHardware

    bench = _load(args, "press")
    if bench is None:
        return 2
    try:
        slot = bench.slot(args.slot)
    except BenchError as exc:
        print(f"rig press: error: {exc}", file=sys.stderr)
        return 2
    if slot.button is None:
        print(f"rig press: error: slot {slot.name} has no button solenoid in {bench.path}",
              file=sys.stderr)
        return 2
    opened = _open_run(args, bench, f"manual: press {args.seconds:g} s", "press")
    if opened is None:
        return 2
    store, run_id = opened
    guardian = _guardian(store, run_id, bench, "press")
    if guardian is None:
        return 2
    target = describe_output(slot.button)
    ok = False
    with OutputGuard() as guard:
        hardware = BenchHardware(bench, guard=guard)
        button = None
        try:
            button = hardware.slot(slot.name).button
            assert button is not None
            button.check(args.seconds)
            store.outputs.engaged(run_id, slot.name, OutputKind.SOLENOID_ON, target,
                                  f"pressed for {args.seconds:g} s")
            button.press(args.seconds)
            ok = True
        except ValueError as exc:
            print(f"rig press: error: {exc}", file=sys.stderr)
            return 2
        except ActuatorError as exc:
            print(f"rig press: error: {exc}", file=sys.stderr)
            return 1
        finally:
            hardware.close(rest=True)
            if button is not None and button.energised:
                print(f"rig press: error: {target} may still be energised", file=sys.stderr)
            else:
                store.outputs.clear_target(target, "released")
            guardian.done()
            _finish(store, run_id, ok)
    print(f"{slot.name}: pressed {args.seconds:g} s ({describe_output(slot.button)}), released")
    return 0


def run_safe(args: argparse.Namespace) -> int:
    from rig.actuators.base import ActuatorError
    from rig.bench import describe_output
    from rig.recovery import recover
    from rig.wiring import BenchHardware, rest_button, rest_power

    bench = _load(args, "safe")
    if bench is None:
        return 2
    opened = _open_run(args, bench, "manual: safe", "safe")
    if opened is None:
        return 2
    store, run_id = opened
    errors: list[str] = []
    hardware = BenchHardware(bench)
    try:
        for slot in bench.slots:
            try:
                hw = hardware.slot(slot.name)
                if hw.button is not None:
                    rest_button(hw)
                    store.outputs.clear_target(describe_output(slot.button),
                                               "released by rig safe")
                rest_power(hw)
                store.outputs.clear_target(describe_output(slot.power),
                                           "at rest after rig safe")
            except (ActuatorError, ValueError) as exc:
                errors.append(f"slot {slot.name}: {exc}")
                store.outputs.engaged(run_id, slot.name, OutputKind.LEFT_ENGAGED,
                                      describe_output(slot.power),
                                      f"rig safe could not rest this output: {exc}")
        report = recover(store, bench, hardware)       # dead runs: closed once all is safe
        errors += report.engaged
        for line in report.made_safe + report.closed:
            print(f"rig safe: {line}")
    finally:
        hardware.close(rest=True)
        _finish(store, run_id, not errors, "; ".join(errors))
    for error in errors:
        print(f"rig safe: error: {error}", file=sys.stderr)
    if not errors:
        print(f"bench {bench.name}: {len(bench.slots)} slot(s) at rest: solenoids released, "
              "PoE ports on, relay power off")
    return 1 if errors else 0
