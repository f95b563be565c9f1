"""Network setup by MAC (rig.netsetup, rig.camera.sadp_commands) against simulated units over
real sockets on loopback: SADP pinned to 127.0.0.1, units and their new addresses in 127.0.0.0/8.

Each test's fleet has its own MAC block and /24, so other tests' (and other agents') units that
answer the same multicast group are filtered out by MAC.
"""

from __future__ import annotations

import re
import socket
import threading

import pytest

from rig.camera import sadp_commands
from rig.camera.discovery import open_group_socket, run_discovery
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import AuthenticationFailed
from rig.camera.isapi_types import Credentials, Ipv4Settings
from rig.camera.profiles import ProfileSet
from rig.camera.sadp import SadpError
from rig.camera.transport import Route
from rig.locate import locate
from rig.netsetup import (
    Ipv4Plan,
    NetSetupError,
    SadpPlace,
    address_pool,
    confirm_network,
    set_network,
    set_networks,
)
from rig.records import RecordStore
from rig.sim.camera import SimFaults, VirtualCamera
from rig.sim.fleet import CameraFleet
from rig.sim.sadp_hub import SadpHub
from rig.vocabulary import LocateOutcome, NetMethod, NetOutcome

PASSWORD = "Bench-Pass-42"
PLACE = SadpPlace(bind="127.0.0.1")
MASK, GATEWAY = "255.255.255.0", "127.0.1.1"
PROFILES = ProfileSet.load()


def fleet(count: int, block: int, octet: int, profiles=("current",), faults=None,
          provision: bool = True) -> CameraFleet:
    sim = CameraFleet.start(count, profiles=profiles, base=f"127.0.{octet}.", first=10,
                            http_port=0, time_scale=200.0, booted=True, mac_block=block,
                            faults=faults)
    if provision:
        for camera in sim.cameras:
            camera.provision(PASSWORD)
    return sim


@pytest.fixture
def store(tmp_path):
    with RecordStore(tmp_path / "rig.sqlite") as opened:
        yield opened


def census(macs) -> dict:
    result = run_discovery(1.0, bind="127.0.0.1", expect=macs)
    return {d.mac: d for d in result.devices if d.mac in set(macs)}


# --- codec -----------------------------------------------------------------------------------


def test_password_encoding_is_base64_of_raw_md5():
    # Skylight's PoC: base64.b64encode(hashlib.md5(word).digest()); "12345" → this.
    assert sadp_commands.encode_password("12345") == "gnzLDuqKcGxMNKFokfhOew=="


def test_update_request_has_skylights_element_order():
    _, data = sadp_commands.build_update("44:47:CC:00:00:0A", address="10.0.0.5",
                                         mask=MASK, gateway="10.0.0.1", dhcp=False,
                                         password_field="X03MO1qnZdYdgyfeuILPmQ==")
    text = data.decode()
    order = ["Uuid", "Types", "PWErrorParse", "MAC", "Password", "IPv4Address", "CommandPort",
             "IPv4SubnetMask", "IPv4Gateway", "IPv6Address", "IPv6Gateway", "IPv6MaskLen",
             "DHCP", "HttpPort"]
    assert [text.index(f"<{n}>") for n in order] == sorted(text.index(f"<{n}>") for n in order)
    assert "<MAC>44-47-cc-00-00-0a</MAC>" in text and "<Types>update</Types>" in text


@pytest.mark.parametrize("data", [b"", b"<ProbeMatch><Uuid>x</Uuid>", b"<ProbeMatch/>",
                                  b"<ProbeMatch><Uuid>8E3B1A6C-0D5C-4F0B-9C6C-3F5A5C1E2B7D"
                                  b"</Uuid></ProbeMatch>",
                                  b'<!DOCTYPE x [<!ENTITY a "b">]><ProbeMatch/>'])
def test_unreadable_replies_are_clear_errors(data):
    with pytest.raises(SadpError):
        sadp_commands.parse_command_reply(data, "127.0.0.9")


def test_pool_increments_and_stays_in_its_subnet():
    plans = address_pool("127.0.50.10", 4, MASK, GATEWAY)
    assert [p.address for p in plans] == [f"127.0.50.{n}" for n in range(10, 14)]
    with pytest.raises(NetSetupError, match="leaves"):
        address_pool("127.0.50.250", 10, MASK, GATEWAY)
    with pytest.raises(NetSetupError):
        Ipv4Plan("127.0.50.1", "255.0.255.0", GATEWAY)


# --- one unit, a batch ------------------------------------------------------------------------


def test_one_unit_moves_by_mac_and_is_confirmed(store):
    with fleet(1, 0x71, 71) as sim:
        cam = sim.cameras[0]
        plan = Ipv4Plan("127.0.72.20", MASK, GATEWAY)
        result = set_network(cam.mac, plan, PASSWORD, profile=cam.profile, place=PLACE,
                             attempts=store.sadp_attempts, confirm_timeout=10)
        assert result.outcome is NetOutcome.CONFIRMED, result.message
        assert result.method is NetMethod.SADP_UPDATE and result.http_status == 200
        assert result.seen["ipv4"] == "127.0.72.20" and result.before["ipv4"] == "127.0.71.10"
        assert cam.address == "127.0.72.20"
        # The old address is given up: nothing listens there any more.
        with pytest.raises(OSError), socket.create_connection(("127.0.71.10", cam.http_port),
                                                                timeout=1):
            pass
        assert PASSWORD not in repr(result.to_json())


