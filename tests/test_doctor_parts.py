"""rig doctor against single simulated parts: a relay board (answering, mute, without
read-back, with a coil on) and a PoE switch (a port off, a port it lacks, a wrong v2c
community). Each fault is named with its fix; nothing is switched."""

from __future__ import annotations

import pytest

from rig.actuators.serial_relay import SerialRelayBoard
from rig.bench import load_bench
from rig.doctor import DoctorContext
from rig.doctor import relays as relay_probe
from rig.doctor import switches as switch_probe
from rig.sim.serial_board import SimulatedRelayBoard
from rig.sim.switch import VirtualSwitch
from rig.vocabulary import FindingLevel

HEAD = """
[bench]
name = "parts"
gpio_factory = "mock"
[network]
address = "127.0.0.1"
"""
RELAY = HEAD + """
[relay_boards.b]
port = "{link}"
protocol = "{protocol}"
channels = 2
[[slots]]
name = "1"
power = {{ kind = "relay", board = "b", channel = 1 }}
button = {{ kind = "relay", board = "b", channel = 2 }}
"""
SWITCH = HEAD + """
[switches.s]
host = "127.0.0.1"
port = {port}
community = "{community}"
timeout = 0.3
retries = 0
[[slots]]
name = "1"
power = {{ kind = "poe", switch = "s", port = 1 }}
[[slots]]
name = "2"
power = {{ kind = "poe", switch = "s", port = 5 }}
"""


def context(tmp_path, text: str) -> DoctorContext:
    path = tmp_path / "parts.toml"
    path.write_text(text, encoding="utf-8")
    return DoctorContext(bench=load_bench(path), db_path=tmp_path / "rig.sqlite")


@pytest.fixture
def numato(tmp_path):
    with SimulatedRelayBoard("numato", 2, link=tmp_path / "board") as board:
        yield board


def only(findings):
    (finding,) = findings
    return finding


def test_a_board_that_answers_is_ok_and_only_queried(tmp_path, numato):
    finding = only(relay_probe.probe(context(tmp_path, RELAY.format(link=numato.link,
                                                                      protocol="numato"))))
    assert finding.level is FindingLevel.OK, finding
    assert numato.frames == [b"relay read 0\r", b"relay read 1\r"]


def test_a_mute_board_fails_and_a_coil_left_on_fails(tmp_path, numato):
    ctx = context(tmp_path, RELAY.format(link=numato.link, protocol="numato"))
    numato.mute = True
    mute = only(relay_probe.probe(ctx))
    assert mute.level is FindingLevel.FAIL and "state query" in mute.message
    numato.mute = False
    with SerialRelayBoard(str(numato.link), protocol="numato", channels=2) as client:
        client.set(2, True)                    # the solenoid channel, as a dead run left it
    numato.clear_records()
    coil = only(relay_probe.probe(ctx))
    assert coil.level is FindingLevel.FAIL and "channel 2 (slot 1)" in coil.message
    assert "rig safe" in coil.fix
    assert all(f.startswith(b"relay read") for f in numato.frames)
    assert numato.state(2) is True, "the doctor released it: it must only report"


def test_a_board_without_read_back_is_a_warning(tmp_path):
    with SimulatedRelayBoard("lcus", 2, link=tmp_path / "board") as board:
        finding = only(relay_probe.probe(context(tmp_path, RELAY.format(link=board.link,
                                                                          protocol="lcus"))))
        assert board.frames == []
    assert finding.level is FindingLevel.WARN and "no state query" in finding.message


def test_switch_ports_off_and_absent_are_named(tmp_path):
    with VirtualSwitch(2) as sim:
        sim.attach(1, lambda on: None)
        sim.set_enabled(1, False)
        ctx = context(tmp_path, SWITCH.format(port=sim.udp_port, community="private"))
        findings = {f.name: f for f in switch_probe.probe(ctx)}
        assert sim.stats.set_pdus == 0
    assert findings["switch s"].level is FindingLevel.OK
    assert findings["switch s port 1 (slot 1)"].level is FindingLevel.WARN
    assert "rig safe" in findings["switch s port 1 (slot 1)"].fix
    assert findings["switch s port 5 (slot 2)"].level is FindingLevel.FAIL
    assert "no port 1.5" in findings["switch s port 5 (slot 2)"].message


def test_a_wrong_v2c_community_is_silence_and_says_so(tmp_path):
    with VirtualSwitch(2) as sim:
        ctx = context(tmp_path, SWITCH.format(port=sim.udp_port, community="not-the-one"))
        finding = only(switch_probe.probe(ctx))
    assert finding.level is FindingLevel.FAIL
    assert "wrong community" in finding.message
    assert "not-the-one" not in finding.message + finding.fix
