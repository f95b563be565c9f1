"""SADP discovery: send an inquiry Probe, collect the ProbeMatch replies of the bench units.

Why it looks the way it does (docs/hikvision-protocols.md §1.1):

* Firmware answers either by multicast to 239.255.255.250:37020 or by unicast to the probe's source
  port, so each interface gets two sockets: one bound to the group (joined on that interface only)
  and one bound to the interface address that sends the probe and hears unicast replies.
* ``IP_MULTICAST_ALL`` is switched off so a group socket only hears the group it joined on its own
  interface, not every group any socket on the host joined.
* UDP loses packets, so the probe is sent up to three times inside the window; replies are then
  de-duplicated by MAC. When the caller names the units it expects (``expect=``), the later
  probes are re-probes addressed by ``<MAC>`` to the expected units not heard yet, in batches the
  receive buffer can hold, so a large bench does not answer in full again (units that ignore the
  ``<MAC>`` are noticed, and then get the plain inquiry again).
* A large bench answers one probe in one burst (5 000 units: ~6 MB of replies within
  milliseconds). The receive buffers are sized for the expected number of units (up to
  net.core.rmem_max; beyond it with SO_RCVBUFFORCE when the process has CAP_NET_ADMIN), every
  queued datagram is read before any is parsed (parsing is the slow part, and the kernel drops
  what does not fit while we parse), and the kernel's drop counter of each socket (SO_MEMINFO)
  is reported with how to raise the limit: a loss is then a number, never a silent gap.
* Everything received is untrusted: replies to other clients (foreign Uuid), truncated or hostile
  XML and oversized datagrams are skipped and recorded, never raised.
* A VLAN bench gives every ``eth0.<vid>`` the same address (192.168.1.2/24), so an interface
  given by name is chosen by its index, never by its address: ``ip_mreqn`` for IP_MULTICAST_IF and
  IP_ADD_MEMBERSHIP, and both sockets pinned to the device with SO_BINDTODEVICE (unprivileged since
  Linux 5.7; CAP_NET_RAW before). A probe on eth0.101 then only leaves there, a reply is only
  heard there, and ``DiscoveryResult.heard_on`` says on which interface(s) each unit answered.
  ``interfaces=[...]`` probes several interfaces in one window.
* Pinning is mandatory only where an address cannot tell the interfaces apart: several chosen
  interfaces sharing one address (the VLAN bench). Elsewhere (one interface, or interfaces with
  addresses of their own) a refused SO_BINDTODEVICE (Linux < 5.7 without CAP_NET_RAW) falls back
  to sockets chosen by address, which is logged at debug; in the every-interface scan an
  interface that shares its address and cannot be pinned is skipped with a warning.
* Tests and the simulator pin discovery to loopback (``bind="127.0.0.1"`` or ``interface="lo"``)
  or run it inside a network namespace they made: a probe sent on the default interface leaves
  the machine.
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
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from rig.camera.netif import BindRefused, InterfaceMissing, bind_to_device, interface_index
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
#: Smallest receive queue asked for (bytes the kernel may hold): a bench of cameras answering
#: three probes both ways at once.
RECV_BUFFER = 1 << 20
#: Bytes of receive queue one ProbeMatch takes: the kernel charges a datagram's truesize, 2 304
#: bytes for a 1.3 KB reply on loopback (SO_MEMINFO), with room for larger replies and drivers.
REPLY_QUEUE_COST = 4096
#: Linux socket options missing from older ``socket`` modules: SO_RCVBUFFORCE (CAP_NET_ADMIN
#: goes past net.core.rmem_max) and SO_MEMINFO (the socket's counters; index 8 is its drops).
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SO_MEMINFO = 55
SK_MEMINFO_VARS = 9
SK_MEMINFO_DROPS = 8
RMEM_MAX = "/proc/sys/net/core/rmem_max"
#: Datagrams parsed between two drains of the sockets: ~7 ms of parsing, never more unread.
PARSE_CHUNK = 64
#: Most datagrams read from one socket in one drain (more than any queue rig asks for holds),
#: and after the window has closed (what the queue of a large bench can still hold).
DRAIN_MAX = 65536
FINAL_DRAIN_MAX = 8192
#: A later probe waits until no reply has arrived for this long (the burst is over; if none
#: has arrived at all, a re-probe waits for the schedule's second instant: units may be slow
#: to answer), or a tenth of the window if shorter (the runner's census windows are 50 ms) ...
QUIET_S = 0.1
#: ... and a batch of addressed re-probes waits this long (or a fifth of the window) for its
#: answers before the next.
REPROBE_WAIT_S = 0.1
#: Fewest addressed re-probes in one batch, however small the buffer.
MIN_REPROBE_BATCH = 8
#: Read whole datagrams (the largest UDP payload) so an oversized one is seen at its real size.
READ_SIZE = 65536
MULTICAST_TTL = 2


class DiscoveryError(ValueError):
    """Discovery cannot run as asked (bad interface, address or timeout); the message says why.

    A ValueError like the other rig errors: it is always a configuration mistake, never a camera's
    fault. Bad replies from cameras are skipped, not raised.
    """


@dataclass(frozen=True)
class Interface:
    """One local IPv4 interface discovery runs on. ``name`` is None if it could not be found.

    ``index`` is set when the interface was chosen by name: its sockets are then pinned to it
    (SO_BINDTODEVICE) and multicast is steered by index, so an address shared with other
    interfaces (the VLAN bench) is no problem. Without it (``bind=``), or where the kernel
    refuses the pinning and no other chosen interface has the address, the address decides.
    """

    name: str | None
    address: str
    index: int | None = field(default=None, compare=False)

    @property
    def tag(self) -> str:
        """How replies heard here are tagged: the name, else the address."""
        return self.name or self.address

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
    #: MAC → the interfaces (``Interface.tag``) its replies arrived on, first heard first. More
    #: than one means the unit is reachable from several of them: not one VLAN per slot.
    heard_on: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Datagrams the kernel dropped on our sockets during the window (their receive queues were
    #: full), None where the kernel cannot say. Non-zero means units may be missing.
    drops: int | None = 0
    #: Probe datagrams sent after the first: addressed re-probes for expected units not heard,
    #: or the plain inquiry again. Included in ``probes_sent``.
    reprobes: int = 0
    #: Receive queue granted by the kernel (bytes, the smallest of our sockets) and asked for.
    receive_buffer: int = 0
    receive_buffer_wanted: int = 0

    @property
    def drop_hint(self) -> str | None:
        """What the drops mean and how to prevent them, or None when nothing was dropped."""
        if not self.drops:
            return None
        said = (f"{self.drops} SADP datagram(s) dropped by the kernel: the receive buffer "
                f"({self.receive_buffer} bytes) overflowed in the burst of replies, so units "
                f"may be missing. ")
        if self.receive_buffer < self.receive_buffer_wanted:
            return said + (f"rig asked for {self.receive_buffer_wanted} bytes and the kernel "
                           f"capped it at net.core.rmem_max: raise the limit with `sysctl -w "
                           f"net.core.rmem_max={self.receive_buffer_wanted}` (keep it in "
                           f"/etc/sysctl.d/), or give rig CAP_NET_ADMIN to go past it")
        return said + (f"Say how many units to expect (--expect N) so that rig sizes the "
                       f"buffer for them ({REPLY_QUEUE_COST} bytes each); past "
                       f"net.core.rmem_max that needs `sysctl -w net.core.rmem_max=BYTES` or "
                       f"CAP_NET_ADMIN")

    @property
    def interface_of(self) -> dict[str, str]:
        """MAC → the interface the unit was first heard on."""
        return {mac: tags[0] for mac, tags in self.heard_on.items() if tags}

    def on_interface(self, name: str) -> tuple[SadpDevice, ...]:
        """The units heard on interface ``name`` (by name, or by address for ``bind=``)."""
        return tuple(d for d in self.devices if name in self.heard_on.get(d.mac, ()))

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
            "heard_on": {mac: list(tags) for mac, tags in self.heard_on.items()},
            "drops": self.drops,
            "drop_hint": self.drop_hint,
            "reprobes": self.reprobes,
            "receive_buffer": self.receive_buffer,
            "receive_buffer_wanted": self.receive_buffer_wanted,
        }


def discover(timeout: float = 3.0, *, interface: str | None = None, bind: str | None = None,
             probe_uuid: str | None = None,
             interfaces: Sequence[str] | None = None) -> list[SadpDevice]:
    """Units that answered an SADP inquiry within ``timeout`` seconds, sorted by (IPv4, MAC).

    At most one of ``bind`` (an IPv4 address of this host), ``interface`` (a name such as "lo")
    or ``interfaces`` (several names), or none for every interface that is up with an IPv4
    address. See run_discovery.
    """
    return list(run_discovery(timeout, interface=interface, bind=bind,
                              probe_uuid=probe_uuid, interfaces=interfaces).devices)


def run_discovery(timeout: float = 3.0, *, interface: str | None = None, bind: str | None = None,
                  probe_uuid: str | None = None, group: str = GROUP,
                  port: int = PORT, expect: Collection[str] = (),
                  interfaces: Sequence[str] | None = None, expect_count: int | None = None,
                  receive_buffer: int | None = None) -> DiscoveryResult:
    """Discovery with its diagnostics: skipped datagrams, interfaces used, send errors, drops.

    Where to probe is at most one of ``bind``, ``interface`` and ``interfaces`` (see
    ``location``). ``interfaces`` probes each named interface in the same window; ``heard_on``
    in the result tags each unit with the interface(s) its replies came in on. An interface
    given by name (``interface`` or ``interfaces``) is pinned by index and SO_BINDTODEVICE, so
    it may share its address with others (a VLAN bench). Where the kernel refuses the pinning,
    an interface whose address is its own among the chosen ones falls back to address-based
    sockets; interfaces sharing an address raise DiscoveryError (naming CAP_NET_RAW / Linux 5.7)
    when given by name, and are skipped in the every-interface scan. ``group`` and ``port``
    exist for simulators and tests that must stay off the real SADP port.
    ``expect`` (MACs) ends the window early once every one of them has replied: a caller that
    knows its units need not wait out the window for strangers (the window stays the bound);
    the ones not heard are re-probed by MAC. ``expect_count`` ends it once that many units
    have replied (``rig discover --expect N``). Both size the receive buffers for the burst;
    ``receive_buffer`` (bytes of queue) overrides that size, for tests of a buffer too small.
    Never takes longer than ``timeout`` plus socket set-up and tear-down and the parsing of
    replies already received when the window closed (~0.1 ms each).
    """
    started = time.monotonic()
    where = location(bind=bind, interface=interface, interfaces=interfaces)
    _check_timeout(timeout)
    if expect_count is not None and expect_count < 1:
        raise DiscoveryError(f"expect_count must be at least 1, not {expect_count}")
    chosen = where.chosen()
    probe_uuid, probe = build_probe(probe_uuid)
    collector = _Collector(probe_uuid, expect, expect_count)
    wanted = receive_buffer or max(RECV_BUFFER, collector.units_expected() * REPLY_QUEUE_COST)
    sockets: list[socket.socket] = []
    try:
        senders, tags = _open_all(chosen, where.explicit, group, port, sockets)
        granted = min(size_receive_buffer(sock, wanted) for sock in sockets)
        window = _Window(sockets, senders, tags, collector, (group, port),
                         max(MIN_REPROBE_BATCH, granted // REPLY_QUEUE_COST))
        window.run(probe, started, started + timeout)
        drops = _total_drops(sockets)
    finally:
        for sock in sockets:
            sock.close()
    if drops:
        log.warning("SADP discovery: %d datagram(s) dropped by the kernel (receive buffer %d "
                    "bytes, %d wanted); raise net.core.rmem_max", drops, granted, wanted)
    return DiscoveryResult(
        devices=collector.sorted_devices(), skipped=tuple(collector.skipped),
        interfaces=tuple(iface for iface, _ in senders), probe_uuid=probe_uuid,
        timeout=float(timeout), elapsed=time.monotonic() - started,
        probes_sent=window.probes_sent, send_errors=tuple(window.send_errors),
        heard_on={mac: tuple(names) for mac, names in collector.heard_on.items()},
        drops=drops, reprobes=window.reprobes, receive_buffer=granted,
        receive_buffer_wanted=wanted)


def _check_timeout(timeout: float) -> None:
    if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
            or not (timeout > 0 and math.isfinite(timeout))):
        raise DiscoveryError(f"timeout must be a positive number of seconds, not {timeout!r}")


# --- where to probe --------------------------------------------------------------------------


@dataclass(frozen=True)
class BindAddress:
    """Probe from one IPv4 address of this host; the address, not a name, picks the interface."""

    address: str
    explicit: ClassVar[bool] = True

    def chosen(self) -> list[Interface]:
        address = _check_bind_address(self.address)
        return [Interface(_interface_owning(address), address)]


@dataclass(frozen=True)
class NamedInterfaces:
    """Probe on interfaces given by name (``interface=`` gives one, ``interfaces=`` several),
    each pinned by index so they may share an address (the VLAN bench)."""

    names: tuple[str, ...]
    explicit: ClassVar[bool] = True

    def chosen(self) -> list[Interface]:
        return [named_interface(name) for name in self.names]


@dataclass(frozen=True)
class EveryInterface:
    """Probe on every interface that is up with an IPv4 address. Not ``explicit``: one that
    cannot be opened is skipped with a warning instead of failing the discovery."""

    explicit: ClassVar[bool] = False

    def chosen(self) -> list[Interface]:
        found = all_ipv4_interfaces()
        if not found:
            raise DiscoveryError("no interface is up with an IPv4 address")
        return found


#: Where a discovery probes: resolved once from the caller's arguments by ``location``.
Location = BindAddress | NamedInterfaces | EveryInterface


def location(*, bind: str | None = None, interface: str | None = None,
             interfaces: Sequence[str] | None = None) -> Location:
    """The one place the caller named (at most one of the three), or every interface.

    Only the combination and the list are checked here; addresses and names are looked up
    when the interfaces are chosen (``chosen()``), after the timeout was checked.
    """
    if interfaces is not None and isinstance(interfaces, str):
        raise DiscoveryError("interfaces must be a list of names (use interface= for one)")
    if sum(x is not None for x in (interface, bind, interfaces)) > 1:
        raise DiscoveryError("give one of an interface, a list of interfaces or a bind "
                             "address, not both (or all three)")
    if bind is not None:
        return BindAddress(bind)
    if interface is not None:
        return NamedInterfaces((interface,))
    if interfaces is None:
        return EveryInterface()
    if not interfaces:
        raise DiscoveryError("the list of interfaces is empty")
    if len(set(interfaces)) != len(interfaces):
        raise DiscoveryError(f"an interface is listed twice in {list(interfaces)}")
    return NamedInterfaces(tuple(interfaces))


def _open_all(chosen: Sequence[Interface], explicit: bool, group: str, port: int,
              sockets: list[socket.socket]
              ) -> tuple[list[tuple[Interface, socket.socket]], dict[socket.socket, str]]:
    """Open every chosen interface's sockets (appended to ``sockets`` for the caller to close).

    Returns each usable interface with its send socket, and the interface tag of every socket.
    An interface given by the caller that cannot be opened fails the discovery; in the
    every-interface scan it is skipped with a warning.
    """
    sharing: dict[str, list[str]] = {}
    for iface in chosen:
        sharing.setdefault(iface.address, []).append(iface.tag)
    senders: list[tuple[Interface, socket.socket]] = []
    tags: dict[socket.socket, str] = {}
    for iface in chosen:
        first = len(sockets)
        try:
            others = [tag for tag in sharing[iface.address] if tag != iface.tag]
            send_sock = _open_interface_sockets(iface, group, port, sockets, shared_with=others)
        except DiscoveryError as exc:
            if explicit:
                raise
            log.warning("SADP discovery: skipping interface %s: %s", iface.name, exc)
            continue
        senders.append((iface, send_sock))
        tags.update((sock, iface.tag) for sock in sockets[first:])
    if not senders:
        raise DiscoveryError("could not open SADP sockets on any interface")
    return senders, tags


def send_due(schedule: list[float], now: float,
             senders: Sequence[tuple[Interface, socket.socket]], datagram: bytes,
             target: tuple[str, int], errors: list[str], what: str = "probe") -> int:
    """Send ``datagram`` from every sender for each instant of ``schedule`` that has come
    (removing them); a failed send is noted in ``errors``, never raised. Returns datagrams sent.
    SADP is UDP: a probe or command repeated on a schedule is how a lost datagram is covered."""
    sent = 0
    while schedule and schedule[0] <= now:
        schedule.pop(0)
        for iface, sock in senders:
            try:
                sock.sendto(datagram, target)
                sent += 1
            except OSError as exc:
                message = f"{iface.name or iface.address}: {what} not sent ({exc})"
                log.debug("SADP: %s", message)
                errors.append(message)
    return sent


#: One received datagram waiting to be parsed: payload, source host, source port, interface tag.
_Datagram = tuple[bytes, str, int, str | None]


class _Window:
    """One discovery window: probes out on schedule, every queued datagram read before any is
    parsed, and re-probes for the expected units not heard yet.

    Why drain first: a burst of thousands of replies arrives in milliseconds and parsing one
    takes ~0.1 ms, so a reader that parses as it reads leaves the kernel queue filling while it
    parses. Here the sockets are emptied into ``pending`` (a cheap copy), then at most
    PARSE_CHUNK are parsed before the sockets are emptied again.
    """

    def __init__(self, sockets: Sequence[socket.socket],
                 senders: Sequence[tuple[Interface, socket.socket]],
                 tags: Mapping[socket.socket, str], collector: _Collector,
                 target: tuple[str, int], batch: int) -> None:
        self.sockets, self.senders, self.tags = sockets, senders, tags
        self.collector, self.target, self.batch = collector, target, batch
        self.pending: deque[_Datagram] = deque()
        self.send_errors: list[str] = []
        self.probes_sent = 0
        self.reprobes = 0
        self.last_heard = 0.0
        self.quiet_s, self.wait_s = QUIET_S, REPROBE_WAIT_S     # scaled to the window in run()
        #: Addressed re-probes (by MAC) until units are seen answering probes not meant for them.
        self.targeted = True
        self._reprobe_at = 0.0
        #: When each re-probe pass may start: one per later probe of the schedule, the first
        #: as soon as the first burst is over, the next at the schedule's last instant.
        self._passes: list[float] = []
        self._silent_until = 0.0
        #: The current pass's MACs still to be re-probed, in order.
        self._queue: deque[str] = deque()
        self._batch_sent: tuple[frozenset[str], int] | None = None

    def run(self, probe: bytes, started: float, deadline: float) -> None:
        """Probe, collect until ``deadline`` or until the collector is complete, then parse
        what was already received."""
        window = deadline - started
        schedule = [started + window * frac for frac in PROBE_SCHEDULE[:MAX_PROBES]]
        if self.collector.expect:
            del schedule[1:]   # the later rounds are re-probes by MAC (see _reprobe)
        self.last_heard = started
        self.quiet_s = min(QUIET_S, window / 10)
        self.wait_s = min(REPROBE_WAIT_S, window / 5)
        self._reprobe_at = started + self.quiet_s
        self._passes = [started, *(started + window * frac
                                   for frac in PROBE_SCHEDULE[2:MAX_PROBES])]
        self._silent_until = started + window * PROBE_SCHEDULE[1]
        while True:
            now = time.monotonic()
            if not self.probes_sent or self._quiet(now):
                # A later probe waits for the burst to end: sent into it, it only makes the
                # whole bench answer again while its first answers are still being read.
                sent = send_due(schedule, now, self.senders, probe, self.target,
                                self.send_errors)
                self.reprobes += sent if self.probes_sent else 0
                self.probes_sent += sent
            if now >= deadline or self.collector.complete():
                break
            if self.pending:
                self._drain(self.sockets)
                self._parse(PARSE_CHUNK)
                continue
            self._reprobe(now)
            next_probe = max(schedule[0], self.last_heard + self.quiet_s) if schedule else math.inf
            wake = min(deadline, next_probe, self._next_reprobe())
            readable, _, _ = select.select(self.sockets, [], [], max(0.0, wake - now))
            self._drain(readable)
        # Replies already queued when the window closed still count.
        self._drain(self.sockets, FINAL_DRAIN_MAX)
        self._parse(len(self.pending))

    def _quiet(self, now: float) -> bool:
        """Nothing waits to be parsed and no reply arrived for QUIET_S: a burst is over."""
        return not self.pending and now - self.last_heard >= self.quiet_s

    def _drain(self, sockets: Sequence[socket.socket], limit: int = DRAIN_MAX) -> None:
        """Move the datagrams queued on ``sockets`` into ``pending``, without parsing: all of
        them, up to ``limit`` a socket (a sender faster than we read cannot keep us here)."""
        for sock in sockets:
            tag = self.tags.get(sock)
            for _ in range(limit):
                try:
                    data, (host, sport) = sock.recvfrom(READ_SIZE)
                except BlockingIOError:
                    break
                except OSError as exc:
                    # e.g. ECONNREFUSED from an ICMP error after a unicast send; reported once.
                    log.debug("SADP discovery: receive error ignored (%s)", exc)
                    continue
                self.pending.append((data, host, sport, tag))

    def _parse(self, count: int) -> None:
        """Parse up to ``count`` pending datagrams. Only a reply to our probe moves
        ``last_heard``: other clients' traffic on the group must not hold our probes back."""
        replied = False
        for _ in range(min(count, len(self.pending))):
            replied = self.collector.add(*self.pending.popleft()) or replied
        if replied:
            self.last_heard = time.monotonic()

    def _next_reprobe(self) -> float:
        """When a re-probe may be due (infinity when none can be: nothing is expected, all of
        it was heard, or every pass is spent)."""
        if not self.collector.expect or self.collector.complete():
            return math.inf
        if not self._queue:
            if not self._passes:
                return math.inf
            due = max(self._passes[0], self._reprobe_at, self.last_heard + self.quiet_s)
            return due if self.collector.by_mac else max(due, self._silent_until)
        if self._batch_sent is not None and self._batch_sent[0] <= self.collector.by_mac.keys():
            return self.last_heard   # the whole batch answered: the next one at once
        return max(self._reprobe_at, self.last_heard + self.quiet_s)

    def _reprobe(self, now: float) -> None:
        """Once the burst is over (QUIET_S without a datagram) and the last batch had its
        chance, probe again for the expected units not heard: a batch of probes addressed by
        MAC, no larger than the receive buffer holds, or a plain inquiry where units were seen
        to answer probes addressed to others. Each unit is re-probed at most once per pass,
        and there are as many passes as later probes in PROBE_SCHEDULE, so a bench whose units
        are away is not flooded."""
        if now < self._next_reprobe():
            return
        self._check_targeting()
        if not self.targeted:
            self._queue.clear()
            if self._passes:
                self._passes.pop(0)
                self._send([build_probe(self.collector.probe_uuid)[1]])
            self._reprobe_at = now + self.wait_s
            return
        if not self._queue:
            self._passes.pop(0)
            self._queue.extend(self.collector.missing())
        chosen: list[str] = []
        while self._queue and len(chosen) < self.batch:
            mac = self._queue.popleft()
            if mac not in self.collector.by_mac:
                chosen.append(mac)
        self._send([build_probe(self.collector.probe_uuid, mac=mac)[1] for mac in chosen])
        self.collector.reprobed.update(chosen)
        self.collector.mark = len(self.collector.heard_order)
        self._batch_sent = (frozenset(chosen), self.collector.repeats)
        self._reprobe_at = now + self.wait_s

    def _check_targeting(self) -> None:
        """Units that answer a probe addressed to another MAC (firmware that ignores <MAC>,
        docs/hikvision-protocols.md §1.2) would turn each addressed re-probe into a full
        burst: after a batch drew repeats from units heard before (a batch only asks units
        not heard yet, and the first burst is over), re-probe with the plain inquiry instead.
        Repeats, not all answers: with a full buffer most of such a burst is dropped, but what
        does arrive is nearly all repeats."""
        if self._batch_sent is None or not self.targeted:
            return
        _, repeats_before = self._batch_sent
        if self.collector.repeats - repeats_before > MIN_REPROBE_BATCH:
            log.warning("SADP discovery: units answered probes addressed to other MACs; "
                        "re-probing with the plain inquiry")
            self.targeted = False

    def _send(self, datagrams: Sequence[bytes]) -> None:
        for datagram in datagrams:
            sent = send_due([0.0], 0.0, self.senders, datagram, self.target, self.send_errors,
                            what="re-probe")
            self.probes_sent += sent
            self.reprobes += sent


