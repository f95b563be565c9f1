"""The outbox in the record store: an event is written in the transaction that records its cause
(or not at all), with its document; targets, claims that two senders never share, leases that
a dead sender's claim runs out of, and acknowledged deliveries that stay acknowledged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from records_support import FakeClock, new_run, peek

from rig.records import RecordStore
from rig.vocabulary import DeliveryState, NotifyEvent, RunStatus, Verdict

KINDS = tuple(NotifyEvent)


@pytest.fixture
def store(tmp_path):
    with RecordStore(tmp_path / "rig.sqlite", clock=FakeClock()) as s:
        yield s


def finished_run(store: RecordStore, bench: str = "bench-a") -> int:
    run = new_run(store, bench)
    ok = store.runs.start_unit(run, "1", method="hard")
    bad = store.runs.start_unit(run, "2", method="hard", expected_serial="DS-1")
    store.runs.finish_unit(ok, Verdict.FACTORY_DEFAULT, "inactive after reset")
    store.runs.finish_unit(bad, Verdict.BENCH_FAULT, "relay 2 did not switch")
    store.runs.finish_run(run, RunStatus.FAILED)
    return run


def test_a_finished_run_and_a_bench_fault_are_events_with_their_documents(store):
    run = finished_run(store)
    events = store.outbox.events()
    assert [e.kind for e in events] == [NotifyEvent.BENCH_FAULT, NotifyEvent.RUN_FINISHED]
    fault, done = events
    assert fault.payload["slot"] == "2" and fault.payload["unit"]["reason"] == \
        "relay 2 did not switch" and fault.payload["unit"]["serial"] == "DS-1"
    assert done.payload["run"] == done.payload["run"] | {"id": run, "status": "failed"}
    assert done.payload["counts"] == {"factory-default": 1, "bench-fault": 1}
    assert [p["slot"] for p in done.payload["problems"]] == ["2"]
    assert done.payload["event_id"] == done.event_id and len(done.event_id) == 32
    # committed together: another connection sees the documents, none left to fill in
    assert peek(store.path, "SELECT COUNT(*) FROM outbox WHERE payload IS NULL") == [(0,)]


def test_a_slot_going_out_of_service_is_an_event_and_an_out_of_service_unit_is_not(store):
    for _ in range(3):
        run = new_run(store)
        unit = store.runs.start_unit(run, "4", method="hard")
        store.runs.finish_unit(unit, Verdict.BENCH_FAULT, "solenoid stuck")
        store.runs.finish_run(run, RunStatus.FAILED)
    run = new_run(store)
    unit = store.runs.start_unit(run, "4", method="hard")
    store.runs.finish_unit(unit, Verdict.OUT_OF_SERVICE, "slot out of service")
    store.slots.take_out("bench-a", "5", by="ana", note="loose cable")
    kinds = [e.kind for e in store.outbox.events()]
    assert kinds.count(NotifyEvent.BENCH_FAULT) == 3          # not the out-of-service unit
    out = [e for e in store.outbox.events() if e.kind is NotifyEvent.SLOT_OUT_OF_SERVICE]
    assert [(e.payload["slot"], e.payload["by"]) for e in out] == [("4", "rig"), ("5", "ana")]
    assert "3 consecutive bench faults" in out[0].payload["reason"]


def test_no_event_without_its_cause_a_rolled_back_write_leaves_neither(store):
    run = new_run(store)
    with pytest.raises(RuntimeError), store.db.write() as conn:
        conn.execute("UPDATE runs SET status = 'passed', finished_at = '2024' WHERE id = ?",
                     (run,))
        raise RuntimeError("crash before commit")
    assert store.outbox.events() == [] and store.runs.load_run(run).run.status == "running"


def test_a_target_gets_the_events_after_its_registration_only_and_of_its_kinds(store):
    finished_run(store)                                       # before: never sent to it
    store.outbox.register("t1", "bench-a")
    finished_run(store)
    finished_run(store, bench="bench-b")                      # another bench's
    assert store.outbox.enqueue("t1", [NotifyEvent.RUN_FINISHED]) == 1
    assert store.outbox.enqueue("t1", [NotifyEvent.RUN_FINISHED]) == 0   # queued once
    [claimed] = store.outbox.claim("t1", "me", lease_s=30)
    assert claimed.kind is NotifyEvent.RUN_FINISHED and claimed.bench_name == "bench-a"


def test_two_senders_never_claim_the_same_delivery(store, tmp_path):
    store.outbox.register("t", "bench-a")
    for _ in range(3):
        finished_run(store)
    store.outbox.enqueue("t", KINDS)
    with RecordStore(store.path, clock=FakeClock(store.db._clock.now)) as other:
        first = store.outbox.claim("t", "a", lease_s=60, limit=4)
        second = other.outbox.claim("t", "b", lease_s=60, limit=10)
    assert len(first) == 4 and len(second) == 3     # 3 runs, 3 bench faults, slot 2 out
    assert not {e.id for e in first} & {e.id for e in second}


def test_a_dead_senders_claim_runs_out_and_an_acknowledged_one_is_never_sent_again(store):
    store.outbox.register("t", "bench-a")
    finished_run(store)
    store.outbox.enqueue("t", [NotifyEvent.RUN_FINISHED])
    [event] = store.outbox.claim("t", "dead", lease_s=5)
    assert store.outbox.claim("t", "live", lease_s=5) == []      # leased
    store.db._clock.now += timedelta(seconds=10)
    [again] = store.outbox.claim("t", "live", lease_s=5)
    assert again.event_id == event.event_id
    assert not store.outbox.delivered(event, "dead")             # no longer its claim
    assert store.outbox.delivered(again, "live")
    store.db._clock.now += timedelta(hours=1)
    assert store.outbox.claim("t", "live", lease_s=5) == []
    [delivery] = store.outbox.deliveries("t")
    assert delivery.state is DeliveryState.DELIVERED and store.outbox.backlog() == 0


def test_a_failed_attempt_waits_its_back_off(store):
    store.outbox.register("t", "bench-a")
    finished_run(store)
    store.outbox.enqueue("t", [NotifyEvent.RUN_FINISHED])
    [event] = store.outbox.claim("t", "me", lease_s=5)
    store.outbox.retry(event, "me", 60, "HTTP 503")
    assert store.outbox.claim("t", "me", lease_s=5) == []
    store.db._clock.now += timedelta(seconds=61)
    [again] = store.outbox.claim("t", "me", lease_s=5)
    assert again.attempts == 1 and store.outbox.deliveries("t")[0].last_error == "HTTP 503"
