"""How a long-running ``rig sim`` part waits: until SIGTERM, Ctrl-C or an optional duration."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def until_stopped(duration: float | None) -> Iterator[Callable[[], None]]:
    """Install a SIGTERM handler for the block and yield ``wait()``, which returns on SIGTERM,
    Ctrl-C or after ``duration`` seconds. The handler is in place before the block prints its
    first line, so a supervisor that stops the part as soon as it reports gets a clean exit."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def wait() -> None:
        try:
            stop.wait(duration)
        except KeyboardInterrupt:
            pass

    try:
        yield wait
    finally:
        signal.signal(signal.SIGTERM, previous)
