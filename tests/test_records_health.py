"""Slot health: the policy on its own (no database), then as stored — counted by finish_unit in
the unit's transaction, cleared and taken out by operators, with its history."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from records_support import FakeClock, new_run

from rig.records import RecordStore, SlotHealthPolicy, SlotStatus
from rig.records.health import HEALTH_VERDICTS, HealthEvent, unknown_slot
from rig.vocabulary import RunStatus, Verdict

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# --- the policy, pure ---------------------------------------------------------------------------

def fold(policy: SlotHealthPolicy, outcomes: list[bool]) -> tuple[SlotStatus, list[HealthEvent]]:
    """Apply outcomes (True: a bench fault) to a new slot; the last status and every event."""
    status, events = unknown_slot("bench-a", "4"), []
    for n, bench_fault in enumerate(outcomes):
        change = policy.after(status, bench_fault, f"outcome {n}", AT)
        status = change.status
        events += change.events
    return status, events


def test_bench_faults_count_up_and_anything_else_resets_the_count():
    policy = SlotHealthPolicy()
    status, events = fold(policy, [True, True])
    assert status.consecutive_bench_faults == 2 and not status.out_of_service
    assert status.reason == "outcome 1" and status.updated_at == AT
    assert [e.event for e in events] == ["bench-fault", "bench-fault"]
    status, events = fold(policy, [True, True, False])
    assert status.consecutive_bench_faults == 0 and not status.out_of_service
    assert events[-1] == HealthEvent("ok", "outcome 2", "rig")


def test_the_limit_takes_a_slot_out_once_and_only_an_operator_brings_it_back():
    policy = SlotHealthPolicy(bench_fault_limit=3)
    status, events = fold(policy, [True, True, True])
    assert status.out_of_service and status.consecutive_bench_faults == 3
    assert status.reason == "3 consecutive bench faults; last: outcome 2"
    assert [e.event for e in events][-2:] == ["bench-fault", "out-of-service"]
    assert events[-1].reason == status.reason
    later = policy.after(status, True, "a fourth", AT)           # already out: no second event
    assert [e.event for e in later.events] == ["bench-fault"]
    assert later.status.reason == status.reason
    ok = policy.after(later.status, False, "fine", AT)
    assert ok.status.out_of_service and ok.status.consecutive_bench_faults == 0
    assert ok.status.reason == status.reason                     # why it is out stays said


def test_a_lower_limit_and_the_counted_verdicts():
    status, _ = fold(SlotHealthPolicy(bench_fault_limit=1), [True])
    assert status.out_of_service
    policy = SlotHealthPolicy()
    assert policy.counted == HEALTH_VERDICTS
    assert all(policy.counts(v) for v in (Verdict.FACTORY_DEFAULT, Verdict.NOT_DEFAULT,
                                          Verdict.UNREACHABLE, Verdict.BENCH_FAULT))
    assert not any(policy.counts(v) for v in (Verdict.INTERRUPTED, Verdict.SKIPPED,
                                              Verdict.OUT_OF_SERVICE))
    with pytest.raises(ValueError, match="at least 1"):
        SlotHealthPolicy(bench_fault_limit=0)


def test_the_policy_keeps_the_slots_identity():
    previous = replace(unknown_slot("bench-b", "7"), consecutive_bench_faults=1)
    change = SlotHealthPolicy().after(previous, True, "relay", AT)
    assert (change.status.bench_name, change.status.slot) == ("bench-b", "7")
    assert change.status.consecutive_bench_faults == 2


# --- as stored ----------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path: Path):
    with RecordStore(tmp_path / "rig.sqlite", clock=FakeClock()) as s:
        yield s


def test_three_consecutive_bench_faults_take_a_slot_out_until_cleared(store):
    slots = store.slots

    def outcome(bench_fault: bool, why: str = "relay did not switch"):
        return slots.record_outcome("bench-a", "4", bench_fault=bench_fault, reason=why)

    assert outcome(True).consecutive_bench_faults == 1
    assert outcome(True).consecutive_bench_faults == 2
    status = outcome(False, "unit not default")             # a unit fault resets the count
    assert status.consecutive_bench_faults == 0 and not status.out_of_service
    outcome(True)
    outcome(True)
    assert not slots.status("bench-a", "4").out_of_service
    status = outcome(True, "no power reading")
    assert status.out_of_service and status.consecutive_bench_faults == 3
    assert "3 consecutive bench faults" in status.reason and "no power reading" in status.reason
    assert [s.slot for s in slots.out_of_service("bench-a")] == ["4"]
    assert slots.out_of_service("bench-b") == []
    assert outcome(False, "ok").out_of_service                  # stays out: only people clear it
    back = slots.clear("bench-a", "4", by="alice", note="replaced solenoid")
    assert not back.out_of_service and back.consecutive_bench_faults == 0
    assert "alice" in back.reason and "replaced solenoid" in back.reason
    assert slots.out_of_service("bench-a") == []
    events = slots.events("bench-a", "4")
    assert events[0].event == "cleared" and events[0].actor == "alice"
    assert events[0].reason == "replaced solenoid"
    assert [e.event for e in events].count("out-of-service") == 1
    assert {e.actor for e in events[1:]} == {"rig"}
    with pytest.raises(ValueError, match="who"):
        slots.clear("bench-a", "4", by="")


def test_a_threshold_for_one_call(store):
    assert store.slots.record_outcome("bench-a", "1", True, "relay", threshold=1).out_of_service
    with pytest.raises(ValueError, match="threshold must be at least 1"):
        store.slots.record_outcome("bench-a", "1", True, "relay", threshold=0)


def test_finish_unit_counts_bench_faults_for_its_slot(tmp_path):
    with RecordStore(tmp_path / "rig.sqlite", clock=FakeClock(), bench_fault_limit=2) as store:
        runs = store.runs
        for n in range(3):
            run = new_run(store)
            unit = runs.start_unit(run, "7", method="hard")
            runs.finish_unit(unit, Verdict.BENCH_FAULT, f"switch timeout {n}")
            if n == 0:      # an interrupted unit says nothing about the slot
                other = runs.start_unit(run, "8", method="hard")
                runs.finish_unit(other, Verdict.INTERRUPTED, "stopped")
            runs.finish_run(run, RunStatus.FAILED)
        status = store.slots.status("bench-a", "7")
        assert status.out_of_service and status.consecutive_bench_faults == 3
        assert store.slots.status("bench-a", "8").updated_at is None
        assert store.slots.status("bench-b", "7").consecutive_bench_faults == 0
        unit = runs.start_unit(new_run(store), "9", method="hard")
        runs.finish_unit(unit, Verdict.BENCH_FAULT, "not counted", count_health=False)
        assert store.slots.status("bench-a", "9").updated_at is None


def test_operator_can_take_a_slot_out(store):
    status = store.slots.take_out("bench-a", "2", by="bob", note="loose cable")
    assert status.out_of_service and "bob" in status.reason
    assert store.slots.events("bench-a", "2")[0].event == "taken-out"
