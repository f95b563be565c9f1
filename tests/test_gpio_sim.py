"""The simulated GPIO bench: mock pins wired to a VirtualCamera, driven by the real drivers.

The controller's GpioPower and GpioSolenoid run unchanged on a MockFactory; the camera sees the
relay as its power and the solenoid as its reset button, following the pins' electrical levels.
"""

from __future__ import annotations

import time

import pytest
from gpiozero import OutputDevice

from rig.actuators.gpio import GpioPower, GpioSolenoid, make_pin_factory
from rig.camera.profiles import ProfileSet
from rig.sim.camera import CameraState, VirtualCamera
from rig.sim.gpio import GpioSlotWiring, LoadPin, wire_gpio_slot

PROFILES = ProfileSet.load()
POWER_PIN, BUTTON_PIN = 17, 27


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def camera(profile: str = "current", **kwargs) -> VirtualCamera:
    return VirtualCamera(PROFILES.get(profile), mac="44:47:cc:f0:00:96",
                         serial="DS-2CD2320D-I20240115AAWRE00000150", address="127.0.1.150",
                         **kwargs)


def bench(cam: VirtualCamera, *, power_active_high: bool = True,
          device_active_high: bool | None = None
          ) -> tuple[GpioSlotWiring, GpioPower, GpioSolenoid]:
    """One slot wired and its drivers built, in that order (the bench exists first)."""
    factory = make_pin_factory("mock")
    wiring = wire_gpio_slot(factory, cam, power_pin=POWER_PIN,
                            power_active_high=power_active_high, button_pin=BUTTON_PIN)
    power = GpioPower(POWER_PIN, factory=factory, name="slot 1 power",
                      active_high=(power_active_high if device_active_high is None
                                   else device_active_high))
    solenoid = GpioSolenoid(BUTTON_PIN, factory=factory, cooldown_ratio=0)
    return wiring, power, solenoid


@pytest.mark.parametrize("active_high", [True, False], ids=["active-high", "active-low"])
def test_building_the_drivers_leaves_the_camera_unpowered(active_high):
    cam = camera()
    wiring, power, solenoid = bench(cam, power_active_high=active_high)
    assert cam.events == [] and not cam.powered and not cam.button_pressed
    # The relay pin never left the load's idle level: HIGH for the opto module, LOW for a FET.
    assert [s.state for s in wiring.power.states][-1] is (not active_high)
    assert {s.state for s in wiring.power.states[1:]} <= {not active_high}
    assert not wiring.power.energised and not wiring.button.energised


@pytest.mark.parametrize("active_high", [True, False], ids=["active-high", "active-low"])
def test_power_on_boots_the_camera_to_running(active_high):
    cam = camera(time_scale=1000)
    _, power, _ = bench(cam, power_active_high=active_high)
    power.on()
    assert cam.powered and cam.state is CameraState.BOOTING     # at the moment on() ran
    assert cam.wait_running(timeout=5)
    power.off()
    assert cam.state is CameraState.OFF
    assert [what for _, what in cam.events] == ["power on", "running", "power off"]


def test_polarity_mismatch_powers_the_camera_as_the_driver_starts():
    """The twin is electrical: a relay board recorded with the wrong polarity shows up."""
    cam = camera()
    _, power, _ = bench(cam, power_active_high=False, device_active_high=True)
    assert cam.powered                          # 'off' for the driver is LOW: the module pulls in
    assert power.read().state.value == "off"    # while the driver believes it is off


def reset_cycle(cam: VirtualCamera, clock: FakeClock, power: GpioPower,
                solenoid: GpioSolenoid, hold_s: float) -> None:
    """What a procedure does: power off, press, power on, hold, release, let it boot."""
    power.off()
    with solenoid.hold(5):                   # real cap 5 s; the camera's time is the fake clock
        assert cam.button_pressed
        power.on()
        clock.advance(hold_s)
    assert not cam.button_pressed
    clock.advance(cam.profile.boot_seconds + cam.profile.hold_seconds[1])
    assert cam.state is CameraState.RUNNING