class _Collector:
    """Accepts datagrams, keeps the replies to our probe, remembers what it skipped and why."""

    def __init__(self, probe_uuid: str, expect: Collection[str] = (),
                 expect_count: int | None = None) -> None:
        self.probe_uuid = probe_uuid.upper()
        self.by_mac: dict[str, SadpDevice] = {}
        self.skipped: list[Skipped] = []
        self.heard_on: dict[str, list[str]] = {}
        self.expect = frozenset(normalize_mac(m) for m in expect)
        self._expect_order = sorted(self.expect)
        self.expect_count = expect_count
        #: Replies to our probe from units heard before ``mark`` (a count of units heard) and
        #: not re-probed since: how addressed re-probes are judged. A unit answering both ways
        #: repeats itself at once, so only units heard before a batch was sent count.
        self.repeats = 0
        self.mark = 0
        self.reprobed: set[str] = set()
        self.heard_order: dict[str, int] = {}
        #: (datagram, source host, interface tag) → MAC of every reply taken.
        self._taken: dict[tuple[bytes, str, str | None], str] = {}

    def units_expected(self) -> int:
        """How many units the caller said will answer (0: it did not say)."""
        return max(len(self.expect), self.expect_count or 0)

    def complete(self) -> bool:
        """Every expected unit has replied and at least ``expect_count`` units have (never true
        when nothing is expected)."""
        if not self.expect and self.expect_count is None:
            return False
        if self.expect_count is not None and len(self.by_mac) < self.expect_count:
            return False
        return not self.expect or self.expect <= self.by_mac.keys()

    def missing(self) -> list[str]:
        """The expected MACs not heard yet, in a stable order."""
        return [mac for mac in self._expect_order if mac not in self.by_mac]

    def add(self, data: bytes, host: str, sport: int, tag: str | None = None) -> bool:
        """Take one datagram; True if it is a reply to our probe. A reply already taken, byte
        for byte from the same host on the same interface (the second reply style, a second
        probe's burst), is not parsed again: at thousands of units parsing is the cost."""
        mac = self._taken.get((data, host, tag))
        if mac is not None:
            self._count_repeat(mac)
            return True
        source = f"{host}:{sport}"
        if len(data) > MAX_DATAGRAM:
            self._skip(source, f"{len(data)}-byte datagram is larger than {MAX_DATAGRAM} bytes")
            return False
        try:
            device = parse_probe_match(data, source=host)
        except SadpError as exc:
            if _is_probe(data):
                # Our own looped-back probe, or another SADP client's: not a reply at all.
                log.debug("SADP discovery: probe from %s ignored", source)
                return False
            self._skip(source, str(exc))
            return False
        if device.uuid != self.probe_uuid:
            self._skip(source, f"reply to another probe (Uuid {device.uuid})")
            return False
        self._taken[(data, host, tag)] = device.mac
        known = self.by_mac.get(device.mac)
        if known is not None:
            self._count_repeat(device.mac)
        else:
            self.heard_order[device.mac] = len(self.heard_order)
        if known is None or len(device.raw) > len(known.raw):
            self.by_mac[device.mac] = device
        heard = self.heard_on.setdefault(device.mac, [])
        if tag is not None and tag not in heard:
            heard.append(tag)
        return True

    def _count_repeat(self, mac: str) -> None:
        if mac not in self.reprobed and self.heard_order[mac] < self.mark:
            self.repeats += 1

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


