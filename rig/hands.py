"""A slot's hands as the stages use them: power and button, every move written to the outputs
ledger before it happens, and what the rig knows of the unit's power.

The drivers (rig.wiring) switch outputs; this layer adds the two things a run needs around
them: the ledger (so a crash leaves a record of what is off or energised) and the knowledge of
whether the unit may be powered now. Serialised identity relies on that knowledge: a unit that
may still be on spoils its address group's later turns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from rig.actuators.base import ActuatorError, CappedButton
from rig.bench import Slot, describe_output
from rig.faults import BenchFault
from rig.recorder import Recorder
from rig.vocabulary import OutputKind, PowerKind
from rig.wiring import BenchHardware, SlotHardware


class SlotHands:
    """Power and button of one slot in one run. Opens the drivers on first use (a GPIO relay
    opens in its off state) and turns driver errors into BenchFault."""

    def __init__(self, hardware: BenchHardware, slot: Slot, rec: Recorder) -> None:
        self._hardware = hardware
        self.slot = slot
        self._rec = rec
        self._off_entry: int | None = None     # the ledger line of a power-off not undone yet
        self.off_once = False                  # the unit was powered off by this run
        self.on_again = False                  # ... and powered on again since

    @property
    def power_kind(self) -> PowerKind:
        return PowerKind(self.slot.power.kind)

    @property
    def power_target(self) -> str:
        return describe_output(self.slot.power)

    @property
    def may_be_on(self) -> bool:
        """Whether the unit may be powered (and answering) now, as far as the rig knows."""
        return not self.off_once or self.on_again

    def hardware(self) -> SlotHardware:
        try:
            return self._hardware.slot(self.slot.name)
        except (ActuatorError, ValueError) as exc:
            raise BenchFault(f"cannot open the slot's hardware: {exc}") from exc

    def button(self) -> CappedButton:
        button = self.hardware().button
        if button is None:
            raise BenchFault(f"slot {self.slot.name} has no reset-button solenoid: "
                             "a hard reset is impossible")
        return button

    # --- power ---------------------------------------------------------------------------------

    def cut_power(self, note: str) -> int:
        """Power the unit off, recorded first; returns its ledger line. A unit this run already
        holds off stays off under its existing line."""
        if self._off_entry is None or self.on_again:
            self._off_entry = self._rec.engaged(OutputKind.off_for(self.power_kind),
                                                self.power_target, note)
        act(self.hardware().power.off)
        self.off_once, self.on_again = True, False
        return self._off_entry

    def apply_power(self, note: str = "power back on") -> float:
        """Power the unit on; its power-off ledger line is cleared once the switch worked.
        Returns the monotonic time the switch acted (a hold is timed from there)."""
        act(self.hardware().power.on)
        powered_at = time.monotonic()
        self.on_again = True
        if self._off_entry is not None:
            self._rec.cleared(self._off_entry, note)
        return powered_at

    # --- button --------------------------------------------------------------------------------

    @contextmanager
    def pressed(self, limit: float, note: str) -> Iterator[CappedButton]:
        """The coil on for at most ``limit`` seconds (the driver's watchdog enforces it). Its
        ledger line is written before the coil moves and cleared only once the release worked
        (a failed release leaves it for make_safe and for recovery after a crash)."""
        button = self.button()
        entry = self._rec.engaged(OutputKind.SOLENOID_ON, describe_output(self.slot.button),
                                  note)
        with ExitStack() as stack:
            stack.callback(self._released, button, entry)    # runs after the hold has ended
            try:
                stack.enter_context(button.hold(limit))
            except (ActuatorError, ValueError) as exc:
                raise BenchFault(str(exc)) from exc
            yield button

    def _released(self, button: CappedButton, entry: int) -> None:
        if not button.energised:
            self._rec.cleared(entry, "released")

def act(action: Callable[[], None]) -> None:
    """Run a driver action; its failure is the bench's, not the unit's."""
    try:
        action()
    except (ActuatorError, ValueError) as exc:
        raise BenchFault(str(exc)) from exc
