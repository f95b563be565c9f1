"""One unit's trail in the record store, as the stages write it: steps, evidence, outputs-ledger
entries and notes for the verdict's reason.

Stages (procedures, verification, and later hand-over and checks) write through this object
only: it knows the run, the unit and the slot, so a stage never handles record ids, and it
shows progress on screen once a step is on disk (the screen never runs ahead of the records).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rig.records import RecordStore
from rig.vocabulary import EvidenceKind, Grade, OutputKind, StepOutcome

#: Progress sink: (slot, kind, text); the CLI prints it, tests collect it.
EventSink = Callable[[str, str, str], None]


def _no_events(slot: str, kind: str, text: str) -> None:
    """The default sink: progress goes nowhere."""


class Recorder:
    """Writes one unit's steps, evidence and outputs ledger to ``store``, durably, before the
    caller goes on. Thread-confined to the slot's worker, except ``notes`` which the runner
    reads after the worker is done."""

    def __init__(self, store: RecordStore, run_id: int, unit_id: int, slot: str,
                 emit: EventSink = _no_events) -> None:
        self.store = store
        self.run_id = run_id
        self.unit_id = unit_id
        self.slot = slot
        self.emit = emit
        self._notes: list[str] = []
        #: The unit's functional grade, set by the checks stage when checks ran (the runner
        #: records it with the verdict; like ``notes``, read once the worker is done).
        self.grade: Grade | None = None

    # --- steps and evidence ------------------------------------------------------------------

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[int]:
        """A recorded step: written before it acts, closed with its outcome after."""
        with self.store.runs.step(self.unit_id, name, detail) as step_id:
            self.emit(self.slot, "step", name)
            yield step_id

    def finish(self, step_id: int, outcome: StepOutcome, detail: str = "") -> None:
        """Close a step early with an outcome of its own (a timeout, a refusal)."""
        self.store.runs.finish_step(step_id, outcome, detail)

    def evidence(self, kind: EvidenceKind, data: dict[str, Any],
                 step_id: int | None = None) -> int:
        return self.store.runs.add_evidence(self.unit_id, kind, data, step_id)

    def attach(self, name: str, content_type: str, data: bytes,
               evidence_id: int | None = None) -> int:
        """Keep binary evidence (a snapshot) beside the evidence record that describes it."""
        return self.store.attachments.add(self.unit_id, name, content_type, data, evidence_id)

    # --- outputs ledger ------------------------------------------------------------------------

    def engaged(self, kind: OutputKind, target: str, note: str = "") -> int:
        """Record an output leaving its rest state; call it *before* the output moves."""
        return self.store.outputs.engaged(self.run_id, self.slot, kind, target, note)

    def cleared(self, entry: int, note: str = "") -> None:
        """Record an output back at rest; call it only once the move worked."""
        self.store.outputs.cleared(entry, note)

    # --- notes -------------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """A finding that goes into the unit's verdict reason ("identity learned by ...")."""
        self._notes.append(text)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self._notes)