def test_batch_of_four_from_a_pool_each_on_its_own_address(store):
    with fleet(4, 0x73, 73, profiles=("current", "g5")) as sim:
        macs = [c.mac for c in sim.cameras]
        plans = address_pool("127.0.74.50", 4, MASK, GATEWAY)
        results = set_networks(list(zip(macs, plans, strict=True)), PASSWORD,
                               profiles={c.mac: c.profile for c in sim.cameras}, place=PLACE,
                               attempts=store.sadp_attempts, confirm_timeout=10)
        assert [r.outcome for r in results] == [NetOutcome.CONFIRMED] * 4, \
            [r.message for r in results]
        seen = census(macs)
        assert {mac: seen[mac].ipv4 for mac in macs} == {
            mac: plan.address for mac, plan in zip(macs, plans, strict=True)}


def test_dhcp_on(store):
    with fleet(1, 0x75, 75) as sim:
        cam = sim.cameras[0]
        result = set_network(cam.mac, Ipv4Plan(None, MASK, GATEWAY, dhcp=True), PASSWORD,
                             profile=cam.profile, place=PLACE, attempts=store.sadp_attempts,
                             confirm_timeout=10)
        assert result.outcome is NetOutcome.CONFIRMED, result.message
        assert cam.settings.dhcp is True and result.seen["dhcp"] is True


# --- the attempt budget ------------------------------------------------------------------------


def test_wrong_password_is_bounded_by_lockout_minus_one_across_invocations(tmp_path):
    db = tmp_path / "rig.sqlite"
    with fleet(1, 0x76, 76) as sim:
        cam = sim.cameras[0]
        budget = cam.profile.sadp_update_lockout_attempts - 1
        plan = Ipv4Plan("127.0.77.9", MASK, GATEWAY)
        outcomes = []
        for _ in range(budget + 3):            # a new process each time: a new store object
            with RecordStore(db) as store:
                result = set_network(cam.mac, plan, "Wrong-Pass-1", profile=cam.profile,
                                     place=PLACE, attempts=store.sadp_attempts,
                                     confirm_timeout=2)
            outcomes.append(result.outcome)
        assert outcomes == [NetOutcome.WRONG_PASSWORD] * budget + [NetOutcome.BUDGET_SPENT] * 3
        assert "rig stops at 5" in result.message and "locks update after 6" in result.message
        assert cam.sadp_actions.update_failures == budget
        assert not cam.sadp_actions.update_locked()
        # The right password still works: the unit never locked.
        with RecordStore(db) as store:
            store.sadp_attempts.cleared(cam.mac, "test: operator checked the unit")
            ok = set_network(cam.mac, plan, PASSWORD, profile=cam.profile, place=PLACE,
                             attempts=store.sadp_attempts, confirm_timeout=10)
            assert ok.outcome is NetOutcome.CONFIRMED, ok.message
            assert store.sadp_attempts.failures(cam.mac) == 0


def test_simulated_unit_locks_update_after_the_profile_count_and_a_boot_clears_it():
    with fleet(1, 0x78, 78) as sim:
        cam = sim.cameras[0]
        plan = Ipv4Plan("127.0.79.9", MASK, GATEWAY)
        for _ in range(cam.profile.sadp_update_lockout_attempts):   # no ledger: raw firmware
            set_network(cam.mac, plan, "Wrong-Pass-1", profile=cam.profile, place=PLACE,
                        confirm_timeout=0.5)
        assert cam.sadp_actions.update_locked()
        locked = set_network(cam.mac, plan, PASSWORD, profile=cam.profile, place=PLACE,
                             confirm_timeout=0.5)
        assert locked.outcome is NetOutcome.LOCKED
        cam.set_power(False)
        cam.set_power(True, booted=True)
        assert not cam.sadp_actions.update_locked()


def test_a_unit_that_refuses_the_new_address(store):
    with fleet(1, 0x7A, 80, faults={0: SimFaults(refuse_network=True)}) as sim:
        cam = sim.cameras[0]
        result = set_network(cam.mac, Ipv4Plan("127.0.81.9", MASK, GATEWAY), PASSWORD,
                             profile=cam.profile, place=PLACE, attempts=store.sadp_attempts,
                             confirm_timeout=2)
        assert result.outcome is NetOutcome.REFUSED and "refused" in result.message
        assert cam.settings.ipv4 == "127.0.80.10"
        assert store.sadp_attempts.failures(cam.mac) == 1     # counted: the worst is assumed


