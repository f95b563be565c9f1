"""ISAPI client: the HTTP side of a Hikvision camera (reference §2), built to spare the lockout.

A camera locks the client's address after a few failed logins (5-7, for 30 minutes; §2.5). On an
unattended bench a lock costs a slot half an hour, so this client never authenticates behind the
caller's back:

* Digest is built by hand (rig.camera.digest). An authenticated call first sends the request
  without Authorization (unauthenticated requests do not count toward the lock, §2.1), reads the
  401's Digest challenge, then sends exactly ONE request with Authorization. A 401 to that request
  is a failed login and is reported, never retried.
* The last challenge is cached per client, so the next call goes straight to one authenticated
  request. If the camera answers that with 401 and ``stale=true``, the nonce had expired, which is
  not a failed login (RFC 7616 §3.3), and the call is re-sent ONCE with the fresh nonce. A 401
  without ``stale=true`` is taken as a failed login. (A nonce called stale right after it was
  issued is reported as an IsapiError, not re-sent.) Use a fresh client after a camera reboots:
  firmware that forgets its nonces without saying ``stale`` would count the cached one as a
  failure.
* No library auth handler, no HTTPAdapter retries (urllib3 ``Retry(total=0)``), no redirects, no
  ``.netrc`` or proxy from the environment (``.netrc`` would add a Basic login of its own), and a
  fresh connection per request (``Connection: close``): a keep-alive connection the camera has
  dropped would otherwise fail an authenticated request that nobody may re-send blindly.

Where the camera is, is a ``rig.camera.transport.Route``: every unit comes back on 192.168.1.64,
so a bench names one unit either by its IPv6 link-local address with a zone id
(``IsapiClient("fe80::4647:ccff:fe00:a%eth0")``, see rig.camera.linklocal) or by the VLAN
interface that leads to its slot (``IsapiClient("192.168.1.64", interface="eth0.101")``, pinned
with SO_BINDTODEVICE). rig opens that socket itself; the Host header never carries the zone id
(RFC 6874) and the Digest ``uri`` is the request path. ``target`` names the route in every
message and in the evidence: ``[fe80::4647:ccff:fe00:a%eth0]:80``, ``192.168.1.64:80 via
eth0.101``.

Every request has a (connect, read) timeout; every body is read with a size cap; every XML body
goes through rig.xmlsafe and is read without regard to its namespace (hikvision.com, isapi.org or
none). No requests or XML exception leaves this module: callers get IsapiError subclasses whose
message names the target (address, port, zone or interface), method and path.
"""

from __future__ import annotations

import errno
import http.client
import json
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from rig import __version__, xmlsafe
from rig.camera import activation
from rig.camera.digest import Challenge, DigestError, authorization, parse_challenge
from rig.camera.netif import BindRefused, InterfaceMissing
from rig.camera.sadp import SadpError, normalize_mac
from rig.camera.transport import Route, route_session

#: Largest reply body accepted. ISAPI replies are a few kB; anything far larger is not a camera.
MAX_BODY = 256 * 1024
_CHUNK = 16 * 1024

ResetMode = Literal["basic", "full"]
_Record = TypeVar("_Record")
RESET_MODES: tuple[str, ...] = ("basic", "full")
ACTIVATION_VARIANTS: tuple[str, ...] = ("challenge", "v3")


# --- errors -------------------------------------------------------------------------------------

