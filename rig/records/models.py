"""The records as Python sees them: frozen dataclasses, and the functions that build them from
SQLite rows. Nothing here touches the database; the stores in this package do."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rig.vocabulary import (
    Fault,
    FinalState,
    Grade,
    RunStatus,
    StepOutcome,
    UnitState,
    Verdict,
)


@dataclass(frozen=True)
class Run:
    id: int
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    bench_name: str
    bench_path: str | None
    bench_sha256: str | None
    method: str
    rig_version: str
    hostname: str
    pid: int
    argv: tuple[str, ...]
    note: str
    boot_id: str = ""              # /proc/sys/kernel/random/boot_id when the run started
    process_start: str = ""        # the pid's start time (clock ticks since boot): pid reuse guard
    operator: str = ""             # who ran it (``rig run --operator`` or the bench file)
    destination: str = ""          # where its units go next (resale, reuse, recycling)


@dataclass(frozen=True)
class Step:
    id: int
    unit_id: int
    seq: int                       # 1, 2, … within the unit, in the order the steps started
    name: str
    started_at: datetime
    finished_at: datetime | None
    outcome: StepOutcome
    detail: str


@dataclass(frozen=True)
class Evidence:
    id: int
    unit_id: int
    step_id: int | None
    kind: str
    created_at: datetime
    data: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class Unit:
    id: int
    run_id: int
    slot: str
    method: str
    profile: str | None
    expected_mac: str | None
    expected_serial: str | None
    started_at: datetime | None
    finished_at: datetime | None
    state: UnitState
    verdict: Verdict | None
    reason: str
    fault: Fault | None
    mac: str | None
    serial: str | None
    check: str | None              # the check that failed, if any
    final_state: FinalState | None = None   # the state proven at the end (hand-over)
    grade: Grade | None = None     # functional category from its checks, when checks ran
    steps: tuple[Step, ...] = ()
    evidence: tuple[Evidence, ...] = ()

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class Attachment:
    """Binary evidence (a snapshot JPEG) kept beside the evidence record that describes it."""

    id: int
    unit_id: int
    evidence_id: int | None
    name: str
    content_type: str
    sha256: str
    created_at: datetime
    data: bytes = field(repr=False, hash=False)


@dataclass(frozen=True)
class OutputEntry:
    """One line of the outputs ledger: something the rig switched that must be made safe."""

    id: int
    run_id: int
    slot: str
    kind: str
    target: str
    since: datetime
    cleared_at: datetime | None
    note: str


@dataclass(frozen=True)
class RunRecord:
    """A whole run as stored: the run, its units (each with steps and evidence), its outputs."""

    run: Run
    units: tuple[Unit, ...]
    outputs: tuple[OutputEntry, ...]


@dataclass(frozen=True)
class RunSummary:
    run: Run
    units: int
    counts: dict[str, int] = field(hash=False)   # verdict → units; "unfinished" for none yet
    #: final state proven → units (hand-over); units with none proven are not counted
    final_states: dict[str, int] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class RecoveredRun:
    """A run found dead by ``recover_interrupted`` and closed as interrupted."""

    run: Run
    units: tuple[Unit, ...]             # the units this recovery marked interrupted
    outputs: tuple[OutputEntry, ...]    # still engaged: make these safe, then outputs.cleared()


@dataclass(frozen=True)
class SlotStatus:
    bench_name: str
    slot: str
    consecutive_bench_faults: int
    out_of_service: bool
    reason: str
    updated_at: datetime | None         # None: the store has never heard of this slot


@dataclass(frozen=True)
class SlotEvent:
    """The slot health history: each counted outcome and each operator action."""

    id: int
    bench_name: str
    slot: str
    at: datetime
    event: str                          # ok | bench-fault | out-of-service | cleared | taken-out
    reason: str
    actor: str


# --- row → record -------------------------------------------------------------------------------

def ts(text: str | None) -> datetime | None:
    """A stored ISO 8601 timestamp (UTC) back as an aware datetime."""
    return None if text is None else datetime.fromisoformat(text)


def join(first: str, second: str, sep: str = "; ") -> str:
    """Two notes as one, without a dangling separator when either is empty."""
    return sep.join(part for part in (first, second) if part)


def run_from_row(r: sqlite3.Row) -> Run:
    return Run(id=r["id"], started_at=ts(r["started_at"]), finished_at=ts(r["finished_at"]),
               status=RunStatus(r["status"]), bench_name=r["bench_name"],
               bench_path=r["bench_path"], bench_sha256=r["bench_sha256"], method=r["method"],
               rig_version=r["rig_version"], hostname=r["hostname"], pid=r["pid"],
               argv=tuple(json.loads(r["argv"])), note=r["note"], boot_id=r["boot_id"],
               process_start=r["process_start"], operator=r["operator"],
               destination=r["destination"])


def unit_from_row(r: sqlite3.Row, steps: Sequence[Step] = (),
                  evidence: Sequence[Evidence] = ()) -> Unit:
    return Unit(id=r["id"], run_id=r["run_id"], slot=r["slot"], method=r["method"],
                profile=r["profile"], expected_mac=r["expected_mac"],
                expected_serial=r["expected_serial"], started_at=ts(r["started_at"]),
                finished_at=ts(r["finished_at"]), state=UnitState(r["state"]),
                verdict=None if r["verdict"] is None else Verdict(r["verdict"]),
                reason=r["reason"], fault=None if r["fault"] is None else Fault(r["fault"]),
                mac=r["mac"], serial=r["serial"], check=r["check_name"], steps=tuple(steps),
                evidence=tuple(evidence),
                final_state=None if r["final_state"] is None else FinalState(r["final_state"]),
                grade=None if r["grade"] is None else Grade(r["grade"]))


def step_from_row(r: sqlite3.Row) -> Step:
    return Step(id=r["id"], unit_id=r["unit_id"], seq=r["seq"], name=r["name"],
                started_at=ts(r["started_at"]), finished_at=ts(r["finished_at"]),
                outcome=StepOutcome(r["outcome"]), detail=r["detail"])


def evidence_from_row(r: sqlite3.Row) -> Evidence:
    return Evidence(id=r["id"], unit_id=r["unit_id"], step_id=r["step_id"], kind=r["kind"],
                    created_at=ts(r["created_at"]), data=json.loads(r["data"]))


def output_from_row(r: sqlite3.Row) -> OutputEntry:
    return OutputEntry(id=r["id"], run_id=r["run_id"], slot=r["slot"], kind=r["kind"],
                       target=r["target"], since=ts(r["since"]),
                       cleared_at=ts(r["cleared_at"]), note=r["note"])


def slot_from_row(r: sqlite3.Row) -> SlotStatus:
    return SlotStatus(bench_name=r["bench_name"], slot=r["slot"],
                      consecutive_bench_faults=r["consecutive_bench_faults"],
                      out_of_service=bool(r["out_of_service"]), reason=r["reason"],
                      updated_at=ts(r["updated_at"]))


def slot_event_from_row(r: sqlite3.Row) -> SlotEvent:
    return SlotEvent(r["id"], r["bench_name"], r["slot"], ts(r["at"]), r["event"], r["reason"],
                     r["actor"])


def attachment_from_row(r: sqlite3.Row) -> Attachment:
    return Attachment(id=r["id"], unit_id=r["unit_id"], evidence_id=r["evidence_id"],
                      name=r["name"], content_type=r["content_type"], sha256=r["sha256"],
                      created_at=ts(r["created_at"]), data=bytes(r["data"]))
