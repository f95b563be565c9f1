"""SADP discovery: send an inquiry Probe, collect the ProbeMatch replies of the bench units.

Why it looks the way it does (reference §1.1):

* Firmware answers either by multicast to 239.255.255.250:37020 or by unicast to the probe's source
  port, so each interface gets two sockets: one bound to the group (joined on that interface only)
  and one bound to the interface address that sends the probe and hears unicast replies.
* ``IP_MULTICAST_ALL`` is switched off so a group socket only hears the group it joined on its own
  interface, not every group any socket on the host joined.
* UDP loses packets, so the probe is sent up to three times inside the window; replies are then
  de-duplicated by MAC.
* Everything received is untrusted: replies to other clients (foreign Uuid), truncated or hostile
  XML and oversized datagrams are skipped and recorded, never raised.
* Tests and the simulator pin discovery to loopback (``bind="127.0.0.1"`` or ``interface="lo"``):
  a probe sent on the default interface leaves the machine.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import logging
import math
import select
import socket
import struct
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rig.camera.sadp import (
    GROUP,
    MAX_DATAGRAM,
    PORT,
    SadpDevice,
    SadpError,
    build_probe,
    normalize_mac,
    parse_probe,
    parse_probe_match,
)

log = logging.getLogger(__name__)

#: Linux socket option: 0 = deliver only groups joined on this socket (49 on Linux when the
#: socket module lacks the name).
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
#: ioctls of Linux <linux/sockios.h>: read an interface's flags / primary IPv4 address.
SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
IFF_UP = 0x1

#: At most this many probes per interface per call (UDP loss vs. flooding the bench).
MAX_PROBES = 3
#: When, as fractions of the window, the probes go out.
PROBE_SCHEDULE = (0.0, 0.2, 0.45)
#: Receive buffer: big enough for a bench of cameras answering three probes both ways at once.
RECV_BUFFER = 1 << 20
#: Read whole datagrams (the largest UDP payload) so an oversized one is seen at its real size.
READ_SIZE = 65536
#: After the deadline, read at most this many datagrams already queued before giving up.
DRAIN_LIMIT = 256
MULTICAST_TTL = 2


class DiscoveryError(ValueError):
    """Discovery cannot run as asked (bad interface, address or timeout); the message says why.

    A ValueError like the other rig errors: it is always a configuration mistake, never a camera's
    fault. Bad replies from cameras are skipped, not raised.
    """


@dataclass(frozen=True)
class Interface:
    """One local IPv4 interface discovery runs on. ``name`` is None if it could not be found."""

    name: str | None
    address: str

    def to_json(self) -> dict[str, str | None]:
        return {"name": self.name, "address": self.address}


@dataclass(frozen=True)
class Skipped:
    """A datagram that did not become a device, and why."""

    source: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason}


@dataclass(frozen=True)
class DiscoveryResult:
    """What one discovery call saw: devices, plus the diagnostics a bench operator needs."""

    devices: tuple[SadpDevice, ...]
    skipped: tuple[Skipped, ...]
    interfaces: tuple[Interface, ...]
    probe_uuid: str
    timeout: float
    elapsed: float
    probes_sent: int
    send_errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The ``rig discover --json`` document."""
        return {
            "devices": [device.to_json() for device in self.devices],
            "skipped": [item.to_json() for item in self.skipped],
            "timeout": self.timeout,
            "elapsed": round(self.elapsed, 3),
            "interfaces": [iface.to_json() for iface in self.interfaces],
            "probe_uuid": self.probe_uuid,
            "probes_sent": self.probes_sent,
            "send_errors": list(self.send_errors),
        }


def discover(timeout: float = 3.0, *, interface: str | None = None, bind: str | None = None,
             probe_uuid: str | None = None) -> list[SadpDevice]:
    """Units that answered an SADP inquiry within ``timeout`` seconds, sorted by (IPv4, MAC).

    Exactly one of ``bind`` (an IPv4 address of this host) or ``interface`` (a name such as "lo"),
    or neither for every interface that is up with an IPv4 address. See run_discovery.
    """
    return list(run_discovery(timeout, interface=interface, bind=bind,
                              probe_uuid=probe_uuid).devices)


