"""How well a hard-reset batch scales: wall time of ``Runner.run()`` against the physics it cannot
avoid, on simulated benches of 1, 8, 24 and 48 slots.

A batch runs every slot in parallel, so ideally a 48-slot batch takes as long as its slowest
unit's **critical path**: the power-off settle, the button hold, the boot and the verification
(the irreducible physics plus the check). Everything else a unit spends (the power-off command,
waiting for a solenoid or for its power-on turn, the press margin, census latency, the records)
is overhead the runner should hide behind other units' physics. The figure of merit is

    ratio = wall time of the batch / the slowest unit's critical path      (target <= 1.05)

Both come from the records the run wrote (rig.records): per unit, critical = the bench's settle
time (the nominal one: the recorded 'settle' step also holds the waits for a solenoid, a boot
place and a power-on instant, which are overhead) + its 'hold' + 'wait for boot' + 'verify'
steps (power-on until the unit answers SADP again, then the HTTP check); the critical path is
the max over units; wall is the time around ``Runner.run()`` (the run's own
started_at..finished_at is printed too). The bench is the large real one
(hardware/wiring-poe-serial-24.md): PoE power, reset solenoids on USB-serial relay boards,
firmware families mixed, every unit used (activated with a password) so each really needs the
reset; every verdict must be factory-default, or the figures are meaningless and the script
exits 1.

Everything is loopback: units on ``--base`` + ``--first``.. (127.0.3.x by default, a /24 no test
uses, so a test run on the same host cannot answer for these units), SADP bound to 127.0.0.1,
records in a temporary directory. See benchmarks/README.md for the time scale and the reading.

    python benchmarks/batch_scaling.py                  # 1, 8, 24, 48 slots, the table
    python benchmarks/batch_scaling.py --sizes 48 --repeat 3 --steps
    python benchmarks/batch_scaling.py --sim-process    # the simulator in a child process
    python benchmarks/batch_scaling.py --power-on-spacing 0.1   # a what-if for the bench file
    python benchmarks/batch_scaling.py --json > scaling.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rig.actuators.relay_protocols import numato
from rig.bench import Bench, load_bench
from rig.camera.profiles import ProfileSet
from rig.procedures import PRESS_MARGIN_S
from rig.records import RecordStore, RunRecord, Unit
from rig.runner import Runner
from rig.sim.bench import SimBench, SimSlot
from rig.vocabulary import Verdict
from rig.wiring import BenchHardware

#: The steps that make up a unit's critical path (see the module docstring).
#: Recorded steps on a unit's critical path; the settle is added at its nominal length.
CRITICAL_STEPS = ("hold", "wait for boot", "verify")
#: The order a hard reset records its steps in (rig.procedures.hard, then verify).
HARD_STEPS = ("power off", "settle", "press", "power on", "hold", "release", "wait for boot",
              "verify")
TARGET_RATIO = 1.05
DEFAULT_SIZES = (1, 8, 24, 48)
#: 5x real time: a 48-slot batch takes ~17 s, and the costs that do not scale (SNMP, SQLite,
#: HTTP, thread start-up) stay small next to a ~16.5 s critical path: the ratio measured at 5
#: is the one measured at 2 (benchmarks/README.md has the sweep).
DEFAULT_TIME_SCALE = 5.0
DEFAULT_PROFILES = ("current", "legacy", "g5")
#: Eight relays a board, as the real 24-slot bench has (hardware/benches/poe-serial-24.toml).
#: One board's commands are serialised, but at ~0.3 ms each 8 or 32 channels a board measured
#: the same.
DEFAULT_RELAY_CHANNELS = 8
PASSWORD = "Bench-Scaling-1"


@dataclass
class StepStats:
    """One step name across the units of a batch: measured durations against the nominal one
    (the profile's time divided by the time scale; None where the step has no fixed length)."""

    name: str
    nominal_s: float | None
    mean_s: float
    max_s: float


@dataclass
class Overheads:
    """Where the last unit to finish spent the wall time outside its critical steps."""

    slot: str
    before_first_step_s: float      # run start (recovery, records, first census round) → power off
    non_critical_steps_s: dict[str, float]   # power off, turn waits, power on, release
    between_steps_s: float          # gaps between one step's end and the next one's start
    after_last_step_s: float        # its verify done → Runner.run() returned (verdict, make_safe)
    critical_s: float               # this unit's own critical path


@dataclass
class BatchResult:
    """One batch of ``slots`` units, as measured."""

    slots: int
    time_scale: float
    wall_s: float                   # around Runner.run()
    run_record_s: float             # the run's finished_at - started_at in the records
    critical_s: float               # the slowest unit's critical path
    critical_slot: str
    ratio: float
    passed: bool
    verdicts: dict[str, int]
    steps: list[StepStats] = field(default_factory=list)
    overheads: Overheads | None = None


def build_spec(count: int, profiles: Sequence[str]) -> list[SimSlot]:
    """``count`` PoE slots with relay-board buttons, profiles cycled so every batch of three or
    more has each family (and its different boot time) in it."""
    return [SimSlot(power="poe", profile=profiles[i % len(profiles)], button="relay")
            for i in range(count)]


def _seconds(unit: Unit, name: str) -> float:
    """Total recorded duration of the unit's steps called ``name`` (0 when it has none)."""
    total = 0.0
    for step in unit.steps:
        if step.name == name and step.finished_at is not None:
            total += (step.finished_at - step.started_at).total_seconds()
    return total


def critical_path(unit: Unit, settle_s: float) -> float:
    """The bench's settle + the unit's recorded hold + wait for boot + verify."""
    return settle_s + sum(_seconds(unit, name) for name in CRITICAL_STEPS)


def _nominal(name: str, time_scale: float, settle_s: float, profiles: ProfileSet,
             units: Sequence[Unit]) -> float | None:
    """What a step would last with no overhead at all, in real seconds on this bench."""
    holds = [profiles.get(u.profile or "current").hold_seconds[1] for u in units]
    if name == "settle":      # the press runs in the settle's last half margin
        return settle_s - PRESS_MARGIN_S / 2 / time_scale
    if name == "press":
        return PRESS_MARGIN_S / 2 / time_scale
    if name == "hold":
        return max(holds) / time_scale
    if name in ("power off", "power on", "release"):
        return 0.0
    return None      # wait for boot (boot minus hold, plus census latency), verify (HTTP)


def step_stats(record: RunRecord, time_scale: float, settle_s: float,
               profiles: ProfileSet) -> list[StepStats]:
    """Per step name, in procedure order: mean and max over the units that ran it, so a step
    that waits on a shared resource (a lock, a turn, a queue) shows as max far above mean."""
    out = []
    for name in HARD_STEPS:
        values = [_seconds(u, name) for u in record.units if any(s.name == name for s in u.steps)]
        if values:
            out.append(StepStats(name, _nominal(name, time_scale, settle_s, profiles,
                                                record.units),
                                 statistics.fmean(values), max(values)))
    return out


def overheads(record: RunRecord, wall: float, settle_s: float) -> Overheads:
    """Break the last-finishing unit's wall time into its critical steps and the rest.

    Step times are wall-clock datetimes in the records, anchored on the run's own started_at;
    what ``Runner.run()`` spent before recording the run (recovery) is the difference between
    ``wall`` and the recorded run's length, and is counted as start-up.
    """
    last = max((u for u in record.units if u.steps),
               key=lambda u: max(s.finished_at or s.started_at for s in u.steps))
    steps = sorted(last.steps, key=lambda s: s.seq)
    t0 = record.run.started_at
    recorded = ((record.run.finished_at - t0).total_seconds() if record.run.finished_at
                else wall)
    pre_record = max(wall - recorded, 0.0)
    gaps = sum(((b.started_at - (a.finished_at or a.started_at)).total_seconds()
                for a, b in zip(steps, steps[1:], strict=False)), 0.0)
    end = ((steps[-1].finished_at or steps[-1].started_at) - t0).total_seconds()
    return Overheads(
        slot=last.slot,
        before_first_step_s=pre_record + (steps[0].started_at - t0).total_seconds(),
        non_critical_steps_s={
            "power off": _seconds(last, "power off"),
            # settle + press beyond the nominal settle: waiting for a solenoid, a boot place
            # or a power-on instant (the press itself runs inside the settle)
            "turn waits": _seconds(last, "settle") + _seconds(last, "press") - settle_s,
            **{n: _seconds(last, n) for n in ("power on", "release")}},
        between_steps_s=gaps, after_last_step_s=recorded - end,
        critical_s=critical_path(last, settle_s))


def _sim_kwargs(count: int, *, time_scale: float, base: str, first: int,
                profiles: Sequence[str], relay_channels: int | None,
                directory: Path) -> dict[str, Any]:
    """SimBench.start's arguments (plain data: they may cross to a child process). A fresh
    MAC block per bench, so a unit of the previous batch could never be taken for this one's."""
    return {"spec": build_spec(count, profiles), "directory": directory,
            "time_scale": time_scale, "base": base, "first": first, "provision": PASSWORD,
            "mac_block": 0x10 + secrets.randbelow(0xE0), "relay_channels": relay_channels,
            "name": f"scaling-{count}"}


def _serve_bench(conn: Connection, kwargs: dict[str, Any]) -> None:
    """Child process: run the simulated bench until the parent says stop (or goes away)."""
    logging.basicConfig(level=logging.WARNING, format="sim %(levelname)s %(name)s: %(message)s")
    try:
        with SimBench.start(**kwargs) as sim:
            conn.send(("ok", str(sim.bench_path)))
            try:
                conn.recv()
            except EOFError:
                pass
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


@contextmanager
def simulated_bench(kwargs: dict[str, Any], separate: bool,
                    profile_set: ProfileSet) -> Iterator[tuple[Bench, Any]]:
    """The bench to run on, and the pin factory to hand to BenchHardware.

    ``separate``: the simulator runs in a child process, as cameras, switch and relay boards
    are separate machines on a real bench; the controller's threads then share the GIL with
    nobody but themselves. PoE power and relay buttons need no GPIO, so nothing has to cross
    the process boundary but the bench file.
    """
    if not separate:
        with SimBench.start(**kwargs, profile_set=profile_set) as sim:
            yield sim.bench, sim.pin_factory
        return
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=_serve_bench, args=(theirs, kwargs), daemon=True,
                            name="rig-sim-bench")
    child.start()
    try:
        if not ours.poll(120):
            raise RuntimeError("the simulated bench did not start within 120 s")
        status, text = ours.recv()
        if status != "ok":
            raise RuntimeError(f"the simulated bench failed to start: {text}")
        yield load_bench(text, profile_set), None
    finally:
        try:
            ours.send("stop")
        except OSError:
            pass
        child.join(30)
        if child.is_alive():
            child.terminate()
            child.join(5)