def test_isapi_fallback_when_the_family_has_no_sadp_update(store):
    with fleet(1, 0x7C, 82, profiles=("legacy",)) as sim:
        cam = sim.cameras[0]
        assert not cam.profile.sadp_update
        plan = Ipv4Plan("127.0.83.9", MASK, GATEWAY)
        unsupported = set_network(cam.mac, plan, PASSWORD, profile=cam.profile, place=PLACE,
                                  confirm_timeout=2)
        assert unsupported.outcome is NetOutcome.UNSUPPORTED
        route = Route(cam.address, cam.http_port)
        result = set_network(cam.mac, plan, PASSWORD, profile=cam.profile, place=PLACE,
                             attempts=store.sadp_attempts, route=route, confirm_timeout=10)
        assert result.outcome is NetOutcome.CONFIRMED, result.message
        assert result.method is NetMethod.ISAPI and cam.address == "127.0.83.9"


def test_a_unit_not_on_the_bench_is_not_sent_anything(store):
    result = set_network("44:47:cc:7e:00:01", Ipv4Plan("127.0.85.9", MASK, GATEWAY), PASSWORD,
                         profile=PROFILES.get("current"), place=PLACE,
                         attempts=store.sadp_attempts, reply_timeout=0.5)
    assert result.outcome is NetOutcome.NOT_FOUND


# --- the pieces the hand-over stage also calls ---------------------------------------------------


def test_confirm_network_settles_a_setting_without_sending_anything():
    with fleet(1, 0x7E, 86) as sim:
        cam = sim.cameras[0]
        here = Ipv4Plan(cam.settings.ipv4, cam.settings.mask, cam.settings.gateway)
        elsewhere = Ipv4Plan("127.0.87.9", MASK, GATEWAY)
        assert confirm_network(cam.mac, here, place=PLACE).outcome is NetOutcome.CONFIRMED
        assert confirm_network(cam.mac, elsewhere, place=PLACE,
                               timeout=1.5).outcome is NetOutcome.NOT_CONFIRMED
        assert cam.events[-1][1] == "running"           # nothing was sent to the unit


def test_isapi_set_network_is_one_signed_put():
    with fleet(1, 0x7F, 88, profiles=("legacy",)) as sim:
        cam = sim.cameras[0]
        with IsapiClient(cam.address, cam.http_port, timeout=3) as client:
            with pytest.raises(AuthenticationFailed):
                client.set_network(Credentials("admin", "Wrong-Pass-1"), Ipv4Settings(
                    dhcp=True, ip_address=None, subnet_mask=None, gateway=None, raw={}))
            assert client.auth_requests == 1
        with IsapiClient(cam.address, cam.http_port, timeout=3) as client:
            status = client.set_network(Credentials("admin", PASSWORD), Ipv4Settings(
                dhcp=True, ip_address=None, subnet_mask=None, gateway=None, raw={}))
            assert status.ok and client.auth_requests == 1
        assert cam.settings.dhcp is True


def test_locate_shows_the_lamp_on_the_unit_and_a_boot_stops_it():
    with fleet(2, 0x6A, 89, profiles=("current", "legacy")) as sim:
        current, legacy = sim.cameras
        assert locate(current.mac, profile=current.profile, place=PLACE).ok
        assert current.lamp is True and legacy.lamp is False
        assert locate(current.mac, on=False, profile=current.profile, place=PLACE).ok
        assert current.lamp is False
        unsupported = locate(legacy.mac, profile=legacy.profile, place=PLACE)
        assert unsupported.outcome is LocateOutcome.UNSUPPORTED
        # Family unknown: sent anyway, and the silence is reported as such.
        silent = locate(legacy.mac, profile=None, place=PLACE, timeout=0.5)
        assert silent.outcome is LocateOutcome.NO_REPLY
        current.set_power(False)
        current.set_power(True, booted=True)
        assert current.lamp is False                     # a boot stops the blinking


def test_an_unreadable_reply_that_claims_our_uuid_is_a_clear_error():
    """A fake unit on the group answers every request with broken XML carrying its Uuid."""
    sock = open_group_socket("127.0.0.1")
    stop = threading.Event()

    def answer() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                data, sender = sock.recvfrom(65536)
            except OSError:
                continue
            match = re.search(rb"<Uuid>([^<]+)</Uuid>", data)
            if match and b"<Probe>" in data and b"44-47-cc-6b-00-01" in data:
                sock.sendto(b"<ProbeMatch><Uuid>" + match.group(1) + b"</Uuid><Result>",
                            sender)
    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        result = locate("44:47:cc:6b:00:01", profile=None, place=PLACE, timeout=1.0)
    finally:
        stop.set()
        thread.join()
        sock.close()
    assert result.outcome is LocateOutcome.ERROR
    assert "unreadable reply" in result.message and "malformed XML" in result.message


def test_the_simulated_bench_hub_answers_lamp_too():
    """SimBench answers SADP through one SadpHub for all its units: lamp goes through it."""
    profile = PROFILES.get("current")
    camera = VirtualCamera(profile, mac="44:47:cc:6c:00:01", serial="DS-2CD2320D-I2024X",
                           address="127.0.90.10", time_scale=200.0)
    camera.set_power(True, booted=True)
    hub = SadpHub([camera], "127.0.0.1").start()
    try:
        assert locate(camera.mac, profile=profile, place=PLACE).ok
    finally:
        hub.stop()
    assert camera.lamp is True
