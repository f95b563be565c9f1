"""GPIO power relay and reset solenoid on gpiozero's MockFactory: safe start, switching,
read-back, refused pins, pin factories by name, the solenoid cap and the guard."""

from __future__ import annotations

import logging
import sys
import time
import types
from pathlib import Path

import gpiozero.pins
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin

from rig.actuators.base import ActuatorError, OutputGuard, PowerControl, PowerState
from rig.actuators.gpio import (
    FACTORY_NAMES,
    GpioPower,
    GpioSolenoid,
    make_pin_factory,
    validate_output_pin,
)


def levels(pin: MockPin) -> list[bool]:
    """The pin's whole level history (MockPin.assert_states compares with zip(): too lenient)."""
    return [bool(s.state) for s in pin.states]


def on_a_raspberry_pi() -> bool:
    model = Path("/proc/device-tree/model")
    return model.exists() and "Raspberry Pi" in model.read_text(errors="replace")


@pytest.fixture
def factory() -> MockFactory:
    made = make_pin_factory("mock")
    assert isinstance(made, MockFactory)
    return made


# --- pin factories ----------------------------------------------------------------------------

def test_mock_factories_are_fresh_and_the_global_factory_is_untouched():
    before = Device.pin_factory
    first, second = make_pin_factory("mock"), make_pin_factory("MOCK")
    assert first is not second
    a = GpioPower(17, active_high=True, factory=first)
    b = GpioPower(17, active_high=True, factory=second)      # same pin, other factory: no clash
    a.on()
    assert first.pin(17).state is True and second.pin(17).state is False
    assert Device.pin_factory is before
    a.close()
    b.close()


def test_unknown_factory_name_lists_the_allowed_names():
    with pytest.raises(ValueError) as err:
        make_pin_factory("gpiod")
    for name in FACTORY_NAMES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="choose one of"):
        make_pin_factory(None)  # type: ignore[arg-type]


def test_lgpio_on_this_machine_is_a_clear_bench_fault():
    try:
        made = make_pin_factory("lgpio")
    except ActuatorError as exc:
        message = str(exc)
        assert exc.part == "GPIO"
        assert ("pip install lgpio" in message
                or "not a Raspberry Pi" in message), message
        assert not isinstance(exc, ImportError)
    else:
        made.close()
        pytest.skip("lgpio started: this machine is a Raspberry Pi with lgpio installed")


def test_lgpio_installed_but_not_a_pi_says_so(monkeypatch):
    """The lgpio wheel installs on x86 (gpio-serial.md §1.1); its factory then finds no Pi."""
    if on_a_raspberry_pi():
        pytest.skip("this machine is a Raspberry Pi")
    fake = types.ModuleType("lgpio")
    fake.__getattr__ = lambda name: 0     # constants (edge and pull flags) read at import
    fake.gpiochip_open = lambda chip: pytest.fail("opened a GPIO chip")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lgpio", fake)
    saved = sys.modules.pop("gpiozero.pins.lgpio", None)
    try:
        with pytest.raises(ActuatorError, match="not a Raspberry Pi.*use 'mock'"):
            make_pin_factory("lgpio")
    finally:                      # forget the module built on the fake, restore the real one
        sys.modules.pop("gpiozero.pins.lgpio", None)
        if saved is not None:
            sys.modules["gpiozero.pins.lgpio"] = saved
        elif hasattr(gpiozero.pins, "lgpio"):
            delattr(gpiozero.pins, "lgpio")


def test_native_factory_off_a_pi_is_a_clear_bench_fault():
    if on_a_raspberry_pi():
        pytest.skip("this machine is a Raspberry Pi")
    with pytest.raises(ActuatorError, match="'native' cannot start: this machine is not a "
                                            "Raspberry Pi"):
        make_pin_factory("native")


@pytest.mark.parametrize(("name", "hint"), [("rpigpio", "pip install RPi.GPIO"),
                                             ("pigpio", "pip install pigpio")])
def test_missing_library_names_what_to_install(name, hint):
    try:
        made = make_pin_factory(name)
    except ActuatorError as exc:
        if "not installed" in str(exc):
            assert hint in str(exc)
        else:                                  # library present: then it is not a Pi here
            assert "cannot start" in str(exc)
    else:
        made.close()
        pytest.skip(f"{name} started on this machine")


