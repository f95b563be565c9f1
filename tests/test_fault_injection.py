"""Kill -9 of ``rig run`` at every step boundary of a reset, then recovery: no output is left
away from rest, nothing the run recorded before the kill is lost, and the unit is marked
interrupted in the step it was in.

Each case runs a real ``rig run`` in a child process against a simulated bench this process
serves (PoE power, relay-board buttons) and kills it with SIGKILL the moment a step of slot 1
has begun, found by watching the record store (tests/fault_support.py; nothing in the product
knows it is under test). Two ways to die:

- ``guardian``: only ``rig run`` dies; its guardian puts what it left engaged at rest, and
  recovery (``rig safe``, or the next run) closes the run;
- ``power-cut``: the guardian dies first (everything of rig gone at once), so recovery alone
  (rig.recovery, the first thing ``rig run`` and ``rig safe`` do) must find the outputs in the
  ledger and make them safe before it closes the run.

CI runs the hard reset's eight steps on a 1-slot bench, both ways (power-cut recovered as
``rig run`` begins, guardian recovered by ``rig safe``), in about 25 s. The long sweep adds
poe-cycle, a second slot, and every recovery for each way (78 cases, about 3 minutes):

    RIG_FAULT_FULL=1 python -m pytest tests/test_fault_injection.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_support import (
    HARD_STEPS,
    POE_CYCLE_STEPS,
    Kill,
    Rows,
    away_from_rest,
    kill_at,
    read_rows,
    rig_run,
)
from process_support import gone, wait_for

from rig.bench import load_bench
from rig.cli import main
from rig.records import RecordStore
from rig.records.runlog import INTERRUPTED_REASON
from rig.runner import Runner
from rig.sim.bench import SimBench, SimSlot
from rig.vocabulary import OutputKind, RunStatus, Verdict
from rig.wiring import BenchHardware

FULL = os.environ.get("RIG_FAULT_FULL", "") not in ("", "0")
SCALE = 200.0
#: Tries per case to land the kill in its step (see the test's docstring).
ATTEMPTS = 4
#: Loopback addresses and MACs no other test uses (tests may run side by side on one host).
BASE, FIRST, MAC_BLOCK = "127.0.61.", 10, 0x61
#: What each row may gain when a dead run is closed; every other column must stay as written.
CLOSING = {"runs": {"status", "finished_at", "note"},
           "units": {"state", "verdict", "reason", "fault", "finished_at", "started_at"},
           "steps": {"outcome", "finished_at"},
           "outputs": {"cleared_at", "note"},
           "evidence": set()}
#: What a power-cut kill as the step begins must find engaged (so recovery has work to do):
#: the port is off from "power off" until "power on" applies it, the coil on from "press"
#: until "release". Only what holds wherever the kill lands in the step is listed.
MUST_BE_AWAY = {("hard", "settle"): {"power"}, ("hard", "press"): {"power"},
                ("hard", "power on"): {"button"}, ("hard", "hold"): {"button"},
                ("poe-cycle", "settle"): {"power"}, ("poe-cycle", "power on"): set()}
BUTTON_KINDS = {OutputKind.SOLENOID_ON}
POWER_KINDS = {OutputKind.POWER_OFF, OutputKind.POE_PORT_OFF, OutputKind.POWER_ON,
               OutputKind.POE_PORT_ON}


def cases() -> list[tuple[str, str, str, str]]:
    """(method, step, how rig dies, how it recovers): every step of the method, both ways."""
    methods = {"hard": HARD_STEPS, "poe-cycle": POE_CYCLE_STEPS} if FULL else {
        "hard": HARD_STEPS}
    recoveries = ("recover", "rig-safe", "rig-run") if FULL else ()
    out = []
    for method, steps in methods.items():
        for step in steps:
            if FULL:
                out += [(method, step, death, how) for death in ("power-cut", "guardian")
                        for how in recoveries]
            else:       # CI: the ledger path under power-cut, the guardian's under rig safe
                out += [(method, step, "power-cut", "recover"), (method, step, "guardian",
                                                                 "rig-safe")]
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimBench]:
    """One bench for every case (a case ends with it at rest and its units running)."""
    spec = [SimSlot("poe", "current", button="relay")] * (2 if FULL else 1)
    with SimBench.start(spec, directory=tmp_path_factory.mktemp("fault-bench"),
                        time_scale=SCALE, base=BASE, first=FIRST, mac_block=MAC_BLOCK,
                        provision="Fault-pass1") as bench:
        yield bench


@pytest.fixture
def bench_at_rest(sim: SimBench) -> Iterator[SimBench]:
    """Every case starts with the bench at rest and every unit running (after a failed case
    too: its outputs are rested here, so one failure does not cascade), and must end so."""
    if away_from_rest(sim):
        BenchHardware(load_bench(sim.bench_path)).close(rest=True)
    assert sim.wait_running(15.0) and away_from_rest(sim) == {}
    yield sim
    wait_for(lambda: away_from_rest(sim) == {}, 5.0, step=0.01)
    assert sim.wait_running(15.0), "a unit did not boot again after its recovery"


def recover_with(how: str, sim: SimBench, db: Path) -> dict[tuple[str, str], str]:
    """Recover the way ``how`` names; returns what the simulator shows away from rest right
    after recovery returned (before any driver is closed: closing may rest outputs itself)."""
    if how == "rig-safe":
        assert main(["safe", str(sim.bench_path), "--db", str(db)]) == 0
        return away_from_rest(sim)
    if how == "rig-run":
        proc = rig_run(sim.bench_path, db, "hard")
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        return away_from_rest(sim)
    bench = load_bench(sim.bench_path)
    hardware = BenchHardware(bench)
    try:
        with RecordStore.open(db) as store:
            report = Runner(bench, store, hardware).recover()     # what rig run does first
        assert report.all_safe, report.engaged
        return away_from_rest(sim)
    finally:
        hardware.close(rest=False)


def open_ledger(rows: Rows) -> set[tuple[str, str]]:
    """(slot, "button"/"power") of every ledger line still open in ``rows``."""
    part = {**dict.fromkeys(BUTTON_KINDS, "button"), **dict.fromkeys(POWER_KINDS, "power")}
    return {(o["slot"], part[o["kind"]]) for o in rows["outputs"]
            if o["cleared_at"] is None and o["kind"] in part}


def where(rows: Rows, slot: str) -> tuple[str, bool] | None:
    """The last step ``slot``'s unit recorded, and whether it was still running."""
    unit = next(u for u in rows["units"] if u["slot"] == slot)
    steps = sorted((s for s in rows["steps"] if s["unit_id"] == unit["id"]),
                   key=lambda s: s["seq"])
    return (steps[-1]["name"], steps[-1]["outcome"] == "running") if steps else None


