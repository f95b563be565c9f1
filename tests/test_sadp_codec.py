"""SADP codec: real captures parse to the right values; hostile or foreign datagrams are refused.

The three ProbeMatch samples are the real captures of reference §1.3, verbatim (sample B keeps its
tabs). Everything else is built around them: layouts firmware uses, and payloads an attacker or a
broken unit could send.
"""

from __future__ import annotations

import pytest

from rig.camera.sadp import (
    MAX_DATAGRAM,
    Probe,
    SadpError,
    build_probe,
    build_probe_match,
    parse_probe,
    parse_probe_match,
)

SAMPLE_A = b"""<?xml version="1.0" encoding="UTF-8"?>
<ProbeMatch><Uuid>F93CF8DC-DF53-424B-98A7-9FC0536E1083</Uuid>
<Types>inquiry</Types>
<DeviceType>142378</DeviceType>
<DeviceDescription>DS-2CD2320D-I</DeviceDescription>
<DeviceSN>DS-2CD2320D-I20180919AACHC52932642</DeviceSN>
<CommandPort>8000</CommandPort>
<HttpPort>80</HttpPort>
<MAC>44-47-cc-37-ce-81</MAC>
<IPv4Address>192.168.1.112</IPv4Address>
<IPv4SubnetMask>255.255.255.0</IPv4SubnetMask>
<IPv4Gateway>192.168.1.1</IPv4Gateway>
<IPv6Address>240e:361:c0a:2a00:4647:ccff:fe37:ce81</IPv6Address>
<IPv6Gateway>::</IPv6Gateway>
<IPv6MaskLen>64</IPv6MaskLen>
<DHCP>true</DHCP>
<AnalogChannelNum>0</AnalogChannelNum>
<DigitalChannelNum>1</DigitalChannelNum>
<SoftwareVersion>V5.5.6build 180326</SoftwareVersion>
<DSPVersion>V7.3 build 180326</DSPVersion>
<BootTime>2024-09-18 09:21:28</BootTime>
<Encrypt>true</Encrypt>
<ResetAbility>false</ResetAbility>
<DiskNumber>0</DiskNumber>
<Activated>true</Activated>
<PasswordResetAbility>true</PasswordResetAbility>
<PasswordResetModeSecond>true</PasswordResetModeSecond>
<SupportSecurityQuestion>true</SupportSecurityQuestion>
<SupportHCPlatform>true</SupportHCPlatform>
<HCPlatformEnable>flase</HCPlatformEnable>
<IsModifyVerificationCode>true</IsModifyVerificationCode>
<Salt>fc5237457341362c0d8810a4bfba0b85ed13421d1d553c62544a7df15948947a</Salt>
<DeviceLock>true</DeviceLock>
</ProbeMatch>
"""

SAMPLE_B = b"""<?xml version="1.0" encoding="UTF-8"?>
<ProbeMatch>
	<Uuid>e8ecfe09-90e4-44c0-842b-703f46b58c81</Uuid>
	<Types>inquiry</Types>
	<DeviceType>141945</DeviceType>
	<DeviceDescription>DS-2CD2385G1-I</DeviceDescription>
	<DeviceSN>DS-2CD2385G1-I20200414AAWRE33842150</DeviceSN>
	<CommandPort>8000</CommandPort>
	<HttpPort>80</HttpPort>
	<MAC>58-50-ed-1f-e3-85</MAC>
	<IPv4Address>192.168.124.40</IPv4Address>
	<IPv4SubnetMask>255.255.255.0</IPv4SubnetMask>
	<IPv4Gateway>192.168.124.1</IPv4Gateway>
	<IPv6Address>::</IPv6Address>
	<IPv6Gateway>::</IPv6Gateway>
	<IPv6MaskLen>64</IPv6MaskLen>
	<DHCP>true</DHCP>
	<AnalogChannelNum>0</AnalogChannelNum>
	<DigitalChannelNum>1</DigitalChannelNum>
	<SoftwareVersion>V5.6.2build 190701</SoftwareVersion>
	<DSPVersion>V7.3 build 190626</DSPVersion>
	<BootTime>1970-01-15 02:44:11</BootTime>
	<Encrypt>true</Encrypt>
	<ResetAbility>false</ResetAbility>
	<DiskNumber>0</DiskNumber>
	<Activated>true</Activated>
	<PasswordResetAbility>true</PasswordResetAbility>
	<PasswordResetModeSecond>true</PasswordResetModeSecond>
	<DetailOEMCode>1</DetailOEMCode>
	<SupportSecurityQuestion>true</SupportSecurityQuestion>
	<SupportHCPlatform>true</SupportHCPlatform>
	<HCPlatformEnable>flase</HCPlatformEnable>
	<IsModifyVerificationCode>true</IsModifyVerificationCode>
	<Salt>d8eebc414effc857bed4c3cc203c8b4413f60b00a9f4acc410084358d5fd3f91</Salt>
	<DeviceLock>flase</DeviceLock>
	<SDKOverTLSPort>8443</SDKOverTLSPort>
	<SDKServerStatus>true</SDKServerStatus>
	<SDKOverTLSServerStatus>true</SDKOverTLSServerStatus>
	<SupportMailBox>true</SupportMailBox>
</ProbeMatch>
"""

