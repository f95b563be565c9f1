"""The simulated twin of rig/actuators/gpio.py: mock GPIO pins wired to a virtual camera.

On the bench a GPIO pin drives a relay module (camera power) or a MOSFET gate (reset solenoid).
Here the same wiring is made between gpiozero's ``MockFactory`` pins and a ``VirtualCamera``:
the controller builds its ``GpioPower`` and ``GpioSolenoid`` on the mock factory exactly as it
would on ``lgpio``, and the camera powers up or feels its button pressed at the moment the pin
changes. Nothing in the controller knows it is simulated.

The seam is a ``MockPin`` subclass, ``LoadPin``: ``MockPin._change_state`` is the one place every
level change of a mock pin passes through (device writes, ``drive_high``/``drive_low``, pulls),
and ``_set_function`` the place where the device claims or gives back the pin. ``LoadPin``
hooks both and tells its listener whenever the wired load's energised state changes.

Electrical model (matches the recommended hardware, docs/gpio-serial.md §2.1-2.3):
- The load sees the line level. It is energised when the level equals its active level:
  HIGH for a MOSFET gate or an active-high relay board, LOW for an opto relay module.
- A pin that is an input and floating (before the controller claims it, after it closes it)
  sits at the load's idle level: a MOSFET gate has its gate-to-ground resistor, an opto module
  pulls its IN up through the LED. So an unclaimed pin never energises its load.
- Not modelled: the BCM283x boot-time pulls on GPIO 0-8 (``MockFactory`` knows only the fixed
  pulls of GPIO 2/3; the driver refuses 0-3 and warns about 4-8), and lgpio claiming a line as
  output at level 0 before writing the initial level (docs/gpio-serial.md §1.5): ``MockPin``
  switches to output at its current level, so an active-low board sees no pulse here although it may
  on a real Pi.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from gpiozero.pins.mock import MockFactory, MockPin

from rig.sim.camera import VirtualCamera


class LoadPin(MockPin):
    """A mock GPIO with a load on it: a relay-board input or a solenoid's MOSFET gate.

    Create it through the factory (``factory.pin(n, pin_class=LoadPin)``) before any device
    claims the pin, then ``connect()`` the load. ``energised`` is what the load sees now.
    """

    def __init__(self, factory: MockFactory, info: object) -> None:
        self._load_lock = threading.RLock()
        self._active_level: bool | None = None
        self._on_change: Callable[[bool], None] | None = None
        self._energised = False
        super().__init__(factory, info)

    @property
    def connected(self) -> bool:
        return self._on_change is not None

    @property
    def energised(self) -> bool:
        """Whether the wired load is energised now (False when nothing is connected)."""
        return self._energised

    def connect(self, *, active_high: bool, on_change: Callable[[bool], None]) -> None:
        """Wire a load that is energised at HIGH (``active_high``) or at LOW.

        ``on_change(energised)`` runs synchronously, in the thread that changed the pin, every
        time the load's state changes, and once now with the state the load is in.
        """
        with self._load_lock:
            if self._on_change is not None:
                raise ValueError(f"{self!r} already has a load wired to it")
            self._active_level = bool(active_high)
            self._on_change = on_change
            self._energised = False
            if self._function == "input" and self._pull == "floating":
                self._settle_to_idle()
            self._update(force=True)

    def disconnect(self) -> None:
        """Unwire the load; the pin is a plain mock pin again."""
        with self._load_lock:
            self._on_change = None
            self._active_level = None
            self._energised = False

    def _settle_to_idle(self) -> None:
        """A floating input is pulled to the load's idle level by the load's own resistor."""
        assert self._active_level is not None
        if self._active_level:
            self.drive_low()
        else:
            self.drive_high()

    def _update(self, *, force: bool = False) -> None:
        with self._load_lock:
            if self._on_change is None or self._active_level is None:
                return
            energised = bool(self._state) == self._active_level
            if energised == self._energised and not force:
                return
            self._energised = energised
            self._on_change(energised)

    def _change_state(self, value: bool) -> bool:
        with self._load_lock:
            changed = super()._change_state(value)
            self._update()
            return changed

    def _set_function(self, value: str) -> None:
        with self._load_lock:
            super()._set_function(value)
            if (value == "input" and self._pull == "floating"
                    and self._active_level is not None):
                self._settle_to_idle()
            self._update()


@dataclass
class GpioSlotWiring:
    """What ``wire_gpio_slot`` connected: the camera and the pins its power and button hang on."""

    camera: VirtualCamera
    power: LoadPin
    button: LoadPin | None

    def disconnect(self) -> None:
        """Unwire both loads (the camera keeps its last power and button state)."""
        self.power.disconnect()
        if self.button is not None:
            self.button.disconnect()


def _load_pin(factory: MockFactory, pin: int) -> LoadPin:
    existing = next((p for info, p in factory.pins.items() if info.name == f"GPIO{pin}"), None)
    if existing is not None and not isinstance(existing, LoadPin):
        raise ValueError(f"GPIO{pin} was created before it was wired (by a device or a "
                         f"factory.pin() call): wire the slot first, as a bench is wired "
                         f"before the controller claims its pins")
    created = factory.pin(pin, pin_class=LoadPin)
    assert isinstance(created, LoadPin)
    return created


def wire_gpio_slot(factory: MockFactory, camera: VirtualCamera, *, power_pin: int,
                   power_active_high: bool, button_pin: int | None,
                   button_active_high: bool = True) -> GpioSlotWiring:
    """Wire one bench slot: the relay on ``power_pin`` feeds ``camera``, the solenoid on
    ``button_pin`` (None: no solenoid) presses its reset button.

    ``*_active_high`` describe the hardware, like the bench file does: an opto relay module
    energises when its input is LOW (``power_active_high=False``). If the controller's
    ``GpioPower`` is built with the opposite polarity, the camera powers up as the device is
    constructed, as it would on the bench.

    Call before the devices are built on ``factory``. The camera is set to what the pins say at
    once (normally: unpowered, button released).
    """
    if button_pin is not None and button_pin == power_pin:
        raise ValueError(f"power and button cannot share GPIO{power_pin}")
    power = _load_pin(factory, power_pin)
    button = _load_pin(factory, button_pin) if button_pin is not None else None
    power.connect(active_high=power_active_high, on_change=camera.set_power)
    if button is not None:
        try:
            button.connect(active_high=button_active_high, on_change=camera.set_button)
        except BaseException:
            power.disconnect()
            raise
    return GpioSlotWiring(camera=camera, power=power, button=button)
