"""The change feed: how a step recorded by any process reaches the browsers within a second.

SQLite bumps ``PRAGMA data_version`` on our connection whenever another connection commits. The
feed reads it every ``interval`` seconds (a few microseconds: no table is touched), and only when
it moved does it read the bench's slot cards, once, for every subscriber. A write the server
itself makes (an operator action) does not move our own ``data_version``; ``total_changes()``
counts those, and an action ``poke()``s too.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rig.bench import Bench
from rig.records import RecordStore
from rig.serve.queries import current_bench, known_slots, slot_cards

#: Seconds between two looks at ``data_version``.
POLL_INTERVAL = 0.1


@dataclass
class BenchView:
    """Which bench the page shows: the bench file's when given (its slots, even never used),
    else the newest run's bench and every slot the store has heard of on it."""

    store: RecordStore
    bench: Bench | None = None

    def bench_name(self) -> str | None:
        return self.bench.name if self.bench else current_bench(self.store)

    def slots(self, name: str) -> list[str]:
        if self.bench is not None:
            return [slot.name for slot in self.bench.slots]
        return known_slots(self.store, name)

    def snapshot(self) -> dict[str, Any]:
        """The bench as recorded now: the document the page and ``/api/bench`` show."""
        name = self.bench_name()
        cards = slot_cards(self.store, name, self.slots(name)) if name else []
        return {"bench": name, "slots": cards,
                "at": datetime.now(UTC).isoformat(timespec="milliseconds")}

    def data_version(self) -> tuple[int, int]:
        """Moves when anything committed: another connection (``data_version``) or ours
        (``total_changes()``, e.g. an operator action or a test writing through our store)."""
        other = self.store.db.read("PRAGMA data_version")[0][0]
        ours = self.store.db.read("SELECT total_changes()")[0][0]
        return int(other), int(ours)


@dataclass
class ChangeFeed:
    """The latest bench snapshot, re-read when the store changed; subscribers wait for a newer
    one. ``version`` counts snapshots that differed from the one before."""

    view: BenchView
    interval: float = POLL_INTERVAL
    version: int = 0
    latest: str = "{}"
    changed_at: float = 0.0
    closed: bool = False
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)
    _poked: bool = True

    def poke(self) -> None:
        """Re-read at the next tick: the server wrote something itself."""
        self._poked = True

    async def run(self) -> None:
        """Poll until cancelled (the app's lifespan owns this task)."""
        seen = None
        while True:
            current = await asyncio.to_thread(self.view.data_version)
            if current != seen or self._poked:
                seen, self._poked = current, False
                await self.refresh()
            await asyncio.sleep(self.interval)

    async def refresh(self) -> None:
        snapshot = await asyncio.to_thread(self.view.snapshot)
        text = json.dumps({k: v for k, v in snapshot.items() if k != "at"}, sort_keys=True)
        if text == self.latest:
            return
        async with self._cond:
            self.latest, self.version = text, self.version + 1
            self.changed_at = time.monotonic()
            self._cond.notify_all()

    async def close(self) -> None:
        """The server is stopping: wake every subscriber so its stream ends now (an event
        stream never ends on its own, and the server would wait for it)."""
        async with self._cond:
            self.closed = True
            self._cond.notify_all()

    async def newer_than(self, version: int, timeout: float) -> tuple[int, str] | None:
        """The next snapshot after ``version`` (at once if there is one), or None after
        ``timeout`` seconds without a change (the caller sends a keep-alive) or once closed."""
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(
                    lambda: self.version > version or self.closed), timeout)
            except TimeoutError:
                return None
            return None if self.closed else (self.version, self.latest)
