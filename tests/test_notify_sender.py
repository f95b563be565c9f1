"""Webhook delivery through a real receiver on loopback: down (refused) and then answering 503
for its first attempts, yet every event arrives exactly once; a new sender on the same store
resumes; two senders at once share the work; a slow receiver does not delay the run's records;
Slack's form; signatures; URLs and secrets stay out of logs and the store."""

from __future__ import annotations

import logging
import time

import pytest
from records_support import new_run

from rig.notify.config import Webhook
from rig.notify.sender import Backoff, Notifier
from rig.records import RecordStore
from rig.vocabulary import DeliveryState, NotifyEvent, RunStatus, Verdict, WebhookFormat
from tests.notify_support import Receiver, free_port, wait_until

FAST = Backoff(base_s=0.05, cap_s=0.2)


@pytest.fixture
def store(tmp_path):
    with RecordStore(tmp_path / "rig.sqlite") as s:
        yield s


def run_with_fault(store: RecordStore) -> int:
    run = new_run(store)
    unit = store.runs.start_unit(run, str(run), method="hard")     # a slot per run: no slot
    store.runs.finish_unit(unit, Verdict.BENCH_FAULT, "relay did not switch")  # goes out
    store.runs.finish_run(run, RunStatus.FAILED)
    return run


def notifier(store: RecordStore, *hooks: Webhook, poll_s: float = 0.02) -> Notifier:
    return Notifier(store.path, "bench-a", hooks, backoff=FAST, poll_s=poll_s).start()


def event_ids(store: RecordStore) -> list[str]:
    return [e.event_id for e in store.outbox.events("bench-a")]


def test_a_receiver_down_then_failing_gets_every_event_exactly_once(store):
    receiver = Receiver(fail_first=2)               # not listening yet: connection refused
    sender = notifier(store, Webhook(url_text=receiver.url))
    try:
        for _ in range(3):
            run_with_fault(store)
        wait_until(lambda: all(d.attempts >= 2 for d in store.outbox.deliveries())
                   and len(store.outbox.deliveries()) == 6, what="refused attempts")
        assert {d.last_error for d in store.outbox.deliveries()} == {"connection refused"}
        with receiver:                                  # back, but 503 for two requests
            wait_until(lambda: store.outbox.backlog() == 0, what="every event delivered")
            time.sleep(0.2)                             # nothing more comes after the 2xx
    finally:
        sender.close()
    assert sorted(receiver.ledger) == sorted(event_ids(store)) and len(receiver.ledger) == 6
    assert {d.state for d in store.outbox.deliveries()} == {DeliveryState.DELIVERED}
    kinds = [b["event"] for b in receiver.bodies]
    assert kinds.count(NotifyEvent.RUN_FINISHED) == 3 and kinds.count("bench-fault") == 3


def test_a_new_sender_on_the_same_store_resumes_and_resends_nothing_acknowledged(store):
    port = free_port()
    hook = Webhook(url_text=f"http://127.0.0.1:{port}/hook")
    first = notifier(store, hook)
    run_with_fault(store)
    wait_until(lambda: store.outbox.deliveries() and all(
        d.attempts >= 1 for d in store.outbox.deliveries()), what="a failed attempt")
    assert first.close(drain_s=0.1) == 2                # rig stops with two owed
    run_with_fault(store)                               # written while no sender runs
    with Receiver(port) as receiver:
        second = notifier(store, hook)
        wait_until(lambda: len(receiver.ledger) == 4, what="all four events")
        second.close(drain_s=1.0)
        third = notifier(store, hook)                   # and again: nothing is owed
        time.sleep(0.2)
        third.close()
    assert sorted(receiver.ledger) == sorted(event_ids(store))


