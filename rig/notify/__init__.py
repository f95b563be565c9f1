"""Notifications: webhooks told when a run finishes, a unit's verdict blames the bench, or a slot
goes out of service.

- ``config``   the bench file's ``[[notify.webhook]]`` tables
- ``message``  the body (JSON event document, or Slack's ``{"text": ...}``) and the headers
- ``sender``   delivery from the record store's outbox (rig.records.outbox): retries with
               capped back-off, at least once with an idempotency key, in threads of its own

Events are written by the record store itself, in the transaction of their cause, so they exist
whether or not a sender runs; ``rig run`` and ``rig serve`` send them (``start_notifier``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rig.bench import Bench
    from rig.notify.sender import Notifier


def start_notifier(db_path: str, bench: Bench | None) -> Notifier | None:
    """The bench's webhooks being served from the store at ``db_path``; None when it has none.
    NotifyConfigError (a ValueError) when a webhook's variable is not set."""
    if bench is None or not bench.notify.webhooks:
        return None
    from rig.notify.sender import Notifier  # requests: only when there is a webhook
    return Notifier(db_path, bench.name, bench.notify.webhooks).start()
