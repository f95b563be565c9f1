"""SADP wire format: the XML Probe a client sends and the ProbeMatch a camera answers with.

SADP (Search Active Devices Protocol) is Hikvision's discovery protocol: XML in UDP datagrams on
239.255.255.250:37020 (docs/hikvision-protocols.md §1). Real firmware is sloppy: ``flase`` for
false, MACs with hyphens or colons, CRLF, tabs or no whitespace, Uuid echoed in either case,
optional elements that come and go with the firmware. The parser accepts all of that; what it does
not accept is anything that is not a ProbeMatch, or a ProbeMatch without the identity rig depends on
(Uuid and MAC).
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rig import xmlsafe

GROUP = "239.255.255.250"
PORT = 37020
#: Real ProbeMatch replies are about 1.5 kB; anything far larger is not a camera talking.
MAX_DATAGRAM = 8192

_MAC_RE = re.compile(r"^([0-9a-f]{2})[-:]?([0-9a-f]{2})[-:]?([0-9a-f]{2})[-:]?"
                     r"([0-9a-f]{2})[-:]?([0-9a-f]{2})[-:]?([0-9a-f]{2})$")


class SadpError(ValueError):
    """A datagram that is not an acceptable SADP message; the message says why."""


def normalize_mac(text: str) -> str:
    """``44-47-CC-37-CE-81`` / ``44:47:cc:37:ce:81`` → ``44:47:cc:37:ce:81``.

    One canonical form so that SADP (hyphens) and ISAPI deviceInfo (colons) compare equal.
    """
    match = _MAC_RE.match(text.strip().lower())
    if not match:
        raise SadpError(f"not a MAC address: {text!r}")
    return ":".join(match.groups())


def normalize_uuid(text: str) -> str:
    """Uuid in the uppercase 8-4-4-4-12 form real clients send; devices may echo it lowercase."""
    try:
        return str(uuidlib.UUID(text.strip())).upper()
    except ValueError as exc:
        raise SadpError(f"not a Uuid: {text!r}") from exc


def build_probe(probe_uuid: str | None = None, types: str = "inquiry",
                mac: str | None = None) -> tuple[str, bytes]:
    """An inquiry Probe exactly as the vendor-compatible tools send it (one line, no NUL).

    ``mac`` adds the optional ``<MAC>`` element (docs/hikvision-protocols.md §1.2): a re-probe
    aimed at one unit the caller expects, so that the rest of a large bench need not answer
    again. Returns the Uuid (uppercase) and the datagram.
    """
    probe_uuid = normalize_uuid(probe_uuid) if probe_uuid else str(uuidlib.uuid4()).upper()
    target = f"<MAC>{normalize_mac(mac).replace(':', '-')}</MAC>" if mac is not None else ""
    body = (f'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>{probe_uuid}</Uuid>'
            f"<Types>{types}</Types>{target}</Probe>")
    return probe_uuid, body.encode("utf-8")


@dataclass(frozen=True)
class Probe:
    """A Probe as a device sees it."""

    uuid: str
    types: str
    mac: str | None = None


def parse_probe(data: bytes) -> Probe:
    """Parse a client's Probe (device side). Like real firmware, only Probe + Uuid are required."""
    root = _parse_root(data, "Probe", "SADP probe")
    fields = xmlsafe.children_text(root)
    if not fields.get("Uuid"):
        raise SadpError("SADP probe without a Uuid")
    mac = fields.get("MAC")
    return Probe(uuid=fields["Uuid"], types=fields.get("Types", ""),
                 mac=mac if mac else None)