SAMPLE_C = b"""<?xml version="1.0" encoding="UTF-8" ?>
<ProbeMatch>
<Uuid>7621A503-49E6-4FBA-B3F8-CBE1F18E55F4</Uuid>
<Types>inquiry</Types>
<DeviceType>57397</DeviceType>
<DeviceDescription>DS-KH6210-L</DeviceDescription>
<DeviceSN>DS-KH6210-serial_number</DeviceSN>
<CommandPort>8000</CommandPort>
<HttpPort>80</HttpPort>
<MAC>AA-BB-CC-AA-BB-CC</MAC>
<IPv4Address>192.0.0.60</IPv4Address>
<IPv4SubnetMask>255.255.0.0</IPv4SubnetMask>
<IPv4Gateway>192.0.0.1</IPv4Gateway>
<DHCP>false</DHCP>
<AnalogChannelNum>1</AnalogChannelNum>
<DigitalChannelNum>0</DigitalChannelNum>
<SoftwareVersion>V1.5.0build 181114</SoftwareVersion>
<DSPVersion>V1.0, build 180613</DSPVersion>
<BootTime>2023-01-16 11:06:06</BootTime>
<OEMInfo>N/A</OEMInfo>
<Activated>true</Activated>
<PasswordResetAbility>true</PasswordResetAbility>
<DeviceLock>true</DeviceLock>
</ProbeMatch>
"""

REFERENCE_PROBE = (b'<?xml version="1.0" encoding="utf-8"?><Probe>'
                   b"<Uuid>13A888A9-F1B1-4020-AE9F-05607682D23B</Uuid>"
                   b"<Types>inquiry</Types></Probe>")

UUID = "13A888A9-F1B1-4020-AE9F-05607682D23B"
LAYOUTS = ("lf", "tabs", "crlf", "compact")


def minimal(**extra: str) -> list[tuple[str, str]]:
    """The fields a ProbeMatch needs, plus ``extra`` (in order)."""
    return [("Uuid", UUID), ("Types", "inquiry"), ("MAC", "44-47-cc-37-ce-81"), *extra.items()]


# --- the real captures ----------------------------------------------------------------------


def test_sample_a_ds_2cd2320d_i() -> None:
    device = parse_probe_match(SAMPLE_A, source="192.168.1.112")
    assert device.uuid == "F93CF8DC-DF53-424B-98A7-9FC0536E1083"
    assert device.mac == "44:47:cc:37:ce:81"
    assert device.serial == "DS-2CD2320D-I20180919AACHC52932642"
    assert device.model == "DS-2CD2320D-I"
    assert device.device_type == "142378"
    assert device.ipv4 == "192.168.1.112"
    assert device.mask == "255.255.255.0"
    assert device.gateway == "192.168.1.1"
    assert device.ipv6 == "240e:361:c0a:2a00:4647:ccff:fe37:ce81"
    assert device.dhcp is True
    assert device.http_port == 80
    assert device.command_port == 8000
    assert device.firmware == "V5.5.6build 180326"
    assert device.dsp_version == "V7.3 build 180326"
    assert device.activated is True
    assert device.device_lock is True
    assert device.boot_time == "2024-09-18 09:21:28"
    assert device.source == "192.168.1.112"
    # Elements rig has no field for are kept, typo and all.
    assert device.raw["HCPlatformEnable"] == "flase"
    assert device.raw["Salt"] == ("fc5237457341362c0d8810a4bfba0b85"
                                  "ed13421d1d553c62544a7df15948947a")
    assert device.raw["PasswordResetModeSecond"] == "true"