def run_batch(count: int, *, time_scale: float, base: str, first: int,
              profiles: Sequence[str], relay_channels: int | None, separate: bool,
              power_on_spacing: float | None, workdir: Path) -> BatchResult:
    """Build a ``count``-slot simulated bench, run one hard-reset batch on it, measure it."""
    profile_set = ProfileSet.load()
    kwargs = _sim_kwargs(count, time_scale=time_scale, base=base, first=first,
                         profiles=profiles, relay_channels=relay_channels,
                         directory=workdir / "bench")
    with simulated_bench(kwargs, separate, profile_set) as (bench, pin_factory), \
            RecordStore.open(workdir / "records.sqlite") as store:
        if power_on_spacing is not None:      # what-if: the bench file's [bench] setting
            bench = dataclasses.replace(bench, power_on_spacing_seconds=power_on_spacing)
        hardware = BenchHardware(bench, pin_factory=pin_factory)
        try:
            runner = Runner(bench, store, hardware, method="hard", profiles=profile_set,
                            argv=["benchmarks/batch_scaling.py", str(count)])
            started = time.monotonic()
            result = runner.run()
            wall = time.monotonic() - started
        finally:
            hardware.close()
        record = store.runs.load_run(result.run_id)
    verdicts: dict[str, int] = {}
    for unit in record.units:
        key = str(unit.verdict) if unit.verdict else "unfinished"
        verdicts[key] = verdicts.get(key, 0) + 1
        if unit.verdict is not Verdict.FACTORY_DEFAULT:
            print(f"{count} slot(s): slot {unit.slot} ({unit.profile}): {key}: {unit.reason}",
                  file=sys.stderr)
    slowest = max(record.units, key=lambda u: critical_path(u, bench.settle_seconds))
    critical = critical_path(slowest, bench.settle_seconds)
    run = record.run
    run_record = (run.finished_at - run.started_at).total_seconds() if run.finished_at else wall
    return BatchResult(
        slots=count, time_scale=time_scale, wall_s=wall, run_record_s=run_record,
        critical_s=critical, critical_slot=slowest.slot,
        ratio=wall / critical if critical > 0 else float("inf"),
        passed=verdicts == {str(Verdict.FACTORY_DEFAULT): count}, verdicts=verdicts,
        steps=step_stats(record, time_scale, bench.settle_seconds, profile_set),
        overheads=overheads(record, wall, bench.settle_seconds))


