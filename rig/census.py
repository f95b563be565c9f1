"""The bench's SADP census: one background prober that every slot reads from.

Slots wait for their unit to go quiet after power-off and to answer again after boot. If each
slot probed for itself, a 48-slot bench would send 48 probes per round; instead one thread
probes at a bounded rate (one discovery window per ``interval``) and keeps, per MAC, the last
reply and when it was seen. Waits are answered from that table.

On a VLAN bench (one VLAN per slot, the controller on ``eth0.101`` … ``eth0.124``, every unit on
192.168.1.64) one census probes every slot's interface in the same window and keeps, per round,
which units answered on which interface: a slot's unit is the one heard on its VLAN
(``heard_on``, ``unit_on``), and ``Sighting.interface`` says where a unit was last heard.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rig.camera.discovery import (
    RECV_BUFFER,
    REPLY_QUEUE_COST,
    DiscoveryError,
    DiscoveryResult,
    run_discovery,
)
from rig.camera.sadp import SadpDevice

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM) while waiting."""


class SeveralUnits(Exception):
    """More than one unit answered on an interface that should lead to one slot's unit (a VLAN
    missing on the switch, or two units on one port)."""

    def __init__(self, interface: str, macs: Collection[str]) -> None:
        super().__init__(f"{len(macs)} units answered SADP on {interface}, one expected: "
                         f"{', '.join(sorted(macs))}")
        self.interface = interface
        self.macs = frozenset(macs)


@dataclass(frozen=True)
class Sighting:
    device: SadpDevice
    seen_at: float          # monotonic time of the round that saw it
    interface: str | None = None          # where that round heard it (first of heard_on)
    heard_on: tuple[str, ...] = field(default=())   # every interface that round heard it on


class _Round(NamedTuple):
    start: float
    end: float
    macs: frozenset[str]
    by_interface: Mapping[str, frozenset[str]]     # interface → MACs heard on it


