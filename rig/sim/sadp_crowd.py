"""Thousands of simulated units answering one SADP probe in one burst: ``SadpCrowd``.

Why not a fleet or a hub: a ``CameraFleet`` unit is a camera with a web server, an RTSP server
and a thread; a ``SadpHub`` still opens a socket per unit and builds each reply from the camera's
fields when the probe arrives. Neither reaches 5 000 units, and neither answers in a burst as
dense as 5 000 real units do, which is what a census at scale must survive.

What the crowd keeps real, so that the controller faces what a real bench sends it:

- every reply is the ProbeMatch a ``VirtualCamera`` of that unit's profile writes (same element
  order, layout, ``flase``, omitted elements), built once per unit with the probe's Uuid and
  Types left as markers and filled in per probe;
- every unit has its own MAC, serial and IPv4 address (in the payload, where the controller reads
  them), and its replies leave **from that address**, port 37020: one socket sends them all,
  each datagram with its unit's source address chosen by IP_PKTINFO, so the address must be one
  of the namespace's own (``CensusLab`` puts them all on its interface);
- each unit answers by its profile's reply styles (multicast to the group, unicast to the
  prober, or both), and a probe carrying ``<MAC>`` is answered by that unit only, as the
  simulated camera does (``VirtualCamera.probe_match``).

What it leaves out: HTTP, power, boot and every SADP command but the inquiry. The burst is one
tight loop of sends, denser than a real bench's (whose switch serialises the replies onto the
controller's port at line rate): a census that survives it survives the bench.
"""

from __future__ import annotations

import ipaddress
import logging
import selectors
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from rig.camera.discovery import set_multicast_all_off
from rig.camera.profiles import ProfileSet
from rig.camera.sadp import GROUP, PORT, Probe, SadpError, normalize_mac, parse_probe
from rig.sim.behaviour import behaviour_for
from rig.sim.camera import VirtualCamera
from rig.sim.fleet import sim_mac, sim_serial
from rig.sim.sadp_hub import HUB_RECV_BUFFER
from rig.sim.sadp_responder import INQUIRY_TYPES, READ_SIZE
from rig.sim.serving import wake_and_join

log = logging.getLogger(__name__)

#: Stand-ins for the probe's Uuid and Types in a unit's prepared reply (never valid XML text
#: of a real reply, so they cannot collide with a unit's own fields).
UUID_MARK = b"@@SADP-UUID@@"
TYPES_MARK = b"@@SADP-TYPES@@"
#: A Probe's MAC that means "every unit" (the hiktools client sends it).
BROADCAST_MACS = frozenset({"ff:ff:ff:ff:ff:ff"})
#: Bound on one send: a crowd never hangs on a full queue; a datagram it cannot send is lost,
#: as on a real network.
SEND_TIMEOUT = 1.0
#: Linux's IP_PKTINFO (missing from some ``socket`` modules).
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


@dataclass(frozen=True)
class CrowdUnit:
    """One unit of the crowd: who it is, where it answers from, what it answers and how."""

    mac: str
    serial: str
    address: str
    reply: bytes                   # its ProbeMatch, with UUID_MARK and TYPES_MARK to fill in
    styles: tuple[str, ...]        # "multicast", "unicast" or both


def crowd_units(count: int, *, network: str = "10.64.0.0/16",
                profiles: Sequence[str] = ("current",), mac_block: int = 0x30,
                profile_set: ProfileSet | None = None) -> list[CrowdUnit]:
    """``count`` units with distinct MACs, serials and addresses (the first hosts of
    ``network``), profiles cycled over them, each reply written by a ``VirtualCamera``."""
    hosts = ipaddress.IPv4Network(network).hosts()
    if count < 1 or count > 0xFFFF:
        raise ValueError(f"a crowd has 1..65535 units, not {count}")
    profile_set = profile_set or ProfileSet.load()
    chosen = [profile_set.get(name) for name in profiles]
    units: list[CrowdUnit] = []
    for i in range(count):
        profile = chosen[i % len(chosen)]
        address = str(next(hosts))
        mac = sim_mac(i, mac_block)
        serial = sim_serial(behaviour_for(profile).sample_model, mac)
        camera = VirtualCamera(profile, mac=mac, serial=serial, address=address,
                               default_ipv4=address)
        camera.set_power(True, booted=True)
        reply = camera.probe_match(Probe(uuid=UUID_MARK.decode(), types=TYPES_MARK.decode()))
        if reply is None:
            raise RuntimeError(f"simulated unit {mac} would not answer SADP")
        units.append(CrowdUnit(mac, serial, address, reply, tuple(camera.sadp_reply_styles)))
    return units


def in_pktinfo(source: str) -> bytes:
    """Linux ``struct in_pktinfo`` {ifindex, spec_dst, addr}: ``spec_dst`` is the source
    address a datagram sent with it leaves from."""
    return struct.pack("@i4s4s", 0, socket.inet_aton(source), bytes(4))