def run_discovery(timeout: float = 3.0, *, interface: str | None = None, bind: str | None = None,
                  probe_uuid: str | None = None, group: str = GROUP,
                  port: int = PORT, expect: Collection[str] = ()) -> DiscoveryResult:
    """Discovery with its diagnostics: skipped datagrams, interfaces used, send errors.

    ``group`` and ``port`` exist for simulators and tests that must stay off the real SADP port.
    ``expect`` (MACs) ends the window early once every one of them has replied: a caller that
    knows its units need not wait out the window for strangers (the window stays the bound).
    Never takes longer than ``timeout`` plus a few milliseconds of socket set-up and tear-down.
    """
    started = time.monotonic()
    if interface is not None and bind is not None:
        raise DiscoveryError("give either an interface or a bind address, not both")
    if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
            or not (timeout > 0 and math.isfinite(timeout))):
        raise DiscoveryError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if bind is not None:
        address = _check_bind_address(bind)
        interfaces = [Interface(_interface_owning(address), address)]
    elif interface is not None:
        interfaces = [Interface(interface, interface_ipv4(interface))]
    else:
        interfaces = all_ipv4_interfaces()
        if not interfaces:
            raise DiscoveryError("no interface is up with an IPv4 address")
    explicit = bind is not None or interface is not None
    probe_uuid, probe = build_probe(probe_uuid)
    deadline = started + timeout

    sockets: list[socket.socket] = []
    try:
        senders: list[tuple[Interface, socket.socket]] = []
        for iface in interfaces:
            try:
                send_sock = _open_interface_sockets(iface.address, group, port, sockets)
            except DiscoveryError as exc:
                if explicit:
                    raise
                log.warning("SADP discovery: skipping interface %s: %s", iface.name, exc)
                continue
            senders.append((iface, send_sock))
        if not senders:
            raise DiscoveryError("could not open SADP sockets on any interface")
        collector = _Collector(probe_uuid, expect)
        send_errors: list[str] = []
        probes_sent = _collect(sockets, senders, probe, (group, port), started, deadline,
                               collector, send_errors)
    finally:
        for sock in sockets:
            sock.close()
    return DiscoveryResult(
        devices=collector.sorted_devices(), skipped=tuple(collector.skipped),
        interfaces=tuple(iface for iface, _ in senders), probe_uuid=probe_uuid,
        timeout=float(timeout), elapsed=time.monotonic() - started, probes_sent=probes_sent,
        send_errors=tuple(send_errors))


def _collect(sockets: Sequence[socket.socket],
             senders: Sequence[tuple[Interface, socket.socket]], probe: bytes,
             target: tuple[str, int], started: float, deadline: float,
             collector: _Collector, send_errors: list[str]) -> int:
    """Send the probes on schedule and read replies until the deadline. Returns probes sent."""
    window = deadline - started
    schedule = [started + window * frac for frac in PROBE_SCHEDULE[:MAX_PROBES]]
    sent = 0
    while True:
        now = time.monotonic()
        while schedule and schedule[0] <= now:
            schedule.pop(0)
            for iface, sock in senders:
                try:
                    sock.sendto(probe, target)
                    sent += 1
                except OSError as exc:
                    message = f"{iface.name or iface.address}: probe not sent ({exc})"
                    log.debug("SADP discovery: %s", message)
                    send_errors.append(message)
        if now >= deadline or collector.complete():
            break
        wake = min([deadline, *schedule[:1]])
        readable, _, _ = select.select(sockets, [], [], max(0.0, wake - now))
        for sock in readable:
            _read_one(sock, collector)
    # Replies already queued when the window closed still count; read them without waiting.
    for _ in range(DRAIN_LIMIT):
        readable, _, _ = select.select(sockets, [], [], 0)
        if not readable:
            break
        for sock in readable:
            _read_one(sock, collector)
    return sent


def _read_one(sock: socket.socket, collector: _Collector) -> None:
    try:
        data, (host, sport) = sock.recvfrom(READ_SIZE)
    except BlockingIOError:
        return
    except OSError as exc:
        # e.g. ECONNREFUSED surfacing from an ICMP error after a unicast send.
        log.debug("SADP discovery: receive error ignored (%s)", exc)
        return
    collector.add(data, host, sport)


class _Collector:
    """Accepts datagrams, keeps the replies to our probe, remembers what it skipped and why."""

    def __init__(self, probe_uuid: str, expect: Collection[str] = ()) -> None:
        self.probe_uuid = probe_uuid.upper()
        self.by_mac: dict[str, SadpDevice] = {}
        self.skipped: list[Skipped] = []
        self.expect = frozenset(normalize_mac(m) for m in expect)

    def complete(self) -> bool:
        """Every expected unit has replied (never true when nothing is expected)."""
        return bool(self.expect) and self.expect <= self.by_mac.keys()

    def add(self, data: bytes, host: str, sport: int) -> None:
        source = f"{host}:{sport}"
        if len(data) > MAX_DATAGRAM:
            self._skip(source, f"{len(data)}-byte datagram is larger than {MAX_DATAGRAM} bytes")
            return
        try:
            device = parse_probe_match(data, source=host)
        except SadpError as exc:
            if _is_probe(data):
                # Our own looped-back probe, or another SADP client's: not a reply at all.
                log.debug("SADP discovery: probe from %s ignored", source)
                return
            self._skip(source, str(exc))
            return
        if device.uuid != self.probe_uuid:
            self._skip(source, f"reply to another probe (Uuid {device.uuid})")
            return
        known = self.by_mac.get(device.mac)
        if known is None or len(device.raw) > len(known.raw):
            self.by_mac[device.mac] = device

    def _skip(self, source: str, reason: str) -> None:
        log.debug("SADP discovery: skipped datagram from %s: %s", source, reason)
        self.skipped.append(Skipped(source, reason))

    def sorted_devices(self) -> tuple[SadpDevice, ...]:
        return tuple(sorted(self.by_mac.values(), key=_sort_key))


