"""Delivering the outbox to webhooks: retries with capped exponential back-off, at least once,
never twice what a receiver acknowledged, and never in a run's way.

- Each webhook is a *target* of the outbox (keyed by a hash of bench name and URL, so the URL,
  which may hold a token, is not stored). Its events are claimed a few at a time; a claim is a
  lease, so ``rig run`` and ``rig serve`` may both send from one store, and a sender that dies
  mid-request leaves its claim to run out and be sent again.
- A 2xx marks the delivery done in the store; anything else (refused, timed out, 503, a
  redirect) schedules the next attempt at ``Backoff.delay`` and keeps the event. Nothing is ever
  given up: a receiver down for a day gets its messages when it is back.
- The guarantee is **at least once, with an id**: a crash between the receiver's 2xx and our
  commit sends the event again with the same ``Idempotency-Key``, which a receiver uses to drop
  the duplicate.
- ``Notifier`` runs one thread per target on a store connection of its own, with a bounded
  timeout per request: a slow or dead receiver holds up its own thread, never a run (the
  runner's writes never wait on a request; the sender holds no lock while it sends).
- Logs and stored errors name a webhook by its label (its name, or scheme://host), never by
  URL, and describe an error by its kind, not by the library's message (which quotes the URL).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from rig.notify.config import Webhook
from rig.notify.message import body_of, headers_for
from rig.records import OutboxEvent, RecordStore
from rig.vocabulary import NotifyEvent, WebhookFormat

log = logging.getLogger("rig.notify")


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with a cap: ``base_s`` × 2^(attempt − 1), at most ``cap_s``, less up
    to ``jitter`` of it at random (senders that failed together do not retry together)."""

    base_s: float = 2.0
    cap_s: float = 300.0
    jitter: float = 0.2

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1, 2, …)."""
        raw = min(self.cap_s, self.base_s * 2 ** min(max(attempt - 1, 0), 32))
        return raw * (1.0 - self.jitter * rand())


def target_key(bench_name: str, url: str) -> str:
    """The outbox's name for a webhook: stable while bench and URL stay, and no URL in it."""
    return hashlib.sha256(f"{bench_name}\n{url}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Target:
    """A webhook resolved for sending (its URL and secret read from the environment)."""

    key: str
    label: str
    url: str = field(repr=False)
    secret: bytes | None = field(repr=False)
    fmt: WebhookFormat
    kinds: tuple[NotifyEvent, ...]
    timeout_s: float

    @classmethod
    def of(cls, bench_name: str, hook: Webhook) -> Target:
        """NotifyConfigError when its URL's or secret's variable is not set."""
        url = hook.url()
        return cls(target_key(bench_name, url), hook.label(url), url, hook.secret(),
                   hook.format, hook.events, hook.timeout_seconds)

    @property
    def lease_s(self) -> float:
        """How long a claim holds: past any one request, so only a dead sender's runs out."""
        return 2 * self.timeout_s + 5.0


def describe(exc: BaseException) -> str:
    """An error as logged and stored: its kind, never its message (requests quotes the URL)."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return ("connection refused" if "refused" in str(exc).lower()
                else "connection failed")
    return type(exc).__name__


class Redact(logging.Filter):
    """Masks webhook URL parts in other libraries' log lines: urllib3 logs each request's path
    and query at DEBUG, and a Slack-style URL keeps its token there."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: set[str] = set()

    def hide(self, url: str, secret: bytes | None) -> None:
        parts = urlsplit(url)
        fragments = {parts.path, parts.query, parts.username or "", parts.password or "",
                     parts.netloc.rpartition("@")[0]}
        if secret:
            fragments.add(secret.decode("utf-8", "replace"))
        self.hidden |= {f for f in fragments if len(f) > 1}

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for fragment in sorted(self.hidden, key=len, reverse=True):
            text = text.replace(fragment, "***")
        record.msg, record.args = text, ()
        return True


#: One filter for the process, on the logger that would show a URL (urllib3's request lines).
REDACT = Redact()
logging.getLogger("urllib3.connectionpool").addFilter(REDACT)


class Sender:
    """Delivers one store's outbox to a bench's webhooks (one pass at a time: ``once``)."""

    def __init__(self, store: RecordStore, bench_name: str, webhooks: Sequence[Webhook], *,
                 backoff: Backoff | None = None, batch: int = 10) -> None:
        self.store = store
        self.targets = [Target.of(bench_name, hook) for hook in webhooks]
        for target in self.targets:
            REDACT.hide(target.url, target.secret)
        self.backoff = backoff or Backoff()
        self.batch = batch
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        for target in self.targets:
            store.outbox.register(target.key, bench_name)

    def enqueue(self) -> None:
        """Queue every target's new events (``Notifier.close`` does, before it drains)."""
        for target in self.targets:
            self.store.outbox.enqueue(target.key, target.kinds)

    def backlog(self, within_s: float | None = None) -> int:
        """Deliveries owed (with ``within_s``: only those due within that many seconds)."""
        return self.store.outbox.backlog((t.key for t in self.targets), within_s)

    def once(self, target: Target, session: requests.Session,
             stop: threading.Event | None = None) -> int:
        """Queue the target's new events, claim the due ones and try each; how many tried."""
        self.store.outbox.enqueue(target.key, target.kinds)
        claimed = self.store.outbox.claim(target.key, self.owner, target.lease_s, self.batch)
        for number, event in enumerate(claimed):
            if stop is not None and stop.is_set():        # hand the rest back at once
                for rest in claimed[number:]:
                    self.store.outbox.retry(rest, self.owner, 0.0, "sender stopped")
                return number
            self.deliver(target, event, session)
        return len(claimed)

    def deliver(self, target: Target, event: OutboxEvent, session: requests.Session) -> bool:
        """One attempt: True on a 2xx (recorded as delivered), else the retry is scheduled."""
        body = body_of(event, target.fmt)
        try:
            answer = session.post(target.url, data=body,
                                  headers=headers_for(event, body, target.secret),
                                  timeout=(min(3.0, target.timeout_s), target.timeout_s),
                                  allow_redirects=False)
            answer.close()
        except requests.RequestException as exc:
            error = describe(exc)
        else:
            if 200 <= answer.status_code < 300:
                self.store.outbox.delivered(event, self.owner)
                log.info("webhook %s: %s %s delivered", target.label, event.kind,
                         event.event_id)
                return True
            error = f"HTTP {answer.status_code}"
        delay = self.backoff.delay(event.attempts + 1)
        self.store.outbox.retry(event, self.owner, delay, error)
        log.warning("webhook %s: %s %s not delivered (attempt %d: %s); next try in %.1f s",
                    target.label, event.kind, event.event_id, event.attempts + 1, error, delay)
        return False


class Notifier:
    """The sender at work in the background: one thread per webhook, on a store connection of
    its own (``rig run`` drains it briefly on exit; ``rig serve`` runs it until it stops)."""

    def __init__(self, db_path: str, bench_name: str, webhooks: Sequence[Webhook], *,
                 backoff: Backoff | None = None, poll_s: float = 0.5) -> None:
        self.store = RecordStore.open(db_path)
        try:
            self.sender = Sender(self.store, bench_name, webhooks, backoff=backoff)
        except BaseException:
            self.store.close()
            raise
        self.poll_s = poll_s
        self.stop = threading.Event()
        self.hurry = threading.Event()      # draining: look more often
        self.threads = [threading.Thread(target=self._serve, args=(t,), daemon=True,
                                         name=f"notify-{t.key[:8]}")
                        for t in self.sender.targets]

    def start(self) -> Notifier:
        for thread in self.threads:
            thread.start()
        return self

    def _serve(self, target: Target) -> None:
        session = requests.Session()
        try:
            while not self.stop.is_set():
                try:
                    tried = self.sender.once(target, session, self.stop)
                except Exception:  # noqa: BLE001 - a busy store or a bug: log, keep going
                    log.exception("webhook %s: sender pass failed", target.label)
                    tried = 0
                if not tried:
                    self.stop.wait(min(self.poll_s, 0.05) if self.hurry.is_set()
                                   else self.poll_s)
        finally:
            session.close()

    def close(self, drain_s: float = 0.0) -> int:
        """Stop, after up to ``drain_s`` seconds for what is queued to go (less when every
        delivery still owed waits for a retry due after that); returns how many deliveries are
        still owed (the next sender on this store sends them)."""
        left = 0
        try:
            self.sender.enqueue()
            self.hurry.set()
            deadline = time.monotonic() + drain_s
            while (left := self.sender.backlog()) and (
                    remaining := deadline - time.monotonic()) > 0:
                if not self.sender.backlog(within_s=remaining) and not self._sending():
                    break                 # every retry falls after we leave: no use waiting
                time.sleep(0.05)
        finally:
            self.stop.set()
            for thread in self.threads:
                thread.join(timeout=1.0)
            if not any(t.is_alive() for t in self.threads):
                self.store.close()         # else a daemon mid-request still holds it
        return left

    def _sending(self) -> bool:
        """Whether one of our claims is in progress (its outcome may be a 2xx yet)."""
        return bool(self.store.db.read(
            "SELECT 1 FROM outbox_deliveries WHERE state = 'sending' AND claimed_by = ? "
            "LIMIT 1", (self.sender.owner,)))

    def __enter__(self) -> Notifier:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
