"""Serial relay channels wired to virtual cameras: power boots a unit, the solenoid channel's
cap holds before any byte moves, and a hold around power-on resets a provisioned camera."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rig.actuators.serial_relay import SerialRelayBoard
from rig.camera.profiles import ProfileSet
from rig.sim.camera import CameraState, VirtualCamera
from rig.sim.serial_board import SimulatedRelayBoard

POWER, BUTTON = 1, 2
#: The button channel (rig channel 2) on, then off, as each board documents it.
BUTTON_FRAMES = {"lcus": [bytes.fromhex("A0 02 01 A3"), bytes.fromhex("A0 02 00 A2")],
                 "numato": [b"relay on 1\r", b"relay off 1\r"]}


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@pytest.fixture
def camera() -> VirtualCamera:
    return VirtualCamera(ProfileSet.load().get("current"), mac="44:47:cc:00:00:31",
                         serial="DS-2CD2320D-I20240115AAWRE00000031", address="127.0.1.31",
                         time_scale=1000)


@pytest.fixture(params=["lcus", "numato"])
def bench(request, tmp_path: Path, camera: VirtualCamera):
    """A two-channel board (power, button) wired to one camera; yields (sim, board)."""
    sim = SimulatedRelayBoard(request.param, 2, link=tmp_path / "by-path" / "relay").start()
    sim.attach(POWER, camera.set_power)
    sim.attach(BUTTON, camera.set_button)
    board = SerialRelayBoard(str(sim.link), protocol=request.param, channels=2, timeout=0.5,
                             reconnect_delay=0.02)
    yield sim, board
    board.close()
    sim.stop()


def test_power_channel_on_boots_the_camera_and_keeps_its_settings(bench, camera):
    sim, board = bench
    camera.provision("Secret123!")
    board.power(POWER).on()
    assert wait_until(lambda: camera.state is CameraState.BOOTING or camera.running)
    assert camera.wait_running(timeout=2.0)
    assert camera.activated                      # no button: a plain boot keeps the password
    board.power(POWER).off()
    assert wait_until(lambda: camera.state is CameraState.OFF)


def test_press_longer_than_the_cap_is_refused_before_any_byte_is_written(bench, camera):
    sim, board = bench
    button = board.solenoid(BUTTON, max_on_seconds=1.0, cooldown_ratio=0)
    with pytest.raises(ValueError, match="on-time cap"):
        button.press(5.0)
    time.sleep(0.05)
    assert sim.wire == b"" and not camera.button_pressed
    with button.hold(0.5):                       # within the cap: on, then off
        assert wait_until(lambda: camera.button_pressed)
    assert sim.wait_frames(2) == BUTTON_FRAMES[sim.protocol]
    assert not sim.state(BUTTON) and not camera.button_pressed
    assert [what for _, what in camera.events] == ["button pressed", "button released"]


def test_hold_around_power_on_resets_a_provisioned_camera(bench, camera):
    sim, board = bench
    camera.provision("Secret123!")
    assert camera.activated
    power, button = board.power(POWER), board.solenoid(BUTTON, max_on_seconds=2.0)
    with button.hold(1.0):
        power.on()
        assert wait_until(lambda: any(what == "factory reset by button"
                                      for _, what in camera.events))
    assert camera.wait_running(timeout=2.0)
    assert not camera.activated
    assert [what for _, what in camera.events][:3] == ["button pressed", "power on",
                                                       "factory reset by button"]
    assert sim.states == {POWER: True, BUTTON: False}


def test_usb_reset_drops_power_and_the_reconnect_restores_it(bench, camera):
    sim, board = bench
    board.power(POWER).on()
    assert camera.wait_running(timeout=2.0)
    sim.unplug()
    sim.replug()                                 # board back with every relay off
    assert camera.state is CameraState.OFF
    board.power(BUTTON).off()                    # next command reconnects, re-applies power
    assert wait_until(lambda: camera.powered)
    assert camera.wait_running(timeout=2.0)
    assert board.reconnects == 1 and board.device == sim.path
