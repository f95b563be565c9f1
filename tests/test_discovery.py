"""SADP discovery against real responders on real sockets, always pinned to loopback.

Every responder here binds an address in 127.0.1.200–254 (other test modules use 127.0.1.10+;
test_sim_cli's `rig sim camera` holds .230–.232, so this module leaves .223–.239 free) and joins
the group on 127.0.0.1; discovery runs with bind="127.0.0.1" or interface="lo" only. Other
SADP traffic on the host may be heard too (a simulated fleet, or this very module running in
another process on a shared machine), so every run draws its own MAC prefix and assertions look
at this run's units and this module's sources only.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from rig import cli
from rig.camera import discovery
from rig.camera.discovery import DiscoveryError, discover, open_group_socket, run_discovery
from rig.camera.netif import BindRefused
from rig.camera.sadp import (
    GROUP,
    MAX_DATAGRAM,
    PORT,
    Probe,
    build_probe,
    build_probe_match,
    parse_probe_match,
)
from rig.sim.sadp_responder import SadpResponder

BASE = "127.0.1."
LOOPBACK = "127.0.0.1"
#: Locally administered MACs, different in every run (see the module docstring).
MAC_PREFIX = "02:5a:{:02x}:{:02x}:{:02x}:".format(*secrets.token_bytes(3))
INJECTOR = BASE + "254"
FOREIGN_UUID = "00000000-1111-4222-8333-444444444444"


def hyphens(mac: str) -> str:
    """The MAC as SADP firmware writes it (44-47-cc-…)."""
    return mac.replace(":", "-")


@dataclass
class Unit:
    """A simulated unit: what its ProbeMatch says and which probes it has seen."""

    n: int
    styles: tuple[str, ...] = ("multicast",)
    activated: bool = False
    extra: Sequence[tuple[str, str]] = ()
    mac_n: int | None = None
    probes: list[tuple[Probe, tuple[str, int]]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{BASE}{200 + self.n}"

    @property
    def mac(self) -> str:
        return f"{MAC_PREFIX}{self.mac_n if self.mac_n is not None else self.n:02x}"

    @property
    def serial(self) -> str:
        return f"DS-2CD2143G2-I20240102AAWRJ{9000 + self.n:08d}"

    def fields(self, probe_uuid: str) -> list[tuple[str, str]]:
        return [("Uuid", probe_uuid), ("Types", "inquiry"), ("DeviceType", "142378"),
                ("DeviceDescription", "DS-2CD2143G2-I"), ("DeviceSN", self.serial),
                ("CommandPort", "8000"), ("HttpPort", str(8000 + self.n)),
                ("MAC", hyphens(self.mac)), ("IPv4Address", self.address),
                ("IPv4SubnetMask", "255.0.0.0"), ("SoftwareVersion", f"V5.7.{self.n}build 230101"),
                ("Activated", "true" if self.activated else "false"),
                ("DeviceLock", "flase"), *self.extra]

    def answer(self, probe: Probe, sender: tuple[str, int]) -> bytes | None:
        self.probes.append((probe, sender))
        return build_probe_match(self.fields(probe.uuid))


Start = Callable[..., SadpResponder]


@pytest.fixture
def start_responder() -> Iterator[Start]:
    """Start responders for a test; every one is stopped afterwards, whatever happened."""
    started: list[SadpResponder] = []

    def start(answer: Callable[[Probe, tuple[str, int]], bytes | None],
              styles: Sequence[str], address: str) -> SadpResponder:
        responder = SadpResponder(answer, lambda: styles, bind_address=address,
                                  interface_address=LOOPBACK)
        started.append(responder)
        return responder.start()

    yield start
    for responder in started:
        responder.stop()
    assert not any(responder.running for responder in started)


@pytest.fixture
def start_units(start_responder: Start) -> Callable[..., list[Unit]]:
    def start(*units: Unit) -> list[Unit]:
        for unit in units:
            start_responder(unit.answer, unit.styles, unit.address)
        return list(units)
    return start


def ours(devices: Sequence) -> dict:
    """This module's units among ``devices`` (SadpDevice or JSON dicts), by MAC."""
    out = {}
    for device in devices:
        mac = device["mac"] if isinstance(device, dict) else device.mac
        if mac.startswith(MAC_PREFIX):
            assert mac not in out, f"{mac} listed twice"
            out[mac] = device
    return out


