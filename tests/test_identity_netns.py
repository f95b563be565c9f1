"""Reaching ONE unit when every unit is on 192.168.1.64: by IPv6 link-local address (zone id)
and by VLAN interface (SO_BINDTODEVICE), over HTTP and SADP, in network namespaces.

The lab (rig.sim.netns): a controller namespace with two interfaces ``eth0.101`` and ``eth0.102``,
both 192.168.1.2/24 as on a VLAN bench; each is a veth cable to a camera namespace of its own
whose ``eth0`` has 192.168.1.64/24 and the unit's MAC. Each camera is a real simulated unit
(rig.sim: SADP responder, ISAPI server on 192.168.1.64 and on ``::``). The kernel forms each
camera's link-local address from its MAC by itself, so reaching it at ``eui64_link_local(mac)``
also checks the derivation. (This kernel may lack 802.1Q; veth pairs named like VLAN
sub-interfaces give the controller exactly what a VLAN bench gives it: several interfaces, one
address, one unit behind each.)

Needs root and iproute2; skipped with the reason otherwise. Every socket to a bench address is
made inside the controller's namespace (in_netns); nothing is sent from the machine's own
namespace. Every wait is bounded.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from rig.camera.discovery import DiscoveryError, run_discovery
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import ConnectionFailed
from rig.camera.isapi_types import Credentials
from rig.camera.linklocal import eui64_link_local
from rig.camera.netif import strict_rp_filter
from rig.camera.profiles import ProfileSet
from rig.census import Census
from rig.sim import netns
from rig.sim.behaviour import behaviour_for
from rig.sim.camera import VirtualCamera
from rig.sim.fleet import CameraHost, sim_mac, sim_serial
from rig.sim.isapi_server import IsapiServer
from rig.sim.netns import NetnsLab, in_netns

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2's `ip` is not installed"),
    pytest.mark.timeout(60),
]

CONTROLLER = "192.168.1.2/24"
UNIT = "192.168.1.64"
LEGACY_LOGIN = Credentials("admin", "12345")
NEW_PASSWORD = "Bench-Test-2024"
NO_DAD = {"net.ipv6.conf.all.accept_dad": 0, "net.ipv6.conf.default.accept_dad": 0}


@dataclass
class Slot:
    vlan: str            # the controller's interface that leads to this unit
    netns: str
    camera: VirtualCamera

    @property
    def mac(self) -> str:
        return self.camera.mac

    @property
    def link_local(self) -> str:
        return eui64_link_local(self.camera.mac)


@dataclass
class Lab:
    lab: NetnsLab
    controller: str
    slots: list[Slot]


def _wait_link_local(lab: NetnsLab, ns: str, ifname: str, timeout: float = 5.0) -> str:
    """The interface's usable (not tentative) fe80:: address, or skip if IPv6 is off here."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = netns.ip(ns, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link")
        if "fe80::" in text and "tentative" not in text:
            return text.split("inet6", 1)[1].split()[0].split("/")[0]
        time.sleep(0.05)
    pytest.skip(f"no usable IPv6 link-local address on {ifname} in {timeout} s ({text!r})")


class _Isapi6(IsapiServer):
    """The simulated camera's ISAPI server on IPv6 (every address, link-local included)."""

    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)   # IPv4 is served apart
        super().server_bind()


