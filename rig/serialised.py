"""Serialised identity: when every reset unit answers on one address (192.168.1.64 on a real
bench), slots sharing it take turns from before power-on until the verdict, and each unit is
powered off ("parked") at the end of its turn, so an HTTP answer on that address comes from the
one unit whose turn it is. The parked units are powered back on once the batch is done.

Two layers, so the rule can be tested without sockets or hardware:
- ``AddressTurns``: the bench-wide bookkeeping (groups, who is still on, the turn lock, spoiled
  addresses);
- ``SlotTurn``: one slot's turn in one run, the context manager the runner holds around the
  slot's procedure and verification (acquire, park, spoil, un-park). The procedure only says
  when its unit is off (``unit_off``) and when it needs the address (``acquire``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from types import TracebackType

from rig.bench import Bench, Slot
from rig.census import Interrupted
from rig.faults import BenchFault
from rig.hands import SlotHands
from rig.limits import POLL_S, PowerOnSchedule, holding
from rig.recorder import Recorder
from rig.vocabulary import EvidenceKind, IdentityStrategy

log = logging.getLogger(__name__)


class AddressSpoiled(Exception):
    """A unit of the group may still be powered on the shared address (its power-off or its
    parking failed): no turn can make another unit the only one there."""


class AddressTurns:
    """Serialised identity: slots whose units come back on the same address (on a real bench
    every reset unit answers on 192.168.1.64) take turns, from before power-on until the
    verdict, and each unit is powered off ("parked") at the end of its turn. An HTTP answer on
    that address then comes from the one unit whose turn it is.

    A group's first turn starts only once every unit of the group is off (or its slot has
    finished): a used unit still powered on that address would answer in another's turn.
    """

    def __init__(self, groups: Mapping[str, Collection[str]]) -> None:
        shared = {address: frozenset(slots) for address, slots in groups.items()
                  if len(slots) > 1}
        self._address_of = {slot: address for address, slots in shared.items()
                            for slot in slots}
        self._still_on = {address: set(slots) for address, slots in shared.items()}
        self._locks = {address: threading.Lock() for address in shared}
        self._spoiled: dict[str, str] = {}       # address → why no turn can be alone there
        self._cond = threading.Condition()

    @classmethod
    def for_bench(cls, bench: Bench, slots: Sequence[Slot],
                  default_address: Callable[[Slot], str]) -> AddressTurns:
        """The groups of ``slots`` when the bench's identity strategy is "serialised" (none
        otherwise); ``default_address`` gives a slot's address when the bench file has none."""
        if bench.network.identity != IdentityStrategy.SERIALISED:
            return cls({})
        groups: dict[str, list[str]] = {}
        for slot in slots:
            groups.setdefault(slot.address or default_address(slot), []).append(slot.name)
        return cls(groups)

    def address_of(self, slot: str) -> str | None:
        """The address ``slot`` shares with other slots, or None if its unit is alone on it."""
        return self._address_of.get(slot)

    def off(self, slot: str) -> None:
        """``slot``'s unit is off (or the slot is done and will not power it on)."""
        with self._cond:
            address = self._address_of.get(slot)
            if address is not None:
                self._still_on[address].discard(slot)
                self._cond.notify_all()

    def spoil(self, slot: str, why: str) -> None:
        """``slot``'s unit may still be on (``why``): every later turn on its address fails."""
        with self._cond:
            address = self._address_of.get(slot)
            if address is not None:
                self._spoiled.setdefault(address, f"slot {slot}'s unit may still be powered on "
                                                  f"{address} ({why})")
                self._cond.notify_all()

    @contextmanager
    def turn(self, slot: str, cancel: threading.Event) -> Iterator[None]:
        """Hold the address for ``slot``; a no-op when its unit is alone on its address.
        Raises AddressSpoiled when another unit of the group may still be on it."""
        address = self._address_of.get(slot)
        if address is None:
            yield
            return
        with self._cond:
            while True:
                if address in self._spoiled:
                    raise AddressSpoiled(self._spoiled[address])
                if not self._still_on[address] - {slot}:
                    break
                if cancel.is_set():
                    raise Interrupted("run stopped")
                self._cond.wait(POLL_S)
        with holding(self._locks[address], cancel):
            if address in self._spoiled:
                raise AddressSpoiled(self._spoiled[address])
            yield


class SlotTurn:
    """One slot's serialised-identity turn in one run; a no-op for a slot alone on its address.

    The runner enters it around the slot's procedure and verification. On exit a unit that
    had its turn is parked, the turn is released, and the group goes on without the unit only
    if the unit is known to be off; otherwise no later turn could make another unit the only
    one on the address, so the group's later turns are spoiled. Exit never raises: the verdict
    must still be recorded.
    """

    def __init__(self, turns: AddressTurns, hands: SlotHands, rec: Recorder,
                 cancel: threading.Event) -> None:
        self._turns = turns
        self._hands = hands
        self._rec = rec
        self._cancel = cancel
        self._slot = hands.slot.name
        self._held = ExitStack()
        self.parked_entry: int | None = None   # the ledger line of the parking power-off
        self._acquired = False

    @property
    def address(self) -> str | None:
        """The address this slot's unit shares with others, None when it is alone on it."""
        return self._turns.address_of(self._slot)

    def unit_off(self) -> None:
        """The procedure has powered the unit off: the group's first turn may not wait for
        it."""
        self._turns.off(self._slot)

    def acquire(self) -> None:
        """Wait until this unit may be the only one on its shared address, and hold that until
        the runner leaves the turn. Raises BenchFault when the group is spoiled."""
        address = self.address
        if address is None or self._acquired:      # a second reset keeps the turn it has
            return
        with self._rec.step("address turn", f"one unit at a time on {address}") as step_id:
            try:
                self._held.enter_context(self._turns.turn(self._slot, self._cancel))
            except AddressSpoiled as exc:
                raise BenchFault(str(exc)) from exc
            self._held.callback(self._park, address)
            self._acquired = True
            self._rec.evidence(EvidenceKind.IDENTITY_STRATEGY,
                               {"strategy": str(IdentityStrategy.SERIALISED),
                                "address": address}, step_id)

    def _park(self, address: str) -> None:
        """Power the unit off at the end of its turn, so the next unit on ``address`` is alone
        (``unpark`` powers it back on when the batch is done)."""
        with self._rec.step("park", f"{self._hands.power_target} off: the next unit on "
                                    f"{address} must answer alone"):
            self.parked_entry = self._hands.cut_power("parked: serialised identity")

    def __enter__(self) -> SlotTurn:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            self._held.close()
        except Exception as error:  # noqa: BLE001 - the verdict must still be recorded
            self._rec.note(f"could not park the unit: {error}")
            log.error("slot %s: could not park the unit: %s", self._slot, error)
        if self._hands.may_be_on:
            self._turns.spoil(self._slot, "its power-off or its parking did not happen"
                              if not self._hands.off_once else "it could not be parked")
        else:
            self._turns.off(self._slot)

    def unpark(self, schedule: PowerOnSchedule, cancel: threading.Event) -> None:
        """After the batch: power a parked unit back on at an instant of the bench's power-on
        schedule (they may all answer on one address now). Raises Interrupted, BenchFault."""
        if self.parked_entry is None:
            return
        at = schedule.reserve(time.monotonic(), 0.0, 0.0, cancel)
        if cancel.wait(max(at - time.monotonic(), 0.0)):
            raise Interrupted("run stopped")
        self._hands.apply_power("powered back on after the batch")
        self.parked_entry = None
