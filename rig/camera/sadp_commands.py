"""SADP commands addressed by MAC: ``update`` (network settings) and ``lamp`` (blink the LED).

Why by SADP and not HTTP: after a reset every unit sits on 192.168.1.64, so an HTTP request
reaches whichever unit won ARP, while a SADP request is multicast and only the unit whose
``<MAC>`` matches acts on it (docs/hikvision-protocols.md §1.5). The request templates are the
sadp.dll strings and Skylight's real ``update`` request; the reply is a ``ProbeMatch``-like
document carrying ``<Types>`` and ``<Result>`` (``success``, ``failure``, ``denied`` in the
hiktools message classes). Anything else that claims our Uuid is a clear SadpCommandError, never a
guess.

Sending reuses discovery's sockets (both reply styles, interface pinning), and an ``update`` is
sent exactly ONCE: a wrong password costs one of the firmware's few attempts, so a lost
datagram is not retried behind the caller's back (the caller confirms by census instead).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import select
import socket
import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from rig import xmlsafe
from rig.camera import discovery
from rig.camera.sadp import (
    GROUP,
    MAX_DATAGRAM,
    PORT,
    SadpError,
    normalize_mac,
    normalize_uuid,
)

UPDATE = "update"
LAMP = "lamp"
#: ``Result`` words of a command reply (hiktools ActionResponse); anything else is kept as text.
SUCCESS = "success"
#: A lamp request is harmless to repeat, so it goes out up to this many times in its window.
LAMP_SENDS = 3


class SadpCommandError(ValueError):
    """A command that could not be sent, or a reply that cannot be read; the message says why."""


def encode_password(password: str, encoding: str = "md5-base64") -> str:
    """The ``<Password>`` of an ``update``: base64(raw MD5(password)) on the documented firmware
    (Skylight's PoC for an intercom; uncertain for cameras, see firmware_notes/)."""
    if encoding != "md5-base64":
        raise SadpCommandError(f"unknown SADP password encoding {encoding!r}")
    return base64.b64encode(hashlib.md5(password.encode("utf-8")).digest()).decode("ascii")


def _mac_field(mac: str) -> str:
    return normalize_mac(mac).replace(":", "-")


def _ipv4(text: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise SadpCommandError(f"{what} {text!r} is not an IPv4 address") from None


def build_update(mac: str, *, address: str, mask: str, gateway: str, dhcp: bool,
                 password_field: str, http_port: int = 80, command_port: int = 8000,
                 request_uuid: str | None = None) -> tuple[str, bytes]:
    """An ``update`` request in the element order of Skylight's capture. ``password_field`` is
    already encoded (``encode_password``), so the clear password never reaches this layer.
    Returns (Uuid, datagram)."""
    request_uuid = normalize_uuid(request_uuid) if request_uuid else str(uuidlib.uuid4()).upper()
    fields = [("Uuid", request_uuid), ("Types", UPDATE), ("PWErrorParse", "true"),
              ("MAC", _mac_field(mac)), ("Password", password_field),
              ("IPv4Address", _ipv4(address, "address")), ("CommandPort", str(command_port)),
              ("IPv4SubnetMask", _ipv4(mask, "mask")),
              ("IPv4Gateway", _ipv4(gateway, "gateway")), ("IPv6Address", "::"),
              ("IPv6Gateway", "::"), ("IPv6MaskLen", "0"),
              ("DHCP", "true" if dhcp else "false"), ("HttpPort", str(http_port))]
    return request_uuid, _probe(fields)


def build_lamp(mac: str, on: bool, *, request_uuid: str | None = None) -> tuple[str, bytes]:
    """A ``lamp`` request: ``<Action>open</Action>`` blinks the LED, ``close`` stops it."""
    request_uuid = normalize_uuid(request_uuid) if request_uuid else str(uuidlib.uuid4()).upper()
    fields = [("Uuid", request_uuid), ("Types", LAMP), ("MAC", _mac_field(mac)),
              ("Action", "open" if on else "close")]
    return request_uuid, _probe(fields)


def _probe(fields: list[tuple[str, str]]) -> bytes:
    for name, value in fields:
        if any(c in value for c in "<>&"):
            raise SadpCommandError(f"{name} must not contain XML markup")
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields)
    return f'<?xml version="1.0" encoding="utf-8"?><Probe>{inner}</Probe>'.encode()


@dataclass(frozen=True)
class CommandReply:
    """A unit's answer to one command. ``result`` is the ``<Result>`` word, lower case."""

    uuid: str
    types: str
    mac: str | None
    result: str
    source: str | None = None
    raw: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return self.result == SUCCESS

    def to_json(self) -> dict[str, object]:
        """The reply as evidence; a ``Password`` element, should a unit echo one, is left out
        (even hashed, it is a secret)."""
        raw = {k: v for k, v in self.raw.items() if k.lower() != "password"}
        return {"types": self.types, "mac": self.mac, "result": self.result,
                "source": self.source, "raw": raw}


def parse_command_reply(data: bytes, source: str | None = None) -> CommandReply:
    """Read a command reply (a ProbeMatch-like document with ``<Result>``); SadpError if it is
    not one (no Uuid, no Result, not XML, too large)."""
    where = f"SADP command reply from {source}" if source else "SADP command reply"
    try:
        root = xmlsafe.parse(data, max_bytes=MAX_DATAGRAM, what=where)
    except xmlsafe.XmlError as exc:
        raise SadpError(str(exc)) from None
    name = xmlsafe.local_name(root.tag)
    if name == "Probe":
        raise SadpError(f"{where}: a request, not a reply")
    fields = xmlsafe.children_text(root)
    if not fields.get("Uuid"):
        raise SadpError(f"{where}: <{name}> without <Uuid>")
    result = fields.get("Result")
    if not result:
        raise SadpError(f"{where}: <{name}> without <Result>")
    mac = fields.get("MAC")
    try:
        mac = normalize_mac(mac) if mac else None
        reply_uuid = normalize_uuid(fields["Uuid"])
    except SadpError as exc:
        raise SadpError(f"{where}: {exc}") from None
    return CommandReply(reply_uuid, fields.get("Types", "").lower(), mac, result.strip().lower(),
                        source, fields)


@dataclass(frozen=True)
class Exchange:
    """What one command's window saw: the unit's reply (or None) and datagrams not used."""

    reply: CommandReply | None
    unreadable: tuple[str, ...] = ()
    sends: int = 0


def exchange(datagram: bytes, request_uuid: str, mac: str, *, timeout: float = 3.0,
             sends: int = 1, bind: str | None = None, interface: str | None = None,
             group: str = GROUP, port: int = PORT) -> Exchange:
    """Send ``datagram`` (``sends`` times, spread over the first half of the window) on the
    bench interface and wait up to ``timeout`` for the reply of unit ``mac`` to ``request_uuid``.

    A datagram that claims our Uuid but cannot be read is listed in ``unreadable``; the caller
    turns "no reply, something unreadable" into a clear error. Raises SadpCommandError when the
    sockets cannot be opened (discovery's rules: ``bind`` or ``interface``, never the default
    interface in tests).
    """
    target_mac = normalize_mac(mac)
    try:
        where = discovery.location(bind=bind, interface=interface)
        sockets: list[socket.socket] = []
        try:
            senders, _ = discovery._open_all(where.chosen(), where.explicit, group, port,
                                             sockets)
            return _wait_reply(sockets, senders, datagram, (group, port), request_uuid,
                               target_mac, timeout, sends)
        finally:
            for sock in sockets:
                sock.close()
    except discovery.DiscoveryError as exc:
        raise SadpCommandError(str(exc)) from None


def _wait_reply(sockets: list[socket.socket], senders: list, datagram: bytes,
                target: tuple[str, int], request_uuid: str, mac: str, timeout: float,
                sends: int) -> Exchange:
    started = time.monotonic()
    deadline = started + timeout
    schedule = [started + (timeout / 2) * i / max(sends, 1) for i in range(max(sends, 1))]
    unreadable: list[str] = []
    sent = 0
    while True:
        now = time.monotonic()
        sent += discovery.send_due(schedule, now, senders, datagram, target, unreadable,
                                   what="request")
        if now >= deadline:
            return Exchange(None, tuple(unreadable), sent)
        wake = min([deadline, *schedule[:1]])
        readable, _, _ = select.select(sockets, [], [], max(0.0, wake - now))
        for sock in readable:
            reply = _read(sock, request_uuid, mac, unreadable)
            if reply is not None:
                return Exchange(reply, tuple(unreadable), sent)


def _read(sock: socket.socket, request_uuid: str, mac: str,
          unreadable: list[str]) -> CommandReply | None:
    try:
        data, (host, _) = sock.recvfrom(65536)
    except OSError:
        return None
    if request_uuid.encode() not in data.upper():
        return None          # other clients' traffic, inquiry replies, other commands
    try:
        reply = parse_command_reply(data, host)
    except SadpError as exc:
        if b"<Probe>" in data:
            return None      # our own request, looped back
        unreadable.append(str(exc))
        return None
    if reply.uuid != request_uuid or (reply.mac is not None and reply.mac != mac):
        return None
    return reply
