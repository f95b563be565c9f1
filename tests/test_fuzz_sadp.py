"""Property-based fuzzing of the SADP codec: whatever a datagram holds, the parsers return a
record or raise SadpError (a ValueError), never another exception and never slowly; what
they return can always be written as evidence (JSON). Budget and long runs: fuzz_support."""

from __future__ import annotations

import json

from fuzz_support import FUZZ, SPECIAL_BYTES, mutated, value_or, xml_bytes
from hypothesis import example, given
from hypothesis import strategies as st
from test_sadp_codec import SAMPLE_A, SAMPLE_B, SAMPLE_C

from rig.camera.sadp import (
    SadpError,
    build_probe,
    build_probe_match,
    normalize_mac,
    normalize_uuid,
    parse_probe,
    parse_probe_match,
)
from rig.camera.sadp_commands import build_lamp, build_update, parse_command_reply

PROBE_MATCH_FIELDS = ("Uuid", "MAC", "Types", "DeviceType", "DeviceDescription", "DeviceSN",
                      "CommandPort", "HttpPort", "IPv4Address", "IPv4SubnetMask", "IPv4Gateway",
                      "IPv6Address", "DHCP", "SoftwareVersion", "DSPVersion", "BootTime",
                      "Activated", "DeviceLock", "Result", "Action", "Password")
VALUES = ("F93CF8DC-DF53-424B-98A7-9FC0536E1083", "44-47-cc-37-ce-81", "inquiry", "update",
          "lamp", "success", "failed", "65535", "65536", "²", "٣", "::")
SAMPLES = (SAMPLE_A, SAMPLE_B, SAMPLE_C, build_probe("13A888A9-F1B1-4020-AE9F-05607682D23B")[1],
           build_update("44:47:cc:00:00:01", address="192.168.1.10", mask="255.255.255.0",
                        gateway="192.168.1.1", dhcp=False, password_field="x")[1],
           build_lamp("44:47:cc:00:00:01", True)[1],
           SAMPLE_A.replace(b"</ProbeMatch>", b"<Result>success</Result></ProbeMatch>"))
DATAGRAMS = st.one_of(
    st.sampled_from(SAMPLES).flatmap(mutated),
    xml_bytes(("ProbeMatch", "Probe"), PROBE_MATCH_FIELDS, VALUES),
    st.lists(st.sampled_from(SPECIAL_BYTES) | st.binary(max_size=8), max_size=30).map(b"".join),
)


def _as_evidence(record: object) -> None:
    """A record that was returned must serialise: it goes into the record store as JSON."""
    if record is not None:
        json.dumps(record.to_json())


@FUZZ
@given(DATAGRAMS, st.none() | st.text(max_size=20))
@example(b"<ProbeMatch><Uuid>x</Uuid><MAC>44-47-cc-37-ce-81</MAC></ProbeMatch>", None)
def test_any_datagram_is_a_probe_match_or_a_sadp_error(data: bytes, source: str | None) -> None:
    device = value_or(SadpError, lambda: parse_probe_match(data, source))
    _as_evidence(device)
    if device is not None:
        assert device.mac == normalize_mac(device.mac)
        assert device.http_port is None or 0 < device.http_port < 65536


@FUZZ
@given(DATAGRAMS)
def test_any_datagram_is_a_probe_or_a_sadp_error(data: bytes) -> None:
    probe = value_or(SadpError, lambda: parse_probe(data))
    assert probe is None or probe.uuid


@FUZZ
@given(DATAGRAMS, st.none() | st.text(max_size=20))
def test_any_datagram_is_a_command_reply_or_a_sadp_error(data: bytes,
                                                        source: str | None) -> None:
    reply = value_or(SadpError, lambda: parse_command_reply(data, source))
    _as_evidence(reply)
    if reply is not None:
        assert "password" not in {k.lower() for k in reply.to_json()["raw"]}


@FUZZ
@given(st.text(max_size=40) | st.sampled_from(VALUES))
def test_any_text_is_a_mac_and_a_uuid_or_a_sadp_error(text: str) -> None:
    mac = value_or(SadpError, lambda: normalize_mac(text))
    assert mac is None or normalize_mac(mac) == mac
    value_or(SadpError, lambda: normalize_uuid(text))


#: Field text firmware could send: anything XML can carry (no control characters).
FIELD_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PROBE_MATCH_FIELDS[2:]), FIELD_TEXT), max_size=12),
       st.sampled_from(("lf", "tabs", "crlf", "compact")))
def test_every_field_a_unit_sends_is_kept_as_sent(fields: list[tuple[str, str]],
                                                  layout: str) -> None:
    """A ProbeMatch written the way firmware writes it keeps each field's text (stripped, the
    first occurrence winning) in ``raw``: what the unit said is evidence, never lost."""
    data = build_probe_match([("Uuid", "F93CF8DC-DF53-424B-98A7-9FC0536E1083"),
                              ("MAC", "44-47-cc-37-ce-81"), *fields], layout)
    device = value_or(SadpError, lambda: parse_probe_match(data))
    if len(data) > 8192:
        assert device is None
        return
    assert device is not None
    first: dict[str, str] = {}
    for name, value in fields:
        first.setdefault(name, value.strip())
    assert {k: device.raw[k] for k in first} == first