@pytest.fixture
def vlan_lab() -> Iterator[Lab]:
    profiles = ProfileSet.load()
    hosts: list[CameraHost] = []
    servers: list[IsapiServer] = []
    with NetnsLab() as lab:
        try:
            controller = lab.namespace("ctl")
            lab.sysctl(controller, {**NO_DAD, "net.ipv4.conf.all.rp_filter": 2,
                                    "net.ipv4.conf.default.rp_filter": 2})
            slots = []
            for n, (vid, profile) in enumerate(((101, "legacy"), (102, "g5"))):
                ns = lab.namespace(f"cam{vid}")
                lab.sysctl(ns, NO_DAD)
                mac = sim_mac(0x40 + n, 0xE7)
                vlan = f"eth0.{vid}"
                lab.veth(controller, vlan, ns, "eth0", mac_b=mac)
                lab.address(controller, vlan, CONTROLLER)
                lab.address(ns, "eth0", f"{UNIT}/24")
                lab.link(controller, vlan, True)
                lab.link(ns, "eth0", True)
                chosen = profiles.get(profile)
                model = behaviour_for(chosen).sample_model
                camera = VirtualCamera(chosen, mac=mac, serial=sim_serial(model, mac),
                                       address=UNIT, http_port=80, time_scale=100)
                with in_netns(ns):
                    hosts.append(CameraHost(camera, sadp_interface=UNIT).start())
                    v6 = _Isapi6(camera, address="::", port=80)
                    servers.append(v6)
                    v6.serve_in_thread()
                camera.set_power(True, booted=True)
                assert camera.wait_running(5)
                slots.append(Slot(vlan, ns, camera))
            for slot in slots:
                assert _wait_link_local(lab, slot.netns, "eth0") == slot.link_local
                _wait_link_local(lab, controller, slot.vlan)
            yield Lab(lab, controller, slots)
        finally:
            for server in servers:
                server.close()
            for host in hosts:
                host.stop()


# --- HTTP by IPv6 link-local (zone id) ---------------------------------------------------------


def test_zone_id_reaches_the_unit_of_that_link_and_digest_works(vlan_lab: Lab) -> None:
    legacy, g5 = vlan_lab.slots
    with in_netns(vlan_lab.controller):
        with IsapiClient(f"{legacy.link_local}%{legacy.vlan}", timeout=2) as client:
            assert client.target == f"[{legacy.link_local}%{legacy.vlan}]:80"
            info = client.device_info(LEGACY_LOGIN)          # Digest over the scoped address
            assert client.auth_requests == 1
        assert info.mac_address == legacy.mac
        # The same address on the other link is nobody: the zone id picks the link.
        with IsapiClient(legacy.link_local, interface=g5.vlan, timeout=1) as client:
            with pytest.raises(ConnectionFailed) as caught:
                client.activate_status()
        with IsapiClient(f"[{g5.link_local}%25{g5.vlan}]", timeout=2) as client:
            status = client.activate_status()
    assert caught.value.kind in ("timeout", "unreachable")
    assert f"[{legacy.link_local}%{g5.vlan}]:80 GET /SDK/activateStatus: " in str(caught.value)
    assert status.supported and status.activated is False     # g5: inactive, not legacy's 404


def test_host_header_has_no_zone_id(vlan_lab: Lab) -> None:
    legacy = vlan_lab.slots[0]
    seen: list[str] = []

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Host", ""))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Server6(http.server.HTTPServer):
        address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)   # IPv4 is served apart
        super().server_bind()

    with in_netns(legacy.netns):
        server = Server6(("::", 8081), Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        with in_netns(vlan_lab.controller), \
                IsapiClient(f"{legacy.link_local}%{legacy.vlan}", 8081, timeout=2) as client:
            assert client.activate_status().supported is False
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)
    assert seen == [f"[{legacy.link_local}]:8081"]


# --- HTTP by VLAN interface (SO_BINDTODEVICE) ------------------------------------------------


def test_each_interface_reaches_its_own_unit_on_the_shared_address(vlan_lab: Lab) -> None:
    legacy, g5 = vlan_lab.slots
    with in_netns(vlan_lab.controller):
        with IsapiClient(UNIT, interface=legacy.vlan, timeout=2) as client:
            assert client.target == f"{UNIT}:80 via {legacy.vlan}"
            first = client.device_info(LEGACY_LOGIN)
        with IsapiClient(UNIT, interface=g5.vlan, timeout=2) as client:
            assert client.activate_status().activated is False
            assert client.activate(NEW_PASSWORD).ok
            second = client.device_info(Credentials("admin", NEW_PASSWORD))
        # And back to the first: the neighbour cache is per interface, nothing sticks.
        with IsapiClient(UNIT, interface=legacy.vlan, timeout=2) as client:
            again = client.device_info(LEGACY_LOGIN)
    assert (first.mac_address, second.mac_address, again.mac_address) == \
        (legacy.mac, g5.mac, legacy.mac)