def size_receive_buffer(sock: socket.socket, queue_bytes: int) -> int:
    """Ask for a receive queue of ``queue_bytes`` and return what the kernel granted.

    The kernel doubles the value given (the other half pays for its bookkeeping) and, for
    SO_RCVBUF, caps it at net.core.rmem_max. With CAP_NET_ADMIN, SO_RCVBUFFORCE ignores that
    cap, so a privileged rig gets the queue a large bench's burst needs whatever the sysctl.
    The granted size is read back: it is what decides how many replies fit.
    """
    value = max(1, queue_bytes // 2)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, value)
    except OSError:   # EPERM without CAP_NET_ADMIN: as much as the limit allows
        limit = rmem_max()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                            min(value, limit) if limit else value)
        except OSError as exc:
            log.debug("SADP discovery: SO_RCVBUF refused (%s)", exc)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


def rmem_max() -> int | None:
    """net.core.rmem_max, the most SO_RCVBUF may ask for unprivileged (None if unreadable)."""
    try:
        with open(RMEM_MAX, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def socket_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for this socket since it was opened (SO_MEMINFO's drop
    counter: a full receive queue, mostly), None where the option is missing.

    SO_MEMINFO, not SO_RXQ_OVFL: the latter only rides on a datagram that was queued after
    the drop, so drops at the tail of a burst would never be reported.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * SK_MEMINFO_VARS)
    except OSError:
        return None
    if len(raw) < 4 * (SK_MEMINFO_DROPS + 1):
        return None
    return int(struct.unpack_from("I", raw, 4 * SK_MEMINFO_DROPS)[0])


