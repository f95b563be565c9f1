"""From a bench file to live drivers: each slot's power and button, opened once and closed together.

The bench (rig.bench) says what exists; this module opens the drivers for it (labgrid's resources
→ drivers): GPIO outputs on the bench's pin factory, serial relay boards, PoE switches. Endpoints
are injected where the simulator provides the other side (a MockFactory wired to virtual cameras),
so the code that drives a simulated bench is the code that drives a real one.

With an OutputGuard, a signal or an exit puts every opened output at rest (``make_safe``):
solenoids released, PoE ports the rig turned off turned back on. Closing then releases the
drivers: a GPIO relay returns to off, a serial relay keeps its state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rig.actuators.base import ActuatorError, CappedButton, OutputGuard, PowerControl
from rig.actuators.gpio import GpioPower, GpioSolenoid, make_pin_factory
from rig.actuators.serial_relay import SerialRelayBoard
from rig.bench import Bench, BenchError, GpioOutput, PoeOutput, RelayOutput, Slot

if TYPE_CHECKING:
    from rig.actuators.poe import PoeSwitch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlotHardware:
    """One slot's hands."""

    slot: Slot
    power: PowerControl
    button: CappedButton | None


class BenchHardware:
    """The drivers of one bench, opened lazily (a slot that is not used is never touched) and
    closed together. Keep this object alive while outputs are in use: gpiozero closes devices
    nobody references."""

    def __init__(self, bench: Bench, *, guard: OutputGuard | None = None,
                 pin_factory: Any = None) -> None:
        self.bench = bench
        self.guard = guard
        self._pin_factory = pin_factory
        self._switches: dict[str, PoeSwitch] = {}
        self._boards: dict[str, SerialRelayBoard] = {}
        self._slots: dict[str, SlotHardware] = {}
        self._closed = False
        # Slots open from their own worker threads; two slots on one relay board or switch
        # must share one driver, never open the port twice.
        self._lock = threading.RLock()
        if guard is not None:       # one entry for the whole bench: a no-op once closed
            guard.register(self._make_safe_if_open)

    @property
    def pin_factory(self) -> Any:
        if self._pin_factory is None:
            self._pin_factory = make_pin_factory(self.bench.gpio_factory)
        return self._pin_factory

    def switch(self, name: str) -> PoeSwitch:
        if name not in self._switches:
            from rig.actuators.poe import PoeSwitch  # pysnmp costs ~0.1 s: only when needed

            cfg = self.bench.switches[name]
            try:
                self._switches[name] = PoeSwitch(
                    cfg.host, cfg.port, version=cfg.version, community=cfg.community.get(),
                    user=cfg.user, auth_key=cfg.auth_key.get() if cfg.auth_key else None,
                    priv_key=cfg.priv_key.get() if cfg.priv_key else None,
                    auth_protocol=cfg.auth_protocol, priv_protocol=cfg.priv_protocol,
                    mib=cfg.mib, group=cfg.group, timeout=cfg.timeout, retries=cfg.retries,
                    name=f"switch {name} ({cfg.host}:{cfg.port})")
            except BenchError as exc:
                raise ActuatorError(f"switch {name}", str(exc)) from None
        return self._switches[name]

    def connect_switches(self, slots: Iterable[Slot]) -> None:
        """Open the connections to the switches ``slots`` are powered from, ahead of their
        first command. Failures are left for that command to report (as the slot's bench
        fault): this is only a head start."""
        names = {s.power.switch for s in slots if isinstance(s.power, PoeOutput)}
        for name in sorted(names):
            try:
                with self._lock:
                    if self._closed:
                        return
                    switch = self.switch(name)
                switch.connect()
            except Exception as exc:  # noqa: BLE001 - the first real command reports it
                log.debug("bench %s: switch %s not opened ahead: %s", self.bench.name, name,
                          exc)

    def board(self, name: str) -> SerialRelayBoard:
        if name not in self._boards:
            cfg = self.bench.relay_boards[name]
            board = SerialRelayBoard(cfg.port, protocol=cfg.protocol, channels=cfg.channels,
                                     baudrate=cfg.baudrate, name=f"relay board {name}")
            self._boards[name] = board
        return self._boards[name]

    def slot(self, name: str) -> SlotHardware:
        """The drivers of slot ``name``, opened on first use (thread-safe)."""
        with self._lock:
            if self._closed:
                raise ActuatorError(f"bench {self.bench.name}", "hardware already closed")
            if name not in self._slots:
                slot = self.bench.slot(name)
                self._slots[name] = SlotHardware(slot, self._power(slot), self._button(slot))
            return self._slots[name]

    def _power(self, slot: Slot) -> PowerControl:
        spec = slot.power
        label = f"slot {slot.name} power"
        if isinstance(spec, GpioOutput):
            return GpioPower(spec.pin, active_high=spec.active_high, factory=self.pin_factory,
                             name=f"{label} (GPIO {spec.pin})")
        if isinstance(spec, RelayOutput):
            return self.board(spec.board).power(spec.channel, name=label)
        assert isinstance(spec, PoeOutput)
        return self.switch(spec.switch).port(spec.port)

    def _button(self, slot: Slot) -> CappedButton | None:
        spec = slot.button
        cap = self.bench.solenoid_max_on_seconds
        label = f"slot {slot.name} button"
        if spec is None:
            return None
        if isinstance(spec, GpioOutput):
            return GpioSolenoid(spec.pin, factory=self.pin_factory, max_on_seconds=cap,
                                active_high=spec.active_high, name=f"{label} (GPIO {spec.pin})")
        assert isinstance(spec, RelayOutput)
        return self.board(spec.board).solenoid(spec.channel, max_on_seconds=cap, name=label)

    def make_safe(self) -> list[str]:
        """Rest state for every opened output; returns the errors (never raises)."""
        errors: list[str] = []
        with self._lock:
            slots, switches = list(self._slots.values()), list(self._switches.values())
        for hw in slots:
            if hw.button is not None:
                try:
                    hw.button.release()
                except Exception as exc:  # noqa: BLE001 - every output must get its chance
                    errors.append(str(exc))
        for switch in switches:
            try:
                switch.restore_ports()
            except ActuatorError as exc:
                errors.append(str(exc))
        return errors

    def _make_safe_if_open(self) -> None:
        if not self._closed:
            for error in self.make_safe():
                log.error("bench %s: %s", self.bench.name, error)

    def close(self, rest: bool = True) -> None:
        """Release every driver; first put outputs in their rest state unless ``rest`` is False
        (an operator's explicit "power off" stays off; solenoids are released regardless)."""
        if self._closed:
            return
        errors = self.make_safe() if rest else []
        for hw in self._slots.values():
            for part in (hw.button, hw.power):
                if part is not None:
                    try:
                        part.close()
                    except Exception as exc:  # noqa: BLE001
                        errors.append(str(exc))
        for closable in [*self._boards.values(), *self._switches.values()]:
            try:
                closable.close()
            except Exception as exc:  # noqa: BLE001
                errors.append(str(exc))
        self._closed = True
        for error in errors:
            log.error("closing bench %s: %s", self.bench.name, error)

    def __enter__(self) -> BenchHardware:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the rest state of one slot's outputs: one set of rules for `rig safe` and the guardian ----

def rest_button(hw: SlotHardware) -> None:
    """A released solenoid: the only state a coil survives indefinitely."""
    if hw.button is not None:
        hw.button.release()


def rest_power(hw: SlotHardware) -> None:
    """A slot's power at rest: a PoE port on (a switch powers its ports unless told otherwise),
    a relay off (its unpowered state, the one a dead controller leaves it in)."""
    if isinstance(hw.slot.power, PoeOutput):
        hw.power.on()
    else:
        hw.power.off()