def test_sample_b_ds_2cd2385g1_i_with_tabs_and_lowercase_uuid() -> None:
    assert b"\n\t<Uuid>" in SAMPLE_B  # the capture's own indentation survived the copy
    device = parse_probe_match(SAMPLE_B)
    assert device.uuid == "E8ECFE09-90E4-44C0-842B-703F46B58C81"
    assert device.mac == "58:50:ed:1f:e3:85"
    assert device.serial == "DS-2CD2385G1-I20200414AAWRE33842150"
    assert device.model == "DS-2CD2385G1-I"
    assert device.ipv4 == "192.168.124.40"
    assert device.mask == "255.255.255.0"
    assert device.gateway == "192.168.124.1"
    assert device.ipv6 is None  # "::" means unset
    assert device.dhcp is True
    assert (device.http_port, device.command_port) == (80, 8000)
    assert device.firmware == "V5.6.2build 190701"
    assert device.activated is True
    assert device.device_lock is False  # written "flase" by the firmware
    assert device.boot_time == "1970-01-15 02:44:11"
    assert device.source is None
    assert device.raw["SDKOverTLSPort"] == "8443"
    assert device.raw["SupportMailBox"] == "true"
    assert device.raw["DetailOEMCode"] == "1"


def test_sample_c_intercom_without_ipv6_elements() -> None:
    device = parse_probe_match(SAMPLE_C)
    assert device.uuid == "7621A503-49E6-4FBA-B3F8-CBE1F18E55F4"
    assert device.mac == "aa:bb:cc:aa:bb:cc"
    assert device.serial == "DS-KH6210-serial_number"
    assert device.model == "DS-KH6210-L"
    assert device.device_type == "57397"
    assert device.ipv4 == "192.0.0.60"
    assert device.mask == "255.255.0.0"
    assert device.gateway == "192.0.0.1"
    assert device.ipv6 is None
    assert "IPv6Address" not in device.raw
    assert device.dhcp is False
    assert device.http_port == 80
    assert device.firmware == "V1.5.0build 181114"
    assert device.dsp_version == "V1.0, build 180613"
    assert device.activated is True
    assert device.device_lock is True
    assert device.boot_time == "2023-01-16 11:06:06"
    assert device.raw["OEMInfo"] == "N/A"


def test_to_json_carries_every_field() -> None:
    doc = parse_probe_match(SAMPLE_B, source="127.0.1.9").to_json()
    assert doc["mac"] == "58:50:ed:1f:e3:85"
    assert doc["device_lock"] is False
    assert doc["source"] == "127.0.1.9"
    assert doc["raw"]["Salt"].startswith("d8eebc41")


# --- layouts real firmware uses ---------------------------------------------------------------


def test_namespace_on_the_root_element() -> None:
    data = SAMPLE_A.replace(b"<ProbeMatch>",
                            b'<ProbeMatch xmlns="http://www.hikvision.com/ver20/XMLSchema">')
    device = parse_probe_match(data)
    assert device.mac == "44:47:cc:37:ce:81"
    assert device.serial == "DS-2CD2320D-I20180919AACHC52932642"
    assert device.activated is True


def test_crlf_line_endings() -> None:
    data = SAMPLE_C.replace(b"\n", b"\r\n")
    assert b"\r\n<MAC>" in data
    assert parse_probe_match(data) == parse_probe_match(SAMPLE_C)


def test_no_whitespace_at_all() -> None:
    data = b"".join(line.strip() for line in SAMPLE_B.splitlines())
    assert b"\n" not in data and b"\t" not in data
    assert parse_probe_match(data) == parse_probe_match(SAMPLE_B)