def _total_drops(sockets: Sequence[socket.socket]) -> int | None:
    counts = [socket_drops(sock) for sock in sockets]
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


def open_group_socket(interface_address: str, group: str = GROUP, port: int = PORT, *,
                      device: str | None = None, index: int | None = None) -> socket.socket:
    """A UDP socket bound to (group, port) that hears the group on one interface only.

    Shared by discovery and the simulated camera's responder: several of them bind the same
    (group, port) on one host, hence SO_REUSEADDR + SO_REUSEPORT. With ``device`` and ``index``
    the socket is pinned to that interface and joins by index (the address may be shared).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        set_multicast_all_off(sock)
        if device is not None:
            bind_to_device(sock, device)
        sock.bind((group, port))
        if index is not None:
            membership = ip_mreqn(group, interface_address, index)
        else:
            membership = struct.pack("4s4s", socket.inet_aton(group),
                                     socket.inet_aton(interface_address))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    except BaseException:
        sock.close()
        raise
    return sock


def ip_mreqn(group: str, address: str, index: int) -> bytes:
    """Linux ``struct ip_mreqn`` {multiaddr, address, ifindex}: the interface chosen by index.
    IP_MULTICAST_IF takes it too (the group is ignored there)."""
    return struct.pack("4s4si", socket.inet_aton(group), socket.inet_aton(address), index)


def set_multicast_all_off(sock: socket.socket) -> None:
    """Linux only: deliver to this socket only the groups it joined itself."""
    if sys.platform.startswith("linux"):
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)


def _open_interface_sockets(iface: Interface, group: str, port: int,
                            sockets: list[socket.socket], *,
                            shared_with: Sequence[str] = ()) -> socket.socket:
    """Open the send socket and the group socket of one interface.

    Both are appended to ``sockets`` as soon as they exist, so the caller closes them whatever
    happens next; the send socket is returned because the probes go out through it. An interface
    with an index is pinned by device and index; otherwise its address chooses it. If pinning
    is refused (BindRefused: Linux < 5.7 without CAP_NET_RAW) the address chooses it too,
    unless other chosen interfaces (``shared_with``) carry the same address: then the address
    cannot tell them apart and DiscoveryError says what is missing.
    """
    send_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sockets.append(send_sock)
    pinned = iface.index is not None and iface.name is not None
    if pinned:
        pinned = _pin(send_sock, iface, shared_with)
    _bind_sender(send_sock, iface.address)
    _prepare_sender(send_sock, iface, group, pinned)
    group_sock = _open_listener(iface, group, port, pinned)
    sockets.append(group_sock)
    group_sock.setblocking(False)
    group_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
    return send_sock


def _pin(send_sock: socket.socket, iface: Interface, shared_with: Sequence[str]) -> bool:
    """Pin the send socket to the interface; False when the kernel refused and the address
    alone can choose the interface (no other chosen interface shares it)."""
    assert iface.name is not None
    try:
        bind_to_device(send_sock, iface.name)
    except BindRefused as exc:
        if shared_with:
            raise DiscoveryError(
                f"{iface.name} shares its address {iface.address} with "
                f"{', '.join(shared_with)}, so its sockets must be pinned to it "
                f"(SO_BINDTODEVICE), and that was refused: Linux before 5.7 needs "
                f"CAP_NET_RAW for it (setcap cap_net_raw+ep on the interpreter, or "
                f"AmbientCapabilities=CAP_NET_RAW)") from None
        log.debug("SADP discovery: %s; using sockets chosen by address %s on %s",
                  exc, iface.address, iface.name)
        return False
    except InterfaceMissing as exc:
        raise DiscoveryError(str(exc)) from None
    except OSError as exc:
        raise DiscoveryError(f"cannot pin a socket to {iface.name!r}: "
                             f"{exc.strerror or exc}") from None
    return True


def _bind_sender(send_sock: socket.socket, address: str) -> None:
    """Bind the send socket to the interface address: unicast replies come back to it."""
    try:
        send_sock.bind((address, 0))
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            raise DiscoveryError(f"{address} is not an address of this host") from None
        raise DiscoveryError(f"cannot bind to {address}: {exc.strerror or exc}") from None


def _prepare_sender(send_sock: socket.socket, iface: Interface, group: str,
                    pinned: bool) -> None:
    """Non-blocking, a big receive buffer (run_discovery sizes it again for the units it
    expects), and multicast out of this interface only (by index when pinned, else by
    address)."""
    address = iface.address
    try:
        send_sock.setblocking(False)
        send_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        set_multicast_all_off(send_sock)
        if pinned:
            assert iface.index is not None
            send_sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 ip_mreqn(group, address, iface.index))
        else:
            send_sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton(address))
        send_sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, MULTICAST_TTL)
        send_sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    except OSError as exc:
        raise DiscoveryError(f"cannot send SADP multicast from {iface.tag}: "
                             f"{exc.strerror or exc}") from None


def _open_listener(iface: Interface, group: str, port: int, pinned: bool) -> socket.socket:
    """The interface's group socket (multicast replies), pinned like its send socket."""
    try:
        return open_group_socket(iface.address, group, port,
                                 device=iface.name if pinned else None,
                                 index=iface.index if pinned else None)
    except (InterfaceMissing, BindRefused) as exc:
        raise DiscoveryError(str(exc)) from None
    except OSError as exc:
        where = f"{iface.name} ({iface.address})" if pinned else iface.address
        raise DiscoveryError(f"cannot join {group}:{port} on {where}: "
                             f"{exc.strerror or exc}") from None


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


def named_interface(name: str) -> Interface:
    """Interface ``name`` with its primary IPv4 address and its index (to be pinned by index).
    DiscoveryError if unknown, down or without an IPv4 address."""
    address = interface_ipv4(name)
    try:
        index = interface_index(name)
    except InterfaceMissing as exc:
        raise DiscoveryError(str(exc)) from None
    return Interface(name, address, index)


def all_ipv4_interfaces() -> list[Interface]:
    """Every interface that is up and has an IPv4 address (its primary one), by name and index."""
    found: list[Interface] = []
    for index, name in socket.if_nameindex():
        try:
            found.append(Interface(name, interface_ipv4(name), index))
        except DiscoveryError:
            continue
    return found


def _interface_owning(address: str) -> str | None:
    """Name of the interface whose primary IPv4 address is ``address`` (for diagnostics)."""
    for iface in all_ipv4_interfaces():
        if iface.address == address:
            return iface.name
    return None