class IsapiError(Exception):
    """A call that did not give a usable answer. ``str()`` names host:port, method and path."""

    def __init__(self, message: str, *, http_status: int | None = None,
                 response_status: ResponseStatus | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.response_status = response_status


class ConnectionFailed(IsapiError):
    """No HTTP reply (``kind`` says why): "refused", "reset", "timeout", "unreachable", "name"
    (unresolvable), "interface" (the zone's or bound interface does not exist), "permission"
    (SO_BINDTODEVICE refused: Linux < 5.7 without CAP_NET_RAW) or "other"."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class AuthenticationFailed(IsapiError):
    """The camera rejected the credentials (one failed login was spent, or it is locked)."""

    def __init__(self, message: str, *, user_check: UserCheck | None = None,
                 http_status: int | None = 401) -> None:
        super().__init__(message, http_status=http_status)
        self.user_check = user_check


class NotActivated(IsapiError):
    """The camera is inactive (factory state of V5.3+ firmware) and refuses the call."""


class AlreadyActivated(IsapiError):
    """Activation refused because the camera already has a password (``hasActivated``)."""


class MalformedReply(IsapiError):
    """A reply that cannot be read: bad XML/JSON, wrong root element, or oversized."""


# --- records ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    """A user name and password for Digest logins. ``repr`` hides the password (it reaches logs)."""

    user: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password='***')"


@dataclass(frozen=True)
class ResponseStatus:
    """The ``<ResponseStatus>`` envelope (§2.2), or its JSON twin on V3/JSON endpoints."""

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
        status_code = _int(code)
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
                   support_version=_int(fields.get("supportVersion")), supported=True)

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
        status_value = _int(f.get("statusValue"))
        return cls(ok=http_status == 200 and status_value == 200, http_status=http_status,
                   status_value=status_value, status_string=f.get("statusString"),
                   is_activated=xmlsafe.parse_bool(f.get("isActivated")),
                   is_default_password=xmlsafe.parse_bool(f.get("isDefaultPassword")),
                   is_risk_password=xmlsafe.parse_bool(f.get("isRiskPassword")),
                   lock_status=f.get("lockStatus") or None,
                   unlock_time=_int(f.get("unlockTime")),
                   retry_login_time=_int(f.get("retryLoginTime")))

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "http_status": self.http_status, "status_value": self.status_value,
                "status_string": self.status_string, "is_activated": self.is_activated,
                "is_default_password": self.is_default_password,
                "is_risk_password": self.is_risk_password, "lock_status": self.lock_status,
                "locked": self.locked, "unlock_time": self.unlock_time,
                "retry_login_time": self.retry_login_time}


@dataclass(frozen=True)
class DeviceInfo:
    """``GET /ISAPI/System/deviceInfo`` (§2.7). ``mac_address`` is in SADP's canonical form."""

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
    """``GET /ISAPI/System/Network/interfaces/1/ipAddress`` (§2.7, qb60 template)."""

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


def _require_root(root: ET.Element, name: str) -> None:
    """Refuse a body whose root is another element (any namespace; firmware varies the case of
    ``userCheck``)."""
    found = xmlsafe.local_name(root.tag)
    if found.lower() != name.lower():
        raise ValueError(f"root element is <{found}>, not <{name}>")


def _int(value: Any) -> int | None:
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


# --- the client ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Reply:
    """One HTTP reply, body already read (capped) and the connection closed."""

    status: int
    body: bytes
    challenge: Challenge | None = None       # first usable Digest challenge offered
    challenge_problem: str | None = None     # why a Digest challenge offered was unusable


def _digest_challenge(values: Iterable[str]) -> tuple[Challenge | None, str | None]:
    """The first usable Digest challenge among WWW-Authenticate values, or why there is none.

    Values are split per scheme first: a server may join ``Digest ..., Basic realm=...`` in one
    header, and parsing that as one challenge would mix their parameters.
    """
    problems: list[str] = []
    for value in values:
        for part in _SCHEME_SPLIT.split(value):
            if not part.strip().lower().startswith("digest"):
                continue
            try:
                return parse_challenge(part), None
            except DigestError as exc:
                problems.append(str(exc))
    return None, "; ".join(problems) or None


_SCHEME_SPLIT = re.compile(r",\s*(?=(?:digest|basic|bearer|negotiate)\s)", re.IGNORECASE)


@dataclass
class _CachedChallenge:
    challenge: Challenge
    nc: int = 0


class IsapiClient:
    """One camera's ISAPI over HTTP(S).

    ``timeout`` applies to connecting and to each read (and twice it bounds reading a body).
    ``verify`` is requests' TLS check for ``scheme="https"``: cameras ship self-signed
    certificates, so pass a CA bundle path, or False on a closed bench. A caller's ``session``
    is used only to send: its auth, cookies, headers and environment settings are not applied,
    but its adapters are, so they must not retry. The cached challenge is guarded by a lock.
    """

    def __init__(self, host: str, port: int = 80, *, timeout: float = 5.0, scheme: str = "http",
                 session: requests.Session | None = None, verify: bool | str = True,
                 interface: str | None = None) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme must be http or https, not {scheme!r}")
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is out of range")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.route = Route.parse(host, port, interface)
        if session is not None and (self.route.zone or self.route.interface):
            raise ValueError("a caller's session cannot reach a zone id or an interface; "
                             "leave session out")
        self.host = self.route.host
        self.zone = self.route.zone
        self.interface = self.route.interface
        self.port = port
        self.timeout = float(timeout)
        self.scheme = scheme
        self._verify = verify
        self._session = session or route_session(self.route)
        self._owns_session = session is None
        self._lock = threading.Lock()
        self._cached: _CachedChallenge | None = None
        self._auth_requests = 0

    # -- housekeeping --

    @property
    def target(self) -> str:
        """How messages and evidence name the camera: ``192.168.1.64:80``, ``[::1]:8080``,
        ``[fe80::4647:ccff:fe00:a%eth0]:80`` or ``192.168.1.64:80 via eth0.101``."""
        return self.route.describe()

    def describe(self) -> str:
        """The same as ``target``."""
        return self.route.describe()

    @property
    def auth_requests(self) -> int:
        """How many requests carrying Authorization this client has sent (each may cost a login)."""
        return self._auth_requests

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> IsapiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IsapiClient({self.scheme}://{self.target})"

    # -- endpoints --

    def activate_status(self) -> ActivateStatus:
        """Whether the camera is activated; no login needed (§2.3). Legacy firmware answers 404."""
        path = "/SDK/activateStatus"
        reply = self._send("GET", path)
        if reply.status == 404:
            return ActivateStatus(activated=None, support_version=None, supported=False)
        self._check_status("GET", path, reply)
        return self._read("GET", path, reply, ActivateStatus.from_xml)

    def user_check(self, creds: Credentials) -> UserCheck:
        """Check a login: costs ONE attempt. A wrong password is ``ok=False``, not an exception;
        the lock fields say how many attempts remain (or how long the lock lasts)."""
        path = "/ISAPI/Security/userCheck"
        try:
            reply = self._send("GET", path, creds=creds)
        except AuthenticationFailed as exc:
            return exc.user_check or UserCheck(ok=False, http_status=exc.http_status or 401)
        self._check_status("GET", path, reply)
        return self._read("GET", path, reply, lambda root: UserCheck.from_xml(root, reply.status))

    def device_info(self, creds: Credentials) -> DeviceInfo:
        """Model, serial, MAC and firmware: ties an HTTP answer to the unit SADP saw."""
        path = "/ISAPI/System/deviceInfo"
        return self._get_record(path, creds, DeviceInfo.from_xml)

    def network(self, creds: Credentials) -> Ipv4Settings:
        """IPv4 settings of interface 1 (factory default: static 192.168.1.64/24, §3.1)."""
        path = "/ISAPI/System/Network/interfaces/1/ipAddress"
        return self._get_record(path, creds, Ipv4Settings.from_xml)

    def factory_reset(self, creds: Credentials, mode: ResetMode) -> ResponseStatus:
        """Restore defaults: ``basic`` keeps network and users, ``full`` returns to inactive (§2.6).
        Check ``reboot_required``: some firmware waits for a reboot (statusCode 7)."""
        if mode not in RESET_MODES:
            raise ValueError(f"factory reset mode must be one of {', '.join(RESET_MODES)}, "
                             f"not {mode!r}")
        return self._put_status(f"/ISAPI/System/factoryReset?mode={mode}", creds)

    def reboot(self, creds: Credentials) -> ResponseStatus:
        """Reboot the camera (it stops answering for the profile's boot time)."""
        return self._put_status("/ISAPI/System/reboot", creds)

    def activate(self, password: str, *, user: str = "admin",
                 variant: str | None = None) -> ResponseStatus:
        """Give an inactive camera its admin password (§2.4). No login is spent.

        ``user`` is only used for the password rule "must not contain the user name". With
        ``variant=None`` the exchange is chosen from ``/SDK/activateStatus``: supportVersion 3 →
        "v3" (G5 firmware), else "challenge". Raises ValueError for a password the camera would
        refuse, AlreadyActivated when the camera already has a password.
        """
        problem = activation.password_problem(password, user)
        if problem:
            raise ValueError(f"password refused before sending: it {problem}")
        if variant is None:
            status = self.activate_status()
            if status.activated:
                raise AlreadyActivated(self._where("GET", "/SDK/activateStatus",
                                                   "camera is already activated"))
            variant = "v3" if status.support_version == 3 else "challenge"
        if variant not in ACTIVATION_VARIANTS:
            raise ValueError(f"activation variant must be one of {', '.join(ACTIVATION_VARIANTS)}, "
                             f"not {variant!r}")
        if variant == "v3":
            return self._activate_v3(password)
        return self._activate_challenge(password)

    # -- activation exchanges --

    def _activate_challenge(self, password: str) -> ResponseStatus:
        key = activation.new_client_key("challenge")
        path = "/ISAPI/Security/challenge"
        body = f"<PublicKey><key>{activation.public_key_param(key)}</key></PublicKey>"
        reply = self._send("POST", path, body=body.encode("ascii"), content_type=_XML)
        self._check_activation_reply("POST", path, reply)
        root = self._parse_xml("POST", path, reply)
        encrypted = xmlsafe.find_text(root, "key")
        if not encrypted:
            raise self._malformed("POST", path, "challenge reply has no <key>", reply.status)
        random_hex = self._decrypt("POST", path, key, encrypted, reply.status)
        field, _ = activation.encrypt_password(random_hex, password, "challenge")
        path = "/ISAPI/System/activate"
        body = f"<ActivateInfo><password>{field}</password></ActivateInfo>"
        reply = self._send("PUT", path, body=body.encode("ascii"), content_type=_XML)
        self._check_activation_reply("PUT", path, reply)
        return self._status_of("PUT", path, reply)

    def _activate_v3(self, password: str) -> ResponseStatus:
        key = activation.new_client_key("v3")
        path = "/ISAPI/System/activate/GetChallengeV3?format=json"
        body = json.dumps({"publicKey": activation.public_key_param(key)})
        reply = self._send("POST", path, body=body.encode("ascii"), content_type=_JSON)
        self._check_activation_reply("POST", path, reply)
        data = self._json("POST", path, reply)
        encrypted = data.get("challenge")
        if not isinstance(encrypted, str) or not encrypted:
            raise self._malformed("POST", path, "challenge reply has no \"challenge\" string",
                                  reply.status)
        random_hex = self._decrypt("POST", path, key, encrypted, reply.status)
        field, iv_hex = activation.encrypt_password(random_hex, password, "v3")
        path = "/ISAPI/System/activate/StartActivateV3?format=json"
        body = json.dumps({"password": field, "iv": iv_hex})
        reply = self._send("POST", path, body=body.encode("ascii"), content_type=_JSON)
        self._check_activation_reply("POST", path, reply)
        return self._status_of("POST", path, reply)

    def _decrypt(self, method: str, path: str, key: rsa.RSAPrivateKey, encrypted: str,
                 status: int) -> str:
        try:
            return activation.decrypt_challenge(key, encrypted)
        except activation.ActivationError as exc:
            raise self._malformed(method, path, str(exc), status) from None

    def _check_activation_reply(self, method: str, path: str, reply: _Reply) -> None:
        """hasActivated → AlreadyActivated (at any HTTP status); other errors as usual."""
        status = _error_record(reply)
        if isinstance(status, ResponseStatus) and status.status_code == 4 \
                and status.sub_status_code == "hasActivated":
            raise AlreadyActivated(self._where(method, path, "camera is already activated "
                                                             "(hasActivated)"),
                                   http_status=reply.status, response_status=status)
        self._check_status(method, path, reply)

    # -- helpers per reply kind --

    def _get_record(self, path: str, creds: Credentials,
                    build: Callable[[ET.Element], _Record]) -> _Record:
        reply = self._send("GET", path, creds=creds)
        self._check_status("GET", path, reply)
        return self._read("GET", path, reply, build)

    def _put_status(self, path: str, creds: Credentials) -> ResponseStatus:
        reply = self._send("PUT", path, creds=creds)
        self._check_status("PUT", path, reply)
        return self._status_of("PUT", path, reply)

    def _status_of(self, method: str, path: str, reply: _Reply) -> ResponseStatus:
        """The ResponseStatus of a successful reply, XML or JSON."""
        if reply.body.lstrip().startswith(b"{"):
            data = self._json(method, path, reply)
            try:
                return ResponseStatus.from_json(data)
            except ValueError as exc:
                raise self._malformed(method, path, str(exc), reply.status) from None
        return self._read(method, path, reply, ResponseStatus.from_xml)

    def _read(self, method: str, path: str, reply: _Reply,
              build: Callable[[ET.Element], _Record]) -> _Record:
        """Parse an XML body and build a record from it; any refusal is a MalformedReply."""
        root = self._parse_xml(method, path, reply)
        try:
            return build(root)
        except ValueError as exc:
            raise self._malformed(method, path, str(exc), reply.status) from None

    def _parse_xml(self, method: str, path: str, reply: _Reply) -> ET.Element:
        try:
            return xmlsafe.parse(reply.body, max_bytes=MAX_BODY, what="reply")
        except xmlsafe.XmlError as exc:
            raise self._malformed(method, path, str(exc), reply.status) from None

    def _json(self, method: str, path: str, reply: _Reply) -> dict[str, Any]:
        try:
            data = json.loads(reply.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._malformed(method, path, f"reply is not JSON ({exc})", reply.status) \
                from None
        if not isinstance(data, dict):
            raise self._malformed(method, path, "JSON reply is not an object", reply.status)
        return data

    def _check_status(self, method: str, path: str, reply: _Reply) -> None:
        """Raise for anything but 2xx, with the ResponseStatus when the body has one."""
        if 200 <= reply.status < 300:
            return
        record = _error_record(reply)
        status = record if isinstance(record, ResponseStatus) else None
        if reply.status in (401, 403) and _not_activated(record):
            raise NotActivated(self._where(method, path, f"HTTP {reply.status}: camera is not "
                                                         "activated"),
                               http_status=reply.status, response_status=status)
        detail = f"HTTP {reply.status}"
        if status:
            detail += f": statusCode {status.status_code} {status.status_string}".rstrip()
            if status.sub_status_code:
                detail += f" ({status.sub_status_code})"
        raise IsapiError(self._where(method, path, detail), http_status=reply.status,
                         response_status=status)

    def _where(self, method: str, path: str, detail: str) -> str:
        return f"{self.target} {method} {path}: {detail}"

    def _malformed(self, method: str, path: str, detail: str, status: int | None) -> MalformedReply:
        return MalformedReply(self._where(method, path, detail), http_status=status)

    # -- the wire --

    def _send(self, method: str, path: str, *, body: bytes | None = None,
              content_type: str | None = None, creds: Credentials | None = None) -> _Reply:
        """One call. Without ``creds``: one request. With ``creds``: see the module docstring."""
        if creds is None:
            return self._http(method, path, body, content_type, None)
        with self._lock:
            cached = self._cached.challenge if self._cached else None
        if cached is None:
            first = self._http(method, path, body, content_type, None)
            if first.status != 401:
                return first          # the camera did not ask for a login: use the reply as is
            challenge = self._challenge_before_login(method, path, first)
            reply = self._authenticated(method, path, body, content_type, creds, challenge)
            if reply.status == 401 and reply.challenge and reply.challenge.stale:
                # A nonce we were handed a moment ago is already stale: do not guess, report.
                raise IsapiError(self._where(method, path, "HTTP 401: the camera called a "
                                             "nonce it had just issued stale"), http_status=401)
        else:
            reply = self._authenticated(method, path, body, content_type, creds, cached)
            if reply.status == 401 and reply.challenge and reply.challenge.stale:
                # The cached nonce expired: not a failed login. One re-send with the fresh nonce.
                reply = self._authenticated(method, path, body, content_type, creds,
                                            reply.challenge)
        if reply.status == 401:
            if reply.challenge is not None:
                with self._lock:      # the next call can go straight to one signed request
                    self._cached = _CachedChallenge(reply.challenge)
            raise self._login_failed(method, path, creds, reply)
        return reply

    def _authenticated(self, method: str, path: str, body: bytes | None,
                       content_type: str | None, creds: Credentials,
                       challenge: Challenge) -> _Reply:
        """Send exactly one request with Authorization answering ``challenge``."""
        with self._lock:
            if self._cached is None or self._cached.challenge != challenge:
                self._cached = _CachedChallenge(challenge)
            self._cached.nc += 1
            nc = self._cached.nc
            self._auth_requests += 1

        def sign(uri: str) -> str:
            return authorization(challenge, method, uri, creds.user, creds.password, nc=nc)

        return self._http(method, path, body, content_type, sign)

    def _challenge_before_login(self, method: str, path: str, reply: _Reply) -> Challenge:
        """The challenge of an unauthenticated 401, unless the 401 says a login is pointless:
        an inactive camera (notActivated) or a locked one (no challenge offered)."""
        record = _error_record(reply)
        if _not_activated(record):
            raise NotActivated(self._where(method, path, "HTTP 401: camera is not activated"),
                               http_status=401,
                               response_status=record if isinstance(record, ResponseStatus)
                               else None)
        if reply.challenge is not None:
            return reply.challenge
        if reply.challenge_problem:
            raise IsapiError(self._where(method, path, f"HTTP 401: {reply.challenge_problem}"),
                             http_status=401)
        check = record if isinstance(record, UserCheck) else None
        raise AuthenticationFailed(
            self._where(method, path, "HTTP 401 without a Digest challenge"
                        + (" (login locked)" if check and check.locked else "")),
            user_check=check)

    def _login_failed(self, method: str, path: str, creds: Credentials,
                      reply: _Reply) -> IsapiError:
        """The error for a signed request answered 401: a failed login (or an inactive unit)."""
        record = _error_record(reply)
        if _not_activated(record):
            return NotActivated(self._where(method, path, "HTTP 401: camera is not activated"),
                                http_status=401,
                                response_status=record if isinstance(record, ResponseStatus)
                                else None)
        check = record if isinstance(record, UserCheck) else None
        detail = f"HTTP 401: login as {creds.user!r} refused"
        if check is not None and check.locked:
            detail += f" (locked; unlock in {check.unlock_time} s)"
        elif check is not None and check.retry_login_time is not None:
            detail += f" (retries left: {check.retry_login_time})"
        return AuthenticationFailed(self._where(method, path, detail), user_check=check)

    def _http(self, method: str, path: str, body: bytes | None, content_type: str | None,
              sign: Callable[[str], str] | None) -> _Reply:
        """One HTTP request and its capped body. Maps every transport failure to IsapiError."""
        url = f"{self.scheme}://{self.route.url_authority()}{path}"
        headers = {"Host": self.route.host_header(self.scheme), "Connection": "close",
                   "Accept": "*/*", "User-Agent": f"rig/{__version__}"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            prepared = requests.Request(method, url, headers=headers, data=body).prepare()
        except (requests.RequestException, ValueError) as exc:
            raise IsapiError(self._where(method, path, f"bad request URL ({exc})")) from None
        if sign is not None:
            prepared.headers["Authorization"] = sign(prepared.path_url)
        try:
            response = self._session.send(prepared, timeout=(self.timeout, self.timeout),
                                          stream=True, allow_redirects=False, proxies={},
                                          verify=self._verify)
        except requests.RequestException as exc:
            kind, text = _failure(exc)
            raise ConnectionFailed(self._where(method, path, text), kind=kind) from None
        try:
            data = self._read_body(method, path, response)
            raw_headers = getattr(response.raw, "headers", None)
            if raw_headers is not None and hasattr(raw_headers, "getlist"):
                offered = raw_headers.getlist("WWW-Authenticate")
            else:
                offered = [response.headers.get("WWW-Authenticate") or ""]
            challenge, problem = _digest_challenge(offered)
            return _Reply(status=response.status_code, body=data, challenge=challenge,
                          challenge_problem=problem)
        finally:
            response.close()

    def _read_body(self, method: str, path: str, response: requests.Response) -> bytes:
        """The body, at most MAX_BODY bytes, within a deadline (a dribbling sender is cut off)."""
        declared = _int(response.headers.get("Content-Length"))
        if declared is not None and declared > MAX_BODY:
            raise self._malformed(method, path, f"reply of {declared} bytes is larger than the "
                                  f"{MAX_BODY}-byte limit", response.status_code)
        deadline = time.monotonic() + 2 * self.timeout
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > MAX_BODY:
                    raise self._malformed(method, path, f"reply is larger than the {MAX_BODY}-"
                                          "byte limit", response.status_code)
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise ConnectionFailed(self._where(method, path, "timed out reading the "
                                                       "reply body"), kind="timeout")
        except requests.RequestException as exc:
            kind, text = _failure(exc)
            raise ConnectionFailed(self._where(method, path, f"reading the reply: {text}"),
                                   kind=kind) from None
        return b"".join(chunks)


_XML = "application/xml; charset=UTF-8"
_JSON = "application/json"


def _error_record(reply: _Reply) -> ResponseStatus | UserCheck | None:
    """What a refusal's body says: a ResponseStatus (XML or JSON), a userCheck, or nothing."""
    text = reply.body.lstrip()
    try:
        if text.startswith(b"{"):
            data = json.loads(text)
            return ResponseStatus.from_json(data) if isinstance(data, dict) else None
        if text.startswith(b"<"):
            root = xmlsafe.parse(text, max_bytes=MAX_BODY)
            if xmlsafe.local_name(root.tag).lower() == "usercheck":
                return UserCheck.from_xml(root, reply.status)
            return ResponseStatus.from_xml(root)
    except (ValueError, UnicodeDecodeError):
        return None
    return None


def _not_activated(record: ResponseStatus | UserCheck | None) -> bool:
    """A refusal that says the camera is inactive (ResponseStatus notActivated, or a userCheck
    with isActivated=false)."""
    if isinstance(record, ResponseStatus):
        return record.sub_status_code.lower() == "notactivated"
    return isinstance(record, UserCheck) and record.is_activated is False


def _failure(exc: BaseException) -> tuple[str, str]:
    """(kind, text) for a transport failure: refused, reset, timeout, unreachable, name, other."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "timeout", "timed out connecting"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "timeout", "timed out waiting for the reply"
    for cause in _causes(exc):
        if isinstance(cause, InterfaceMissing):
            return "interface", str(cause)
        if isinstance(cause, BindRefused):
            return "permission", str(cause)
        if isinstance(cause, ConnectionRefusedError):
            return "refused", "connection refused (nothing listens on that port)"
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return "reset", "connection reset by the camera"
        if isinstance(cause, http.client.RemoteDisconnected):
            return "reset", "connection closed by the camera without a reply"
        if isinstance(cause, socket.gaierror):
            return "name", f"host name could not be resolved ({cause})"
        if isinstance(cause, TimeoutError):
            return "timeout", "timed out"
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH,
                                                          errno.ENETDOWN, errno.EADDRNOTAVAIL):
            return "unreachable", f"no route to the camera ({cause.strerror})"
    return "other", f"HTTP request failed ({type(exc).__name__}: {exc})"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps (requests → urllib3 → socket), without cycles."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack:
        item = stack.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        nested = [item.__cause__, item.__context__, getattr(item, "reason", None),
                  *(a for a in item.args if isinstance(a, BaseException))]
        stack.extend(n for n in nested if isinstance(n, BaseException))
    return seen