# --- power relay ------------------------------------------------------------------------------

def test_power_is_a_power_control(factory):
    power = GpioPower(22, active_high=True, factory=factory, name="slot 1 power")
    assert isinstance(power, PowerControl)
    assert power.name == "slot 1 power"
    assert GpioPower(23, active_high=True, factory=factory).name == "GPIO23 power relay"


def test_active_high_power_starts_off_and_never_drives_high(factory):
    power = GpioPower(22, active_high=True, factory=factory)
    pin = factory.pin(22)
    assert pin.function == "output"
    assert levels(pin) == [False]
    assert power.read().state is PowerState.OFF


def test_active_low_power_starts_off_with_the_pin_high(factory):
    """An opto relay module energises on LOW: 'off' must be HIGH from the first write."""
    pin = factory.pin(17)          # the pin as an unclaimed input (MockPin reads it LOW)
    power = GpioPower(17, active_high=False, factory=factory)
    assert pin.function == "output" and pin.state is True
    assert levels(pin) == [False, True]     # input level, then HIGH as it became an output
    reading = power.read()
    assert reading.state is PowerState.OFF and reading.drawing_power is None
    assert "HIGH" in reading.detail and "active-low" in reading.detail


@pytest.mark.parametrize(("active_high", "on_level"), [(True, True), (False, False)])
def test_on_off_and_read_back(factory, active_high, on_level):
    power = GpioPower(24, active_high=active_high, factory=factory)
    pin = factory.pin(24)
    pin.clear_states()
    power.on()
    assert pin.state is on_level
    assert power.read().state is PowerState.ON
    power.on()                                   # idempotent: no second edge
    power.off()
    assert pin.state is not on_level
    assert power.read().state is PowerState.OFF
    assert levels(pin) == [not on_level, on_level, not on_level]


def test_read_reports_the_level_the_pin_really_has(factory):
    power = GpioPower(25, active_high=True, factory=factory)
    factory.pin(25).state = True           # the line is driven behind the device's back
    assert power.read().state is PowerState.ON


@pytest.mark.parametrize(("pin", "why"), [(0, "EEPROM"), (1, "EEPROM"), (2, "I2C"),
                                          (3, "I2C"), (14, "UART"), (15, "UART")])
def test_reserved_pins_are_refused_with_the_reason(factory, pin, why):
    for make in (lambda: GpioPower(pin, active_high=False, factory=factory),
                 lambda: GpioSolenoid(pin, factory=factory)):
        with pytest.raises(ValueError, match=f"GPIO{pin} is reserved: .*{why}"):
            make()
    assert factory.pins == {}                 # refused before any pin was touched


@pytest.mark.parametrize("pin", [-1, 28, 40, "17", 17.0, True, None])
def test_pins_outside_bcm_0_27_are_refused(factory, pin):
    with pytest.raises(ValueError, match="GPIO"):
        GpioPower(pin, active_high=True, factory=factory)  # type: ignore[arg-type]


def test_boot_pull_up_pins_warn_for_active_high_loads_only(factory, caplog):
    caplog.set_level(logging.WARNING, logger="rig.actuators.gpio")
    GpioPower(5, active_high=True, factory=factory)
    assert any("GPIO5" in r.getMessage() and "pulled up" in r.getMessage()
               for r in caplog.records)
    caplog.clear()
    GpioPower(6, active_high=False, factory=factory)       # pulled up = off for active-low
    GpioSolenoid(27, factory=factory)                        # pulled down at boot
    assert caplog.records == []
    GpioSolenoid(8, factory=factory)
    assert any("GPIO8" in r.getMessage() for r in caplog.records)


def test_validate_output_pin_accepts_the_recommended_pins():
    for pin in (16, 17, 22, 23, 24, 25, 26, 27):
        validate_output_pin(pin, active_high=True, role="test")


def test_a_pin_in_use_is_a_bench_fault(factory):
    first = GpioPower(17, active_high=True, factory=factory, name="slot 1 power")
    with pytest.raises(ActuatorError, match="slot 2 power: cannot claim GPIO17"):
        GpioPower(17, active_high=True, factory=factory, name="slot 2 power")
    assert first.read().state is PowerState.OFF


