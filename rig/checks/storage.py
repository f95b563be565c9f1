"""``storage``: what memory cards the unit holds, handled by the bench's policy
(firmware_notes/topics/checks.md, "storage").

A factory reset does not wipe a card (the ACSC's "Disposing of an IoT device"), so the bench
says what to do: ``format`` every card and wait until each one reports 100 % and status ok;
``flag`` a card present as a failure ("remove the card"); ``ignore`` it (skipped, "not
checked", which the certificate says in so many words). No card at all passes under ``format``
and ``flag``. A format's progress is polled until 100 or ``format_timeout_s``.
"""

from __future__ import annotations

from typing import Any

from rig.checks import parsers
from rig.checks.base import CheckContext
from rig.checks.calls import NotSupported
from rig.checks.results import Finding, failed, passed, skipped
from rig.vocabulary import CheckName, StoragePolicy

NAME = CheckName.STORAGE
LIST = "/ISAPI/ContentMgmt/Storage"
#: Card statuses that mean "usable" after a format.
GOOD_STATUS = ("ok", "idle")
POLL_SECONDS = 1.0


def check(ctx: CheckContext) -> Finding:
    """Apply the bench's card policy (see the module docstring)."""
    policy = ctx.config.storage
    details: dict[str, Any] = {"policy": str(policy), "cards": [], "formatted": []}
    if policy is StoragePolicy.IGNORE:
        return skipped("not checked (the bench's storage policy is ignore)", **details)
    try:
        cards = ctx.calls.read(LIST, parsers.cards)
    except NotSupported:
        return passed("no card (the unit has no storage)", **details)
    details["cards"] = [c.to_json() for c in cards]
    if not cards:
        return passed("no card", **details)
    ids = ", ".join(c.id for c in cards)
    if policy is StoragePolicy.FLAG:
        return failed(f"remove the card: {len(cards)} card(s) present (id {ids})", **details)
    for card in cards:
        problem = _format(ctx, card.id)
        if problem:
            return failed(f"card {card.id}: {problem}", **details)
        details["formatted"].append(card.id)
    after = ctx.calls.read(LIST, parsers.cards)
    details["cards"] = [c.to_json() for c in after]
    bad = [c for c in after if c.status not in GOOD_STATUS]
    if bad:
        return failed("after the format, " + "; ".join(
            f"card {c.id} reports status {c.status or 'none'}" for c in bad), **details)
    return passed(f"{len(cards)} card(s) formatted (id {ids}), status ok", **details)


def _format(ctx: CheckContext, card_id: str) -> str:
    """Format one card and wait for 100 %; "" when done, else what went wrong."""
    base = f"{LIST}/hdd/{card_id}"
    ctx.calls.put_xml(f"{base}/format")
    end = ctx.calls.clock() + min(ctx.config.format_timeout_s, ctx.calls.remaining())
    last = None
    while True:
        status = ctx.calls.read(f"{base}/formatStatus", parsers.format_status)
        last = status.percent
        if status.percent == 100:
            return ""
        if status.formatting is False and status.percent is not None:
            return f"the format stopped at {status.percent} %"
        if ctx.calls.clock() >= end:
            return (f"the format did not reach 100 % within {ctx.config.format_timeout_s:g} s"
                    f" (last {last if last is not None else '?'} %)")
        ctx.sleep(max(POLL_SECONDS / ctx.time_scale, 0.005))
