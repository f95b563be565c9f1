"""A SADP census at scale: 1 000 and 5 000 units answering one probe in the same burst, all found?

Each run builds a fresh pair of network namespaces (rig.sim.census_lab: the controller's, and
the crowd's, where one ``SadpCrowd`` answers for every unit, each reply the unit's own ProbeMatch
from its own address) and runs one discovery in the controller's namespace with the code
``rig discover`` and the census use (``run_discovery``), told which units to expect. Nothing
runs on the machine's own network: the burst would reach every SADP test and tool on it.

It prints, per run and per size: units found / expected, the time until all were found (the
window ends then), the kernel's drop count on the controller's sockets, the re-probes sent and
the receive buffer the kernel granted. The target is every unit found in every run; the script
exits 1 otherwise.

    sudo python benchmarks/census.py                     # 1 000 and 5 000 units, 10 runs each
    sudo python benchmarks/census.py --sizes 5000 --runs 3 --in-process
    sudo python benchmarks/census.py --buffer 262144     # a buffer too small: drops, re-probes
    sudo python benchmarks/census.py --count-only        # rig discover --expect N (no MACs)
    sudo python benchmarks/census.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rig.camera.discovery import run_discovery
from rig.sim.census_lab import CensusLab
from rig.sim.netns import in_netns

DEFAULT_SIZES = (1000, 5000)
DEFAULT_RUNS = 10


@dataclass(frozen=True)
class Run:
    """One census run's figures."""

    size: int
    found: int
    seconds: float          # until the window ended: all found, or the timeout
    drops: int | None
    reprobes: int
    receive_buffer: int
    setup_seconds: float    # namespaces, addresses and the crowd (not part of the census)

    @property
    def whole(self) -> bool:
        return self.found == self.size


def one_run(size: int, *, timeout: float, in_process: bool, buffer: int | None,
            count_only: bool, profiles: Sequence[str]) -> Run:
    """A fresh lab, one census in the controller's namespace, the lab removed."""
    built = time.monotonic()
    with CensusLab(size, profiles=profiles, process=not in_process) as lab:
        setup = time.monotonic() - built
        expect = {"expect_count": size} if count_only else {"expect": lab.macs}
        with in_netns(lab.controller_ns):
            result = run_discovery(timeout, interface="eth0", receive_buffer=buffer,
                                   **expect)  # type: ignore[arg-type]
    return Run(size=size, found=len(result.devices), seconds=result.elapsed,
               drops=result.drops, reprobes=result.reprobes,
               receive_buffer=result.receive_buffer, setup_seconds=setup)


def summary(runs: Sequence[Run]) -> dict[str, object]:
    """Per size: runs with every unit found, time to all found (median, max), drops, re-probes."""
    times = [r.seconds for r in runs]
    return {"size": runs[0].size, "runs": len(runs),
            "whole_runs": sum(r.whole for r in runs),
            "found_min": min(r.found for r in runs),
            "seconds_median": statistics.median(times), "seconds_max": max(times),
            "drops_total": sum(r.drops or 0 for r in runs),
            "reprobes_total": sum(r.reprobes for r in runs),
            "receive_buffer": min(r.receive_buffer for r in runs)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                        help="units per burst (default: 1000 5000)")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                        help="runs per size, each in fresh namespaces (default 10)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="the discovery window, the bound on each census (default 30 s)")
    parser.add_argument("--in-process", action="store_true",
                        help="the crowd in the controller's process (shares its GIL) instead "
                             "of a child process")
    parser.add_argument("--buffer", type=int, metavar="BYTES",
                        help="force the controller's receive queue (default: sized for the "
                             "units expected)")
    parser.add_argument("--count-only", action="store_true",
                        help="expect a number of units, not their MACs (rig discover --expect "
                             "N): no addressed re-probes")
    parser.add_argument("--profiles", default="current,legacy,g5",
                        help="firmware families cycled over the units (default: all three; g5 "
                             "answers both by unicast and multicast)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("census.py builds network namespaces: run it as root", file=sys.stderr)
        return 2
    results: dict[int, list[Run]] = {}
    for size in args.sizes:
        for number in range(1, args.runs + 1):
            run = one_run(size, timeout=args.timeout, in_process=args.in_process,
                          buffer=args.buffer, count_only=args.count_only,
                          profiles=args.profiles.split(","))
            results.setdefault(size, []).append(run)
            if not args.json:
                print(f"{size:>6} units, run {number:>2}: {run.found}/{size} found in "
                      f"{run.seconds:6.3f} s, drops {run.drops}, re-probes {run.reprobes}, "
                      f"buffer {run.receive_buffer} B (set-up {run.setup_seconds:.1f} s)",
                      flush=True)
    whole = all(r.whole for runs in results.values() for r in runs)
    report(results, args, whole)
    return 0 if whole else 1


def report(results: dict[int, list[Run]], args: argparse.Namespace, whole: bool) -> None:
    """The summary table (or the JSON document)."""
    if args.json:
        print(json.dumps({"whole": whole, "in_process": args.in_process,
                          "count_only": args.count_only, "buffer": args.buffer,
                          "summary": [summary(runs) for runs in results.values()],
                          "runs": [asdict(r) for runs in results.values() for r in runs]},
                         indent=2))
        return
    print(f"\n{'units':>6} {'all found':>10} {'time median':>12} {'max':>8} {'drops':>6} "
          f"{'re-probes':>10} {'buffer':>10}")
    for runs in results.values():
        s = summary(runs)
        print(f"{s['size']:>6} {s['whole_runs']:>4}/{s['runs']:<5} "
              f"{s['seconds_median']:>10.3f} s {s['seconds_max']:>6.3f} s "
              f"{s['drops_total']:>6} {s['reprobes_total']:>10} {s['receive_buffer']:>10}")
    print(f"every unit found in every run: {'yes' if whole else 'NO'}")


if __name__ == "__main__":
    sys.exit(main())
