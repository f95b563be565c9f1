"""ISAPI client: the endpoints of a Hikvision camera's HTTP side (docs/hikvision-protocols.md §2).

The requests themselves, and the rules that spare the camera's login lockout (one signed request
per call, never a retry behind the caller's back), are rig.camera.isapi_http; the reply records
are rig.camera.isapi_types and the errors rig.camera.isapi_errors.

Where the camera is, is a ``rig.camera.transport.Route``: every unit comes back on 192.168.1.64,
so a bench names one unit either by its IPv6 link-local address with a zone id
(``IsapiClient("fe80::4647:ccff:fe00:a%eth0")``, see rig.camera.linklocal) or by the VLAN
interface that leads to its slot (``IsapiClient("192.168.1.64", interface="eth0.101")``, pinned
with SO_BINDTODEVICE). A caller that already holds a Route (the identity layer) uses
``IsapiClient.at(route, timeout=...)``. rig opens that socket itself; the Host header never
carries the zone id (RFC 6874) and the Digest ``uri`` is the request path. ``target`` names the
route in every message and in the evidence: ``[fe80::4647:ccff:fe00:a%eth0]:80``,
``192.168.1.64:80 via eth0.101``.

Every XML body goes through rig.xmlsafe and is read without regard to its namespace
(hikvision.com, isapi.org or none). No requests or XML exception leaves this module: callers get
IsapiError subclasses whose message names the target (address, port, zone or interface), method
and path.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from rig import xmlsafe
from rig.camera import activation
from rig.camera.isapi_errors import (
    AlreadyActivated,
    AuthenticationFailed,
    IsapiError,
    MalformedReply,
    NotActivated,
)
from rig.camera.isapi_http import MAX_BODY, IsapiHttp, Reply, error_record, not_activated
from rig.camera.isapi_types import (
    ActivateStatus,
    Credentials,
    DeviceInfo,
    Ipv4Settings,
    ResponseStatus,
    UserCheck,
    parse_json,
    user_password_xml,
)
from rig.camera.transport import Route
from rig.vocabulary import ResetMode

_Record = TypeVar("_Record")
ACTIVATION_VARIANTS: tuple[str, ...] = ("challenge", "v3")
_XML = "application/xml; charset=UTF-8"
_JSON = "application/json"


def _check_options(port: int, timeout: float, scheme: str) -> None:
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, not {scheme!r}")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    if timeout <= 0:
        raise ValueError("timeout must be positive")


class IsapiClient:
    """One camera's ISAPI over HTTP(S).

    ``timeout`` bounds each call as a whole (connects, the unsigned probe and the one signed
    request, headers and bodies): a peer that drips its reply ends in ConnectionFailed("timed
    out: no complete reply within N s", kind="timeout") after ``timeout`` seconds, not later.
    ``verify`` is requests' TLS check for ``scheme="https"``: cameras ship self-signed
    certificates, so pass a CA bundle path, or False on a closed bench. A caller's ``session``
    is used only to send: its auth, cookies, headers and environment settings are not applied,
    but its adapters are, so they must not retry.
    """

    def __init__(self, host: str, port: int = 80, *, timeout: float = 5.0, scheme: str = "http",
                 session: requests.Session | None = None, verify: bool | str = True,
                 interface: str | None = None) -> None:
        _check_options(port, timeout, scheme)
        self._setup(Route.parse(host, port, interface), timeout, scheme, session, verify)

    @classmethod
    def at(cls, route: Route, *, timeout: float, scheme: str = "http",
           session: requests.Session | None = None, verify: bool | str = True) -> IsapiClient:
        """A client for a route already parsed (``Route.parse`` or the identity layer's), used
        as it is: no round trip through a host string."""
        _check_options(route.port, timeout, scheme)
        client = cls.__new__(cls)
        client._setup(route, timeout, scheme, session, verify)
        return client

    def _setup(self, route: Route, timeout: float, scheme: str,
               session: requests.Session | None, verify: bool | str) -> None:
        if session is not None and (route.zone or route.interface):
            raise ValueError("a caller's session cannot reach a zone id or an interface; "
                             "leave session out")
        self.route = route
        self.host = route.host
        self.zone = route.zone
        self.interface = route.interface
        self.port = route.port
        self.timeout = float(timeout)
        self.scheme = scheme
        self._wire = IsapiHttp(route, scheme=scheme, timeout=self.timeout, session=session,
                               verify=verify)

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
        return self._wire.auth_requests

    def close(self) -> None:
        self._wire.close()

    def __enter__(self) -> IsapiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IsapiClient({self.scheme}://{self.target})"

    def send(self, method: str, path: str, creds: Credentials, **options: Any) -> Reply:
        """One signed call to an endpoint not wrapped here (rig.checks keeps its own), under the
        same login rules; ``options``: IsapiHttp.send's body, content_type, max_body."""
        return self._wire.send(method, path, creds=creds, **options)

    # -- endpoints --

    def activate_status(self) -> ActivateStatus:
        """Whether the camera is activated; no login needed (docs/hikvision-protocols.md §2.3).
        Legacy firmware answers 404."""
        path = "/SDK/activateStatus"
        reply = self._wire.send("GET", path)
        if reply.status == 404:
            return ActivateStatus(activated=None, support_version=None, supported=False)
        self._check_status("GET", path, reply)
        return self._read("GET", path, reply, ActivateStatus.from_xml)

    def user_check(self, creds: Credentials) -> UserCheck:
        """Check a login: costs ONE attempt. A wrong password is ``ok=False``, not an exception;
        the lock fields say how many attempts remain (or how long the lock lasts)."""
        path = "/ISAPI/Security/userCheck"
        try:
            reply = self._wire.send("GET", path, creds=creds)
        except AuthenticationFailed as exc:
            return exc.user_check or UserCheck(ok=False, http_status=exc.http_status or 401)
        self._check_status("GET", path, reply)
        return self._read("GET", path, reply, lambda root: UserCheck.from_xml(root, reply.status))

    def device_info(self, creds: Credentials) -> DeviceInfo:
        """Model, serial, MAC and firmware: ties an HTTP answer to the unit SADP saw."""
        path = "/ISAPI/System/deviceInfo"
        return self._get_record(path, creds, DeviceInfo.from_xml)

    def network(self, creds: Credentials) -> Ipv4Settings:
        """IPv4 settings of interface 1 (factory default: static 192.168.1.64/24,
        docs/hikvision-protocols.md §3.1)."""
        path = "/ISAPI/System/Network/interfaces/1/ipAddress"
        return self._get_record(path, creds, Ipv4Settings.from_xml)

    def set_network(self, creds: Credentials, settings: Ipv4Settings) -> ResponseStatus:
        """PUT interface 1's IPv4 settings: static (address, mask, gateway) or DHCP on. ONE
        signed request, so one login at most; no read-modify-write GET first (that would be a
        second). The unit moves after answering: confirm at the new address, not here. The
        fallback of SADP ``update`` (rig.netsetup), for firmware without it."""
        return self._put_status("/ISAPI/System/Network/interfaces/1/ipAddress", creds,
                                settings.to_xml())

    def factory_reset(self, creds: Credentials, mode: ResetMode | str) -> ResponseStatus:
        """Restore defaults: ``basic`` keeps network and users, ``full`` returns to inactive
        (docs/hikvision-protocols.md §2.6). Check ``reboot_required``: some firmware waits for a
        reboot (statusCode 7)."""
        try:
            mode = ResetMode(mode)
        except ValueError:
            raise ValueError(f"factory reset mode must be one of {', '.join(ResetMode)}, "
                             f"not {mode!r}") from None
        return self._put_status(f"/ISAPI/System/factoryReset?mode={mode}", creds)

    def set_password(self, creds: Credentials, password: str) -> ResponseStatus:
        """Give the admin (user 1) a new password, logged in as ``creds``: legacy firmware has
        no activation, so its hand-over changes the factory password instead. One login is
        spent. Raises ValueError for a password the camera would refuse."""
        problem = activation.password_problem(password, creds.user)
        if problem:
            raise ValueError(f"password refused before sending: it {problem}")
        return self._put_status("/ISAPI/Security/users/1", creds,
                                user_password_xml(creds.user, password))

    def reboot(self, creds: Credentials) -> ResponseStatus:
        """Reboot the camera (it stops answering for the profile's boot time)."""
        return self._put_status("/ISAPI/System/reboot", creds)

    def activate(self, password: str, *, user: str = "admin", variant: str | None = None,
                 keys: activation.ClientKeys | None = None) -> ResponseStatus:
        """Give an inactive camera its admin password (docs/hikvision-protocols.md §2.4). No login
        is spent.

        ``user`` is only used for the password rule "must not contain the user name". ``keys``
        reuses the client's key pair across units (see ClientKeys); without it a new one is
        made. With ``variant=None`` the exchange is chosen from ``/SDK/activateStatus``:
        supportVersion 3 → "v3" (G5 firmware), else "challenge". Raises ValueError for a password
        the camera would refuse, AlreadyActivated when the camera already has a password.
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
        key = keys.get(variant) if keys else activation.new_client_key(variant)
        if variant == "v3":
            return self._activate_v3(password, key)
        return self._activate_challenge(password, key)

    # -- activation exchanges --

    def _activate_challenge(self, password: str, key: rsa.RSAPrivateKey) -> ResponseStatus:
        path = "/ISAPI/Security/challenge"
        body = f"<PublicKey><key>{activation.public_key_param(key)}</key></PublicKey>"
        reply = self._wire.send("POST", path, body=body.encode("ascii"), content_type=_XML)
        self._check_activation_reply("POST", path, reply)
        root = self._parse_xml("POST", path, reply)
        encrypted = xmlsafe.find_text(root, "key")
        if not encrypted:
            raise self._malformed("POST", path, "challenge reply has no <key>", reply.status)
        random_hex = self._decrypt("POST", path, key, encrypted, reply.status)
        field, _ = activation.encrypt_password(random_hex, password, "challenge")
        path = "/ISAPI/System/activate"
        body = f"<ActivateInfo><password>{field}</password></ActivateInfo>"
        reply = self._wire.send("PUT", path, body=body.encode("ascii"), content_type=_XML)
        self._check_activation_reply("PUT", path, reply)
        return self._status_of("PUT", path, reply)

    def _activate_v3(self, password: str, key: rsa.RSAPrivateKey) -> ResponseStatus:
        path = "/ISAPI/System/activate/GetChallengeV3?format=json"
        body = json.dumps({"publicKey": activation.public_key_param(key)})
        reply = self._wire.send("POST", path, body=body.encode("ascii"), content_type=_JSON)
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
        reply = self._wire.send("POST", path, body=body.encode("ascii"), content_type=_JSON)
        self._check_activation_reply("POST", path, reply)
        return self._status_of("POST", path, reply)

    def _decrypt(self, method: str, path: str, key: rsa.RSAPrivateKey, encrypted: str,
                 status: int) -> str:
        try:
            return activation.decrypt_challenge(key, encrypted)
        except activation.ActivationError as exc:
            raise self._malformed(method, path, str(exc), status) from None

    def _check_activation_reply(self, method: str, path: str, reply: Reply) -> None:
        """hasActivated → AlreadyActivated (at any HTTP status); other errors as usual."""
        status = error_record(reply)
        if isinstance(status, ResponseStatus) and status.status_code == 4 \
                and status.sub_status_code == "hasActivated":
            raise AlreadyActivated(self._where(method, path, "camera is already activated "
                                                             "(hasActivated)"),
                                   http_status=reply.status, response_status=status)
        self._check_status(method, path, reply)

    # -- helpers per reply kind --

    def _get_record(self, path: str, creds: Credentials,
                    build: Callable[[ET.Element], _Record]) -> _Record:
        reply = self._wire.send("GET", path, creds=creds)
        self._check_status("GET", path, reply)
        return self._read("GET", path, reply, build)

    def _put_status(self, path: str, creds: Credentials, body: str = "") -> ResponseStatus:
        reply = (self._wire.send("PUT", path, creds=creds, body=body.encode("utf-8"),
                                 content_type=_XML) if body
                 else self._wire.send("PUT", path, creds=creds))
        self._check_status("PUT", path, reply)
        return self._status_of("PUT", path, reply)

    def _status_of(self, method: str, path: str, reply: Reply) -> ResponseStatus:
        """The ResponseStatus of a successful reply, XML or JSON."""
        if reply.body.lstrip().startswith(b"{"):
            data = self._json(method, path, reply)
            try:
                return ResponseStatus.from_json(data)
            except ValueError as exc:
                raise self._malformed(method, path, str(exc), reply.status) from None
        return self._read(method, path, reply, ResponseStatus.from_xml)

    def _read(self, method: str, path: str, reply: Reply,
              build: Callable[[ET.Element], _Record]) -> _Record:
        """Parse an XML body and build a record from it; any refusal is a MalformedReply."""
        root = self._parse_xml(method, path, reply)
        try:
            return build(root)
        except ValueError as exc:
            raise self._malformed(method, path, str(exc), reply.status) from None

    def _parse_xml(self, method: str, path: str, reply: Reply) -> ET.Element:
        try:
            return xmlsafe.parse(reply.body, max_bytes=MAX_BODY, what="reply")
        except xmlsafe.XmlError as exc:
            raise self._malformed(method, path, str(exc), reply.status) from None

    def _json(self, method: str, path: str, reply: Reply) -> dict[str, Any]:
        try:
            data = parse_json(reply.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._malformed(method, path, f"reply is not JSON ({exc})", reply.status) \
                from None
        if not isinstance(data, dict):
            raise self._malformed(method, path, "JSON reply is not an object", reply.status)
        return data

    def _check_status(self, method: str, path: str, reply: Reply) -> None:
        """Raise for anything but 2xx, with the ResponseStatus when the body has one."""
        if 200 <= reply.status < 300:
            return
        record = error_record(reply)
        status = record if isinstance(record, ResponseStatus) else None
        if reply.status in (401, 403) and not_activated(record):
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
        return self._wire.where(method, path, detail)

    def _malformed(self, method: str, path: str, detail: str, status: int | None) -> MalformedReply:
        return self._wire.malformed(method, path, detail, status)
