"""ISAPI records: the Credentials a call takes, and what a camera's XML (or JSON) replies say.

Kept apart from the client (rig.camera.isapi) because they are plain data: the verifier, the
factory-state check and the tests read and build them without any HTTP. Every parser reads its
body without regard to the namespace (hikvision.com, isapi.org or none; firmware varies) and
raises ValueError for a body that is not its record; the client turns that into MalformedReply.
Fields firmware omits come back as None, never as an error.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from rig import xmlsafe
from rig.camera.sadp import SadpError, normalize_mac

#: A JSON string (its closing quote optional: an unterminated one runs to the end, so every scan
#: is one linear pass) or a bracket.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def parse_json(body: bytes, max_depth: int = xmlsafe.MAX_DEPTH) -> Any:
    """A JSON body, refused (ValueError) when nested deeper than ``max_depth``.

    The depth is counted before parsing and without recursion (brackets outside strings, one
    linear pass), so no hostile reply can reach json.loads' own recursion (RecursionError past
    ~1000 levels) or later code walking the result; RecursionError is still caught as a guard.
    """
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(body):
        kind = token.group()[:1]
        if kind in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif kind in (b"]", b"}"):
            depth -= 1
    if deepest > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def credentials_problem(user: str, password: str) -> str | None:
    """Why a login cannot be sent as Digest, or None. The user name travels in a quoted header
    (latin-1 on the wire, UTF-8 in the hash: only printable ASCII agrees, and a quote, backslash,
    CR or LF would break or inject the header); the password is only hashed (UTF-8). Sending
    either anyway would spend a failed login or crash mid-request. Never names the password."""
    if not user:
        return "the user name is empty"
    if not all(" " <= c <= "~" for c in user) or '"' in user or "\\" in user:
        return ("the user name must be printable ASCII without quotes, backslashes or control "
                "characters")
    if any(c < " " or c == "\x7f" or "\x80" <= c <= "\x9f" for c in password):
        return "the password contains control characters (CR, LF, tab...)"
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return "the password is not valid text (undecodable bytes)"
    return None


@dataclass(frozen=True)
class Credentials:
    """A user name and password for Digest logins. ``repr`` hides the password (it reaches logs).
    Refused at once (ValueError, the password never in the message) when they could not be sent
    as a Digest login: better a clear error before any request than a traceback after one."""

    user: str
    password: str

    def __post_init__(self) -> None:
        problem = credentials_problem(self.user, self.password)
        if problem:
            raise ValueError(problem)

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password='***')"


@dataclass(frozen=True)
class ResponseStatus:
    """The ``<ResponseStatus>`` envelope (docs/hikvision-protocols.md §2.2), or its JSON twin on
    V3/JSON endpoints."""

    status_code: int
    status_string: str = ""
    sub_status_code: str = ""
    request_url: str | None = None

    @property
    def ok(self) -> bool:
        """statusCode 1 (OK) or 7 (Reboot Required): the request was carried out."""
        return self.status_code in (1, 7)

    @property
    def reboot_required(self) -> bool:
        """The change takes effect only after a reboot (statusCode 7 / ``rebootRequired``)."""
        return self.status_code == 7 or self.sub_status_code.lower() == "rebootrequired"

    @classmethod
    def from_xml(cls, root: ET.Element) -> ResponseStatus:
        _require_root(root, "ResponseStatus")
        fields = xmlsafe.children_text(root)
        return cls._build(fields.get("statusCode"), fields.get("statusString"),
                          fields.get("subStatusCode"), fields.get("requestURL"))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResponseStatus:
        return cls._build(data.get("statusCode"), data.get("statusString"),
                          data.get("subStatusCode"), data.get("requestURL"))

    @classmethod
    def _build(cls, code: Any, string: Any, sub: Any, url: Any) -> ResponseStatus:
        status_code = int_or_none(code)
        if status_code is None:
            raise ValueError(f"statusCode {code!r} is not a number")
        return cls(status_code=status_code, status_string=str(string or ""),
                   sub_status_code=str(sub or ""), request_url=str(url) if url else None)

    def to_json(self) -> dict[str, Any]:
        return {"status_code": self.status_code, "status_string": self.status_string,
                "sub_status_code": self.sub_status_code, "request_url": self.request_url,
                "ok": self.ok, "reboot_required": self.reboot_required}


@dataclass(frozen=True)
class ActivateStatus:
    """``GET /SDK/activateStatus``. ``supported=False``: no such endpoint (legacy firmware)."""

    activated: bool | None
    support_version: int | None
    supported: bool

    @classmethod
    def from_xml(cls, root: ET.Element) -> ActivateStatus:
        _require_root(root, "ActivateStatus")
        fields = xmlsafe.children_text(root)
        return cls(activated=xmlsafe.parse_bool(fields.get("Activated")),
                   support_version=int_or_none(fields.get("supportVersion")), supported=True)

    def to_json(self) -> dict[str, Any]:
        return {"activated": self.activated, "support_version": self.support_version,
                "supported": self.supported}


@dataclass(frozen=True)
class UserCheck:
    """``GET /ISAPI/Security/userCheck``: whether a login worked and what the lock counter says."""

    ok: bool
    http_status: int
    status_value: int | None = None
    status_string: str | None = None
    is_activated: bool | None = None
    is_default_password: bool | None = None
    is_risk_password: bool | None = None
    lock_status: str | None = None       # as sent: "unlock", "lock" (devices) or "locked" (schema)
    unlock_time: int | None = None       # seconds until the lock lifts
    retry_login_time: int | None = None  # failed logins left before the lock

    @property
    def locked(self) -> bool:
        """The camera has locked this client address; even the right password is refused now."""
        return (self.lock_status or "").lower() in ("lock", "locked")

    @classmethod
    def from_xml(cls, root: ET.Element, http_status: int) -> UserCheck:
        """A ``<userCheck>`` body (any namespace), or the ResponseStatus some firmware sends."""
        if xmlsafe.local_name(root.tag) == "ResponseStatus":
            status = ResponseStatus.from_xml(root)
            ok = http_status == 200 and status.status_code == 1
            return cls(ok=ok, http_status=http_status, status_value=200 if ok else http_status,
                       status_string=status.status_string)
        _require_root(root, "userCheck")
        f = xmlsafe.children_text(root)
        status_value = int_or_none(f.get("statusValue"))
        return cls(ok=http_status == 200 and status_value == 200, http_status=http_status,
                   status_value=status_value, status_string=f.get("statusString"),
                   is_activated=xmlsafe.parse_bool(f.get("isActivated")),
                   is_default_password=xmlsafe.parse_bool(f.get("isDefaultPassword")),
                   is_risk_password=xmlsafe.parse_bool(f.get("isRiskPassword")),
                   lock_status=f.get("lockStatus") or None,
                   unlock_time=int_or_none(f.get("unlockTime")),
                   retry_login_time=int_or_none(f.get("retryLoginTime")))

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "http_status": self.http_status, "status_value": self.status_value,
                "status_string": self.status_string, "is_activated": self.is_activated,
                "is_default_password": self.is_default_password,
                "is_risk_password": self.is_risk_password, "lock_status": self.lock_status,
                "locked": self.locked, "unlock_time": self.unlock_time,
                "retry_login_time": self.retry_login_time}


@dataclass(frozen=True)
class DeviceInfo:
    """``GET /ISAPI/System/deviceInfo`` (docs/hikvision-protocols.md §2.7). ``mac_address`` is in
    SADP's canonical form."""

    device_name: str | None
    device_id: str | None
    model: str | None
    serial_number: str | None
    mac_address: str | None
    firmware_version: str | None
    firmware_released_date: str | None
    firmware_version_info: str | None
    device_type: str | None
    raw: dict[str, str]

    @classmethod
    def from_xml(cls, root: ET.Element) -> DeviceInfo:
        _require_root(root, "DeviceInfo")
        f = xmlsafe.children_text(root)
        mac = f.get("macAddress") or None
        if mac is not None:
            try:
                mac = normalize_mac(mac)
            except SadpError:
                pass  # keep what the camera sent: a strange MAC is evidence, not a reason to fail
        return cls(device_name=f.get("deviceName"), device_id=f.get("deviceID"),
                   model=f.get("model"), serial_number=f.get("serialNumber"), mac_address=mac,
                   firmware_version=f.get("firmwareVersion"),
                   firmware_released_date=f.get("firmwareReleasedDate"),
                   firmware_version_info=f.get("firmwareVersionInfo"),
                   device_type=f.get("deviceType"), raw=f)

    def to_json(self) -> dict[str, Any]:
        return {"device_name": self.device_name, "device_id": self.device_id,
                "model": self.model, "serial_number": self.serial_number,
                "mac_address": self.mac_address, "firmware_version": self.firmware_version,
                "firmware_released_date": self.firmware_released_date,
                "firmware_version_info": self.firmware_version_info,
                "device_type": self.device_type}