@dataclass(frozen=True)
class SadpDevice:
    """One unit as its ProbeMatch describes it. ``raw`` keeps every element, known or not."""

    uuid: str
    mac: str
    serial: str | None
    model: str | None
    device_type: str | None
    ipv4: str | None
    mask: str | None
    gateway: str | None
    ipv6: str | None
    dhcp: bool | None
    http_port: int | None
    command_port: int | None
    firmware: str | None
    dsp_version: str | None
    activated: bool | None
    device_lock: bool | None
    boot_time: str | None
    source: str | None = None
    raw: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form (README, "rig discover --json")."""
        return {
            "mac": self.mac, "serial": self.serial, "model": self.model,
            "device_type": self.device_type, "ipv4": self.ipv4, "mask": self.mask,
            "gateway": self.gateway, "ipv6": self.ipv6, "dhcp": self.dhcp,
            "http_port": self.http_port, "command_port": self.command_port,
            "firmware": self.firmware, "dsp_version": self.dsp_version,
            "activated": self.activated, "device_lock": self.device_lock,
            "boot_time": self.boot_time, "source": self.source, "uuid": self.uuid,
            "raw": dict(self.raw),
        }


def parse_probe_match(data: bytes, source: str | None = None) -> SadpDevice:
    """Parse a ProbeMatch datagram leniently; raise SadpError for anything else."""
    where = f"SADP reply from {source}" if source else "SADP reply"
    root = _parse_root(data, "ProbeMatch", where)
    fields = xmlsafe.children_text(root)
    for required in ("Uuid", "MAC"):
        if not fields.get(required):
            raise SadpError(f"{where}: ProbeMatch without <{required}>")
    try:
        mac = normalize_mac(fields["MAC"])
        reply_uuid = normalize_uuid(fields["Uuid"])
    except SadpError as exc:
        raise SadpError(f"{where}: {exc}") from None
    ipv6 = fields.get("IPv6Address") or None
    return SadpDevice(
        uuid=reply_uuid,
        mac=mac,
        serial=fields.get("DeviceSN") or None,
        model=fields.get("DeviceDescription") or None,
        device_type=fields.get("DeviceType") or None,
        ipv4=fields.get("IPv4Address") or None,
        mask=fields.get("IPv4SubnetMask") or None,
        gateway=fields.get("IPv4Gateway") or None,
        ipv6=None if ipv6 in (None, "::") else ipv6,
        dhcp=xmlsafe.parse_bool(fields.get("DHCP")),
        http_port=_port(fields.get("HttpPort")),
        command_port=_port(fields.get("CommandPort")),
        firmware=fields.get("SoftwareVersion") or None,
        dsp_version=fields.get("DSPVersion") or None,
        activated=xmlsafe.parse_bool(fields.get("Activated")),
        device_lock=xmlsafe.parse_bool(fields.get("DeviceLock")),
        boot_time=fields.get("BootTime") or None,
        source=source,
        raw=fields,
    )


def build_probe_match(fields: Iterable[tuple[str, str]], layout: str = "lf",
                      xml_decl: str = '<?xml version="1.0" encoding="UTF-8"?>') -> bytes:
    """Write a ProbeMatch the way firmware does: field order kept, values as given.

    ``layout`` reproduces the whitespace seen in captures: ``lf`` (sample A), ``tabs`` (sample B),
    ``crlf`` (the TSC device) or ``compact`` (no whitespace at all).
    """
    sep, indent = {"lf": ("\n", ""), "tabs": ("\n", "\t"), "crlf": ("\r\n", ""),
                   "compact": ("", "")}[layout]
    parts = [xml_decl, "<ProbeMatch>"]
    parts += [f"{indent}<{name}>{_escape(value)}</{name}>" for name, value in fields]
    parts.append("</ProbeMatch>")
    return (sep.join(parts) + sep).encode("utf-8")


def _parse_root(data: bytes, expected: str, where: str):
    if len(data) > MAX_DATAGRAM:
        raise SadpError(f"{where}: {len(data)}-byte datagram is larger than {MAX_DATAGRAM} bytes")
    try:
        root = xmlsafe.parse(data, max_bytes=MAX_DATAGRAM, what=where)
    except xmlsafe.XmlError as exc:
        raise SadpError(str(exc)) from None
    name = xmlsafe.local_name(root.tag)
    if name != expected:
        raise SadpError(f"{where}: root element is <{name}>, expected <{expected}>")
    return root


def _port(text: str | None) -> int | None:
    # isdigit() alone accepts "²" (int() then raises ValueError) and "٣" (read as 3).
    if not text or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 0 < value < 65536 else None


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