def _sort_key(device: SadpDevice) -> tuple[int, int, str]:
    """(IPv4 numerically, MAC); units without a readable IPv4 go last."""
    try:
        return (0, int(ipaddress.IPv4Address(device.ipv4 or "")), device.mac)
    except ValueError:
        return (1, 0, device.mac)


def _is_probe(data: bytes) -> bool:
    try:
        parse_probe(data)
    except SadpError:
        return False
    return True


# --- sockets ---------------------------------------------------------------------------------


def open_group_socket(interface_address: str, group: str = GROUP, port: int = PORT,
                      ) -> socket.socket:
    """A UDP socket bound to (group, port) that hears the group on one interface only.

    Shared by discovery and the simulated camera's responder: several of them bind the same
    (group, port) on one host, hence SO_REUSEADDR + SO_REUSEPORT.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        set_multicast_all_off(sock)
        sock.bind((group, port))
        membership = struct.pack("4s4s", socket.inet_aton(group),
                                 socket.inet_aton(interface_address))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except BaseException:
        sock.close()
        raise
    return sock


def set_multicast_all_off(sock: socket.socket) -> None:
    """Linux only: deliver to this socket only the groups it joined itself."""
    if sys.platform.startswith("linux"):
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)


def _open_interface_sockets(address: str, group: str, port: int,
                            sockets: list[socket.socket]) -> socket.socket:
    """Open the send socket and the group socket of one interface address.

    Both are appended to ``sockets`` as soon as they exist, so the caller closes them whatever
    happens next; the send socket is returned because the probes go out through it.
    """
    send_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sockets.append(send_sock)
    try:
        send_sock.bind((address, 0))
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            raise DiscoveryError(f"{address} is not an address of this host") from None
        raise DiscoveryError(f"cannot bind to {address}: {exc.strerror or exc}") from None
    try:
        send_sock.setblocking(False)
        send_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        set_multicast_all_off(send_sock)
        send_sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                             socket.inet_aton(address))
        send_sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, MULTICAST_TTL)
        send_sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    except OSError as exc:
        raise DiscoveryError(f"cannot send SADP multicast from {address}: "
                             f"{exc.strerror or exc}") from None
    try:
        group_sock = open_group_socket(address, group, port)
    except OSError as exc:
        raise DiscoveryError(f"cannot join {group}:{port} on {address}: "
                             f"{exc.strerror or exc}") from None
    sockets.append(group_sock)
    group_sock.setblocking(False)
    group_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
    return send_sock


# --- interfaces ------------------------------------------------------------------------------


def _check_bind_address(bind: str) -> str:
    try:
        address = ipaddress.IPv4Address(bind)
    except ValueError:
        raise DiscoveryError(f"bind address {bind!r} is not an IPv4 address") from None
    if address.is_unspecified or address.is_multicast or str(address) == "255.255.255.255":
        raise DiscoveryError(f"bind address {bind} is not a unicast address of this host; "
                             "give an interface instead, or neither for every interface")
    return str(address)


def _ifreq_ioctl(request: int, name: str) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        return fcntl.ioctl(sock.fileno(), request, struct.pack("256s", name.encode()[:15]))


def interface_ipv4(name: str) -> str:
    """Primary IPv4 address of interface ``name``; DiscoveryError if unknown, down or without."""
    try:
        socket.if_nametoindex(name)
    except (OSError, ValueError):
        raise DiscoveryError(f"unknown interface {name!r}") from None
    try:
        flags = struct.unpack_from("H", _ifreq_ioctl(SIOCGIFFLAGS, name), 16)[0]
    except OSError as exc:
        raise DiscoveryError(f"cannot read interface {name!r}: {exc.strerror or exc}") from None
    if not flags & IFF_UP:
        raise DiscoveryError(f"interface {name!r} is down")
    try:
        reply = _ifreq_ioctl(SIOCGIFADDR, name)
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.ENODEV):
            raise DiscoveryError(f"interface {name!r} has no IPv4 address") from None
        raise DiscoveryError(f"cannot read interface {name!r}: {exc.strerror or exc}") from None
    return socket.inet_ntoa(reply[20:24])


def all_ipv4_interfaces() -> list[Interface]:
    """Every interface that is up and has an IPv4 address (its primary one)."""
    found: list[Interface] = []
    for _, name in socket.if_nameindex():
        try:
            found.append(Interface(name, interface_ipv4(name)))
        except DiscoveryError:
            continue
    return found


def _interface_owning(address: str) -> str | None:
    """Name of the interface whose primary IPv4 address is ``address`` (for diagnostics)."""
    for iface in all_ipv4_interfaces():
        if iface.address == address:
            return iface.name
    return None