class SadpCrowd:
    """Answers SADP inquiries for every unit of ``units`` from ONE socket and one thread.

    ``interface_address`` is the namespace's interface the group is joined on and multicast
    leaves by; every unit's address must be local to the namespace (IP_PKTINFO refuses a
    source address the host does not own). ``probes`` counts the inquiries heard and
    ``replies`` the datagrams sent: the benchmark reports them.
    """

    def __init__(self, units: Sequence[CrowdUnit], interface_address: str, *,
                 group: str = GROUP, port: int = PORT, ignores_mac: bool = False) -> None:
        self.units = list(units)
        #: Answer every inquiry whatever its <MAC> says: firmware may (it is not known either
        #: way, docs/hikvision-protocols.md §1.2), and discovery must not flood such a bench.
        self.ignores_mac = ignores_mac
        self.by_mac = {unit.mac: unit for unit in self.units}
        self.interface_address, self.group, self.port = interface_address, group, port
        self.probes = 0
        self.replies = 0
        self.send_errors = 0
        self._sock: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> SadpCrowd:
        """Open the socket (in the caller's namespace) and start answering."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            set_multicast_all_off(sock)
            sock.bind(("0.0.0.0", self.port))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack(
                "4s4s", socket.inet_aton(self.group), socket.inet_aton(self.interface_address)))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            socket.inet_aton(self.interface_address))
            # The units do not listen to each other's replies: no copy of the burst comes back.
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            # Addressed re-probes for thousands of units arrive in a burst too.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, HUB_RECV_BUFFER)
            sock.settimeout(SEND_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        self._sock, self._wake = sock, socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="sim-sadp-crowd", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None and self._wake is not None
        sock, wake = self._sock, self._wake[0]
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is wake or self._stopping.is_set():
                        return
                    try:
                        data, sender = sock.recvfrom(READ_SIZE)
                    except OSError as exc:
                        log.debug("SADP crowd: receive error (%s)", exc)
                        continue
                    self.answer(data, sender)

    def answer(self, data: bytes, sender: tuple[str, int]) -> None:
        """Answer one datagram: an inquiry gets every unit's reply (or its addressed unit's)."""
        try:
            probe = parse_probe(data)
        except SadpError:
            return          # not a probe: another client's reply, garbage
        if probe.types.strip().lower() not in INQUIRY_TYPES:
            return
        self.probes += 1
        units = self._addressed(probe)
        uuid, types = probe.uuid.encode(), probe.types.encode()
        assert self._sock is not None
        for unit in units:
            reply = unit.reply.replace(UUID_MARK, uuid).replace(TYPES_MARK, types)
            source = [(socket.IPPROTO_IP, IP_PKTINFO, in_pktinfo(unit.address))]
            for style in unit.styles:
                target = (self.group, self.port) if style == "multicast" else sender
                try:
                    self._sock.sendmsg([reply], source, 0, target)
                    self.replies += 1
                except OSError as exc:
                    self.send_errors += 1
                    log.debug("SADP crowd: reply of %s not sent (%s)", unit.mac, exc)

    def _addressed(self, probe: Probe) -> Sequence[CrowdUnit]:
        """The units a probe is for: all of them, or the one its ``<MAC>`` names."""
        if not probe.mac or self.ignores_mac:
            return self.units
        try:
            mac = normalize_mac(probe.mac)
        except SadpError:
            return ()
        if mac in BROADCAST_MACS:
            return self.units
        unit = self.by_mac.get(mac)
        return (unit,) if unit is not None else ()

    def stop(self) -> None:
        """Stop answering and close the socket. Idempotent."""
        wake, self._wake = self._wake, None
        thread, self._thread = self._thread, None
        wake_and_join(self._stopping, wake, thread, timeout=5)
        sock, self._sock = self._sock, None
        for item in (sock, *(wake or ())):
            if item is not None:
                item.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rig.sim.sadp_crowd``: a crowd in a process of its own (the units are other
    machines on a real bench, so a benchmark should not let them share the controller's GIL).
    Prints ``ready`` once answering, and stops when its standard input closes: the parent's
    death ends it, whatever the signal."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--network", default="10.64.0.0/16")
    parser.add_argument("--profiles", default="current")
    parser.add_argument("--mac-block", type=int, default=0x30)
    parser.add_argument("--interface-address", required=True)
    parser.add_argument("--ignores-mac", action="store_true",
                        help="answer inquiries addressed to other units' MACs too")
    args = parser.parse_args(argv)
    units = crowd_units(args.count, network=args.network, profiles=args.profiles.split(","),
                        mac_block=args.mac_block)
    crowd = SadpCrowd(units, args.interface_address, ignores_mac=args.ignores_mac).start()
    try:
        print("ready", flush=True)
        sys.stdin.read()
    finally:
        crowd.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
