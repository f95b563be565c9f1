"""Relay protocol modules: exact bytes on the wire and strict reply parsing, without I/O."""

from __future__ import annotations

import re

import pytest

from rig.actuators import relay_protocols
from rig.actuators.relay_protocols import ReplyError, kmtronic, lcus, numato


def test_the_package_lists_and_loads_every_board_family():
    assert relay_protocols.available() == ["kmtronic", "lcus", "numato"]
    for name in relay_protocols.available():
        module = relay_protocols.load(name)
        assert module.NAME == name
        assert module.MAX_CHANNELS >= 1 and module.DEFAULT_BAUDRATE > 0


def test_an_unknown_protocol_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown relay protocol 'usbrly' \(known: kmtronic, "
                                         r"lcus, numato\)"):
        relay_protocols.load("usbrly")
    with pytest.raises(ValueError, match="unknown relay protocol"):
        relay_protocols.load("../base")


def test_lcus_frames_carry_channel_op_and_checksum():
    assert lcus.encode_set(1, True) == bytes.fromhex("A0 01 01 A2")
    assert lcus.encode_set(1, False) == bytes.fromhex("A0 01 00 A1")
    assert lcus.encode_set(2, True) == bytes.fromhex("A0 02 01 A3")
    assert lcus.encode_set(8, False) == bytes.fromhex("A0 08 00 A8")
    assert (lcus.DEFAULT_BAUDRATE, lcus.HAS_READBACK) == (9600, False)
    assert lcus.reply_complete(lcus.encode_set(1, True), b"")
    with pytest.raises(ValueError, match="no reliable state read-back"):
        lcus.encode_read(1)


@pytest.mark.parametrize(("channel", "token"), [(1, "0"), (2, "1"), (10, "9"), (11, "A"),
                                                (13, "C"), (32, "V")])
def test_numato_maps_rig_channels_to_zero_based_wire_relays(channel, token):
    assert numato.wire_index(channel) == token
    assert numato.encode_set(channel, True) == f"relay on {token}\r".encode()
    assert numato.encode_set(channel, False) == f"relay off {token}\r".encode()
    assert numato.encode_read(channel) == f"relay read {token}\r".encode()


@pytest.mark.parametrize("channel", [0, 33])
def test_numato_refuses_relays_the_wire_cannot_name(channel):
    with pytest.raises(ValueError, match="outside 1..32"):
        numato.encode_set(channel, True)


def test_numato_reply_needs_the_echo_and_the_prompt():
    read0 = numato.encode_read(1)
    assert not numato.reply_complete(read0, b"relay read 0\n\ron\n\r")
    assert numato.reply_complete(read0, b"relay read 0\n\ron\n\r>")
    assert numato.parse_reply(read0, b"relay read 0\n\ron\n\r>") is True
    assert numato.parse_reply(read0, b"relay read 0\n\roff\n\r>") is False
    assert numato.parse_reply(numato.encode_set(1, True), b"relay on 0\n\r>") is None


@pytest.mark.parametrize(("request_", "reply", "problem"), [
    (b"relay read 0\r", b"relay read 0\n\rmaybe\n\r>", "expected 'on' or 'off'"),
    (b"relay read 0\r", b"relay read 1\n\ron\n\r>", "echo 'relay read 1' is not the command"),
    (b"relay on 0\r", b"\x00\xfeERR\n\r>", "not ASCII"),
    (b"relay on 0\r", b"relay on 0\n\rInvalid command\n\r>", "unexpected text after the echo"),
    (b"relay on 0\r", b"relay on 0\n\r", "no '>' prompt"),
])
def test_numato_garbage_is_a_reply_error(request_, reply, problem):
    with pytest.raises(ReplyError, match=problem):
        numato.parse_reply(request_, reply)


def test_kmtronic_frames_and_status_reply():
    assert kmtronic.encode_set(1, True) == bytes.fromhex("FF 01 01")
    assert kmtronic.encode_set(1, False) == bytes.fromhex("FF 01 00")
    status = kmtronic.encode_read(1)
    assert status == bytes.fromhex("FF 01 03")
    assert kmtronic.reply_complete(kmtronic.encode_set(1, True), b"")
    assert not kmtronic.reply_complete(status, b"\xff\x01")
    assert kmtronic.parse_reply(status, bytes.fromhex("FF 01 01")) is True
    assert kmtronic.parse_reply(status, bytes.fromhex("FF 01 00")) is False
    with pytest.raises(ReplyError, match=re.escape("expected FF 01 00|01, got 'FF 02 01'")):
        kmtronic.parse_reply(status, bytes.fromhex("FF 02 01"))
