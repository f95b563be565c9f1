"""Shared by the ``rig serve`` tests: the app on a loopback thread over a record store, a
server-sent-events reader, and a simulated batch run by a process-like separate store."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from rig.records import RecordStore
from rig.runner import Runner
from rig.serve.app import create_app
from rig.serve.security import Policy
from rig.serve.server import ThreadedServer
from rig.sim.bench import SimBench
from rig.wiring import BenchHardware

LOOPBACK = Policy(token=None, loopback=True)
MAC_BLOCK = 0x5E
BASE = "127.0.3."


@contextmanager
def served(db: Path, policy: Policy = LOOPBACK, bench: Any = None,
           secrets: tuple[str, ...] = ()) -> Iterator[tuple[str, RecordStore]]:
    """The app on 127.0.0.1 at an ephemeral port, over its own store on ``db``."""
    with RecordStore.open(db) as store:
        app = create_app(store, policy, bench=bench, secrets=secrets, poll_interval=0.05)
        with ThreadedServer(app) as server:
            yield server.url, store


def run_batch(sim: SimBench, db: Path, **kwargs: Any):
    """A batch through the real Runner on a store of its own: another connection, as a
    ``rig run`` in a terminal would be."""
    with RecordStore.open(db) as store:
        hardware = BenchHardware(sim.bench, pin_factory=sim.pin_factory)
        try:
            return Runner(sim.bench, store, hardware, argv=["test"], **kwargs).run()
        finally:
            hardware.close()


class EventReader(threading.Thread):
    """Reads ``/api/events`` and keeps each bench document with the UTC time it arrived."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(daemon=True)
        self.response = requests.get(url + "/api/events", stream=True, timeout=30, **kwargs)
        self.response.raise_for_status()
        self.events: list[tuple[datetime, dict[str, Any]]] = []
        self.first = threading.Event()

    def run(self) -> None:
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line and line.startswith("data: "):
                    message = json.loads(line[6:])
                    self.events.append((datetime.now(UTC), message["bench"]))
                    self.first.set()
        except (requests.RequestException, AttributeError, ValueError):
            pass                     # closed by close(): the events so far are kept

    def close(self) -> None:
        """Stop reading now: shut the socket down first, so the reader's blocked receive
        returns at once instead of at the server's next keep-alive (15 s)."""
        sock = getattr(getattr(self.response.raw, "_connection", None), "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.response.close()
        self.join(timeout=5)
