"""How a long-running ``rig sim`` part waits: until SIGTERM, Ctrl-C or an optional duration."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Waiter:
    """``wait()`` returns on SIGTERM, Ctrl-C or after the duration; ``wait.stopped`` tells
    whether SIGTERM has already arrived (e.g. while the part was still being built)."""

    def __init__(self, duration: float | None) -> None:
        self.duration = duration
        self.event = threading.Event()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    def __call__(self) -> None:
        try:
            self.event.wait(self.duration)
        except KeyboardInterrupt:
            pass


@contextmanager
def until_stopped(duration: float | None) -> Iterator[Waiter]:
    """Install a SIGTERM handler for the block and yield ``wait()`` (a Waiter), which returns on
    SIGTERM, Ctrl-C or after ``duration`` seconds. The handler is in place before the block
    prints its first line, so a supervisor that stops the part as soon as it reports gets a
    clean exit; a SIGTERM before ``wait()`` is remembered (``wait.stopped``)."""
    wait = Waiter(duration)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: wait.event.set())
    try:
        yield wait
    finally:
        signal.signal(signal.SIGTERM, previous)
