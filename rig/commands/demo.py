"""``rig demo``: a whole bench, simulated, reset and verified end to end by the real runner.

Eight slots: four on GPIO relays and four on PoE switch ports, units of all three firmware
families, all of them used (activated with a password, a parameter changed), one with a
jammed reset button and one with a dead sensor (which only the functional checks see: they
run when --final-state activates the units). The batch runs through the same code as a real
bench: drivers, SADP census, ISAPI checks, records. Time is compressed by --time-scale, never
skipped. The demo succeeds when every unit passes except the jammed one, which must fail with
a clear reason, and (with checks) every checked unit is fully functional but the dead sensor.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rig.commands.serve import parse_listen
from rig.vocabulary import FinalState, Method, PowerKind, Verdict, choices

if TYPE_CHECKING:
    from rig.bench import Bench
    from rig.records import RecordStore
    from rig.runner import RunResult
    from rig.serve.server import ThreadedServer
    from rig.sim.bench import SimBench

#: The demo bench: (power, firmware family); slot 7's button is jammed.
_GPIO, _POE = PowerKind.GPIO, PowerKind.POE
DEMO_SLOTS = ((_GPIO, "current"), (_POE, "legacy"), (_GPIO, "g5"), (_POE, "current"),
              (_GPIO, "legacy"), (_POE, "g5"), (_GPIO, "current"), (_POE, "current"))
JAMMED = "7"
#: Slot 4's unit resets fine but its sensor is dead: the functional checks (run whenever the
#: demo activates units) must grade it not-functional.
DEAD_SENSOR = "4"
PASSWORD = "Demo-pass1"
#: The demo's hand-over password (a demo value, shown in the README; a real bench names the
#: variable of its own secret in [handover] password_env).
HANDOVER_ENV, HANDOVER_PASSWORD = "RIG_DEMO_HANDOVER_PASSWORD", "Bench-pass9"
#: Where ``--final-state provisioned`` puts the units: SADP Tool's "start IP, increment" pool,
#: starting at this network's --first address (loopback: the demo never leaves this machine).
POOL_NET = "127.0.2."


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="reset and verify a simulated 8-slot bench end to end",
                            description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="rig-demo",
                        help="where the bench file, records and report go (default ./rig-demo)")
    parser.add_argument("--time-scale", type=float, default=3.0,
                        help="divide every hold, boot and settle time by this (default 3: the "
                             "bench boots and the batch runs in about a minute)")
    parser.add_argument("--first", type=int, default=200,
                        help="last octet of slot 1's loopback address (default 200)")
    parser.add_argument("--final-state", choices=choices(FinalState), default="factory",
                        help="what the good units are left as: factory (default), provisioned "
                             "(activated with the demo's hand-over password and proven), or "
                             "factory-after-checks (activated, then reset and verified again)")
    parser.add_argument("--quiet", action="store_true", help="no live progress lines")
    parser.add_argument("--serve", nargs="?", const="127.0.0.1:8765", default=None,
                        metavar="ADDR:PORT", type=parse_listen,
                        help="also show the bench live in a browser (rig serve) while the demo "
                             "runs, and keep serving after it until Ctrl-C (default "
                             "127.0.0.1:8765)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rig.sim.bench import SimBench, SimSlot
    from rig.sim.camera import SimFaults

    directory = Path(args.dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    spec = [SimSlot(power, profile, SimFaults(jammed_button=str(i) == JAMMED,
                                              dead_sensor=str(i) == DEAD_SENSOR))
            for i, (power, profile) in enumerate(DEMO_SLOTS, start=1)]
    print(f"rig demo: starting a simulated bench of {len(spec)} slots in {directory} "
          f"(time compressed x{args.time_scale:g})")
    try:
        sim = SimBench.start(spec, directory=directory, time_scale=args.time_scale,
                             first=args.first, provision=PASSWORD, name="demo")
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"rig demo: error: cannot start the simulated bench: {exc}", file=sys.stderr)
        return 2
    db = directory / "records.sqlite"
    try:
        dashboard = Dashboard.start(args.serve, db, sim) if args.serve else None
    except (OSError, RuntimeError) as exc:
        sim.stop()
        print(f"rig demo: error: cannot serve the dashboard: {exc}", file=sys.stderr)
        return 2
    try:
        for row in sim.describe():
            fault = {JAMMED: " (jammed button)", DEAD_SENSOR: " (dead sensor)"}.get(
                row["slot"], "")
            print(f"  slot {row['slot']}: {row['power_kind']:<5} {row['profile']:<8} "
                  f"{row['mac']}  {row['address']:<12} power {row['power']}, "
                  f"button {row['button']}{fault}")
        print(f"bench file: {sim.bench_path}\n")
        result, report = _reset_all(sim, db, args)
    except KeyboardInterrupt:
        print("rig demo: interrupted", file=sys.stderr)
        if dashboard is not None:
            dashboard.stop()
        return 130
    finally:
        sim.stop()
    print(f"\nHTML report: {report}\nrecords:     {db}  (rig history --db {db})\n"
          f"certificates: rig certificate {result.run_id} --db {db} --format pdf")
    status = _judge_demo(result, FinalState(args.final_state))
    if dashboard is not None:
        dashboard.keep_serving()
    return status


def _reset_all(sim: SimBench, db: Path, args: argparse.Namespace) -> tuple[RunResult, Path]:
    """The batch, through the real runner and drivers, printed; its HTML report next to db."""
    from rig.actuators.base import OutputGuard
    from rig.commands.run import Progress, print_result
    from rig.records import RecordStore
    from rig.report import render
    from rig.runner import Runner
    from rig.wiring import BenchHardware

    bench = _with_handover(sim.bench, FinalState(args.final_state), args.first)
    with RecordStore.open(db) as store, OutputGuard() as guard:
        hardware = BenchHardware(bench, guard=guard, pin_factory=sim.pin_factory)
        try:
            result = Runner(bench, store, hardware, method=Method.HARD,
                            on_event=Progress(quiet=args.quiet)).run()
        finally:
            hardware.close()
        print_result(result, as_json=False)
        report = db.parent / f"report-run-{result.run_id}.html"
        report.write_text(render(store.runs.load_run(result.run_id), "html"), encoding="utf-8")
    return result, report


def _with_handover(bench: Bench, final: FinalState, first: int) -> Bench:
    """The demo bench with its ``[handover]``: the demo's password, by its variable; a
    provisioned unit also gets its own address from a pool (127.0.2.FIRST on, by MAC). An
    activated unit is also put through every functional check (device-info, snapshot and
    RTSP are the key ones)."""
    import dataclasses

    from rig.bench import HandoverConfig, Secret
    from rig.checks.config import ChecksConfig
    from rig.vocabulary import CheckName

    if final is FinalState.FACTORY:
        return bench
    os.environ.setdefault(HANDOVER_ENV, HANDOVER_PASSWORD)
    pool = f"{POOL_NET}{first}" if final is FinalState.PROVISIONED else None
    checks = ChecksConfig(run=tuple(CheckName), key=(
        CheckName.DEVICE_INFO, CheckName.SNAPSHOT, CheckName.RTSP))
    return dataclasses.replace(bench, checks=checks, handover=HandoverConfig(
        final_state=final, password=Secret(env=HANDOVER_ENV), pool_start=pool))


def _judge_demo(result: RunResult, final: FinalState) -> int:
    """0 when every slot got the verdict (and, where units were checked, the grade) the
    simulated bench was built to show."""
    from rig.vocabulary import Grade

    good = Verdict.PROVISIONED if final is FinalState.PROVISIONED else Verdict.FACTORY_DEFAULT
    expected = {name: Verdict.NOT_DEFAULT if name == JAMMED else good
                for name in result.results}
    got = {name: r.verdict.verdict for name, r in result.results.items()}
    grades = {name: r.grade for name, r in result.results.items() if name != JAMMED}
    checked = final is not FinalState.FACTORY
    want = {name: Grade.NOT_FUNCTIONAL if name == DEAD_SENSOR else Grade.FULLY_FUNCTIONAL
            for name in grades} if checked else dict.fromkeys(grades)
    if got == expected and result.results[JAMMED].verdict.check == "inactive-sadp" \
            and grades == want:
        left = ("back at factory defaults" if final is FinalState.FACTORY
                else "left provisioned, each on its own address from the pool"
                if final is FinalState.PROVISIONED else f"left {final}")
        print(f"demo OK: {len(got) - 1} units {left}; slot {JAMMED}'s jammed button was caught "
              "(it is still activated).", flush=True)
        if checked:
            print(f"functional checks: {len(grades) - 1} units fully functional; slot "
                  f"{DEAD_SENSOR}'s dead sensor graded not-functional.", flush=True)
        return 0
    print("demo FAILED: the verdicts or grades differ from what the simulated bench was built "
          "to show", file=sys.stderr)
    return 1


class Dashboard:
    """``--serve``: rig serve's application over the demo's records, on a thread, reading them
    through a connection of its own as a separate ``rig serve`` would."""

    def __init__(self, server: ThreadedServer, store: RecordStore) -> None:
        self.server = server
        self.store = store

    @classmethod
    def start(cls, listen: tuple[str, int], db: Path, sim: SimBench) -> Dashboard:
        from rig.commands.serve import policy_for
        from rig.records import RecordStore
        from rig.serve.app import create_app
        from rig.serve.server import ThreadedServer
        host, port = listen
        store = RecordStore.open(db)
        app = create_app(store, policy_for(host), bench=sim.bench)
        server = ThreadedServer(app, host, port).start()
        print(f"dashboard: {server.url}/  (live while the demo runs)", flush=True)
        return cls(server, store)

    def keep_serving(self) -> None:
        """Serve until Ctrl-C or SIGTERM, then stop the server and close its store."""
        from rig.commands._serve import until_stopped
        print(f"dashboard: still at {self.server.url}/ ; Ctrl-C to stop", flush=True)
        try:
            with until_stopped(None) as wait:
                if not wait.stopped:
                    wait()
        finally:
            self.stop()

    def stop(self) -> None:
        self.server.stop()
        self.store.close()