def _table(results: Sequence[BatchResult]) -> str:
    lines = [f"{'slots':>5}  {'wall s':>8}  {'critical s':>10}  {'ratio':>6}  "
             f"{'run record s':>12}  verdicts"]
    for r in results:
        verdicts = ", ".join(f"{n} {v}" for v, n in sorted(r.verdicts.items()))
        lines.append(f"{r.slots:>5}  {r.wall_s:>8.3f}  {r.critical_s:>10.3f}  {r.ratio:>6.3f}  "
                     f"{r.run_record_s:>12.3f}  {verdicts}")
    return "\n".join(lines)


def _steps_table(r: BatchResult) -> str:
    lines = [f"  per-step durations, {r.slots} slots (s):",
             f"    {'step':<14} {'nominal':>8} {'mean':>8} {'max':>8}"]
    for s in r.steps:
        nominal = "-" if s.nominal_s is None else f"{s.nominal_s:.3f}"
        lines.append(f"    {s.name:<14} {nominal:>8} {s.mean_s:>8.3f} {s.max_s:>8.3f}")
    o = r.overheads
    if o is not None:
        parts = ", ".join(f"{n} {v:.3f}" for n, v in o.non_critical_steps_s.items())
        lines.append(f"  last unit to finish: slot {o.slot}: start-up {o.before_first_step_s:.3f},"
                     f" {parts}, gaps {o.between_steps_s:.3f}, critical {o.critical_s:.3f},"
                     f" after verify {o.after_last_step_s:.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE,
                        help=f"divide every firmware time by this (default {DEFAULT_TIME_SCALE:g}"
                             "; see benchmarks/README.md)")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="comma-separated slot counts (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="batches per size; the table shows each, the summary the median")
    parser.add_argument("--profiles", default=",".join(DEFAULT_PROFILES),
                        help="firmware families cycled over the slots (default %(default)s)")
    parser.add_argument("--relay-channels", type=int, default=DEFAULT_RELAY_CHANNELS,
                        help="channels per simulated numato relay board (default %(default)s, "
                             "as on hardware/benches/poe-serial-24.toml; 32 is the most)")
    parser.add_argument("--base", default="127.0.3.",
                        help="loopback /24 of the units (default %(default)s)")
    parser.add_argument("--first", type=int, default=1, help="last octet of slot 1's unit")
    parser.add_argument("--sim-process", action="store_true",
                        help="run the simulated bench in a child process (the controller alone "
                             "in this one, as on a real bench); default: in-process, as the "
                             "tests run a batch")
    parser.add_argument("--power-on-spacing", type=float, default=None, metavar="SECONDS",
                        help="override [bench] power_on_spacing_seconds (real seconds, divided "
                             "by the time scale like every wait; default: rig's 0.2)")
    parser.add_argument("--steps", action="store_true",
                        help="also print per-step durations and the last unit's overheads")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes: not a list of numbers: {args.sizes!r}")
    if not sizes or min(sizes) < 1 or args.first + max(sizes) - 1 > 254:
        parser.error("--sizes: each at least 1, and --first + size - 1 at most 254")
    if args.repeat < 1 or args.time_scale < 1:
        parser.error("--repeat and --time-scale must be at least 1")
    if not 1 <= args.relay_channels <= numato.MAX_CHANNELS:
        parser.error(f"--relay-channels: a numato board has 1..{numato.MAX_CHANNELS}")
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    results: list[BatchResult] = []
    for size in sizes:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix=f"rig-scaling-{size}-") as tmp:
                r = run_batch(size, time_scale=args.time_scale, base=args.base,
                              first=args.first, profiles=profiles,
                              relay_channels=args.relay_channels,
                              separate=args.sim_process,
                              power_on_spacing=args.power_on_spacing, workdir=Path(tmp))
            results.append(r)
            if not args.json:
                print(f"{size} slot(s): wall {r.wall_s:.3f} s, critical {r.critical_s:.3f} s, "
                      f"ratio {r.ratio:.3f}", file=sys.stderr, flush=True)
    at_48 = [r.ratio for r in results if r.slots == 48]
    ok = all(r.passed for r in results)
    if args.json:
        print(json.dumps({"time_scale": args.time_scale, "target_ratio": TARGET_RATIO,
                          "ratio_at_48": statistics.median(at_48) if at_48 else None,
                          "all_passed": ok, "batches": [asdict(r) for r in results]}, indent=2))
    else:
        print(f"hard-reset batches, PoE power + relay-board buttons, profiles "
              f"{'/'.join(profiles)}, time scale {args.time_scale:g}")
        print(_table(results))
        if args.steps:
            for r in results:
                print(_steps_table(r))
        if at_48:
            print(f"ratio at 48 slots: {statistics.median(at_48):.3f} "
                  f"(target <= {TARGET_RATIO})")
    if not ok:
        print("NOT every unit came back factory-default: the figures above mean nothing",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
