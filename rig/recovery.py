"""Recovery after a dead run: make safe what it left engaged, and only then close it.

A run whose process died (crash, kill -9, power cut) is still marked running, and its outputs
ledger says what it left away from rest: a solenoid energised, a PoE port off. Closing such a
run is what makes the store forget it, so the order matters:

1. a dead run of THIS bench: each engaged output is put at rest through the bench's drivers and
   cleared in the ledger; the run is closed (units marked interrupted) only once every one of
   them is proven safe. An output that cannot be made safe now (a relay board unplugged, a
   switch that does not answer, a slot the bench file no longer has) leaves the run open, and
   the report says loudly which outputs are still engaged: every later ``rig run`` and
   ``rig safe`` on this bench tries again;
2. a dead run of ANOTHER bench in the same store: its outputs are not ours to drive. With
   nothing engaged it is closed; otherwise it stays open and the report names its outputs and
   the command that recovers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rig.actuators.base import ActuatorError
from rig.bench import Bench, BenchError, Slot, describe_output
from rig.records import OutputEntry, RecordStore, Run
from rig.wiring import SlotHardware, rest_button, rest_power


class Hands(Protocol):
    """What recovery needs from the bench's drivers (rig.wiring.BenchHardware)."""

    def slot(self, name: str) -> SlotHardware: ...


@dataclass
class RecoveryReport:
    """What recovery did. ``engaged`` lines are the loud ones: outputs still away from rest."""

    made_safe: list[str] = field(default_factory=list)
    engaged: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    @property
    def all_safe(self) -> bool:
        return not self.engaged

    def lines(self) -> list[str]:
        return [*self.made_safe, *self.closed, *self.engaged]


def rest_output(hardware: Hands, slot: Slot, target: str) -> None:
    """Put the output named ``target`` (as the ledger wrote it) of ``slot`` at rest. Raises
    ActuatorError when the driver fails, BenchError when the bench file has no such output."""
    hw = hardware.slot(slot.name)
    if slot.button is not None and target == describe_output(slot.button):
        assert hw.button is not None
        rest_button(hw)
        if hw.button.energised:
            raise ActuatorError(target, "still energised after release")
    elif target == describe_output(slot.power):
        rest_power(hw)
    else:
        raise BenchError(f"slot {slot.name} of this bench file has no output {target!r} "
                         "(the bench file changed since the run?)")


def recover(store: RecordStore, bench: Bench, hardware: Hands) -> RecoveryReport:
    """Recover every dead run the store holds, as the module docstring says. Never raises for
    a driver failure: it is in the report."""
    report = RecoveryReport()
    for run in store.runs.dead_runs():
        outputs = store.outputs.open(run.id)
        if run.bench_name == bench.name:
            _make_safe(store, bench, hardware, run, outputs, report)
            if store.outputs.open(run.id):
                continue
        elif outputs:
            report.engaged += [f"run {run.id} of bench {run.bench_name} died with {_what(e)} "
                               f"still engaged: run `rig safe` with bench {run.bench_name}'s "
                               "file" for e in outputs]
            continue
        _close(store, run, report)
    return report


def _make_safe(store: RecordStore, bench: Bench, hardware: Hands, run: Run,
               outputs: list[OutputEntry], report: RecoveryReport) -> None:
    names = {s.name for s in bench.slots}
    for entry in outputs:
        try:
            if entry.slot not in names:
                raise BenchError(f"the bench file has no slot {entry.slot!r}")
            rest_output(hardware, bench.slot(entry.slot), entry.target)
        except (ActuatorError, BenchError, ValueError) as exc:
            report.engaged.append(f"run {run.id}: {_what(entry)} NOT made safe: {exc}; the "
                                  "run stays open and the next rig run or rig safe retries")
            continue
        store.outputs.cleared(entry.id, "made safe after restart")
        report.made_safe.append(f"run {run.id}: {entry.kind} {entry.target} made safe")


def _close(store: RecordStore, run: Run, report: RecoveryReport) -> None:
    closed = store.runs.close_dead_run(run)
    if closed is not None and closed.units:
        report.closed.append(f"run {run.id} was interrupted; {len(closed.units)} unit(s) "
                             "marked interrupted")


def _what(entry: OutputEntry) -> str:
    return f"{entry.kind} {entry.target} (slot {entry.slot})"


def emit_report(report: RecoveryReport, emit: Callable[[str, str, str], None]) -> None:
    """Show a report on a progress sink: engaged outputs as warnings, the rest as recovery."""
    for line in [*report.made_safe, *report.closed]:
        emit("-", "recovery", line)
    for line in report.engaged:
        emit("-", "warning", line)
