"""What a ``rig`` command costs before it does anything: the interpreter's start plus the imports.

``rig --help`` builds the parser of every subcommand, so it shows what registering them costs;
``rig check --help`` and ``rig discover --help`` are the same path through one subcommand, and
``rig check`` on the real 24-slot bench file shows a whole light command. Each
is timed as a fresh process on this interpreter (the way the ``rig`` script starts it:
``from rig.cli import main``), with this checkout first on the import path, next to the bare
interpreter (``python -c pass``: its start and site, which every command pays). The figure of
merit is

    ratio = median time of ``rig --help`` / median time of the bare interpreter  (target <= 2)

Runs are interleaved (bare, help, check, discover, bare, ...) so that a busy moment of the
machine lands on every case alike; the median of ``--runs`` per case is printed.

    python benchmarks/startup.py                # 21 runs per case, the table
    python benchmarks/startup.py --runs 51 --json
    python benchmarks/startup.py --imports      # what rig --help adds to the imports
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 2.0
#: How the console script starts rig (pip's entry-point wrapper does the same).
RIG = ("-c", "import sys; from rig.cli import main; sys.exit(main())")
CASES: dict[str, tuple[str, ...]] = {
    "python -c pass": ("-c", "pass"),
    "rig --help": (*RIG, "--help"),
    "rig check --help": (*RIG, "check", "--help"),
    "rig discover --help": (*RIG, "discover", "--help"),
    # A whole command, for scale: load and print the real 24-slot bench (PoE switch, relays).
    "rig check 24-slot bench": (*RIG, "check", str(ROOT / "hardware/benches/poe-serial-24.toml")),
}
BARE, HELP = "python -c pass", "rig --help"


def _env() -> dict[str, str]:
    """This checkout first on the path, whatever ``rig`` is installed (and the commands run in
    it: ``-c`` puts the working directory before PYTHONPATH)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def time_once(args: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, float]:
    """Median wall time per case (seconds), runs interleaved, after one warm-up round."""
    env = _env()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for round_ in range(runs + 1):
        for name, args in CASES.items():
            elapsed = time_once(args, env)
            if round_:                      # round 0 warms the page cache and .pyc files
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def _import_times(args: Sequence[str]) -> dict[str, int]:
    """Module -> cumulative µs, as ``-X importtime`` reports them for one run of ``args``."""
    result = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, check=True)
    times = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        if cumulative.strip().isdigit():
            times[name.strip()] = int(cumulative)
    return times


def heaviest_imports(count: int) -> list[tuple[int, str]]:
    """(cumulative µs, module) for what ``rig --help`` imports beyond the bare interpreter,
    heaviest first (a module counts what it imports, so a heavy one shows with its importers).
    Modules rig loads with importlib.import_module (the command modules) are not timed."""
    bare = _import_times(CASES[BARE])
    rows = [(micros, name) for name, micros in _import_times(CASES[HELP]).items()
            if name not in bare]
    return sorted(rows, reverse=True)[:count]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21, help="runs per case (default 21)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--imports", type=int, nargs="?", const=15, default=0, metavar="N",
                        help="also list the N heaviest imports of rig --help (default 15)")
    args = parser.parse_args(argv)
    medians = measure(args.runs)
    ratios = {name: value / medians[BARE] for name, value in medians.items()}
    met = ratios[HELP] <= TARGET_RATIO
    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "runs": args.runs,
                          "median_s": medians, "ratio": ratios, "target": TARGET_RATIO,
                          "met": met}, indent=2))
        return 0 if met else 1
    print(f"python {sys.version.split()[0]}, median of {args.runs} runs per case")
    print(f"{'case':<24} {'median':>9} {'ratio':>6}")
    for name, value in medians.items():
        print(f"{name:<24} {value * 1000:7.1f} ms {ratios[name]:6.2f}")
    print(f"rig --help / bare interpreter = {ratios[HELP]:.2f} (target <= {TARGET_RATIO:g}): "
          f"{'met' if met else 'MISSED'}")
    if args.imports:
        print("\nheaviest imports of rig --help beyond the bare interpreter (cumulative):")
        for micros, name in heaviest_imports(args.imports):
            print(f"{micros / 1000:8.1f} ms  {name}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