def test_missing_interface_and_unreachable_address_are_clear(vlan_lab: Lab) -> None:
    with in_netns(vlan_lab.controller):
        for client in (IsapiClient(UNIT, interface="eth0.199", timeout=1),
                       IsapiClient("fe80::1%eth0.199", timeout=1)):
            started = time.monotonic()
            with client, pytest.raises(ConnectionFailed) as caught:
                client.activate_status()
            assert time.monotonic() - started < 0.5
            assert caught.value.kind == "interface"
            assert str(caught.value) == (f"{client.target} GET /SDK/activateStatus: no "
                                         "interface named 'eth0.199' on this host")
            assert "Traceback" not in str(caught.value)
        started = time.monotonic()
        with IsapiClient("fe80::dead:beef", interface="eth0.101", timeout=1) as client, \
                pytest.raises(ConnectionFailed) as caught:
            client.activate_status()
    assert time.monotonic() - started < 4
    assert caught.value.kind in ("timeout", "unreachable")
    assert str(caught.value).startswith("[fe80::dead:beef%eth0.101]:80 GET /SDK/activateStatus: ")


# --- SADP per interface ----------------------------------------------------------------------


def test_discovery_on_one_vlan_hears_only_its_unit(vlan_lab: Lab) -> None:
    with in_netns(vlan_lab.controller):
        results = [run_discovery(0.6, interface=slot.vlan) for slot in vlan_lab.slots]
    for slot, result in zip(vlan_lab.slots, results, strict=True):
        assert [d.mac for d in result.devices] == [slot.mac]
        assert result.heard_on == {slot.mac: (slot.vlan,)}
        assert result.devices[0].ipv4 == UNIT


def test_discovery_over_several_interfaces_tags_each_unit(vlan_lab: Lab) -> None:
    macs = [slot.mac for slot in vlan_lab.slots]
    with in_netns(vlan_lab.controller):
        started = time.monotonic()
        result = run_discovery(2.0, interfaces=[s.vlan for s in vlan_lab.slots], expect=macs)
        elapsed = time.monotonic() - started
    assert sorted(d.mac for d in result.devices) == sorted(macs)
    assert result.interface_of == {s.mac: s.vlan for s in vlan_lab.slots}
    assert all(len(tags) == 1 for tags in result.heard_on.values())
    for slot in vlan_lab.slots:
        assert [d.mac for d in result.on_interface(slot.vlan)] == [slot.mac]
    assert [i.name for i in result.interfaces] == [s.vlan for s in vlan_lab.slots]
    assert elapsed < 1.0            # expect= ended the window once both had answered


def test_discovery_on_a_missing_interface_is_a_clear_error(vlan_lab: Lab) -> None:
    with in_netns(vlan_lab.controller), \
            pytest.raises(DiscoveryError, match="unknown interface 'eth0.199'"):
        run_discovery(0.5, interfaces=["eth0.101", "eth0.199"])


def test_census_over_vlans_says_which_unit_is_on_which_interface(vlan_lab: Lab) -> None:
    legacy, g5 = vlan_lab.slots
    with in_netns(vlan_lab.controller):
        census = Census(interfaces=[legacy.vlan, g5.vlan], window=0.3, interval=0.4).start()
    try:
        since = time.monotonic()
        assert census.rounds_after(since, 1, timeout=3) is not None
        assert set(census.heard_on(legacy.vlan)) == {legacy.mac}
        assert set(census.heard_on(g5.vlan)) == {g5.mac}
        assert census.last(legacy.mac).interface == legacy.vlan
        assert census.last(g5.mac).interface == g5.vlan
        found = census.unit_on(g5.vlan, since, timeout=3)
        assert found is not None and found.mac == g5.mac
        # The unit on eth0.101 goes quiet: after two rounds without it, nobody is there.
        legacy.camera.set_power(False)
        off = time.monotonic()
        assert census.gone_after(legacy.mac, off, timeout=3)
        assert census.heard_on(legacy.vlan, rounds=2) == {}
        assert census.unit_on(legacy.vlan, off, timeout=0.5) is None
    finally:
        census.stop()