class Census:
    """Probe the bench network in the background; answer "is this unit there, since when?".

    ``window`` is one discovery's listening time, ``interval`` the time between round starts.
    ``bind``/``interface`` pin the probes to the bench network (never the default interface
    in tests: pass bind="127.0.0.1" for a loopback bench); ``interfaces`` probes several at once
    (a VLAN bench's ``eth0.<vid>``) and records which units answered on which. The thread
    belongs to the network namespace of whoever calls ``start()``. ``expect`` (the bench
    file's MACs) lets the first round end as soon as every one of them has answered: the batch
    waits on that round before any output moves, and strangers cannot be expected anyway; it
    also sizes that round's receive buffer for the bench and re-probes, by MAC, the units it
    has not heard; later rounds keep a buffer sized for the bench. ``drops`` counts the
    replies the kernel dropped over all rounds (with ``drop_hint``): a unit missed that way is
    a full queue, not a unit gone.
    """

    def __init__(self, *, bind: str | None = None, interface: str | None = None,
                 interfaces: Sequence[str] | None = None,
                 window: float = 1.0, interval: float = 2.0, expect: Collection[str] = (),
                 clock: Callable[[], float] = time.monotonic,
                 probe: Callable[..., DiscoveryResult] = run_discovery) -> None:
        if window <= 0 or interval < window:
            raise ValueError("census needs 0 < window <= interval")
        self.bind, self.interface = bind, interface
        self.interfaces = tuple(interfaces) if interfaces is not None else None
        self.window, self.interval = window, interval
        self._clock = clock
        self._probe = probe
        self._expect = tuple(expect)
        self._table: dict[str, Sighting] = {}
        self._rounds: list[_Round] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        #: Replies the kernel dropped over all rounds (full receive queues), and what to do
        #: about it (the last round's hint): a unit missed that way is not a unit gone.
        self.drops = 0
        self.drop_hint: str | None = None

    # --- life -------------------------------------------------------------------------------------

    def start(self) -> Census:
        self._thread = threading.Thread(target=self._loop, name="sadp-census", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.window + 2)

    def __enter__(self) -> Census:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        first = True
        while not self._stop.is_set():
            started = self._clock()
            try:
                extra: dict[str, object] = {}
                if first and self._expect:
                    extra["expect"] = self._expect
                elif self._expect:
                    # Every round hears the whole bench in one burst: keep the buffer sized
                    # for it (the first round's comes from ``expect``).
                    extra["receive_buffer"] = max(RECV_BUFFER,
                                                  len(self._expect) * REPLY_QUEUE_COST)
                if self.interfaces is not None:
                    extra["interfaces"] = self.interfaces
                first = False
                result = self._probe(timeout=self.window, bind=self.bind,
                                     interface=self.interface, **extra)
                self._record(result, started)
            except (DiscoveryError, OSError) as exc:
                message = f"SADP census failed: {exc}"
                if not self.errors or self.errors[-1] != message:
                    log.error("%s", message)
                    self.errors.append(message)
            self._stop.wait(max(self.interval - (self._clock() - started), 0.0))

    def _record(self, result: DiscoveryResult, started: float) -> None:
        """File one round's replies in the table and the round list; count its drops."""
        macs = frozenset(d.mac for d in result.devices)
        heard: Mapping[str, tuple[str, ...]] = getattr(result, "heard_on", None) or {}
        by_interface: dict[str, set[str]] = {}
        for mac, tags in heard.items():
            for tag in tags:
                by_interface.setdefault(tag, set()).add(mac)
        ended = self._clock()
        drops = getattr(result, "drops", 0) or 0
        with self._cond:
            if drops:
                self.drops += drops
                self.drop_hint = result.drop_hint
            for device in result.devices:
                tags = tuple(heard.get(device.mac, ()))
                self._table[device.mac] = Sighting(device, started,
                                                   tags[0] if tags else None, tags)
            self._rounds.append(_Round(started, ended, macs, {
                tag: frozenset(found) for tag, found in by_interface.items()}))
            del self._rounds[:-64]
            self._cond.notify_all()

    # --- questions --------------------------------------------------------------------------------

    def last(self, mac: str) -> Sighting | None:
        with self._cond:
            return self._table.get(mac)

    def present(self) -> dict[str, SadpDevice]:
        """Units seen in either of the last two complete rounds (a unit whose one reply was
        lost is still on the bench: attribution must count it)."""
        with self._cond:
            macs = frozenset().union(*(r.macs for r in self._rounds[-2:]))
            return {m: self._table[m].device for m in macs}

    def wait_for(self, predicate: Callable[[], object], timeout: float,
                 cancel: threading.Event | None = None) -> object:
        """Wait until ``predicate()`` (evaluated after each census round) is truthy; returns its
        value, or None at ``timeout``. Raises Interrupted when ``cancel`` is set."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                if cancel is not None and cancel.is_set():
                    raise Interrupted("run stopped")
                value = predicate()
                if value:
                    return value
                left = deadline - self._clock()
                if left <= 0 or self._stop.is_set():
                    return None
                self._cond.wait(min(left, 0.2))

    def seen_after(self, mac: str, since: float, timeout: float,
                   cancel: threading.Event | None = None) -> SadpDevice | None:
        """The unit's reply from a round that started after ``since`` (it is up again)."""
        def fresh() -> SadpDevice | None:
            sighting = self._table.get(mac)
            return sighting.device if sighting and sighting.seen_at >= since else None
        result = self.wait_for(fresh, timeout, cancel)
        return result if isinstance(result, SadpDevice) else None

    def gone_after(self, mac: str, since: float, timeout: float,
                   cancel: threading.Event | None = None, rounds: int = 2) -> bool:
        """True once ``rounds`` consecutive rounds started after ``since`` did not see the unit
        (one missing reply can be a lost datagram, not a unit that went away)."""
        def gone() -> bool:
            run = 0
            for start, _, macs, _ in self._rounds:
                if start < since:
                    continue
                run = run + 1 if mac not in macs else 0
                if run >= rounds:
                    return True
            return False
        return bool(self.wait_for(gone, timeout, cancel))

    def rounds_after(self, since: float, count: int, timeout: float,
                     cancel: threading.Event | None = None) -> list[frozenset[str]] | None:
        """The MACs of each of the first ``count`` complete rounds started after ``since``
        (None at timeout)."""
        def first() -> list[frozenset[str]] | None:
            found = [r.macs for r in self._rounds if r.start >= since][:count]
            return found if len(found) == count else None
        result = self.wait_for(first, timeout, cancel)
        return result if isinstance(result, list) else None

    def round_started_after(self, since: float) -> bool:
        with self._cond:
            return any(r.start >= since for r in self._rounds)

    # --- per interface (VLAN bench) ---------------------------------------------------------------

    def heard_on(self, interface: str, rounds: int = 2) -> dict[str, SadpDevice]:
        """The units that answered on ``interface`` in any of the last ``rounds`` complete
        rounds (two by default: one lost datagram does not empty a slot), MAC → latest reply."""
        if rounds < 1:
            raise ValueError("rounds must be at least 1")
        with self._cond:
            macs = frozenset().union(*(r.by_interface.get(interface, frozenset())
                                       for r in self._rounds[-rounds:]))
            return {m: self._table[m].device for m in sorted(macs)}

    def unit_on(self, interface: str, since: float, timeout: float,
                cancel: threading.Event | None = None) -> SadpDevice | None:
        """The unit heard on ``interface`` in the first round started after ``since`` that heard
        anyone there: how a VLAN bench names a slot's unit. None at ``timeout``; SeveralUnits
        when that round heard more than one (the slot's VLAN is not isolated)."""
        def first() -> SadpDevice | None:
            for r in self._rounds:
                if r.start < since:
                    continue
                found = r.by_interface.get(interface)
                if not found:
                    continue
                if len(found) > 1:
                    raise SeveralUnits(interface, found)
                (mac,) = found
                return self._table[mac].device
            return None
        result = self.wait_for(first, timeout, cancel)
        return result if isinstance(result, SadpDevice) else None
