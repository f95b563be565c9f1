"""Hand-over of a whole bench: reset, activation, an address from the pool by MAC, and a final
census, on a simulated bench of 48 slots (by default), measured against what no scheduling can
remove.

Per unit, the **unavoidable** time is its reset's critical path (benchmarks/batch_scaling.py:
the bench's settle, the hold, the boot, the verification) plus its hand-over steps as recorded
(``activate``: the ISAPI exchange; ``confirm hand-over``: a fresh SADP reply and one login;
``network``: SADP ``update`` by MAC, then a census and an HTTP answer at the new address). The
figures of merit are

    ratio = wall time of the run / the slowest unit's unavoidable time      (lower is better)
    controller CPU s per unit = the controller process's CPU time / units

CPU time is the controller's alone only with ``--sim-process`` (the default here: the simulated
bench runs in a child process, as cameras are separate machines). The V3 activation exchange
wants a 3072-bit RSA key: the script times making one (and a 1024-bit one for the "challenge"
exchange); rig makes one per variant per run and reuses it (rig.camera.activation.ClientKeys
says why that is safe), so the run pays it once, not per unit.

After the run, one census (``rig discover``'s code) must show every unit on its pool address,
activated where the firmware has activation, or the script exits 1.

    python benchmarks/handover.py                       # 48 slots, time scale 5
    python benchmarks/handover.py --slots 8 --in-process
    python benchmarks/handover.py --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from batch_scaling import _sim_kwargs, critical_path, simulated_bench

from rig.bench import HandoverConfig, Secret
from rig.camera import activation
from rig.camera.discovery import run_discovery
from rig.camera.profiles import ProfileSet
from rig.records import RecordStore, Unit
from rig.runner import Runner
from rig.vocabulary import FinalState, Verdict
from rig.wiring import BenchHardware

HANDOVER_STEPS = ("activate", "confirm hand-over", "network")
PASSWORD_ENV = "RIG_BENCHMARK_HANDOVER_PASSWORD"
BENCH_PASSWORD = "Hand-Over-48x"
DEFAULT_PROFILES = ("current", "legacy", "g5")


@dataclass
class HandoverResult:
    slots: int
    time_scale: float
    wall_s: float
    unavoidable_s: float            # the slowest unit's reset critical path + hand-over steps
    slowest_slot: str
    ratio: float
    cpu_s: float                    # this process's CPU time over the run
    cpu_s_per_unit: float
    cpu_is_controller_only: bool    # True with the simulator in its own process
    handover_step_mean_s: dict[str, float]
    census_s: float                 # the final census
    on_pool_address: int            # units the final census showed on their pool address
    verdicts: dict[str, int]
    rsa_key_s: dict[str, float]     # making one client key, per activation variant
    passed: bool


def _seconds(unit: Unit, name: str) -> float:
    return sum((s.finished_at - s.started_at).total_seconds() for s in unit.steps
               if s.name == name and s.finished_at is not None)


def unavoidable(unit: Unit, settle_s: float) -> float:
    return critical_path(unit, settle_s) + sum(_seconds(unit, n) for n in HANDOVER_STEPS)


def key_costs(repeat: int = 3) -> dict[str, float]:
    """Median seconds to make one client key pair per activation variant."""
    out = {}
    for variant in ("challenge", "v3"):
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            activation.new_client_key(variant)
            times.append(time.perf_counter() - started)
        out[f"{variant} ({activation.KEY_BITS[variant]}-bit)"] = statistics.median(times)
    return out


def run_handover(slots: int, *, time_scale: float, separate: bool, workdir: Path,
                 pool_net: str) -> HandoverResult:
    """One run with ``final_state = provisioned`` and a pool on ``pool_net``, measured."""
    profiles = ProfileSet.load()
    kwargs = _sim_kwargs(slots, time_scale=time_scale, base="127.0.3.", first=1,
                         profiles=DEFAULT_PROFILES, relay_channels=8,
                         directory=workdir / "bench")
    with simulated_bench(kwargs, separate, profiles) as (bench, pin_factory), \
            RecordStore.open(workdir / "records.sqlite") as store:
        bench = dataclasses.replace(bench, handover=HandoverConfig(
            final_state=FinalState.PROVISIONED, password=Secret(env=PASSWORD_ENV),
            pool_start=f"{pool_net}1"))
        hardware = BenchHardware(bench, pin_factory=pin_factory)
        try:
            runner = Runner(bench, store, hardware, method="hard", profiles=profiles,
                            argv=["benchmarks/handover.py", str(slots)])
            cpu0, started = time.process_time(), time.monotonic()
            result = runner.run()
            wall, cpu = time.monotonic() - started, time.process_time() - cpu0
        finally:
            hardware.close()
        record = store.runs.load_run(result.run_id)
        census_started = time.monotonic()
        census = run_discovery(2.0, bind=bench.network.address,
                               expect=[u.mac for u in record.units if u.mac])
        census_s = time.monotonic() - census_started
    return _measure(record.units, bench.settle_seconds, slots, time_scale, wall, cpu, separate,
                    census.devices, census_s, pool_net)


def _measure(units: tuple[Unit, ...], settle_s: float, slots: int, time_scale: float,
             wall: float, cpu: float, separate: bool, devices: Any, census_s: float,
             pool_net: str) -> HandoverResult:
    verdicts: dict[str, int] = {}
    for unit in units:
        key = str(unit.verdict) if unit.verdict else "unfinished"
        verdicts[key] = verdicts.get(key, 0) + 1
        if unit.verdict is not Verdict.PROVISIONED:
            print(f"slot {unit.slot} ({unit.profile}): {key}: {unit.reason}", file=sys.stderr)
    order = {u.mac: i for i, u in enumerate(sorted(units, key=lambda u: int(u.slot)))}
    on_pool = sum(1 for d in devices
                  if d.mac in order and d.ipv4 == f"{pool_net}{order[d.mac] + 1}")
    slowest = max(units, key=lambda u: unavoidable(u, settle_s))
    worst = unavoidable(slowest, settle_s)
    means = {n: statistics.fmean(_seconds(u, n) for u in units) for n in HANDOVER_STEPS}
    return HandoverResult(
        slots=slots, time_scale=time_scale, wall_s=wall, unavoidable_s=worst,
        slowest_slot=slowest.slot, ratio=wall / worst if worst else float("inf"),
        cpu_s=cpu, cpu_s_per_unit=cpu / slots, cpu_is_controller_only=separate,
        handover_step_mean_s=means, census_s=census_s, on_pool_address=on_pool,
        verdicts=verdicts, rsa_key_s={},
        passed=verdicts == {str(Verdict.PROVISIONED): slots} and on_pool == slots)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=48, help="bench size (default 48)")
    parser.add_argument("--time-scale", type=float, default=5.0,
                        help="divide every firmware time by this (default 5, as "
                             "batch_scaling.py: see benchmarks/README.md)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the simulator in this process (CPU time then includes it)")
    parser.add_argument("--pool", default="127.0.6.", help="loopback /24 of the pool")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.slots <= 250:
        parser.error("--slots: 1..250")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import os
    os.environ.setdefault(PASSWORD_ENV, BENCH_PASSWORD)
    keys = key_costs()
    with tempfile.TemporaryDirectory(prefix="rig-handover-") as tmp:
        r = run_handover(args.slots, time_scale=args.time_scale, separate=not args.in_process,
                         workdir=Path(tmp), pool_net=args.pool)
    r.rsa_key_s = keys
    if args.json:
        print(json.dumps(asdict(r), indent=2))
    else:
        _print(r)
    if not r.passed:
        print("NOT every unit was provisioned on its pool address: the figures mean nothing",
              file=sys.stderr)
        return 1
    return 0


def _print(r: HandoverResult) -> None:
    who = "controller only" if r.cpu_is_controller_only else "controller + simulator"
    print(f"hand-over of {r.slots} slots (reset, activation, pool address by MAC), "
          f"time scale {r.time_scale:g}")
    print(f"  wall {r.wall_s:.2f} s, slowest unit's unavoidable time {r.unavoidable_s:.2f} s "
          f"(slot {r.slowest_slot}): ratio {r.ratio:.3f}")
    print(f"  CPU {r.cpu_s:.2f} s ({who}): {r.cpu_s_per_unit:.3f} s per unit")
    steps = ", ".join(f"{n} {s:.3f} s" for n, s in r.handover_step_mean_s.items())
    print(f"  hand-over steps, mean per unit: {steps}")
    print(f"  final census: {r.on_pool_address}/{r.slots} units on their pool address, "
          f"{r.census_s:.3f} s")
    keys = ", ".join(f"{n} {s:.3f} s" for n, s in r.rsa_key_s.items())
    print(f"  making one client key pair (once per run and variant, reused): {keys}")


if __name__ == "__main__":
    sys.exit(main())
