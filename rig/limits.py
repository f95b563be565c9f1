"""Bench-wide limits every slot of a batch shares: coils energised at once, the power-on
schedule, the PoE boot budget per switch, and the roll-call lock.

The power-on schedule is where a large batch wins or loses time. Power-ons must be spaced
(inrush on a shared supply, PoE classification), so on a 48-slot bench the last unit powers on
47 spacings after the first. Which unit waits matters: a unit that boots in 45 s can afford to
start later than one that boots in 75 s. The schedule therefore grants each instant to the slot
whose unit needs longest after power-on, among the slots ready for it, and decides only just
before the instant (when every slot that settled at the same time is competing for it).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from rig.bench import Bench, PoeOutput, Slot
from rig.census import Interrupted

#: How often a waiter looks at its cancel event while nothing else wakes it (seconds).
POLL_S = 0.1


class PowerOnSchedule:
    """Power-on instants for the whole bench, at least ``spacing`` seconds apart, longest-boot
    first.

    ``reserve`` is asked for an instant no earlier than ``earliest`` (the end of the slot's
    settle) with a ``priority`` (how long its unit needs after power-on). The instant is granted
    ``lead`` seconds ahead (the solenoid goes in then, while the unit is still unpowered), to
    the highest-priority slot whose ``earliest`` it satisfies; ties go to the slot that asked
    first. A slot that is late for its grant gets ``now + lead``, never less lead.
    """

    def __init__(self, spacing: float, clock: Callable[[], float] = time.monotonic) -> None:
        if spacing < 0:
            raise ValueError("spacing must not be negative")
        self.spacing = spacing
        self._clock = clock
        self._cond = threading.Condition()
        self._waiting: dict[int, tuple[float, float]] = {}    # ticket → (priority, earliest)
        self._next_free = -math.inf
        self._tickets = itertools.count()

    def reserve(self, earliest: float, priority: float, lead: float,
                cancel: threading.Event) -> float:
        """Block until this slot is granted an instant; returns it (monotonic time). The caller
        powers on at that instant, not before. Raises Interrupted when ``cancel`` is set."""
        ticket = next(self._tickets)
        with self._cond:
            self._waiting[ticket] = (priority, earliest)
            self._cond.notify_all()              # a new competitor: waiters look again
            try:
                while True:
                    if cancel.is_set():
                        raise Interrupted("run stopped")
                    now = self._clock()
                    instant, chosen = self._next_grant()
                    decide_at = instant - lead
                    if chosen == ticket and now >= decide_at:
                        granted = max(instant, now + lead)
                        self._next_free = granted + self.spacing
                        return granted
                    wait = decide_at - now if chosen == ticket else POLL_S
                    self._cond.wait(min(max(wait, 0.001), POLL_S))
            finally:
                del self._waiting[ticket]
                self._cond.notify_all()

    def _next_grant(self) -> tuple[float, int]:
        """The next instant anyone can have, and who gets it."""
        instant = max(self._next_free, min(e for _, e in self._waiting.values()))
        due = [t for t, (_, e) in self._waiting.items() if e <= instant]
        return instant, max(due, key=lambda t: (self._waiting[t][0], -t))


@dataclass
class Limits:
    """Bench-wide limits every slot shares: solenoids energised at once, the power-on
    schedule, PoE boot places per budgeted switch, and the lock that serialises identity
    roll calls."""

    solenoids: threading.BoundedSemaphore
    power_on: PowerOnSchedule
    roll_call: threading.Lock = field(default_factory=threading.Lock)
    learned: set[str] = field(default_factory=set)   # MACs slots learned during this run
    boots: dict[str, threading.BoundedSemaphore] = field(default_factory=dict)

    @classmethod
    def for_bench(cls, bench: Bench) -> Limits:
        boots = {name: threading.BoundedSemaphore(s.boots_at_once)
                 for name, s in bench.switches.items() if s.boots_at_once is not None}
        return cls(threading.BoundedSemaphore(bench.max_solenoids_on),
                   PowerOnSchedule(bench.power_on_spacing_seconds / bench.time_scale),
                   boots=boots)

    @contextmanager
    def boot_turn(self, slot: Slot, cancel: threading.Event) -> Iterator[None]:
        """Hold one of the switch's boot places from before power-on until the unit answers
        (its peak draw); a no-op for slots not on a budgeted PoE switch."""
        gate = self.boots.get(slot.power.switch) if isinstance(slot.power, PoeOutput) else None
        if gate is None:
            yield
            return
        with holding(gate, cancel):
            yield

    def solenoid_turn(self, cancel: threading.Event) -> AbstractContextManager[None]:
        """Wait for a free solenoid (the bench's limit on coils energised at once)."""
        return holding(self.solenoids, cancel)


@contextmanager
def holding(gate: threading.BoundedSemaphore | threading.Lock,
             cancel: threading.Event) -> Iterator[None]:
    """Hold ``gate`` for the block, waiting for it no longer than the run lasts."""
    while not gate.acquire(timeout=POLL_S):
        if cancel.is_set():
            raise Interrupted("run stopped")
    try:
        yield
    finally:
        gate.release()