def test_two_senders_on_one_store_deliver_each_event_once(store):
    with Receiver() as receiver:
        hook = Webhook(url_text=receiver.url)
        run_side, serve_side = notifier(store, hook), notifier(store, hook)
        for _ in range(5):
            run_with_fault(store)
        wait_until(lambda: len(receiver.ledger) == 10, what="ten events")
        time.sleep(0.2)
        run_side.close()
        serve_side.close()
    assert sorted(receiver.ledger) == sorted(event_ids(store))


def test_a_slow_receiver_does_not_delay_the_run(store):
    with Receiver(delay_s=1.5) as receiver:
        sender = notifier(store, Webhook(url_text=receiver.url, timeout_seconds=5))
        run_with_fault(store)
        wait_until(lambda: receiver.requests, what="a request in progress")
        started = time.monotonic()
        for _ in range(3):
            run = new_run(store)
            unit = store.runs.start_unit(run, "1", method="hard")
            store.runs.finish_unit(unit, Verdict.FACTORY_DEFAULT, "inactive after reset")
            store.runs.finish_run(run, RunStatus.PASSED)
        assert time.monotonic() - started < 0.5
        closing = time.monotonic()
        owed = sender.close(drain_s=0.2)
        assert owed > 0 and time.monotonic() - closing < 2.0    # bounded: owed, not waited


def test_the_slack_form_is_one_text_and_the_json_form_the_event(store):
    with Receiver() as slack, Receiver() as plain:
        sender = notifier(store, Webhook(url_text=slack.url, format=WebhookFormat.SLACK,
                                         events=(NotifyEvent.RUN_FINISHED,)),
                          Webhook(url_text=plain.url))
        run = run_with_fault(store)
        wait_until(lambda: slack.ledger and len(plain.ledger) == 2, what="both receivers")
        sender.close()
    [message] = slack.bodies
    assert set(message) == {"text"}
    assert message["text"].startswith(f"rig bench *bench-a*: run {run} failed: 1 unit(s): "
                                      "1 bench-fault")
    assert f"• slot {run}: bench-fault: relay did not switch" in message["text"]
    assert [b["event"] for b in plain.bodies] == ["bench-fault", "run-finished"]
    assert plain.bodies[1]["run"]["id"] == run and plain.requests[0]["X-Rig-Attempt"] == "1"


def test_urls_and_secrets_stay_out_of_logs_and_the_store(store, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    port = free_port()
    url = f"http://hookuser:UrlPassw0rd@127.0.0.1:{port}/services/T0KEN-IN-PATH?key=Q-SECRET"
    monkeypatch.setenv("RIG_TEST_HOOK_URL", url)
    monkeypatch.setenv("RIG_TEST_HOOK_SECRET", "hmac-s3cret")
    hook = Webhook(url_env="RIG_TEST_HOOK_URL", secret_env="RIG_TEST_HOOK_SECRET")
    assert "T0KEN" not in repr(hook)
    sender = notifier(store, hook)
    run_with_fault(store)
    wait_until(lambda: any(d.attempts for d in store.outbox.deliveries()), what="a failure")
    with Receiver(port, secret=b"hmac-s3cret") as receiver:    # checks every signature
        wait_until(lambda: len(receiver.ledger) == 2, what="signed deliveries")
    sender.close()
    stored = " ".join(str(row) for row in store.db.read(
        "SELECT * FROM outbox_deliveries UNION ALL SELECT *, NULL, NULL, NULL, NULL "
        "FROM outbox_targets"))
    for secret in ("T0KEN", "Q-SECRET", "UrlPassw0rd", "hookuser", "hmac-s3cret"):
        assert secret not in caplog.text and secret not in stored
    assert "webhook http://127.0.0.1" in caplog.text and "not delivered" in caplog.text


def test_back_off_doubles_to_its_cap():
    backoff = Backoff(base_s=2, cap_s=60, jitter=0.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 6, 7, 100)] == [2, 4, 8, 60, 60, 60]
    assert Backoff(base_s=10, jitter=0.2).delay(1, rand=lambda: 1.0) == pytest.approx(8.0)
