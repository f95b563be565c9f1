"""IPv6 link-local addresses of bench units, and scoped addresses/URLs to reach them.

Every freshly reset camera answers on 192.168.1.64, so IPv4 cannot name one unit. Its IPv6
link-local address can: firmware that forms it by SLAAC's modified EUI-64 (RFC 4291 appendix A)
derives it from the MAC that SADP reports, so the address is known before the unit is ever
contacted. A link-local address means nothing without the link it lives on, hence the zone id
(``fe80::…%eth0``). In a URL the ``%`` is written ``%25`` (RFC 6874); in the Host header the zone
id is left out, because it only means something to the sender.

Firmware that forms its link-local address some other way (stable-privacy, RFC 7217) cannot be
reached this way; SADP's ``IPv6Address`` then shows the real address, and a bench sees the
difference as a unit that does not answer on the derived one.
"""

from __future__ import annotations

import ipaddress

from rig.camera.sadp import SadpError, normalize_mac

LINK_LOCAL = ipaddress.IPv6Network("fe80::/10")


def eui64_interface_id(mac: str) -> bytes:
    """The 8-byte modified EUI-64 interface identifier of ``mac``: flip the universal/local bit
    of the first octet and put ff:fe in the middle. ValueError for a string that is not a MAC."""
    try:
        octets = bytes.fromhex(normalize_mac(mac).replace(":", ""))
    except SadpError as exc:
        raise ValueError(str(exc)) from None
    return bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:6]


def eui64_link_local(mac: str) -> str:
    """``00:11:22:33:44:55`` → ``fe80::211:22ff:fe33:4455`` (compressed form, no zone id)."""
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui64_interface_id(mac)))


def split_zone(host: str) -> tuple[str, str | None]:
    """``fe80::1%eth0`` / ``[fe80::1%eth0]`` / ``[fe80::1%25eth0]`` → (``fe80::1``, ``eth0``).

    Any other host comes back unchanged (brackets removed) with zone None. ``%25`` is read as an
    escaped ``%`` (RFC 6874) only inside brackets, the URL form; bare, ``fe80::1%25`` is zone
    "25" (an interface index). Raises ValueError for a zone id on something that is not an IPv6
    address, or an empty zone id.
    """
    host = host.strip()
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if "%" not in host:
        return host, None
    address, _, zone = host.partition("%")
    if bracketed and zone.startswith("25") and len(zone) > 2:
        zone = zone[2:]            # the URL form: %25 is an escaped "%" (RFC 6874)
    if not zone:
        raise ValueError(f"empty IPv6 zone id in {host!r}")
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise ValueError(f"{address!r} is not an IPv6 address, so it cannot have a zone id "
                         f"({zone!r})") from None
    return address, zone


def is_link_local(address: str) -> bool:
    """True for an IPv6 address in fe80::/10 (zone id allowed)."""
    try:
        return ipaddress.IPv6Address(split_zone(address)[0]) in LINK_LOCAL
    except ValueError:
        return False


def scoped(address: str, interface: str) -> str:
    """``fe80::1`` + ``eth0`` → ``fe80::1%eth0``: the form getaddrinfo and the ip tools take."""
    bare, zone = split_zone(address)
    if zone is not None and zone != interface:
        raise ValueError(f"{address!r} is already scoped to {zone!r}, not {interface!r}")
    if not interface or "%" in interface or "/" in interface:
        raise ValueError(f"not an interface name: {interface!r}")
    return f"{bare}%{interface}"


def authority(host: str, port: int, *, zone: str | None = None, url: bool = False,
              default_port: int | None = None) -> str:
    """``host:port`` with IPv6 in brackets.

    ``zone`` is appended as ``%zone`` (``%25zone`` when ``url``). ``default_port``: leave the port
    out when it is this one (the Host header form).
    """
    text = host
    if ":" in host:
        if zone:
            text += ("%25" if url else "%") + zone
        text = f"[{text}]"
    elif zone:
        raise ValueError(f"{host!r} is not an IPv6 address, so it cannot have a zone id")
    return text if port == default_port else f"{text}:{port}"


def link_local_url(mac: str, interface: str, path: str = "/", *, port: int = 80,
                   scheme: str = "http") -> str:
    """``http://[fe80::…%25eth0]/ISAPI/…`` for the unit with ``mac`` on ``interface``."""
    if not path.startswith("/"):
        path = "/" + path
    default = {"http": 80, "https": 443}.get(scheme)
    host = authority(eui64_link_local(mac), port, zone=interface, url=True, default_port=default)
    return f"{scheme}://{host}{path}"
