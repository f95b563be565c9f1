"""The simulated relay board itself: firmware models, callbacks in order, unplug/replug/stop."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import serial

from rig.sim.serial_board import (
    KmtronicFirmware,
    LcusFirmware,
    NumatoFirmware,
    SimulatedRelayBoard,
)


def test_lcus_firmware_ignores_bad_frames_and_keeps_the_order_of_changes():
    firmware, states = LcusFirmware(4), dict.fromkeys(range(1, 5), False)
    chunk = bytes.fromhex("55 A0 02 01 A3 A0 01 01 A2 A0 03 01 00 A0 05 01 A6 A0 01 01")
    frames, changes, reply = firmware.feed(chunk, states)
    assert changes == [(2, True), (1, True)]         # button before power, as sent
    assert frames == [bytes.fromhex(f) for f in ("A0 02 01 A3", "A0 01 01 A2", "A0 03 01 00",
                                                 "A0 05 01 A6")]
    assert reply == b"" and states == {1: True, 2: True, 3: False, 4: False}
    frames, changes, _ = firmware.feed(bytes.fromhex("A2"), states)   # the rest of a frame
    assert frames == [bytes.fromhex("A0 01 01 A2")] and changes == []  # already on: no change


def test_numato_firmware_echoes_answers_and_ignores_lowercase_relays():
    firmware, states = NumatoFirmware(12), dict.fromkeys(range(1, 13), False)
    frames, changes, reply = firmware.feed(b"relay on B\rrelay read B\rrelay on b\r", states)
    assert changes == [(12, True)]
    assert frames == [b"relay on B\r", b"relay read B\r", b"relay on b\r"]
    assert reply == b"relay on B\n\r>relay read B\n\ron\n\r>relay on b\n\r>"
    _, changes, reply = firmware.feed(b"relay on C\r", states)        # board has 12 relays
    assert changes == [] and reply == b"relay on C\n\r>"


def test_kmtronic_firmware_answers_status():
    firmware, states = KmtronicFirmware(1), {1: False}
    _, changes, reply = firmware.feed(bytes.fromhex("FF 01 01 FF 01 03"), states)
    assert changes == [(1, True)] and reply == bytes.fromhex("FF 01 01")


def test_callbacks_follow_relay_changes_and_a_failing_one_does_not_stop_the_board(tmp_path):
    seen: list[tuple[int, bool]] = []

    def broken(on: bool) -> None:
        raise RuntimeError("consumer bug")

    with SimulatedRelayBoard("lcus", 2, link=tmp_path / "relay") as sim:
        sim.attach(1, broken)
        sim.attach(1, lambda on: seen.append((1, on)))
        sim.attach(2, lambda on: seen.append((2, on)))
        with serial.Serial(str(sim.link), 9600, timeout=0.5) as port:
            port.write(bytes.fromhex("A0 02 01 A3 A0 01 01 A2 A0 01 01 A2 A0 02 00 A2"))
            sim.wait_frames(4)
        assert seen == [(2, True), (1, True), (2, False)]
        with pytest.raises(ValueError, match="channel 3 out of range"):
            sim.attach(3, print)


def test_unplug_hangs_up_the_client_and_replug_is_a_new_device(tmp_path):
    link = tmp_path / "by-id" / "usb-relay"
    seen: list[bool] = []
    sim = SimulatedRelayBoard("numato", 2, link=link, power_on_state=True).start()
    try:
        sim.attach(1, seen.append)
        first = sim.path
        assert os.readlink(link) == first and sim.states == {1: True, 2: True}
        port = serial.Serial(str(link), 19200, timeout=0.5)
        port.write(b"relay off 0\r")
        assert port.read_until(b">") == b"relay off 0\n\r>"
        sim.unplug()
        assert not link.exists() and sim.path is None and not sim.plugged
        with pytest.raises(serial.SerialException):
            port.write(b"relay on 0\r")
        port.close()
        second = sim.replug()
        assert os.readlink(link) == second == sim.path
        assert seen == [False, True]                 # power-on default reached the camera
        with pytest.raises(RuntimeError, match="unplug"):
            sim.replug()
    finally:
        sim.stop()
    assert not link.exists()


def test_stop_is_prompt_and_idempotent(tmp_path):
    sim = SimulatedRelayBoard("kmtronic", 1, link=tmp_path / "relay").start()
    started = time.monotonic()
    sim.stop()
    sim.stop()
    assert time.monotonic() - started < 0.5
    assert not Path(tmp_path / "relay").exists()
    with pytest.raises(RuntimeError, match="stopped"):
        sim.start()


def test_unknown_protocol_and_channel_counts_are_refused():
    with pytest.raises(ValueError, match="unknown relay protocol 'hid'"):
        SimulatedRelayBoard("hid", 2)
    with pytest.raises(ValueError, match="1..32 channels, not 33"):
        SimulatedRelayBoard("numato", 33)