# --- discovery ---------------------------------------------------------------------------------


def test_discovery_finds_every_unit_with_its_fields(start_units) -> None:
    units = start_units(Unit(1, ("multicast",), activated=True), Unit(2, ("unicast",)),
                        Unit(3, ("multicast", "unicast")))
    started = time.monotonic()
    devices = discover(0.8, bind=LOOPBACK)
    assert time.monotonic() - started < 0.8 + 0.5
    found = ours(devices)
    assert sorted(found) == sorted(unit.mac for unit in units)
    for unit in units:
        device = found[unit.mac]
        assert device.serial == unit.serial
        assert device.model == "DS-2CD2143G2-I"
        assert device.ipv4 == unit.address
        assert device.http_port == 8000 + unit.n
        assert device.firmware == f"V5.7.{unit.n}build 230101"
        assert device.activated is unit.activated
        assert device.device_lock is False
        assert device.source == unit.address  # replies leave from the camera's own address
    mine = [device for device in devices if device.mac in found]
    assert [device.ipv4 for device in mine] == sorted(unit.address for unit in units)


def test_expected_units_end_the_window_early(start_units) -> None:
    """A caller that knows its units (the runner's first census round) does not wait out the
    window once every one has replied; a unit it does not expect keeps the window open."""
    units = start_units(Unit(20, ("multicast",)), Unit(21, ("unicast",)))
    result = run_discovery(3.0, bind=LOOPBACK, expect=[u.mac.upper() for u in units])
    assert sorted(ours(result.devices)) == sorted(u.mac for u in units)
    assert result.elapsed < 1.5
    absent = "44:19:b6:00:00:99"
    result = run_discovery(0.6, bind=LOOPBACK, expect=[units[0].mac, absent])
    assert result.elapsed >= 0.6


@pytest.mark.parametrize("styles", [("multicast",), ("unicast",), ("multicast", "unicast")])
def test_each_reply_style_is_heard(start_units, styles: tuple[str, ...]) -> None:
    (unit,) = start_units(Unit(10, styles))
    result = run_discovery(0.6, bind=LOOPBACK)
    assert unit.mac in ours(result.devices)
    assert all(sender[0] == LOOPBACK for _, sender in unit.probes)


def test_unicast_replies_reach_the_probing_socket(start_units) -> None:
    # The unicast reply goes to the probe's source port, which is the send socket, not 37020.
    (unit,) = start_units(Unit(11, ("unicast",)))
    result = run_discovery(0.6, bind=LOOPBACK)
    assert unit.mac in ours(result.devices)
    ports = {sender[1] for probe, sender in unit.probes if probe.uuid == result.probe_uuid}
    assert len(ports) == 1 and PORT not in ports


def test_a_unit_answering_both_ways_is_listed_once(start_units) -> None:
    (unit,) = start_units(Unit(12, ("multicast", "unicast")))
    result = run_discovery(0.6, bind=LOOPBACK)
    ours_answered = [p for p, _ in unit.probes if p.uuid == result.probe_uuid]
    assert len(ours_answered) >= 2  # so at least four replies came back for one MAC
    assert [device.mac for device in result.devices].count(unit.mac) == 1


def test_same_mac_from_two_sources_keeps_the_most_complete_reply(start_units) -> None:
    terse, full = start_units(
        Unit(13, ("multicast",)),
        Unit(14, ("unicast",), mac_n=13, extra=[("Salt", "ab" * 32), ("OEMInfo", "N/A")]))
    assert terse.mac == full.mac
    devices = ours(discover(0.6, bind=LOOPBACK))
    assert list(devices) == [terse.mac]
    assert devices[terse.mac].source == full.address
    assert devices[terse.mac].raw["Salt"] == "ab" * 32