def test_strict_reverse_path_filter_is_detected(vlan_lab: Lab) -> None:
    """rp_filter=1 drops the second VLAN's replies (the route to 192.168.1.64 leaves by the
    first): a bench check can say so before a run fails on it. The effective value is the
    larger of ``all`` and the interface's own."""
    with in_netns(vlan_lab.controller):
        assert not strict_rp_filter("eth0.102")            # the fixture's all=2 (loose)
    netns.sysctl(vlan_lab.controller, {"net.ipv4.conf.all.rp_filter": 0,
                                       "net/ipv4/conf/eth0.102/rp_filter": 1})
    with in_netns(vlan_lab.controller):
        assert strict_rp_filter("eth0.102") and not strict_rp_filter("eth0.101")
        assert not strict_rp_filter("eth0.199")
        with IsapiClient(UNIT, interface="eth0.102", timeout=0.5) as client, \
                pytest.raises(ConnectionFailed) as caught:
            client.activate_status()
    assert caught.value.kind == "timeout"        # the SYN-ACK came in on eth0.102 and was dropped


# --- on the whole simulated namespace bench (rig.sim.netns_bench) -----------------------------

BENCH_PASSWORD = "Yard-Bench-2024"


def test_vlan_bench_names_every_slot_unit_by_its_interface(tmp_path) -> None:
    from rig.sim.netns_bench import NetnsBench, netns_spec

    spec = netns_spec(3, profiles=("current", "legacy", "g5"))
    with NetnsBench.start(spec, directory=tmp_path, identity="vlan", time_scale=100,
                          provision=BENCH_PASSWORD) as sim:
        vlans = sim.controller_interfaces                      # slot → eth0.<vid>
        expected = {sim.cameras[slot].mac: vlan for slot, vlan in vlans.items()}
        with in_netns(sim.controller_ns):
            result = run_discovery(2.0, interfaces=list(vlans.values()), expect=list(expected))
            census = Census(interfaces=list(vlans.values()), window=0.3, interval=0.4).start()
            infos = {}
            for slot, vlan in vlans.items():
                with IsapiClient(UNIT, interface=vlan, timeout=2) as client:
                    infos[slot] = (client.target,
                                   client.device_info(Credentials("admin", BENCH_PASSWORD)))
        try:
            since = time.monotonic()
            units = {vlan: census.unit_on(vlan, since, timeout=3) for vlan in vlans.values()}
        finally:
            census.stop()
    assert result.interface_of == expected
    assert {vlan: unit.mac for vlan, unit in units.items() if unit} == \
        {vlan: mac for mac, vlan in expected.items()}
    for slot, (target, info) in infos.items():
        assert target == f"{UNIT}:80 via {vlans[slot]}"
        assert info.mac_address == sim.cameras[slot].mac


def test_link_local_bench_reaches_each_ipv6_unit_on_one_flat_segment(tmp_path) -> None:
    from rig.sim.netns_bench import NetnsBench, netns_spec

    spec = netns_spec(2, profiles=("current", "g5"))
    with NetnsBench.start(spec, directory=tmp_path, identity="ipv6-link-local", time_scale=100,
                          provision=BENCH_PASSWORD) as sim:
        assert all(c.profile.ipv6 for c in sim.cameras.values())
        found = {}
        with in_netns(sim.controller_ns):
            for slot, camera in sim.cameras.items():
                with IsapiClient(eui64_link_local(camera.mac), interface="eth0",
                                 timeout=2) as client:
                    found[slot] = client.device_info(Credentials("admin", BENCH_PASSWORD))
    assert {slot: info.mac_address for slot, info in found.items()} == \
        {slot: camera.mac for slot, camera in sim.cameras.items()}