def test_mac_with_colons_in_upper_case_and_lowercase_uuid() -> None:
    data = build_probe_match([("Uuid", UUID.lower()), ("MAC", "58:50:ED:1F:E3:85")])
    device = parse_probe_match(data)
    assert device.mac == "58:50:ed:1f:e3:85"
    assert device.uuid == UUID


def test_optional_elements_missing() -> None:
    device = parse_probe_match(build_probe_match([("Uuid", UUID), ("MAC", "44-47-cc-37-ce-81")]))
    assert device.mac == "44:47:cc:37:ce:81"
    assert (device.serial, device.model, device.ipv4, device.ipv6) == (None, None, None, None)
    assert (device.http_port, device.command_port, device.firmware) == (None, None, None)
    assert (device.activated, device.device_lock, device.dhcp) == (None, None, None)


@pytest.mark.parametrize("value", ["", "http", "-1", "0", "70000", "8 0", "\u00b2", "\u0663"])
def test_unusable_port_reads_as_none(value: str) -> None:
    # "²" and "٣" are digits to str.isdigit() but not ports.
    device = parse_probe_match(build_probe_match(minimal(HttpPort=value)))
    assert device.http_port is None


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("false", False),
                                                 ("flase", False), ("TRUE", True),
                                                 ("maybe", None), ("", None)])
def test_activated_is_read_leniently(text: str, expected: bool | None) -> None:
    assert parse_probe_match(build_probe_match(minimal(Activated=text))).activated is expected


# --- refusals ---------------------------------------------------------------------------------


def refused(data: bytes) -> str:
    with pytest.raises(SadpError) as info:
        parse_probe_match(data, source="127.0.1.250")
    return str(info.value)


def test_truncated_reply_is_refused() -> None:
    message = refused(SAMPLE_A[: len(SAMPLE_A) // 2])
    assert "malformed XML" in message and "127.0.1.250" in message


def test_empty_datagram_is_refused() -> None:
    assert "empty" in refused(b"")


@pytest.mark.parametrize("root", ["Probe", "Hello"])
def test_wrong_root_element_is_refused(root: str) -> None:
    data = SAMPLE_A.replace(b"ProbeMatch>", root.encode() + b">")
    assert f"<{root}>" in refused(data)


def test_missing_mac_is_refused() -> None:
    assert "<MAC>" in refused(build_probe_match([("Uuid", UUID), ("DeviceSN", "X")]))


@pytest.mark.parametrize("mac", ["44-47-cc-37-ce", "44-47-cc-37-ce-81-00", "gg-47-cc-37-ce-81",
                                 "hello"])
def test_bad_mac_is_refused(mac: str) -> None:
    assert "not a MAC address" in refused(build_probe_match([("Uuid", UUID), ("MAC", mac)]))


def test_bad_uuid_is_refused() -> None:
    data = build_probe_match([("Uuid", "12345"), ("MAC", "aa-bb-cc-dd-ee-ff")])
    assert "not a Uuid" in refused(data)


def test_entity_expansion_is_refused() -> None:
    laughs = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
              + b"".join(b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1
                                                             else b"&lol;") * 10)
                         for i in range(1, 10))
              + b"]>\n<ProbeMatch><Uuid>" + UUID.encode() + b"</Uuid>"
              + b"<MAC>aa-bb-cc-dd-ee-ff</MAC><DeviceSN>&lol9;</DeviceSN></ProbeMatch>")
    assert len(laughs) < MAX_DATAGRAM
    assert "unsafe XML" in refused(laughs)


def test_external_entity_is_refused() -> None:
    xxe = (b'<?xml version="1.0"?>\n<!DOCTYPE ProbeMatch [\n'
           b' <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
           b"<ProbeMatch><Uuid>" + UUID.encode() + b"</Uuid><MAC>aa-bb-cc-dd-ee-ff</MAC>"
           b"<DeviceSN>&xxe;</DeviceSN></ProbeMatch>")
    assert "unsafe XML" in refused(xxe)


def test_oversized_datagram_is_refused() -> None:
    # A well-formed reply padded past the limit: refused for its size, not its content.
    padding = b"<Pad>" + b"x" * MAX_DATAGRAM + b"</Pad>"
    data = SAMPLE_A.replace(b"</ProbeMatch>", padding + b"</ProbeMatch>")
    assert len(data) > MAX_DATAGRAM
    assert f"larger than {MAX_DATAGRAM}" in refused(data)