def test_probe_is_resent_so_one_lost_probe_does_not_lose_the_unit(start_responder) -> None:
    unit = Unit(15)
    seen: list[str] = []

    def deaf_to_the_first_probe(probe: Probe, sender: tuple[str, int]) -> bytes | None:
        seen.append(probe.uuid)
        return None if seen.count(probe.uuid) == 1 else unit.answer(probe, sender)

    start_responder(deaf_to_the_first_probe, ("multicast",), unit.address)
    probe_uuid = str(uuid.uuid4())  # lowercase on purpose; fresh so no other run shares it
    result = run_discovery(0.6, bind=LOOPBACK, probe_uuid=probe_uuid)
    assert result.probe_uuid == probe_uuid.upper()
    assert unit.mac in ours(result.devices)
    assert result.probes_sent == discovery.MAX_PROBES == 3
    assert seen.count(result.probe_uuid) == 3  # bounded: no more than three probes per call


def test_interface_lo_is_resolved_and_used(start_units) -> None:
    (unit,) = start_units(Unit(16, ("multicast", "unicast")))
    result = run_discovery(0.6, interface="lo")
    assert [iface.to_json() for iface in result.interfaces] == [
        {"name": "lo", "address": LOOPBACK}]
    assert unit.mac in ours(result.devices)


def test_discovery_keeps_to_its_window() -> None:
    started = time.monotonic()
    result = run_discovery(0.5, bind=LOOPBACK)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.0
    assert result.timeout == 0.5


# --- what discovery must survive ----------------------------------------------------------------

TRUNCATED = build_probe_match([("Uuid", FOREIGN_UUID), ("MAC", hyphens(MAC_PREFIX + "f0")),
                               ("DeviceSN", "TRUNCATED")])[:60]
FOREIGN = build_probe_match([("Uuid", FOREIGN_UUID), ("MAC", hyphens(MAC_PREFIX + "f1")),
                             ("DeviceSN", "FOREIGN")])
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE ProbeMatch [<!ENTITY a "aaaaaaaaaa">'
          + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + i]), b"&%s;" % bytes([97 + i]) * 10)
                     for i in range(8))
          + b"]><ProbeMatch><Uuid>" + FOREIGN_UUID.encode()
          + b"</Uuid><MAC>" + hyphens(MAC_PREFIX + "f2").encode()
          + b"</MAC><DeviceSN>&i;</DeviceSN></ProbeMatch>")
OVERSIZED = FOREIGN.replace(b"</ProbeMatch>",
                            b"<Pad>" + b"x" * MAX_DATAGRAM + b"</Pad></ProbeMatch>")
EXPECTED_REASONS = {"reply to another probe": FOREIGN, "malformed XML": TRUNCATED,
                    "unsafe XML": LAUGHS, "larger than": OVERSIZED}


@pytest.fixture
def injector() -> Iterator[str]:
    """A raw socket that keeps sending bad replies into the group on loopback; yields its source."""
    stop = threading.Event()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((INJECTOR, 0))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LOOPBACK))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    source = f"{INJECTOR}:{sock.getsockname()[1]}"

    def loop() -> None:
        while not stop.wait(0.05):
            for payload in EXPECTED_REASONS.values():
                sock.sendto(payload, (GROUP, PORT))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield source
    finally:
        stop.set()
        thread.join(1)
        sock.close()


def test_bad_replies_are_skipped_and_good_units_still_found(start_units, start_responder,
                                                            injector: str) -> None:
    good = start_units(Unit(20, ("multicast",)), Unit(21, ("unicast",)))
    # A unit that answers our probe by unicast with a truncated reply: the send socket's path.
    broken = Unit(22, ("unicast",))
    start_responder(lambda probe, sender: build_probe_match(broken.fields(probe.uuid))[:80],
                    ("unicast",), broken.address)
    assert len(OVERSIZED) > MAX_DATAGRAM
    assert parse_probe_match(FOREIGN).uuid == FOREIGN_UUID  # only the Uuid is wrong with it

    started = time.monotonic()
    result = run_discovery(1.0, bind=LOOPBACK)
    assert time.monotonic() - started < 1.0 + 0.5

    assert sorted(ours(result.devices)) == sorted(unit.mac for unit in good)
    from_injector = [item.reason for item in result.skipped if item.source == injector]
    for reason in EXPECTED_REASONS:
        assert any(reason in text for text in from_injector), (reason, from_injector)
    assert any(item.source == f"{broken.address}:{PORT}" and "malformed XML" in item.reason
               for item in result.skipped)
    doc = result.to_json()
    assert {"source": injector, "reason": from_injector[0]} in doc["skipped"]


