"""Raspberry Pi GPIO drivers: a relay channel for camera power and a solenoid on the reset button.

Both are thin wrappers around a gpiozero ``OutputDevice``. The one hardware seam is the pin
factory (docs/gpio-serial.md §1.2): ``make_pin_factory("lgpio")`` on the bench, ``"mock"`` in tests
and in the simulator, and every device is handed its factory explicitly. ``Device.pin_factory``
is never set, so nothing global changes and two benches (or two tests) cannot share pins.

Safe state. Every output starts, and is returned on close, signal or exit, in its *off* state:
camera unpowered, solenoid released. A reset bench's fail-safe is "no control → camera
unpowered" (normally-open relay contact, docs/gpio-serial.md §2.2), and a released solenoid is the
only state a coil survives indefinitely (docs/gpio-serial.md §2.4).

What software cannot do, and the hardware must: gpiozero's own exit cleanup only closes
devices of the *global* factory (``gpiozero.devices._devices_shutdown``), never runs on SIGTERM
or SIGKILL, and a Raspberry Pi kernel keeps a released line at its last level unless
``dtparam=strict_gpiod`` is set (docs/gpio-serial.md §1.6). So register the outputs with an
``OutputGuard`` (done here when ``guard=`` is given), and fit resistors that make a floating pin
mean "off": a gate-to-ground resistor on the solenoid MOSFET (docs/gpio-serial.md §2.3), an opto
relay module whose input idles high (docs/gpio-serial.md §2.2).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from types import MappingProxyType

from gpiozero import Factory, GPIOZeroError, OutputDevice, PinUnknownPi

from rig.actuators.base import (
    DEFAULT_MAX_ON_SECONDS,
    ActuatorError,
    CappedButton,
    OutputGuard,
    PowerReading,
    PowerState,
)
from rig.vocabulary import BenchFaultKind

log = logging.getLogger(__name__)


class GpioError(ActuatorError):
    """A GPIO chip or pin failed (or cannot be opened): a bench fault."""

    kind = BenchFaultKind.GPIO

#: Names accepted by ``make_pin_factory``, as gpiozero names them in GPIOZERO_PIN_FACTORY.
FACTORY_NAMES = ("mock", "lgpio", "rpigpio", "pigpio", "native")

#: Highest BCM number on the 40-pin header (GPIO 0-27).
MAX_BCM_PIN = 27

#: Header pins the rig never drives, and why (docs/gpio-serial.md §2.1; BCM numbering).
RESERVED_PINS: MappingProxyType[int, str] = MappingProxyType({
    0: "ID_SD, the HAT ID EEPROM bus: the firmware switches it to I2C at boot to probe for a HAT",
    1: "ID_SC, the HAT ID EEPROM bus: the firmware switches it to I2C at boot to probe for a HAT",
    2: "SDA1 (I2C): it has a fixed 1.8 kOhm pull-up on the board, so it is high whenever it is "
       "not driven, which switches an active-high load on",
    3: "SCL1 (I2C): it has a fixed 1.8 kOhm pull-up on the board, so it is high whenever it is "
       "not driven, which switches an active-high load on",
    14: "TXD0 (UART): it goes high for a while during boot, so a load on it fires at every boot",
    15: "RXD0 (UART): it belongs to the serial console and reads high at boot",
})

#: On BCM283x (Pi 1-4) GPIO 0-8 come out of reset as inputs with the internal pull-up enabled
#: (BCM2835 ARM Peripherals, table 6-31; docs/gpio-serial.md §2.1). 0-3 are refused outright above.
BOOT_PULL_UP_PINS = frozenset(range(0, 9))

#: Import path and class of each real factory; imported only when asked for, because each
#: pulls in its own C library (lgpio, RPi.GPIO, pigpio) that exists only where it is installed.
_REAL_FACTORIES: MappingProxyType[str, tuple[str, str]] = MappingProxyType({
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
})

#: What to install when a factory's library is missing (module name as ImportError reports it).
_INSTALL_HINTS: MappingProxyType[str, str] = MappingProxyType({
    "lgpio": "install it with 'pip install lgpio' (or 'apt install python3-lgpio' on "
             "Raspberry Pi OS)",
    "RPi": "install it with 'pip install RPi.GPIO' (or 'apt install python3-rpi.gpio'); "
           "it does not support the Pi 5, use 'lgpio' there",
    "pigpio": "install it with 'pip install pigpio' and run the pigpiod daemon; "
              "it does not support the Pi 5, use 'lgpio' there",
})

_PART = "GPIO"


def make_pin_factory(name: str) -> Factory:
    """A new gpiozero pin factory by name: "mock", "lgpio", "rpigpio", "pigpio" or "native".

    Each call returns a fresh factory; pass it to devices (``factory=``) and close it when the
    bench shuts down. "mock" works anywhere (tests, simulator). The real factories are imported
    only here, so a machine without their library can still run everything else.

    Raises ValueError for an unknown name, and ActuatorError (a bench fault, with what to do
    about it) when the library is missing or the machine is not a Raspberry Pi.
    """
    if not isinstance(name, str):
        raise ValueError(f"GPIO pin factory name must be a string, not {name!r}; "
                         f"choose one of: {', '.join(FACTORY_NAMES)}")
    key = name.strip().lower()
    if key == "mock":
        from gpiozero.pins.mock import MockFactory
        return MockFactory()
    if key not in _REAL_FACTORIES:
        raise ValueError(f"unknown GPIO pin factory {name!r}; "
                         f"choose one of: {', '.join(FACTORY_NAMES)}")
    module_name, class_name = _REAL_FACTORIES[key]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or "?"
        hint = _INSTALL_HINTS.get(missing, f"its import failed: {exc}")
        raise GpioError(_PART, f"pin factory {key!r} needs the {missing!r} Python "
                                   f"library, which is not installed: {hint}") from exc
    factory_class = getattr(module, class_name)
    try:
        return factory_class()
    except PinUnknownPi as exc:
        raise GpioError(_PART, f"pin factory {key!r} cannot start: this machine is not "
                                   f"a Raspberry Pi ({exc}); use 'mock' for a simulated "
                                   f"bench") from exc
    except GPIOZeroError as exc:
        raise GpioError(_PART, f"pin factory {key!r} cannot start: {exc}") from exc
    except PermissionError as exc:
        raise GpioError(_PART, f"pin factory {key!r} cannot open the GPIO chip: {exc}; "
                                   f"the service user must be in the 'gpio' group") from exc
    except OSError as exc:
        # lgpio also fails here when the working directory is not writable (it creates a
        # .lgd-nfy pipe there; docs/gpio-serial.md §1.4), pigpio when pigpiod is not reachable.
        raise GpioError(_PART, f"pin factory {key!r} cannot start: {exc} (lgpio needs a "
                                   f"writable working directory or LG_WD=/tmp; pigpio needs "
                                   f"the pigpiod daemon)") from exc
    except Exception as exc:  # noqa: BLE001 - lgpio raises its own lgpio.error, not an OSError
        raise GpioError(_PART, f"pin factory {key!r} cannot start: "
                                   f"{type(exc).__name__}: {exc}") from exc


def validate_output_pin(pin: int, *, active_high: bool, role: str) -> None:
    """Refuse a pin the rig must not drive; warn about one that misbehaves while Linux boots.

    ``role`` names the load in the messages ("camera power relay", "reset solenoid").
    Refused (ValueError): anything outside BCM 0-27, and the pins in ``RESERVED_PINS``.
    Warned (logging): an active-high load on GPIO 4-8, which are pulled up from power-on until
    the controller claims them, so the load is *on* through every boot and whenever the service
    is down (docs/gpio-serial.md §2.1). Active-low loads are fine there: pulled up means off.
    """
    if isinstance(pin, bool) or not isinstance(pin, int):
        raise ValueError(f"{role}: GPIO pin must be a BCM number (int), not {pin!r}")
    if not 0 <= pin <= MAX_BCM_PIN:
        raise ValueError(f"{role}: GPIO{pin} is not on the header; BCM numbers are "
                         f"0-{MAX_BCM_PIN}")
    if pin in RESERVED_PINS:
        raise ValueError(f"{role}: GPIO{pin} is reserved: {RESERVED_PINS[pin]}. "
                         f"Use a pin from GPIO 16, 17, 22-27")
    if active_high and pin in BOOT_PULL_UP_PINS:
        log.warning("%s on GPIO%d is active-high, but GPIO 0-8 are pulled up from power-on "
                    "until the controller claims them: the load is on during every boot and "
                    "whenever the controller is not running. Prefer GPIO 16, 17 or 22-27 "
                    "(pulled down at boot) or an active-low driver", role, pin)


def _claim(pin: int, active_high: bool, factory: Factory, part: str) -> OutputDevice:
    """An output in its off state. gpiozero errors (pin in use, bad factory) become bench faults.

    ``initial_value=False`` makes gpiozero write the inactive level as the pin becomes an output.
    With lgpio an active-low load still sees a few microseconds of "on" while the line is claimed
    at level 0 before the inactive level is written (docs/gpio-serial.md §1.5, gpiozero PR #1177).
    """
    try:
        return OutputDevice(pin, active_high=active_high, initial_value=False,
                            pin_factory=factory)
    except GPIOZeroError as exc:
        raise GpioError(part, f"cannot claim GPIO{pin}: {exc}") from exc


def _level_name(level: bool) -> str:
    return "HIGH" if level else "LOW"


class GpioPower:
    """One slot's camera power through a relay channel on a GPIO pin (implements PowerControl).

    ``active_high`` is a property of the relay board, recorded per relay in the bench file: the
    common opto-isolated modules energise when their input is pulled LOW (active-low), a MOSFET
    or transistor stage when it is driven HIGH (docs/gpio-serial.md §2.2). Starts OFF: the camera is
    unpowered until a procedure asks for power. ``read()`` reports the output's own level; a
    relay says nothing about whether the camera actually draws power.

    Keep the object referenced for as long as the slot runs: gpiozero holds its reservations
    weakly and closes a collected device, which drops the relay (docs/gpio-serial.md §1.6).
    """

    def __init__(self, pin: int, *, active_high: bool, factory: Factory, name: str | None = None,
                 guard: OutputGuard | None = None) -> None:
        self.name = name or f"GPIO{pin} power relay"
        validate_output_pin(pin, active_high=active_high, role=self.name)
        self.pin = pin
        self.active_high = active_high
        self._device = _claim(pin, active_high, factory, self.name)
        if guard is not None:
            guard.register(self._make_safe)

    @property
    def closed(self) -> bool:
        return self._device.closed

    def _write(self, on: bool) -> None:
        if self._device.closed:
            raise GpioError(self.name, "closed; cannot switch power")
        try:
            if on:
                self._device.on()
            else:
                self._device.off()
        except GPIOZeroError as exc:
            raise GpioError(self.name, f"cannot switch power {'on' if on else 'off'}: "
                                           f"{exc}") from exc

    def on(self) -> None:
        """Energise the relay: the camera gets power now."""
        self._write(True)

    def off(self) -> None:
        """De-energise the relay: the camera loses power now."""
        self._write(False)

    def read(self) -> PowerReading:
        """The relay output as driven (the pin's own level read back); UNKNOWN once closed."""
        if self._device.closed:
            return PowerReading(PowerState.UNKNOWN, None, "closed")
        level = bool(self._device.pin.state)
        state = PowerState.ON if self._device.value else PowerState.OFF
        return PowerReading(state, None, f"GPIO{self.pin} {_level_name(level)}, "
                                         f"active-{'high' if self.active_high else 'low'} relay")

    def _make_safe(self) -> None:
        """Guard callback: power off, unless already closed (close() switched it off)."""
        if not self._device.closed:
            self._device.off()

    def close(self) -> None:
        """Switch off, then give the pin back. Idempotent."""
        if self._device.closed:
            return
        try:
            self._device.off()
        finally:
            self._device.close()

    def __enter__(self) -> GpioPower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GpioPower({self.pin}, active_high={self.active_high}, name={self.name!r})"


class GpioSolenoid(CappedButton):
    """The reset-button solenoid on a GPIO pin, driven through a logic-level MOSFET.

    Active-high by default: GPIO → gate resistor → N-MOSFET gate, with a gate-to-ground resistor
    that keeps the coil off while the pin floats (docs/gpio-serial.md §2.3). Use a pin in GPIO 9-27,
    which are pulled down at boot (docs/gpio-serial.md §2.1). ``active_high=False`` for a solenoid
    switched through an active-low relay channel. The on-time cap, watchdog and cool-down come from
    CappedButton. Like GpioPower, keep it referenced: a collected device is closed by gpiozero.
    """

    def __init__(self, pin: int, *, factory: Factory,
                 max_on_seconds: float = DEFAULT_MAX_ON_SECONDS, active_high: bool = True,
                 name: str | None = None, guard: OutputGuard | None = None,
                 cooldown_ratio: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        name = name or f"GPIO{pin} reset solenoid"
        validate_output_pin(pin, active_high=active_high, role=name)
        super().__init__(name, max_on_seconds=max_on_seconds, cooldown_ratio=cooldown_ratio,
                         clock=clock)
        self.pin = pin
        self.active_high = active_high
        self._device = _claim(pin, active_high, factory, name)
        if guard is not None:
            guard.register(self.release)

    @property
    def closed(self) -> bool:
        return self._device.closed

    def _energise(self) -> None:
        if self._device.closed:
            raise GpioError(self.name, "closed; cannot energise")
        try:
            self._device.on()
        except GPIOZeroError as exc:
            raise GpioError(self.name, f"cannot energise: {exc}") from exc

    def _release(self) -> None:
        # Called by release(): from the guard, the watchdog thread and after close() too.
        if not self._device.closed:
            self._device.off()

    def close(self) -> None:
        """Release the coil, then give the pin back. Idempotent."""
        try:
            self.release()
        finally:
            self._device.close()

    def __enter__(self) -> GpioSolenoid:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"GpioSolenoid({self.pin}, active_high={self.active_high}, "
                f"max_on_seconds={self.max_on_seconds:g}, name={self.name!r})")