@dataclass(frozen=True)
class Ipv4Settings:
    """``GET /ISAPI/System/Network/interfaces/1/ipAddress`` (docs/hikvision-protocols.md §2.7, qb60
    template)."""

    dhcp: bool | None           # addressingType dynamic → True, static → False
    ip_address: str | None
    subnet_mask: str | None
    gateway: str | None         # DefaultGateway/ipAddress
    raw: dict[str, str]         # flattened: "DefaultGateway.ipAddress" → "192.168.1.1"

    @classmethod
    def from_xml(cls, root: ET.Element) -> Ipv4Settings:
        _require_root(root, "IPAddress")
        raw = _flatten(root)
        addressing = (raw.get("addressingType") or "").lower()
        dhcp = {"dynamic": True, "static": False}.get(addressing)
        return cls(dhcp=dhcp, ip_address=raw.get("ipAddress"), subnet_mask=raw.get("subnetMask"),
                   gateway=raw.get("DefaultGateway.ipAddress"), raw=raw)

    def to_json(self) -> dict[str, Any]:
        return {"dhcp": self.dhcp, "ip_address": self.ip_address,
                "subnet_mask": self.subnet_mask, "gateway": self.gateway}

    def to_xml(self) -> str:
        """The body of a PUT: static (address, mask, gateway) or DHCP on."""
        addressing = "dynamic" if self.dhcp else "static"
        body = (f'<?xml version="1.0" encoding="UTF-8"?><IPAddress version="2.0" '
                f'xmlns="http://www.hikvision.com/ver20/XMLSchema"><ipVersion>dual</ipVersion>'
                f"<addressingType>{addressing}</addressingType>")
        if not self.dhcp:
            body += (f"<ipAddress>{escape(self.ip_address or '')}</ipAddress><subnetMask>"
                     f"{escape(self.subnet_mask or '')}</subnetMask><DefaultGateway><ipAddress>"
                     f"{escape(self.gateway or '')}</ipAddress></DefaultGateway>")
        return body + "</IPAddress>"


def user_password_xml(user: str, password: str) -> str:
    """The body of PUT /ISAPI/Security/users/1 that gives ``user`` a new password."""
    return (f"<User><id>1</id><userName>{escape(user)}</userName>"
            f"<password>{escape(password)}</password></User>")


def _require_root(root: ET.Element, name: str) -> None:
    """Refuse a body whose root is another element (any namespace; firmware varies the case of
    ``userCheck``)."""
    found = xmlsafe.local_name(root.tag)
    if found.lower() != name.lower():
        raise ValueError(f"root element is <{found}>, not <{name}>")


def int_or_none(value: Any) -> int | None:
    """An integer field, or None when absent or not a number (firmware omits fields freely)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _flatten(root: ET.Element) -> dict[str, str]:
    """Leaf texts keyed by their local-name path below ``root`` (first occurrence wins)."""
    out: dict[str, str] = {}

    def walk(element: ET.Element, prefix: str) -> None:
        for child in element:
            key = prefix + xmlsafe.local_name(child.tag)
            if len(child):
                walk(child, key + ".")
            else:
                out.setdefault(key, (child.text or "").strip())

    walk(root, "")
    return out