@pytest.mark.parametrize("active_high", [True, False], ids=["active-high", "active-low"])
@pytest.mark.parametrize(("extra_s", "reset"), [(+0.5, True), (-1.0, False)],
                         ids=["held-long-enough", "too-short"])
def test_solenoid_held_through_power_up_factory_resets(active_high, extra_s, reset):
    clock = FakeClock()
    cam = camera(clock=clock)
    _, power, solenoid = bench(cam, power_active_high=active_high)
    power.on()
    clock.advance(cam.profile.boot_seconds)
    cam.provision("Secret123!")
    assert cam.activated
    reset_cycle(cam, clock, power, solenoid, cam.profile.hold_seconds[0] + extra_s)
    assert cam.activated is (not reset)
    assert cam.settings.device_name == ("IP CAMERA" if reset else "yard")
    assert ("factory reset by button" in [what for _, what in cam.events]) is reset


def test_reset_in_real_time_with_a_compressed_camera():
    """The same press on the real clock: the hold is real seconds, the camera runs 1000x."""
    cam = camera(time_scale=1000)
    _, power, solenoid = bench(cam)
    power.on()
    assert cam.wait_running(timeout=5)
    cam.provision("Secret123!")
    power.off()
    hold_s = cam.scaled(cam.profile.hold_seconds[0]) * 3
    with solenoid.hold(hold_s + 1.0):
        power.on()
        time.sleep(hold_s)
    assert cam.wait_running(timeout=5)
    assert not cam.activated
    assert "factory reset by button" in [what for _, what in cam.events]


def test_watchdog_release_lets_go_of_the_button():
    cam = camera()
    _, _, solenoid = bench(cam)
    with solenoid.hold(0.05):
        assert cam.button_pressed
        time.sleep(0.3)
        assert not cam.button_pressed and solenoid.watchdog_fired


def test_closing_the_drivers_cuts_power_and_releases_the_button():
    cam = camera()
    wiring, power, solenoid = bench(cam, power_active_high=False)
    power.on()
    hold = solenoid.hold(5)
    hold.__enter__()
    assert cam.powered and cam.button_pressed
    power.close()
    solenoid.close()
    assert not cam.powered and not cam.button_pressed
    assert wiring.power.function == "input" and wiring.power.state is True   # module pull-up


def test_a_closed_pin_floats_to_the_loads_idle_level():
    """After close() the line is an input again; the load's own resistor keeps it off."""
    cam = camera()
    factory = make_pin_factory("mock")
    wiring = wire_gpio_slot(factory, cam, power_pin=22, power_active_high=True, button_pin=None)
    device = OutputDevice(22, pin_factory=factory)
    device.on()
    assert cam.powered
    device.close()                        # the pin given back while HIGH (no off() first)
    assert not cam.powered and wiring.power.state is False
    assert wiring.button is None


def test_wiring_must_come_before_the_drivers_claim_the_pins():
    cam = camera()
    factory = make_pin_factory("mock")
    power = GpioPower(POWER_PIN, active_high=True, factory=factory)
    with pytest.raises(ValueError, match="wire the slot first"):
        wire_gpio_slot(factory, cam, power_pin=POWER_PIN, power_active_high=True,
                       button_pin=None)
    power.close()


def test_a_pin_cannot_carry_two_loads():
    factory = make_pin_factory("mock")
    with pytest.raises(ValueError, match="share GPIO17"):
        wire_gpio_slot(factory, camera(), power_pin=17, power_active_high=True, button_pin=17)
    wire_gpio_slot(factory, camera(), power_pin=17, power_active_high=True, button_pin=None)
    with pytest.raises(ValueError, match="already has a load"):
        wire_gpio_slot(factory, camera(), power_pin=17, power_active_high=True, button_pin=None)


def test_disconnect_stops_following_the_pins():
    cam = camera()
    wiring, power, _ = bench(cam)
    power.on()
    wiring.disconnect()
    power.off()
    assert cam.powered                    # no longer wired: the camera keeps its last state
    assert isinstance(wiring.power, LoadPin) and not wiring.power.connected