def test_close_switches_off_and_frees_the_pin(factory):
    power = GpioPower(17, active_high=False, factory=factory)
    pin = factory.pin(17)
    power.on()
    power.close()
    assert pin.state is True and pin.function == "input"
    assert power.closed and power.read().state is PowerState.UNKNOWN
    power.close()                                   # idempotent
    with pytest.raises(ActuatorError, match="closed"):
        power.on()
    with GpioPower(17, active_high=False, factory=factory) as again:   # the pin is free again
        again.on()
    assert pin.state is True


def test_guard_switches_power_off(factory):
    guard = OutputGuard()
    power = GpioPower(17, active_high=False, factory=factory, guard=guard)
    power.on()
    assert guard.make_all_safe() == []
    assert factory.pin(17).state is True and power.read().state is PowerState.OFF
    power.close()
    assert guard.make_all_safe() == []             # a closed output is not an error


# --- solenoid ---------------------------------------------------------------------------------

def test_solenoid_starts_released(factory):
    solenoid = GpioSolenoid(27, factory=factory)
    pin = factory.pin(27)
    assert pin.function == "output" and levels(pin) == [False]
    assert not solenoid.energised and solenoid.name == "GPIO27 reset solenoid"


def test_press_longer_than_the_cap_is_refused_before_the_pin_moves(factory):
    solenoid = GpioSolenoid(27, factory=factory, max_on_seconds=20)
    pin = factory.pin(27)
    with pytest.raises(ValueError, match="on-time cap"):
        with solenoid.hold(25):
            pytest.fail("the block ran")
    with pytest.raises(ValueError):
        solenoid.press(21)
    assert levels(pin) == [False]


def test_hold_drives_the_pin_for_the_block_only(factory):
    solenoid = GpioSolenoid(27, factory=factory, cooldown_ratio=0)
    pin = factory.pin(27)
    with solenoid.hold(5):
        assert pin.state is True and solenoid.energised
    assert levels(pin) == [False, True, False]


def test_watchdog_releases_the_pin_at_the_cap(factory):
    solenoid = GpioSolenoid(27, factory=factory, max_on_seconds=5, cooldown_ratio=0)
    pin = factory.pin(27)
    with solenoid.hold(0.1):
        time.sleep(0.4)                                   # the caller hangs past its hold
        assert pin.state is False and solenoid.watchdog_fired
    assert levels(pin) == [False, True, False]
    on_time = pin.states[2].timestamp
    assert 0.09 <= on_time < 0.35, on_time


def test_exception_inside_a_hold_releases_the_pin(factory):
    solenoid = GpioSolenoid(27, factory=factory, cooldown_ratio=0)
    pin = factory.pin(27)
    with pytest.raises(RuntimeError, match="step failed"):
        with solenoid.hold(5):
            raise RuntimeError("step failed")
    assert levels(pin) == [False, True, False] and not solenoid.energised


def test_active_low_solenoid_channel(factory):
    solenoid = GpioSolenoid(26, factory=factory, active_high=False, cooldown_ratio=0)
    pin = factory.pin(26)
    assert pin.state is True
    with solenoid.hold(1):
        assert pin.state is False
    assert pin.state is True


def test_close_during_a_hold_releases_then_frees_the_pin(factory):
    guard = OutputGuard()
    solenoid = GpioSolenoid(27, factory=factory, cooldown_ratio=0, guard=guard)
    pin = factory.pin(27)
    with solenoid.hold(5):
        solenoid.close()
        assert pin.state is False and pin.function == "input"
    assert levels(pin) == [False, True, False]
    solenoid.close()
    assert guard.make_all_safe() == []
    with pytest.raises(ActuatorError, match="closed"):
        solenoid.press(0.01)


def test_guard_releases_the_solenoid(factory):
    guard = OutputGuard()
    solenoid = GpioSolenoid(27, factory=factory, cooldown_ratio=0, guard=guard)
    hold = solenoid.hold(5)
    hold.__enter__()                      # held, and nobody will leave the block
    assert factory.pin(27).state is True
    assert guard.make_all_safe() == []
    assert factory.pin(27).state is False and not solenoid.energised