@pytest.mark.parametrize("encoding", ["bogus", "shift_jis", "utf-32", "rot13", "idna",
                                      "undefined"])
def test_hostile_encoding_declaration_is_a_sadp_error(encoding: str) -> None:
    # expat raises LookupError / ValueError / UnicodeError for these; callers catch SadpError only.
    data = SAMPLE_C.replace(b'encoding="UTF-8"', f'encoding="{encoding}"'.encode())
    assert encoding.encode() in data
    refused(data)


# --- probes -----------------------------------------------------------------------------------


def test_build_probe_matches_the_reference_form_exactly() -> None:
    probe_uuid, data = build_probe(UUID.lower())
    assert probe_uuid == UUID
    assert data == REFERENCE_PROBE


def test_build_probe_makes_a_fresh_uppercase_uuid() -> None:
    first, data = build_probe()
    second, _ = build_probe()
    assert first != second
    assert first == first.upper() and len(first) == 36
    assert first.encode() in data


def test_parse_probe_round_trips_build_probe() -> None:
    probe_uuid, data = build_probe(types="inquiry_v32")
    assert parse_probe(data) == Probe(uuid=probe_uuid, types="inquiry_v32", mac=None)
    assert parse_probe(REFERENCE_PROBE) == Probe(uuid=UUID, types="inquiry")


def test_parse_probe_keeps_a_target_mac() -> None:
    data = REFERENCE_PROBE.replace(b"<Types>", b"<MAC>ff-ff-ff-ff-ff-ff</MAC><Types>")
    assert parse_probe(data).mac == "ff-ff-ff-ff-ff-ff"


@pytest.mark.parametrize("data", [SAMPLE_A, b"<Probe><Types>inquiry</Types></Probe>",
                                  b"<Probe>", b"not xml"])
def test_parse_probe_refuses_non_probes(data: bytes) -> None:
    with pytest.raises(SadpError):
        parse_probe(data)


# --- building replies (what the simulated camera sends) --------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_build_probe_match_round_trips(layout: str) -> None:
    fields = [("Uuid", UUID), ("Types", "inquiry"), ("DeviceType", "142378"),
              ("DeviceDescription", "DS-2CD2320D-I"),
              ("DeviceSN", "DS-2CD2320D-I20180919AACHC52932642"), ("CommandPort", "8000"),
              ("HttpPort", "8080"), ("MAC", "44-47-cc-37-ce-81"),
              ("IPv4Address", "127.0.1.10"), ("IPv4SubnetMask", "255.0.0.0"),
              ("IPv4Gateway", "127.0.0.1"), ("IPv6Address", "fe80::4647:ccff:fe37:ce81"),
              ("DHCP", "false"), ("SoftwareVersion", "V5.7.3build 220112"),
              ("DSPVersion", "V7.3 build 220112"), ("BootTime", "1970-01-01 00:00:09"),
              ("Activated", "false"), ("DeviceLock", "flase"), ("OEMInfo", "A&B <x>")]
    data = build_probe_match(fields, layout=layout)
    device = parse_probe_match(data, source="127.0.1.10")
    assert dict(device.raw) == dict(fields)  # every element, in any layout, escaping undone
    assert device.uuid == UUID
    assert device.mac == "44:47:cc:37:ce:81"
    assert device.serial == "DS-2CD2320D-I20180919AACHC52932642"
    assert device.model == "DS-2CD2320D-I"
    assert (device.ipv4, device.mask, device.gateway) == ("127.0.1.10", "255.0.0.0", "127.0.0.1")
    assert device.ipv6 == "fe80::4647:ccff:fe37:ce81"
    assert (device.http_port, device.command_port) == (8080, 8000)
    assert device.firmware == "V5.7.3build 220112"
    assert (device.activated, device.device_lock, device.dhcp) == (False, False, False)


def test_build_probe_match_layouts_differ_as_the_captures_do() -> None:
    fields = minimal()
    assert b"\n\t<Uuid>" in build_probe_match(fields, layout="tabs")
    assert b"\r\n<Uuid>" in build_probe_match(fields, layout="crlf")
    assert b"\n" not in build_probe_match(fields, layout="compact")