def assert_nothing_lost(before: Rows, after: Rows) -> None:
    """Every row recorded before the kill is still there, unchanged but for what closing a dead
    run writes; nothing was added to the dead run after it died."""
    for table, rows in before.items():
        kept = {r["id"]: r for r in after[table]}
        assert len(after[table]) == len(rows), f"{table}: {len(rows)} -> {len(after[table])}"
        for row in rows:
            assert row["id"] in kept, f"{table} row {row['id']} lost"
            changed = {k for k, v in row.items() if kept[row["id"]][k] != v}
            assert changed <= CLOSING[table], (table, row, kept[row["id"]])


def assert_units_marked(before: Rows, after: Rows) -> None:
    """Each unit unfinished at the kill is interrupted, its reason naming the step it was in;
    a unit already done keeps its verdict."""
    done = {u["id"] for u in before["units"] if u["verdict"] is not None}
    for unit in after["units"]:
        if unit["id"] in done:
            continue
        assert unit["verdict"] == Verdict.INTERRUPTED, unit
        last = where(before, unit["slot"])
        if last is None:
            assert unit["reason"].startswith(INTERRUPTED_REASON + " before"), unit
        else:
            name, running = last
            assert unit["reason"] == (f"{INTERRUPTED_REASON} "
                                      f"{'during' if running else 'after'} step {name!r}"), unit
    running = [s for s in after["steps"] if s["outcome"] == "running"]
    assert running == [], running


@pytest.mark.parametrize(("method", "step", "death", "how"), cases(),
                         ids=lambda v: str(v).replace(" ", "-"))
def test_kill_9_at_a_step_boundary_then_recovery_leaves_nothing_on_and_loses_nothing(
        bench_at_rest: SimBench, tmp_path: Path, method: str, step: str, death: str,
        how: str) -> None:
    """Each attempt is a whole check. A kill that landed in a later step (the child ran on
    while this machine did not schedule the watcher) passed its checks too, but does not cover
    this boundary: the case tries again, up to ATTEMPTS times."""
    sim = bench_at_rest
    steps = HARD_STEPS if method == "hard" else POE_CYCLE_STEPS
    landed = []
    for attempt in range(ATTEMPTS):
        db = tmp_path / f"records-{attempt}.sqlite"
        kill = kill_at(sim, db, method, steps, step, power_cut=death == "power-cut")
        spot = where(kill.rows, "1")
        assert spot is not None and steps.index(spot[0]) >= steps.index(step), spot  # never early
        landed.append(spot)
        # A kill after the run's last commit (its status written) missed every boundary.
        aimed = spot[0] == step and kill.rows["runs"][0]["status"] == RunStatus.RUNNING
        check_kill_and_recovery(sim, db, kill, how, (method, step) if aimed else None)
        if aimed:
            return
        wait_for(lambda: away_from_rest(sim) == {}, 5.0, step=0.01)
        assert sim.wait_running(15.0)
    pytest.fail(f"the kill never landed in step {step!r}: {landed}")


def check_kill_and_recovery(sim: SimBench, db: Path, kill: Kill, how: str,
                            boundary: tuple[str, str] | None) -> None:
    """What must hold after one kill and its recovery. ``boundary`` (method, step): where the
    kill landed, when it landed where it was aimed (its outputs are then known)."""
    if kill.power_cut:
        # The ledger is written before an output moves: whatever is away from rest now, with
        # no rig process left, the dead run's ledger names.
        away = set(away_from_rest(sim))
        assert away <= open_ledger(kill.rows), (away, kill.rows["outputs"])
        assert {("1", part) for part in MUST_BE_AWAY.get(boundary, ())} <= away
    else:
        wait_for(lambda: all(gone(g) for g in kill.guardians), 5.0, step=0.01)
        assert away_from_rest(sim) == {}, "the guardian left an output engaged"
    assert recover_with(how, sim, db) == {}
    after = read_rows(db, 1)
    assert_nothing_lost(kill.rows, after)
    ended = kill.rows["runs"][0]["status"]            # a run that had ended keeps its status
    assert after["runs"][0]["status"] == (RunStatus.INTERRUPTED if ended == RunStatus.RUNNING
                                          else ended)
    assert [o for o in after["outputs"] if o["cleared_at"] is None] == []
    assert_units_marked(kill.rows, after)
