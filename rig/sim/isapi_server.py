"""The virtual camera's web server: ISAPI over HTTP with Digest auth, bound to the unit's address.

Serves the endpoints rig uses (docs/hikvision-protocols.md §2) with the bodies real firmware sends:
ResponseStatus, userCheck with lock fields, deviceInfo, ipAddress, activateStatus, the activation
exchanges. It answers only while the unit is running; otherwise it drops the connection, as a unit
that is off or still booting never completes an HTTP exchange.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from rig import xmlsafe
from rig.camera import activation, digest
from rig.sim import isapi_media
from rig.sim.camera import LoginResult, VirtualCamera
from rig.sim.serving import ServesInThread
from rig.vocabulary import ResetMode

log = logging.getLogger(__name__)

#: Requests larger than this are refused (real firmware caps bodies too).
MAX_BODY = 64 * 1024
#: Nonces stay valid this long (real seconds); older ones get a 401 stale=TRUE.
NONCE_TTL_S = 300.0
XML = "application/xml; charset=UTF-8"

_STATUS_STRINGS = {1: "OK", 2: "Device Busy", 3: "Device Error", 4: "Invalid Operation",
                   5: "Invalid XML Format", 6: "Invalid XML Content", 7: "Reboot Required"}


class IsapiServer(ServesInThread, ThreadingHTTPServer):
    """HTTP server for one virtual camera. ``serve_in_thread()`` starts it, ``close()`` ends it."""

    daemon_threads = True
    thread_prefix = "isapi"
    allow_reuse_address = True

    def __init__(self, camera: VirtualCamera, address: str | None = None,
                 port: int | None = None) -> None:
        """Listen on ``address`` (default: the camera's IPv4 address), ``port`` (default: the
        camera's HTTP port; 0 picks one and records it on the camera). An IPv6 address (``::``
        for every one, as a camera with IPv6 on does) gets an IPv6-only socket: serve IPv4
        from a second server."""
        self.camera = camera
        host = address or camera.address
        if ":" in host:
            self.address_family = socket.AF_INET6
        self._nonces: dict[str, float] = {}
        self._nonce_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__((host,
                          camera.http_port if port is None else port), _Handler)
        camera.http_port = self.server_address[1]   # port 0 → the port the kernel chose

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()

    @property
    def realm(self) -> str:
        return f"IP Camera({self.camera.serial[-9:]})"

    def new_challenge(self, stale: bool = False) -> digest.Challenge:
        nonce = os.urandom(16).hex()
        now = time.monotonic()
        with self._nonce_lock:
            self._nonces = {n: t for n, t in self._nonces.items() if now - t < NONCE_TTL_S}
            self._nonces[nonce] = now
        return digest.Challenge(realm=self.realm, nonce=nonce, qop="auth", stale=stale)

    def challenge_for(self, nonce: str) -> digest.Challenge | None:
        """The challenge a nonce was issued with, or None when it is unknown or expired."""
        with self._nonce_lock:
            issued = self._nonces.get(nonce)
        if issued is None or time.monotonic() - issued >= NONCE_TTL_S:
            return None
        return digest.Challenge(realm=self.realm, nonce=nonce, qop="auth")

    def serve_in_thread(self) -> None:  # type: ignore[override]
        super().serve_in_thread(self.camera.address)


class _Reply(Exception):
    """Raised inside a handler to send a complete response."""

    def __init__(self, status: int, body: str | bytes, content_type: str = XML,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.content_type = status, body, content_type
        self.headers = headers or {}


class _Handler(BaseHTTPRequestHandler):
    server: IsapiServer
    server_version = "App-webs/"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s %s", self.client_address[0], format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing -------------------------------------------------------------------------------

    @property
    def camera(self) -> VirtualCamera:
        return self.server.camera

    @property
    def client(self) -> str:
        return self.client_address[0]

    def _dispatch(self, method: str) -> None:
        if not self.camera.running:
            self.close_connection = True      # off or booting: the exchange never completes
            return
        url = urlsplit(self.path)
        try:
            body = self._read_body()
            handler = _ROUTES.get((method, url.path))
            if handler is None:
                known = any(path == url.path for _, path in _ROUTES)
                raise self._status(405 if known else 404, 4,
                                   "methodNotAllowed" if known else "notSupport")
            handler(self, url.path, parse_qs(url.query), body)
        except _Reply as reply:
            self._send(reply)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise self._status(413, 6, "badParameters")
        return self.rfile.read(length) if length else b""

    def _send(self, reply: _Reply) -> None:
        data = reply.body if isinstance(reply.body, bytes) else reply.body.encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def reply(self, status: int, body: str | bytes, content_type: str = XML) -> Exception:
        """A complete response for a route to raise (routes in other modules: isapi_media)."""
        return _Reply(status, body, content_type)

    def _ns(self) -> str:
        return self.camera.behaviour.isapi_namespace

    def _status(self, http: int, code: int, sub: str) -> _Reply:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ResponseStatus version="2.0" '
                f'xmlns="{self._ns()}">\n<requestURL>{urlsplit(self.path).path}</requestURL>\n'
                f"<statusCode>{code}</statusCode>\n<statusString>{_STATUS_STRINGS[code]}"
                f"</statusString>\n<subStatusCode>{sub}</subStatusCode>\n</ResponseStatus>\n")
        return _Reply(http, body)

    def _xml(self, root: str, fields: list[tuple[str, str]]) -> _Reply:
        inner = "".join(f"<{k}>{v}</{k}>\n" for k, v in fields)
        return _Reply(200, f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} version="2.0" '
                           f'xmlns="{self._ns()}">\n{inner}</{root}>\n')

    def _parse_xml(self, body: bytes) -> dict[str, str]:
        try:
            return xmlsafe.children_text(xmlsafe.parse(body, max_bytes=MAX_BODY))
        except xmlsafe.XmlError:
            raise self._status(400, 5, "badXmlFormat") from None

    def _parse_json(self, body: bytes) -> dict:
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            data = None
        if not isinstance(data, dict):
            raise _Reply(400, json.dumps({"statusCode": 6, "statusString": "Invalid Content",
                                          "subStatusCode": "badJsonContent"}), "application/json")
        return data

    def _authenticate(self, method: str) -> str:
        """Digest-check the request; returns the user name or raises the 401/403 reply.

        Requests without credentials only fetch a nonce and never count toward the lock; a stale
        nonce is answered with stale=TRUE and does not count either
        (docs/hikvision-protocols.md §2.1).
        """
        cam = self.camera
        if not cam.activated:
            raise self._status(cam.behaviour.inactive_http_status, 4, "notActivated")
        header = self.headers.get("Authorization")
        if not header:
            raise self._unauthorized(self._status(401, 4, "notAuthenticated").body)
        try:
            creds = digest.parse_authorization(header)
        except digest.DigestError:
            raise self._status(400, 4, "badAuthorization") from None
        challenge = self.server.challenge_for(creds.nonce)
        if challenge is None or creds.realm != challenge.realm:
            raise self._unauthorized(self._status(401, 4, "invalidOperation").body, stale=True)
        password = cam.password_for(creds.username)
        good = password is not None and creds.matches(challenge, method, password)
        result = cam.check_login(self.client, creds.username, password if good else None)
        if not result.ok:
            raise self._unauthorized(self._user_check_body(result, 401))
        return creds.username

    def _unauthorized(self, body: str, stale: bool = False) -> _Reply:
        challenge = self.server.new_challenge(stale=stale)
        return _Reply(401, body, headers={"WWW-Authenticate": challenge.header()})

    def _user_check_body(self, result: LoginResult, status: int) -> str:
        cam = self.camera
        fields = [("statusValue", str(status)),
                  ("statusString", "OK" if status == 200 else "Unauthorized"),
                  ("isDefaultPassword", _b(self._is_default_password())),
                  ("isRiskPassword", "false"), ("isActivated", _b(cam.activated)),
                  ("lockStatus", "lock" if result.locked else "unlock"),
                  ("unlockTime", str(result.unlock_time)),
                  ("retryLoginTime", str(result.retry_login_time))]
        inner = "".join(f"<{k}>{v}</{k}>\n" for k, v in fields)
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<userCheck version="2.0" '
                f'xmlns="{self._ns()}">\n{inner}</userCheck>\n')

    def _is_default_password(self) -> bool:
        p = self.camera.profile
        return p.default_password is not None and self.camera.password_for(
            p.default_user) == p.default_password

    # --- endpoints ------------------------------------------------------------------------------

    def activate_status(self, path: str, query: dict, body: bytes) -> None:
        cam = self.camera
        if not cam.profile.activate_status:
            raise self._status(404, 4, "notSupport")
        fields = [("Activated", _b(cam.activated))]
        if "v3" in cam.profile.activation:
            fields.append(("supportVersion", "3"))
        raise self._xml("ActivateStatus", fields)

    def challenge(self, path: str, query: dict, body: bytes) -> None:
        self._activation_allowed("challenge")
        key = self._parse_xml(body).get("key", "")
        try:
            encrypted = self.camera.start_challenge(self.client, key, "challenge")
        except activation.ActivationError:
            raise self._status(400, 6, "badParameters") from None
        raise self._xml("PublicKey", [("key", encrypted)])

    def activate(self, path: str, query: dict, body: bytes) -> None:
        self._activation_allowed("challenge")
        password = self._parse_xml(body).get("password", "")
        raise self._status(*self._do_activate(password, "challenge", None))

    def challenge_v3(self, path: str, query: dict, body: bytes) -> None:
        self._activation_allowed("v3")
        key = str(self._parse_json(body).get("publicKey", ""))
        try:
            encrypted = self.camera.start_challenge(self.client, key, "v3")
        except activation.ActivationError:
            raise _Reply(400, json.dumps({"statusCode": 6, "statusString": "Invalid JSON Content",
                                          "subStatusCode": "badJsonContent"}),
                         "application/json") from None
        raise _Reply(200, json.dumps({"challenge": encrypted}), "application/json")

    def activate_v3(self, path: str, query: dict, body: bytes) -> None:
        self._activation_allowed("v3")
        data = self._parse_json(body)
        http, code, sub = self._do_activate(str(data.get("password", "")), "v3",
                                            str(data.get("iv", "")))
        raise _Reply(http, json.dumps({"statusCode": code, "statusString": _STATUS_STRINGS[code],
                                       "subStatusCode": sub}), "application/json")

    def _activation_allowed(self, variant: str) -> None:
        cam = self.camera
        if variant not in cam.profile.activation:
            raise self._status(404, 4, "notSupport")
        if cam.activated:
            raise self._status(403, 4, "hasActivated")

    def _do_activate(self, password: str, variant: str, iv: str | None) -> tuple[int, int, str]:
        try:
            sub = self.camera.activate(self.client, password, variant, iv)
        except PermissionError:
            return 403, 4, "hasActivated"
        except activation.ActivationError:
            return 400, 6, "badParameters"
        except ValueError:
            return 400, 6, "badPassword"
        return 200, 1, sub

    def user_check(self, path: str, query: dict, body: bytes) -> None:
        cam = self.camera
        if not cam.activated:
            raise self._status(cam.behaviour.inactive_http_status, 4, "notActivated")
        self._authenticate("GET")
        ok = LoginResult(ok=True, locked=False, unlock_time=0,
                         retry_login_time=cam.settings.login_lock_attempts)
        raise _Reply(200, self._user_check_body(ok, 200))

    def device_info(self, path: str, query: dict, body: bytes) -> None:
        self._authenticate(self.command)
        cam, s = self.camera, self.camera.settings
        if self.command == "PUT":
            name = self._parse_xml(body).get("deviceName")
            if not name:
                raise self._status(400, 6, "badXmlContent")
            cam.update_settings(device_name=name)
            raise self._status(200, 1, "ok")
        version, _, build = cam.firmware.partition("build")
        raise self._xml("DeviceInfo", [
            ("deviceName", s.device_name), ("deviceID", f"{cam.mac.replace(':', '')}-sim"),
            ("deviceDescription", "IPCamera"), ("deviceLocation", "hangzhou"),
            ("systemContact", "Hikvision.China"), ("model", cam.behaviour.sample_model),
            ("serialNumber", cam.serial), ("macAddress", cam.mac),
            ("firmwareVersion", version.strip()),
            ("firmwareReleasedDate", f"build {build.strip()}"),
            ("encoderVersion", cam.behaviour.sample_dsp.split(" ")[0]),
            ("deviceType", "IPCamera"),
            ("firmwareVersionInfo", "B-R-G5-0" if cam.profile.name == "g5" else "B-R-H5-0"),
            ("manufacturer", "hikvision")])

    def ip_address(self, path: str, query: dict, body: bytes) -> None:
        self._authenticate(self.command)
        cam = self.camera
        if self.command == "PUT":
            fields = self._parse_xml(body)
            changes: dict[str, object] = {}
            if "addressingType" in fields:
                changes["dhcp"] = fields["addressingType"] == "dynamic"
            for xml_name, name in (("ipAddress", "ipv4"), ("subnetMask", "mask")):
                if fields.get(xml_name):
                    changes[name] = fields[xml_name]
            gateway = _default_gateway(body)
            if gateway:
                changes["gateway"] = gateway
            if cam.faults.refuse_network:
                raise self._status(400, 6, "badParameters")
            cam.update_settings(**changes)
            raise self._status(200, 1, "ok")
        s = cam.settings
        inner = (f"<ipVersion>dual</ipVersion>\n"
                 f"<addressingType>{'dynamic' if s.dhcp else 'static'}</addressingType>\n"
                 f"<ipAddress>{s.ipv4}</ipAddress>\n<subnetMask>{s.mask}</subnetMask>\n"
                 f"<DefaultGateway><ipAddress>{s.gateway}</ipAddress></DefaultGateway>\n")
        raise _Reply(200, f'<?xml version="1.0" encoding="UTF-8"?>\n<IPAddress version="2.0" '
                          f'xmlns="{self._ns()}">\n{inner}</IPAddress>\n')

    def factory_reset(self, path: str, query: dict, body: bytes) -> None:
        self._authenticate("PUT")
        mode = (query.get("mode") or [ResetMode.BASIC])[0]
        if mode not in tuple(ResetMode):
            raise self._status(400, 6, "badParameters")
        if self.camera.factory_reset(mode):
            raise self._status(200, 1, "ok")
        raise self._status(200, 7, "rebootRequired")

    def reboot(self, path: str, query: dict, body: bytes) -> None:
        self._authenticate("PUT")
        self.camera.reboot()
        raise self._status(200, 1, "ok")

    def illegal_login_lock(self, path: str, query: dict, body: bytes) -> None:
        self._authenticate(self.command)
        cam = self.camera
        if self.command == "PUT":
            fields = self._parse_xml(body)
            changes: dict[str, object] = {}
            if "enabled" in fields:
                changes["login_lock_enabled"] = xmlsafe.parse_bool(fields["enabled"]) is True
            if fields.get("maxIllegalLoginTimes", "").isdigit():
                changes["login_lock_attempts"] = max(int(fields["maxIllegalLoginTimes"]), 1)
            cam.update_settings(**changes)
            raise self._status(200, 1, "ok")
        s = cam.settings
        raise self._xml("IllegalLoginLock", [
            ("enabled", _b(s.login_lock_enabled)),
            ("maxIllegalLoginTimes", str(s.login_lock_attempts)),
            ("maxIllegalLoginLockTime", str(int(s.login_lock_seconds)))])


# Account routes, beside the handler class (it holds the protocol; these, the accounts).

def _users(self: _Handler, path: str, query: dict, body: bytes) -> None:
    """GET /ISAPI/Security/users: the accounts (after a reset: only admin)."""
    self._authenticate("GET")
    inner = "".join(f"<User><id>{i}</id><userName>{name}</userName></User>\n"
                    for i, name in enumerate(sorted(self.camera.settings.users), start=1))
    raise _Reply(200, f'<?xml version="1.0" encoding="UTF-8"?>\n<UserList version="2.0" '
                      f'xmlns="{self._ns()}">\n{inner}</UserList>\n')

def _modify_user(self: _Handler, path: str, query: dict, body: bytes) -> None:
    """PUT /ISAPI/Security/users/1: a new password for the admin (legacy firmware's
    hand-over: it has no activation, so the factory admin/12345 is changed instead)."""
    self._authenticate("PUT")
    fields = self._parse_xml(body)
    user, password = fields.get("userName") or "", fields.get("password") or ""
    if self.camera.password_for(user) is None:
        raise self._status(400, 6, "badParameters")
    if activation.password_problem(password, user):
        raise self._status(400, 6, "badParameters")
    self.camera.update_settings(users={**self.camera.settings.users, user: password})
    raise self._status(200, 1, "ok")


def _default_gateway(body: bytes) -> str | None:
    """<DefaultGateway><ipAddress>…</ipAddress></DefaultGateway> inside an IPAddress body."""
    for node in xmlsafe.parse(body, max_bytes=MAX_BODY).iter():
        if xmlsafe.local_name(node.tag) == "DefaultGateway":
            return xmlsafe.find_text(node, "ipAddress") or None
    return None


def _b(value: bool) -> str:
    return "true" if value else "false"


_ROUTES = {
    ("GET", "/SDK/activateStatus"): _Handler.activate_status,
    ("POST", "/ISAPI/Security/challenge"): _Handler.challenge,
    ("PUT", "/ISAPI/System/activate"): _Handler.activate,
    ("POST", "/ISAPI/System/activate/GetChallengeV3"): _Handler.challenge_v3,
    ("POST", "/ISAPI/System/activate/StartActivateV3"): _Handler.activate_v3,
    ("GET", "/ISAPI/Security/userCheck"): _Handler.user_check,
    ("GET", "/ISAPI/System/deviceInfo"): _Handler.device_info,
    ("PUT", "/ISAPI/System/deviceInfo"): _Handler.device_info,
    ("GET", "/ISAPI/System/Network/interfaces/1/ipAddress"): _Handler.ip_address,
    ("PUT", "/ISAPI/System/Network/interfaces/1/ipAddress"): _Handler.ip_address,
    ("PUT", "/ISAPI/System/factoryReset"): _Handler.factory_reset,
    ("PUT", "/ISAPI/System/reboot"): _Handler.reboot,
    ("GET", "/ISAPI/Security/illegalLoginLock"): _Handler.illegal_login_lock,
    ("PUT", "/ISAPI/Security/illegalLoginLock"): _Handler.illegal_login_lock,
    ("GET", "/ISAPI/Security/users"): _users,
    ("PUT", "/ISAPI/Security/users/1"): _modify_user,
}
# The functional checks' endpoints (stream, snapshot, IR-cut, storage, cloud, ports).
_ROUTES.update(isapi_media.ROUTES)