def test_own_probe_looped_back_is_not_reported_as_skipped() -> None:
    result = run_discovery(0.5, bind=LOOPBACK)
    assert result.probes_sent == 3
    assert not [item for item in result.skipped if item.source.startswith(LOOPBACK + ":")]


# --- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"interface": "rig-nope0"}, "unknown interface 'rig-nope0'"),
    ({"bind": "198.51.100.7"}, "198.51.100.7 is not an address of this host"),
    ({"bind": "not-an-address"}, "is not an IPv4 address"),
    ({"bind": "0.0.0.0"}, "not a unicast address"),
    ({"bind": GROUP}, "not a unicast address"),
    ({"bind": LOOPBACK, "interface": "lo"}, "not both"),
    ({"bind": LOOPBACK, "timeout": 0}, "positive number"),
    ({"bind": LOOPBACK, "timeout": -1.0}, "positive number"),
    ({"bind": LOOPBACK, "timeout": float("nan")}, "positive number"),
])
def test_configuration_errors_are_discovery_errors(kwargs: dict, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(DiscoveryError, match=message):
        discover(**kwargs)
    assert time.monotonic() - started < 0.5  # refused before any waiting


def test_interface_without_ipv4_is_refused() -> None:
    without = [name for _, name in socket.if_nameindex()
               if name not in {iface.name for iface in discovery.all_ipv4_interfaces()}]
    if without:
        with pytest.raises(DiscoveryError,
                           match=f"interface '{without[0]}' (has no IPv4|is down)"):
            discover(0.5, interface=without[0])
        return
    if os.geteuid() != 0:
        pytest.skip("every interface on this host has an IPv4 address, and making one "
                    "without (in a namespace of the test's own) needs root")
    from rig.sim import netns
    with netns.NetnsLab() as lab:       # a namespace of the test's own, with a bare link
        bare = lab.namespace("bare")
        lab.veth(bare, "bare0", lab.namespace("peer"), "peer0")
        with netns.in_netns(bare), pytest.raises(
                DiscoveryError, match="interface 'bare0' (has no IPv4|is down)"):
            discover(0.5, interface="bare0")


def test_discovery_error_is_a_value_error() -> None:
    assert issubclass(DiscoveryError, ValueError)


# --- the responder on its own -----------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(1.0)
    try:
        yield sock
    finally:
        sock.close()


def probe_bytes(types: str = "inquiry", mac: str | None = None) -> tuple[str, bytes]:
    probe_uuid, data = build_probe(types=types)
    if mac:
        data = data.replace(b"<Types>", f"<MAC>{mac}</MAC><Types>".encode())
    return probe_uuid, data


def test_responder_answers_a_unicast_probe_from_its_own_address(start_units, client) -> None:
    (unit,) = start_units(Unit(44, ("unicast",)))
    probe_uuid, data = probe_bytes()
    client.sendto(data, (unit.address, PORT))
    reply, source = client.recvfrom(65536)
    assert source == (unit.address, PORT)
    device = parse_probe_match(reply)
    assert (device.uuid, device.mac) == (probe_uuid, unit.mac)
    assert unit.probes == [(Probe(probe_uuid, "inquiry"), client.getsockname())]


def test_responder_multicast_reply_goes_to_the_group(start_units, client) -> None:
    (unit,) = start_units(Unit(45, ("multicast",)))
    listener = open_group_socket(LOOPBACK)
    try:
        listener.settimeout(1.0)
        probe_uuid, data = probe_bytes("inquiry_v32")
        client.sendto(data, (unit.address, PORT))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            reply, source = listener.recvfrom(65536)
            if source[0] == unit.address:
                break
        assert source == (unit.address, PORT)
        assert parse_probe_match(reply).uuid == probe_uuid
    finally:
        listener.close()
    with pytest.raises(TimeoutError):  # multicast only: nothing comes back to the sender
        client.settimeout(0.2)
        client.recvfrom(65536)


def test_responder_ignores_what_is_not_an_inquiry_and_keeps_going(start_units, client) -> None:
    (unit,) = start_units(Unit(46, ("unicast",)))
    target = (unit.address, PORT)
    client.sendto(b"\x00garbage", target)
    client.sendto(FOREIGN, target)  # someone else's ProbeMatch
    client.sendto(probe_bytes("update")[1], target)
    client.sendto(probe_bytes("activate")[1], target)
    client.sendto(b"<Probe><Types>inquiry</Types></Probe>", target)  # no Uuid
    big = probe_bytes()[1].replace(b"</Probe>", b" " * MAX_DATAGRAM + b"</Probe>")
    client.sendto(big, target)
    probe_uuid, data = probe_bytes()
    client.sendto(data, target)
    reply, _ = client.recvfrom(65536)
    assert parse_probe_match(reply).uuid == probe_uuid
    assert [probe.uuid for probe, _ in unit.probes] == [probe_uuid]


def test_probe_for_a_mac_is_left_to_the_answer_callable(start_responder, client) -> None:
    unit = Unit(47, ("unicast",))

    def only_for_me(probe: Probe, sender: tuple[str, int]) -> bytes | None:
        if probe.mac not in (None, "ff-ff-ff-ff-ff-ff", hyphens(unit.mac)):
            return None
        return unit.answer(probe, sender)

    start_responder(only_for_me, unit.styles, unit.address)
    target = (unit.address, PORT)
    client.sendto(probe_bytes(mac="02-00-00-00-00-01")[1], target)
    broadcast_uuid, data = probe_bytes(mac="ff-ff-ff-ff-ff-ff")
    client.sendto(data, target)
    assert parse_probe_match(client.recvfrom(65536)[0]).uuid == broadcast_uuid
    mine_uuid, data = probe_bytes(mac=hyphens(unit.mac))
    client.sendto(data, target)
    assert parse_probe_match(client.recvfrom(65536)[0]).uuid == mine_uuid


def test_responder_survives_a_failing_answer_and_silence(start_responder, client) -> None:
    unit = Unit(48, ("unicast",))
    calls: list[str] = []

    def moody(probe: Probe, sender: tuple[str, int]) -> bytes | None:
        calls.append(probe.uuid)
        if len(calls) == 1:
            raise RuntimeError("camera model bug")
        if len(calls) == 2:
            return None
        return unit.answer(probe, sender)

    start_responder(moody, ("unicast", "bogus-style"), unit.address)
    target = (unit.address, PORT)
    for _ in range(2):
        client.sendto(probe_bytes()[1], target)
    probe_uuid, data = probe_bytes()
    client.sendto(data, target)
    assert parse_probe_match(client.recvfrom(65536)[0]).uuid == probe_uuid
    assert len(calls) == 3


def test_responder_stops_promptly_closes_its_sockets_and_restarts(client) -> None:
    unit = Unit(49, ("unicast",))
    responder = SadpResponder(unit.answer, lambda: unit.styles, bind_address=unit.address,
                              interface_address=LOOPBACK)
    with responder:
        assert responder.running
        sockets = list(responder._sockets)
        assert len(sockets) == 2
        started = time.monotonic()
        responder.stop()
        assert time.monotonic() - started < 0.5
        assert not responder.running
        assert all(sock.fileno() == -1 for sock in sockets)
        responder.stop()  # idempotent
    # Closed for real: the address and port can be bound again, and the responder restarts.
    responder.start()
    try:
        probe_uuid, data = probe_bytes()
        client.sendto(data, (unit.address, PORT))
        assert parse_probe_match(client.recvfrom(65536)[0]).uuid == probe_uuid
    finally:
        responder.stop()


def test_responder_can_be_stopped_from_its_own_answer_callable(client) -> None:
    # A camera losing power while it answers: stop() runs on the responder thread itself.
    unit = Unit(43, ("unicast",))
    holder: list[SadpResponder] = []

    def power_off_while_answering(probe: Probe, sender: tuple[str, int]) -> bytes | None:
        holder[0].stop()
        return unit.answer(probe, sender)

    responder = SadpResponder(power_off_while_answering, lambda: unit.styles,
                              bind_address=unit.address, interface_address=LOOPBACK)
    holder.append(responder)
    with responder:
        client.sendto(probe_bytes()[1], (unit.address, PORT))
        deadline = time.monotonic() + 1.0
        while responder._sockets and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not responder.running and unit.probes
    threads = [t for t in threading.enumerate() if t.name == f"sadp-responder-{unit.address}"]
    for thread in threads:
        thread.join(1.0)  # it ends by itself once answer() returns
        assert not thread.is_alive()


def test_responder_on_a_foreign_address_fails_to_start_cleanly() -> None:
    responder = SadpResponder(lambda probe, sender: None, lambda: (), bind_address="198.51.100.7",
                              interface_address=LOOPBACK)
    before = threading.active_count()
    with pytest.raises(OSError):
        responder.start()
    assert not responder.running
    assert threading.active_count() == before


# --- rig discover -----------------------------------------------------------------------------


def test_cli_json_lists_the_units(start_units, capsys) -> None:
    units = start_units(Unit(40, ("multicast",), activated=True), Unit(41, ("unicast",)))
    code = cli.main(["discover", "--bind", LOOPBACK, "--timeout", "0.8", "--json"])
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert code == 0
    assert doc["timeout"] == 0.8
    assert doc["interfaces"] == [{"name": "lo", "address": LOOPBACK}]
    assert isinstance(doc["skipped"], list)
    found = ours(doc["devices"])
    assert sorted(found) == sorted(unit.mac for unit in units)
    for unit in units:
        assert found[unit.mac]["serial"] == unit.serial
        assert found[unit.mac]["activated"] is unit.activated
        assert found[unit.mac]["ipv4"] == unit.address


def test_cli_table_lists_the_units(start_units, capsys) -> None:
    units = start_units(Unit(42, ("multicast", "unicast"), activated=True), Unit(43))
    code = cli.main(["discover", "-b", LOOPBACK, "-t", "0.8"])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["MAC", "SERIAL", "MODEL", "IPV4", "HTTP", "FIRMWARE",
                                "ACTIVATED", "LOCK"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.startswith(MAC_PREFIX)}
    assert rows[units[0].mac] == [units[0].mac, units[0].serial, "DS-2CD2143G2-I",
                                  units[0].address, "8042", "V5.7.42build", "230101", "yes", "no"]
    assert rows[units[1].mac][-2:] == ["no", "no"]
    summary = [line for line in lines if "unit(s) found in" in line]
    assert len(summary) == 1 and summary[0].endswith(" s")


def test_cli_exits_1_when_nothing_answers(monkeypatch, capsys) -> None:
    # A port nobody answers on, so other SADP traffic on this host cannot make units appear.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe_port:
        probe_port.bind((GROUP, 0))
        silent_port = probe_port.getsockname()[1]
    monkeypatch.setattr("rig.camera.discovery.run_discovery",
                        functools.partial(run_discovery, port=silent_port))
    assert cli.main(["discover", "--bind", LOOPBACK, "--timeout", "0.5"]) == 1
    assert "0 unit(s) found in" in capsys.readouterr().out
    assert cli.main(["discover", "--bind", LOOPBACK, "--timeout", "0.5", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["devices"] == []


@pytest.mark.parametrize(("argv", "message"), [
    (["--interface", "rig-nope0"], "unknown interface 'rig-nope0'"),
    (["--bind", "198.51.100.7"], "not an address of this host"),
    (["--bind", LOOPBACK, "--timeout", "0"], "positive number"),
])
def test_cli_configuration_errors_exit_2(capsys, argv: list[str], message: str) -> None:
    assert cli.main(["discover", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("rig discover: error: ")
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err


def test_cli_interface_and_bind_are_mutually_exclusive(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["discover", "--interface", "lo", "--bind", LOOPBACK])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_help_says_what_it_does(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["discover", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "SADP" in text and "--interface" in text and "--bind" in text and "exit status" in text
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "find cameras on the bench network by SADP" in capsys.readouterr().out


def test_interfaces_list_tags_each_unit_with_the_interface_it_answered_on(start_units) -> None:
    (unit,) = start_units(Unit(17, ("multicast", "unicast")))
    result = run_discovery(0.6, interfaces=["lo"])
    assert unit.mac in ours(result.devices)
    assert result.heard_on[unit.mac] == ("lo",)
    assert result.interface_of[unit.mac] == "lo"
    assert unit.mac in [d.mac for d in result.on_interface("lo")]
    assert result.to_json()["heard_on"][unit.mac] == ["lo"]
    assert result.interfaces[0].index == socket.if_nametoindex("lo")


def test_bind_address_tags_replies_with_the_address(start_units) -> None:
    (unit,) = start_units(Unit(18, ("unicast",)))
    result = run_discovery(0.6, bind=LOOPBACK)
    assert result.heard_on[unit.mac] == ("lo",)   # the name of the interface owning the address


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"interfaces": []}, "empty"),
    ({"interfaces": "lo"}, "list of names"),
    ({"interfaces": ["lo", "lo"]}, "listed twice"),
    ({"interfaces": ["lo"], "interface": "lo"}, "not both"),
    ({"interfaces": ["lo", "rig-nope0"]}, "unknown interface 'rig-nope0'"),
])
def test_interfaces_list_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        run_discovery(0.5, **kwargs)


def test_the_location_is_resolved_once_into_one_typed_value() -> None:
    assert discovery.location() == discovery.EveryInterface()
    assert discovery.location(bind=LOOPBACK) == discovery.BindAddress(LOOPBACK)
    assert discovery.location(interface="lo") == discovery.NamedInterfaces(("lo",))
    assert discovery.location(interfaces=["lo", "eth0"]) == \
        discovery.NamedInterfaces(("lo", "eth0"))
    assert discovery.BindAddress(LOOPBACK).explicit and not discovery.EveryInterface().explicit
    assert discovery.BindAddress(LOOPBACK).chosen() == [discovery.Interface("lo", LOOPBACK)]
    with pytest.raises(DiscoveryError, match="not both"):
        discovery.location(bind=LOOPBACK, interfaces=["lo"])


# --- SO_BINDTODEVICE refused (Linux < 5.7 without CAP_NET_RAW) -----------------------------------


@pytest.fixture
def bind_refused(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SO_BINDTODEVICE is refused as an old kernel refuses an unprivileged user; returns
    the interfaces pinning was tried on."""
    tried: list[str] = []

    def refuse(sock: socket.socket, name: str) -> None:
        tried.append(name)
        raise BindRefused(name)

    monkeypatch.setattr(discovery, "bind_to_device", refuse)
    return tried


def test_refused_pinning_falls_back_to_the_address_of_one_interface(
        start_units, bind_refused: list[str], caplog: pytest.LogCaptureFixture) -> None:
    (unit,) = start_units(Unit(19, ("multicast", "unicast")))
    with caplog.at_level(logging.DEBUG, logger="rig.camera.discovery"):
        result = run_discovery(0.6, interface="lo")
    assert "lo" in bind_refused
    assert unit.mac in ours(result.devices)
    assert result.heard_on[unit.mac] == ("lo",)
    assert any("refused" in r.getMessage() and r.levelno == logging.DEBUG
               for r in caplog.records)
    (unit2,) = start_units(Unit(20, ("unicast",)))
    assert unit2.mac in ours(discover(0.6, bind=LOOPBACK))


def test_refused_pinning_falls_back_in_the_every_interface_scan(
        start_units, bind_refused: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The scan, limited to loopback: a test never probes another interface.
    lo = discovery.Interface("lo", LOOPBACK, socket.if_nametoindex("lo"))
    monkeypatch.setattr(discovery, "all_ipv4_interfaces", lambda: [lo])
    (unit,) = start_units(Unit(21, ("multicast",)))
    result = run_discovery(0.6)
    assert bind_refused == ["lo"]
    assert unit.mac in ours(result.devices)


def test_refused_pinning_is_an_error_for_interfaces_sharing_an_address(
        bind_refused: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # A VLAN bench: two interfaces with one address. Only the address of lo is used, and the
    # error comes before any probe is sent.
    index = socket.if_nametoindex("lo")
    fake = {"lo": discovery.Interface("lo", LOOPBACK, index),
            "rig-vlan0": discovery.Interface("rig-vlan0", LOOPBACK, index)}
    monkeypatch.setattr(discovery, "named_interface", fake.__getitem__)
    with pytest.raises(DiscoveryError, match=r"shares its address 127\.0\.0\.1 with rig-vlan0"
                                             r".*Linux before 5\.7 needs CAP_NET_RAW"):
        run_discovery(0.5, interfaces=["lo", "rig-vlan0"])
    assert bind_refused == ["lo"]
