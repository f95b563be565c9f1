"""What goes over the wire for one event: the body in the webhook's format and the headers that
let a receiver check it (HMAC signature) and drop a duplicate (the event id)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from rig import __version__
from rig.records import OutboxEvent
from rig.vocabulary import NotifyEvent, WebhookFormat

#: Non-passing units a Slack message names (the counts cover all of them).
SLACK_LISTED = 5
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_HEADER = "X-Rig-Signature"


def body_of(event: OutboxEvent, fmt: WebhookFormat) -> bytes:
    """The request body: the event document, or Slack's ``{"text": ...}``."""
    if fmt is WebhookFormat.SLACK:
        document: dict[str, Any] = {"text": slack_text(event.payload)}
    else:
        document = event.payload
    return json.dumps(document, sort_keys=True, ensure_ascii=False).encode("utf-8")


def headers_for(event: OutboxEvent, body: bytes, secret: bytes | None) -> dict[str, str]:
    """The event id as ``Idempotency-Key`` (and ``X-Rig-Event-Id``): the same on every retry,
    so a receiver that already took it can drop it. With a secret, ``X-Rig-Signature:
    sha256=HEX``, the HMAC-SHA256 of the body (which carries the id and the time)."""
    headers = {"Content-Type": "application/json", "User-Agent": f"rig/{__version__}",
               IDEMPOTENCY_HEADER: event.event_id, "X-Rig-Event-Id": event.event_id,
               "X-Rig-Event": str(event.kind), "X-Rig-Attempt": str(event.attempts + 1)}
    if secret is not None:
        headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return headers


def _esc(text: Any) -> str:
    """Slack's three escapes: record text must not become a mention or a link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(doc: dict[str, Any]) -> str:
    """One message a person reads in a channel."""
    kind, bench = doc.get("event"), _esc(doc.get("bench", "?"))
    if kind == NotifyEvent.RUN_FINISHED:
        run = doc.get("run", {})
        counts = ", ".join(f"{n} {_esc(v)}" for v, n in sorted(doc.get("counts", {}).items()))
        lines = [f"rig bench *{bench}*: run {run.get('id')} {_esc(run.get('status'))}: "
                 f"{doc.get('units', 0)} unit(s): {counts or 'none'}"]
        problems = doc.get("problems", [])
        lines += [f"• slot {_esc(p['slot'])}: {_esc(p['verdict'])}: {_esc(p['reason'])}"
                  for p in problems[:SLACK_LISTED]]
        if len(problems) > SLACK_LISTED:
            lines.append(f"• … and {len(problems) - SLACK_LISTED} more")
        return "\n".join(lines)
    if kind == NotifyEvent.BENCH_FAULT:
        unit = doc.get("unit", {})
        return (f"rig bench *{bench}*: bench fault in slot {_esc(doc.get('slot'))} "
                f"(run {doc.get('run', {}).get('id')}): {_esc(unit.get('reason', ''))}")
    by = doc.get("by", "")
    who = f" (by {_esc(by)})" if by and by != "rig" else ""
    return (f":warning: rig bench *{bench}*: slot {_esc(doc.get('slot'))} is out of "
            f"service{who}: {_esc(doc.get('reason', ''))}")
