"""SerialRelayBoard end to end over real ptys against the simulated board: the frames on the
wire, read-back, channel checks, USB resets with reconnect by the stable link, garbage, locking."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from rig.actuators.base import ActuatorError, OutputGuard, PowerControl, PowerState
from rig.actuators.serial_relay import SerialRelayBoard
from rig.sim.serial_board import SimulatedRelayBoard

FAST = {"timeout": 0.5, "reconnect_delay": 0.02}


@pytest.fixture
def sims(tmp_path: Path):
    """Start simulated boards with a by-id style link each; all stopped at the end."""
    started: list[SimulatedRelayBoard] = []

    def start(protocol: str, channels: int = 4, **kwargs) -> SimulatedRelayBoard:
        link = tmp_path / "serial" / "by-id" / f"usb-sim-{protocol}-{len(started)}-if00"
        sim = SimulatedRelayBoard(protocol, channels, link=link, **kwargs).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def board_for(sim: SimulatedRelayBoard, **kwargs) -> SerialRelayBoard:
    options = {**FAST, **kwargs}
    return SerialRelayBoard(str(sim.link), protocol=sim.protocol, channels=sim.channels,
                            **options)


def frames(*hex_frames: str) -> list[bytes]:
    return [bytes.fromhex(f) for f in hex_frames]


def test_lcus_frames_on_the_wire_are_exactly_the_documented_bytes(sims):
    sim = sims("lcus", 4)
    with board_for(sim) as board:
        board.set(1, True)
        board.set(1, False)
        board.set(2, True)
        board.set(4, True)
        assert sim.wait_frames(4) == frames("A0 01 01 A2", "A0 01 00 A1", "A0 02 01 A3",
                                            "A0 04 01 A5")
        assert sim.wire == b"".join(sim.frames)          # nothing else went out
        assert sim.states == {1: False, 2: True, 3: False, 4: True}
        assert board.read(2) is None                     # LCUS: no read-back
        assert board.commanded(2) is True and board.commanded(3) is None


def test_numato_commands_echo_and_read_back_with_1_based_channels(sims):
    sim = sims("numato", 16)
    with board_for(sim) as board:
        board.set(1, True)
        board.set(11, True)
        board.set(16, False)
        assert board.read(11) is True
        assert board.read(1) is True
        assert board.read(2) is False
        assert sim.frames == [b"relay on 0\r", b"relay on A\r", b"relay off F\r",
                              b"relay read A\r", b"relay read 0\r", b"relay read 1\r"]
        assert sim.wire == b"".join(sim.frames)
        assert sim.states[1] and sim.states[11] and not sim.states[16]


def test_kmtronic_switches_and_reads_its_one_relay(sims):
    sim = sims("kmtronic", 1)
    with board_for(sim) as board:
        board.set(1, True)
        assert board.read(1) is True
        board.set(1, False)
        assert board.read(1) is False
        assert sim.frames == frames("FF 01 01", "FF 01 03", "FF 01 00", "FF 01 03")


def test_opening_a_board_switches_nothing(sims):
    sim = sims("lcus", 4, power_on_state=True)
    board = board_for(sim)
    time.sleep(0.1)
    assert sim.wire == b"" and all(sim.states.values())
    assert board.device == os.path.realpath(sim.link) == sim.path
    board.close()
    assert sim.wire == b"" and all(sim.states.values())


def test_channel_out_of_range_is_refused_before_any_byte(sims):
    sim = sims("lcus", 4)
    with board_for(sim) as board:
        for bad in (0, 5):
            with pytest.raises(ValueError, match=rf"channel {bad} out of range 1\.\.4"):
                board.set(bad, True)
        with pytest.raises(ValueError, match="out of range"):
            board.read(5)
        with pytest.raises(ValueError, match="out of range"):
            board.power(5)
        with pytest.raises(ValueError, match="out of range"):
            board.solenoid(0)
        with pytest.raises(TypeError, match="must be an int"):
            board.set(True, True)  # type: ignore[arg-type]
        time.sleep(0.05)
        assert sim.wire == b""
    with pytest.raises(ValueError, match="a lcus board has 1..8 channels, not 9"):
        SerialRelayBoard(str(sim.link), protocol="lcus", channels=9)
    with pytest.raises(ValueError, match="unknown relay protocol 'nosuch'"):
        SerialRelayBoard(str(sim.link), protocol="nosuch", channels=1)


def test_unplug_and_replug_reconnects_by_the_link_and_reapplies_commanded_states(sims):
    sim = sims("lcus", 4, power_on_state=False)
    with board_for(sim) as board:
        board.set(1, True)
        board.set(3, True)
        board.set(4, False)
        sim.wait_frames(3)
        old_path = sim.path
        sim.unplug()
        assert not sim.link.exists()
        sim.replug()                       # comes back elsewhere, every relay off
        assert sim.states == {1: False, 2: False, 3: False, 4: False}
        sim.clear_records()
        board.set(2, True)                 # first write hits the dead port: reconnect
        assert sim.wait_frames(4) == frames("A0 01 01 A2", "A0 03 01 A4", "A0 04 00 A4",
                                            "A0 02 01 A3")
        assert sim.states == {1: True, 2: True, 3: True, 4: False}
        assert board.reconnects == 1
        assert board.device == sim.path and sim.path is not None
        assert os.path.realpath(sim.link) == sim.path
        assert old_path is not None


def test_reconnect_reapplies_off_to_a_board_that_comes_back_all_on(sims):
    sim = sims("numato", 4, power_on_state=False)
    with board_for(sim) as board:
        board.set(1, False)
        board.set(2, True)
        sim.power_on_state = True
        sim.unplug()
        sim.replug()
        assert all(sim.states.values())
        assert board.read(1) is False      # the read reconnected and re-applied first
        assert sim.states == {1: False, 2: True, 3: True, 4: True}   # 3, 4 never commanded
        assert sim.frames[-3:] == [b"relay off 0\r", b"relay on 1\r", b"relay read 0\r"]


def test_board_waits_for_a_board_that_comes_back_during_the_attempts(sims):
    sim = sims("numato", 2)
    with board_for(sim, reconnect_delay=0.1, reconnect_attempts=10) as board:
        board.set(1, True)
        sim.unplug()
        threading.Timer(0.25, sim.replug).start()
        started = time.monotonic()
        board.set(2, True)
        assert 0.2 < time.monotonic() - started < 2.0
        assert sim.states == {1: True, 2: True}


def test_a_board_that_stays_away_is_a_clear_error_after_the_bounded_attempts(sims):
    sim = sims("lcus", 3)
    with board_for(sim, reconnect_delay=0.01, reconnect_attempts=3) as board:
        board.set(1, True)
        sim.wait_frames(1)
        sim.unplug()
        started = time.monotonic()
        with pytest.raises(ActuatorError) as caught:
            board.set(2, True)
        assert time.monotonic() - started < 1.0
        message = str(caught.value)
        assert message.startswith(f"relay board {sim.link}: port vanished (USB reset?) and did "
                                  "not come back after 3 attempts; channel 2 not switched on")
        assert caught.value.part == f"relay board {sim.link}"
        with pytest.raises(ActuatorError, match="channel 3 not switched off"):
            board.set(3, False)
        assert board.commanded(2) is None          # a failed "on" is not re-applied later,
        assert board.commanded(3) is False         # a failed "off" is: off is safe
        sim.replug()                               # the board recovers on the next command
        sim.clear_records()
        board.set(2, True)
        assert sim.wait_frames(3) == frames("A0 01 01 A2", "A0 03 00 A3", "A0 02 01 A3")
        assert sim.states == {1: True, 2: True, 3: False}


def test_a_missing_port_at_open_is_a_clear_error(tmp_path):
    missing = tmp_path / "by-id" / "usb-nothing"
    with pytest.raises(ActuatorError, match=rf"relay board {missing}: could not open the port "
                                            r"in 2 tries \(last error: .*no such device"):
        SerialRelayBoard(str(missing), protocol="lcus", channels=1, reconnect_attempts=1,
                         reconnect_delay=0.01)


def test_garbage_from_a_numato_is_a_clear_error_and_does_not_stick(sims):
    sim = sims("numato", 2)
    with board_for(sim) as board:
        sim.reply_override = b"\x00\xfeERR\n\r>trailing noise"
        with pytest.raises(ActuatorError, match=r"channel 1: unexpected reply to "
                                                r"b'relay on 0\\r': not ASCII"):
            board.set(1, True)
        with pytest.raises(ActuatorError, match="unexpected reply"):
            board.read(2)
        sim.reply_override = None
        board.set(2, True)                 # the leftover noise is discarded, not parsed
        assert board.read(2) is True


def test_a_silent_numato_times_out_with_a_clear_error(sims):
    sim = sims("numato", 1)
    with board_for(sim, timeout=0.2) as board:
        sim.mute = True
        started = time.monotonic()
        with pytest.raises(ActuatorError, match=r"channel 1: no complete reply to "
                                                r"b'relay read 0\\r' within 0.2 s"):
            board.read(1)
        assert time.monotonic() - started < 1.0


def test_a_late_reply_is_discarded_not_taken_for_the_next_commands_answer(sims):
    sim = sims("numato", 2)
    with board_for(sim, timeout=0.1) as board:
        sim.reply_delay = 0.2
        with pytest.raises(ActuatorError, match="no complete reply"):
            board.read(1)
        sim.reply_delay = 0.0
        time.sleep(0.25)                   # the late "relay read 0 ... >" is now waiting
        board.set(2, True)
        assert board.read(2) is True


def test_a_wrong_kmtronic_status_is_a_clear_error(sims):
    sim = sims("kmtronic", 1)
    with board_for(sim) as board:
        sim.reply_override = bytes.fromhex("FF 02 01")
        with pytest.raises(ActuatorError, match="unexpected reply.*got 'FF 02 01'"):
            board.read(1)


def test_a_second_owner_is_refused_by_the_exclusive_lock(sims):
    sim = sims("lcus", 1)
    with board_for(sim):
        started = time.monotonic()
        with pytest.raises(ActuatorError, match="in use by another process"):
            board_for(sim, reconnect_delay=1.0)
        assert time.monotonic() - started < 0.5    # not retried: a lock is not a USB reset


def test_slots_sharing_a_board_from_threads_never_interleave_commands(sims):
    sim = sims("numato", 8)
    errors: list[BaseException] = []
    with board_for(sim) as board:

        def toggle(channel: int) -> None:
            try:
                for i in range(20):
                    board.set(channel, i % 2 == 0)
                    assert board.read(channel) is (i % 2 == 0)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=toggle, args=(ch,)) for ch in range(1, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    assert len(sim.frames) == 8 * 20 * 2
    assert sim.states == dict.fromkeys(range(1, 9), False)


def test_power_view_is_a_power_control_that_reports_what_it_knows(sims):
    lcus_sim, numato_sim = sims("lcus", 2), sims("numato", 2)
    with board_for(lcus_sim) as lcus_board, board_for(numato_sim) as numato_board:
        power = lcus_board.power(1, name="slot 1 power")
        assert isinstance(power, PowerControl)
        assert lcus_board.power(1) is power
        reading = power.read()
        assert reading.state is PowerState.UNKNOWN and "never commanded" in reading.detail
        power.on()
        reading = power.read()
        assert reading.state is PowerState.UNKNOWN
        assert reading.detail.startswith("commanded on")
        assert lcus_sim.wait_frames(1) == frames("A0 01 01 A2")

        numato_power = numato_board.power(2)
        numato_power.on()
        assert numato_power.read().state is PowerState.ON
        numato_power.off()
        assert numato_power.read().state is PowerState.OFF
        with pytest.raises(ValueError, match="already switches power"):
            numato_board.solenoid(2)
        power.close()
        with pytest.raises(ActuatorError, match="closed"):
            power.on()
        assert lcus_sim.states[1] is True          # closing a view switches nothing


def test_guard_puts_every_relay_and_solenoid_in_the_safe_state(sims):
    sim = sims("lcus", 4)
    guard = OutputGuard()                      # not installed: called directly below
    board = board_for(sim, guard=guard)
    solenoid = board.solenoid(4, max_on_seconds=5.0, cooldown_ratio=0)
    board.set(1, True)
    board.set(2, True)
    with solenoid.hold(5.0):
        sim.wait_frames(3)
        assert sim.states == {1: True, 2: True, 3: False, 4: True}
        assert guard.make_all_safe() == []
        assert not solenoid.energised
        # solenoid release first, then every channel off (LCUS answers nothing: wait for it)
        assert sim.wait_frames(8)[3:] == frames("A0 04 00 A4", "A0 01 00 A1", "A0 02 00 A2",
                                                "A0 03 00 A3", "A0 04 00 A4")
        assert sim.states == {1: False, 2: False, 3: False, 4: False}
    board.close()
    assert guard.make_all_safe() != []         # a closed board reports, never hangs


def test_all_off_sends_every_channel_once_even_after_a_reset(sims):
    sim = sims("lcus", 3, power_on_state=True)
    with board_for(sim) as board:
        sim.unplug()
        sim.replug()
        board.all_off()
        assert sim.wait_frames(3) == frames("A0 01 00 A1", "A0 02 00 A2", "A0 03 00 A3")
        assert board.reconnects == 1
        assert not any(sim.states.values())


def test_a_url_port_works_without_a_device_node():
    with SerialRelayBoard("loop://", protocol="lcus", channels=2, timeout=0.2) as board:
        board.set(2, True)                     # loop:// echoes; the board discards the echo
        board.set(1, False)
        assert board.device == "loop://" and board.commanded(2) is True
