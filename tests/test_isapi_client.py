"""rig's ISAPI client: parsing of real replies, its wire behaviour, and the simulated camera.

Three layers:
- parsing: the record types against the real device bodies quoted in the reference (§2.2, §2.5,
  §2.7), in every namespace firmware uses, and against broken bodies;
- wire behaviour against tiny in-test servers that count requests: one authenticated request per
  login, no library retries, caps and timeouts, every failure as an IsapiError;
- the whole client against the simulated camera fleet (activation, lockout, reset, reboot).
Everything stays on loopback (127.0.1.100-149).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from rig import xmlsafe
from rig.camera import digest
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import (
    AlreadyActivated,
    AuthenticationFailed,
    ConnectionFailed,
    IsapiError,
    MalformedReply,
    NotActivated,
)
from rig.camera.isapi_types import Credentials, DeviceInfo, Ipv4Settings, ResponseStatus, UserCheck
from rig.camera.transport import Route
from rig.sim.fleet import CameraFleet
from rig.vocabulary import ResetMode

HIK = "http://www.hikvision.com/ver20/XMLSchema"
ISAPI = "http://www.isapi.org/ver20/XMLSchema"
NAMESPACES = [HIK, ISAPI, None]
SCALE = 1000.0      # profile seconds → milliseconds: boot 60 s → 60 ms, lock 1800 s → 1.8 s


def ns_attr(ns: str | None) -> str:
    return f' xmlns="{ns}"' if ns else ""


# Real device bodies, verbatim from the reference (namespace made a parameter).

def bad_xml_content(ns: str | None) -> str:
    """maciej-or/hikvision_next badXmlContent.xml (§2.2)."""
    return (f'<?xml version="1.0" encoding="UTF-8" ?>\n<ResponseStatus version="1.0"\n'
            f'  {ns_attr(ns)}>\n  <requestURL>/ISAPI/Streaming/channels/101/picture</requestURL>\n'
            "  <statusCode>6</statusCode>\n  <statusString>Invalid XML Content</statusString>\n"
            "  <subStatusCode>badXmlContent</subStatusCode>\n</ResponseStatus>\n")


def user_check_ok(ns: str | None) -> str:
    """Observed OK reply (§2.5)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<userCheck version="2.0"{ns_attr(ns)}>\n'
            "  <statusValue>200</statusValue>\n  <statusString>OK</statusString>\n"
            "  <isDefaultPassword>false</isDefaultPassword>\n"
            "  <isRiskPassword>false</isRiskPassword>\n  <isActivated>true</isActivated>\n"
            "</userCheck>\n")


def user_check_failed(ns: str | None, lock: str = "unlock", unlock: int = 0,
                      retry: int = 4) -> str:
    """Failure reply with attempts left / locked (§2.5)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<userCheck version="2.0"{ns_attr(ns)}>'
            "<statusValue>401</statusValue><statusString>Unauthorized</statusString>"
            f"<isActivated>true</isActivated><lockStatus>{lock}</lockStatus>"
            f"<unlockTime>{unlock}</unlockTime><retryLoginTime>{retry}</retryLoginTime>"
            "</userCheck>")


def device_info_ipc(ns: str | None) -> str:
    """maciej-or/hikvision_next System.deviceInfo/ipc.xml (§2.7)."""
    return (f'<DeviceInfo version="2.0"{ns_attr(ns)}>\n'
            "    <deviceName>yard</deviceName>\n"
            "    <deviceID>6aff4000-1f90-00b0-0000-000c00000000</deviceID>\n"
            "    <deviceDescription>IPCamera</deviceDescription>\n"
            "    <deviceLocation>hangzhou</deviceLocation>\n"
            "    <systemContact>Hikvision.China</systemContact>\n"
            "    <model>DS-2CD2386G2-IU</model>\n"
            "    <serialNumber>DS-2CD2386G2-IU00000000AAWRJ00000000</serialNumber>\n"
            "    <macAddress>14:92:3c:4f:f8:42</macAddress>\n"
            "    <firmwareVersion>V5.7.14</firmwareVersion>\n"
            "    <firmwareReleasedDate>build 231028</firmwareReleasedDate>\n"
            "    <encoderVersion>V7.3</encoderVersion>\n"
            "    <deviceType>IPCamera</deviceType>\n"
            "    <firmwareVersionInfo>B-R-G5-0</firmwareVersionInfo>\n"
            "    <manufacturer>hikvision</manufacturer>\n"
            "</DeviceInfo>\n")


def ip_address(ns: str | None, addressing: str = "static") -> str:
    """The qb60/hikvision-configure ipAddress template (§2.7)."""
    return (f'<IPAddress version="2.0"{ns_attr(ns)}><ipVersion>v4</ipVersion>'
            f"<addressingType>{addressing}</addressingType><ipAddress>192.168.1.64</ipAddress>"
            "<subnetMask>255.255.255.0</subnetMask>"
            "<DefaultGateway><ipAddress>192.168.1.1</ipAddress></DefaultGateway>"
            "<PrimaryDNS><ipAddress>8.8.8.8</ipAddress></PrimaryDNS></IPAddress>")


def xml(text: str):
    return xmlsafe.parse(text)


# --- parsing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("ns", NAMESPACES)
def test_response_status_from_the_real_fixture_in_every_namespace(ns):
    status = ResponseStatus.from_xml(xml(bad_xml_content(ns)))
    assert status == ResponseStatus(6, "Invalid XML Content", "badXmlContent",
                                    "/ISAPI/Streaming/channels/101/picture")
    assert not status.ok and not status.reboot_required


@pytest.mark.parametrize(("code", "sub", "ok", "reboot"), [
    (1, "ok", True, False), (1, "riskPassword", True, False), (7, "rebootRequired", True, True),
    (4, "hasActivated", False, False), (2, "deviceBusy", False, False)])
def test_response_status_ok_and_reboot_required(code, sub, ok, reboot):
    status = ResponseStatus.from_json({"statusCode": code, "statusString": "x",
                                       "subStatusCode": sub})
    assert (status.ok, status.reboot_required) == (ok, reboot)


def test_response_status_from_json_accepts_a_numeric_string():
    assert ResponseStatus.from_json({"statusCode": "7"}).reboot_required


@pytest.mark.parametrize("body", [
    "<ResponseStatus><statusString>OK</statusString></ResponseStatus>",
    "<ResponseStatus><statusCode>one</statusCode></ResponseStatus>",
    "<userCheck><statusValue>200</statusValue></userCheck>"])
def test_response_status_refuses_bodies_without_a_numeric_status(body):
    with pytest.raises(ValueError):
        ResponseStatus.from_xml(xml(body))


@pytest.mark.parametrize("ns", NAMESPACES)
def test_user_check_ok_reply(ns):
    check = UserCheck.from_xml(xml(user_check_ok(ns)), 200)
    assert check.ok and check.status_value == 200 and check.is_activated is True
    assert check.is_default_password is False and check.is_risk_password is False
    assert not check.locked and check.retry_login_time is None


@pytest.mark.parametrize("ns", NAMESPACES)
def test_user_check_failure_with_attempts_left(ns):
    check = UserCheck.from_xml(xml(user_check_failed(ns, retry=4)), 401)
    assert not check.ok and check.http_status == 401 and check.status_value == 401
    assert (check.lock_status, check.unlock_time, check.retry_login_time) == ("unlock", 0, 4)
    assert not check.locked


@pytest.mark.parametrize("spelling", ["lock", "locked"])
def test_user_check_accepts_both_lock_spellings(spelling):
    check = UserCheck.from_xml(xml(user_check_failed(HIK, spelling, 1800, 0)), 401)
    assert check.locked and check.unlock_time == 1800 and check.retry_login_time == 0


def test_user_check_needs_http_200_as_well_as_status_200():
    assert not UserCheck.from_xml(xml(user_check_ok(ISAPI)), 401).ok


@pytest.mark.parametrize("ns", NAMESPACES)
def test_device_info_from_the_real_fixture(ns):
    info = DeviceInfo.from_xml(xml(device_info_ipc(ns)))
    assert info.model == "DS-2CD2386G2-IU"
    assert info.serial_number == "DS-2CD2386G2-IU00000000AAWRJ00000000"
    assert info.mac_address == "14:92:3c:4f:f8:42"
    assert (info.firmware_version, info.firmware_released_date) == ("V5.7.14", "build 231028")
    assert (info.firmware_version_info, info.device_type) == ("B-R-G5-0", "IPCamera")
    assert info.device_name == "yard" and info.raw["deviceLocation"] == "hangzhou"


def test_device_info_mac_is_normalized_like_sadp():
    body = device_info_ipc(HIK).replace("14:92:3c:4f:f8:42", "14-92-3C-4F-F8-42")
    assert DeviceInfo.from_xml(xml(body)).mac_address == "14:92:3c:4f:f8:42"


@pytest.mark.parametrize(("ns", "addressing", "dhcp"),
                         [(HIK, "static", False), (ISAPI, "dynamic", True), (None, "", None)])
def test_ipv4_settings(ns, addressing, dhcp):
    net = Ipv4Settings.from_xml(xml(ip_address(ns, addressing)))
    assert net.dhcp is dhcp
    assert (net.ip_address, net.subnet_mask, net.gateway) == ("192.168.1.64", "255.255.255.0",
                                                              "192.168.1.1")
    assert net.raw["PrimaryDNS.ipAddress"] == "8.8.8.8"


def test_records_refuse_the_wrong_root_element():
    with pytest.raises(ValueError, match="not <DeviceInfo>"):
        DeviceInfo.from_xml(xml(user_check_ok(HIK)))
    with pytest.raises(ValueError, match="not <IPAddress>"):
        Ipv4Settings.from_xml(xml(device_info_ipc(HIK)))
    with pytest.raises(ValueError, match="not <userCheck>"):
        UserCheck.from_xml(xml(device_info_ipc(HIK)), 200)


def test_credentials_repr_hides_the_password():
    assert "Secret123!" not in repr(Credentials("admin", "Secret123!"))


# --- tiny in-test servers -----------------------------------------------------------------------

@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str | None
    body: bytes
    host: str | None = None


Responder = Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, str], bytes]]


@contextmanager
def http_server(respond: Responder, address: str = "127.0.1.140",
                interface: str | None = None) -> Iterator[tuple[IsapiClient, list[Seen]]]:
    """A real HTTP server on loopback answering with ``respond``; yields a client (pinned to
    ``interface`` when given) and the log."""
    seen: list[Seen] = []

    class Handler(BaseHTTPRequestHandler):
        def handle_any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(Seen(self.command, self.path, self.headers.get("Authorization"), body,
                             self.headers.get("Host")))
            status, headers, data = respond(self, body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers and "no-length" not in headers:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = handle_any

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((address, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        with IsapiClient(address, server.server_address[1], timeout=2,
                         interface=interface) as client:
            yield client, seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


class DigestCamera:
    """A minimal Digest-protected camera: one password, a failure counter, stale nonces on demand.

    It checks the Authorization honestly with rig.camera.digest (server side), including that
    the digest ``uri`` is the request target, so a client signing the wrong URI fails here.
    """

    REALM = "IP Camera(test)"

    def __init__(self, password: str = "Right123!", retries: int = 5,
                 ok_body: str = user_check_ok(ISAPI)) -> None:
        self.password = password
        self.retries = retries
        self.ok_body = ok_body
        self.expired: set[str] = set()
        self.issued: list[str] = []

    def challenge(self, stale: bool = False) -> dict[str, str]:
        nonce = f"n{len(self.issued)}"
        self.issued.append(nonce)
        return {"WWW-Authenticate": digest.Challenge(self.REALM, nonce, stale=stale).header(),
                "Content-Type": "application/xml"}

    def expire_all(self) -> None:
        self.expired.update(self.issued)

    def __call__(self, handler: BaseHTTPRequestHandler,
                 body: bytes) -> tuple[int, dict[str, str], bytes]:
        header = handler.headers.get("Authorization")
        if not header:
            return 401, self.challenge(), b"<ResponseStatus><statusCode>4</statusCode>" \
                                          b"<subStatusCode>notAuthenticated</subStatusCode>" \
                                          b"</ResponseStatus>"
        creds = digest.parse_authorization(header)
        if creds.nonce in self.expired:
            return 401, self.challenge(stale=True), b"<ResponseStatus><statusCode>4" \
                b"</statusCode><subStatusCode>invalidOperation</subStatusCode></ResponseStatus>"
        good = (creds.uri == handler.path and creds.nonce in self.issued
                and creds.matches(digest.Challenge(self.REALM, creds.nonce), handler.command,
                                  self.password))
        if good:
            return 200, {"Content-Type": "application/xml"}, self.ok_body.encode()
        self.retries = max(self.retries - 1, 0)
        return 401, self.challenge(), user_check_failed(HIK, retry=self.retries).encode()


def authorized(seen: list[Seen]) -> list[Seen]:
    return [s for s in seen if s.authorization]


def test_wrong_password_costs_exactly_one_authenticated_request():
    cam = DigestCamera(retries=5)
    with http_server(cam) as (client, seen):
        check = client.user_check(Credentials("admin", "wrong"))
    assert not check.ok and check.retry_login_time == 4
    assert [s.authorization is None for s in seen] == [True, False]
    assert client.auth_requests == 1


def test_wrong_password_on_a_data_call_raises_with_the_lock_fields():
    with http_server(DigestCamera(retries=3)) as (client, seen):
        with pytest.raises(AuthenticationFailed, match="retries left: 2") as caught:
            client.device_info(Credentials("admin", "wrong"))
    assert caught.value.user_check is not None and caught.value.user_check.retry_login_time == 2
    assert len(authorized(seen)) == 1
    assert "127.0.1.140" in str(caught.value) and "GET /ISAPI/System/deviceInfo" in \
        str(caught.value)


def test_right_password_then_cached_challenge_skips_the_unauthenticated_round():
    with http_server(DigestCamera()) as (client, seen):
        creds = Credentials("admin", "Right123!")
        assert client.user_check(creds).ok
        assert client.user_check(creds).ok
    assert [s.authorization is None for s in seen] == [True, False, False]
    nc = [digest.parse_authorization(s.authorization).nc for s in authorized(seen)]
    assert nc == ["00000001", "00000002"]


def test_digest_uri_includes_the_query_string():
    ok = "<ResponseStatus><statusCode>7</statusCode><subStatusCode>rebootRequired" \
         "</subStatusCode></ResponseStatus>"
    with http_server(DigestCamera(ok_body=ok)) as (client, seen):
        status = client.factory_reset(Credentials("admin", "Right123!"), "basic")
    assert status.reboot_required and status.ok
    assert seen[-1].method == "PUT" and seen[-1].path == "/ISAPI/System/factoryReset?mode=basic"


def test_client_pinned_to_an_interface_signs_the_path_and_names_the_interface():
    ok = "<ResponseStatus><statusCode>1</statusCode></ResponseStatus>"
    with http_server(DigestCamera(ok_body=ok), interface="lo") as (client, seen):
        port = client.port
        assert client.target == client.describe() == f"127.0.1.140:{port} via lo"
        assert client.factory_reset(Credentials("admin", "Right123!"), "full").ok
        assert client.auth_requests == 1
    signed = digest.parse_authorization(seen[-1].authorization or "")
    assert signed.uri == seen[-1].path == "/ISAPI/System/factoryReset?mode=full"
    assert {s.host for s in seen} == {f"127.0.1.140:{port}"}


def test_a_client_at_a_parsed_route_is_the_client_of_its_host_string():
    """IsapiClient.at takes the identity layer's Route as it is: same target, same requests."""
    ok = "<ResponseStatus><statusCode>1</statusCode></ResponseStatus>"
    with http_server(DigestCamera(ok_body=ok), interface="lo") as (client, seen):
        route = Route.parse("127.0.1.140", client.port, "lo")
        with IsapiClient.at(route, timeout=2) as at_route:
            assert at_route.route is route
            assert at_route.target == client.target == f"127.0.1.140:{client.port} via lo"
            assert (at_route.host, at_route.port, at_route.interface) == \
                (client.host, client.port, client.interface)
            assert at_route.factory_reset(Credentials("admin", "Right123!"), ResetMode.FULL).ok
            assert at_route.auth_requests == 1
    assert seen[-1].path == "/ISAPI/System/factoryReset?mode=full"


def test_a_client_at_a_route_refuses_what_the_constructor_refuses():
    scoped = Route.parse("fe80::1%eth1", 80)
    assert IsapiClient.at(scoped, timeout=1).target == "[fe80::1%eth1]:80"
    for route, options in ((Route("x", 0), {}), (Route("x", 80), {"timeout": 0}),
                           (Route("x", 80), {"scheme": "ftp"}),
                           (scoped, {"session": requests.Session()})):
        with pytest.raises(ValueError):
            IsapiClient.at(route, **{"timeout": 1, **options})


def test_missing_interface_is_named_without_a_connection_attempt():
    started = time.monotonic()
    with IsapiClient("127.0.1.141", 8080, interface="rig-nope0", timeout=2) as client, \
            pytest.raises(ConnectionFailed) as caught:
        client.activate_status()
    assert time.monotonic() - started < 0.5
    assert caught.value.kind == "interface"
    assert str(caught.value) == ("127.0.1.141:8080 via rig-nope0 GET /SDK/activateStatus: "
                                 "no interface named 'rig-nope0' on this host")


def test_stale_cached_nonce_is_resent_once_with_the_fresh_nonce():
    cam = DigestCamera()
    with http_server(cam) as (client, seen):
        creds = Credentials("admin", "Right123!")
        assert client.user_check(creds).ok
        cam.expire_all()
        assert client.user_check(creds).ok
    assert cam.retries == 5                        # the stale answer was no failed login
    assert [s.authorization is None for s in seen] == [True, False, False, False]


def test_cached_nonce_refused_without_stale_is_a_failed_login_not_resent():
    cam = DigestCamera(retries=5)
    with http_server(cam) as (client, seen):
        assert client.user_check(Credentials("admin", "Right123!")).ok
        check = client.user_check(Credentials("admin", "Wrong1234!"))
    assert not check.ok and check.retry_login_time == 4
    assert [s.authorization is None for s in seen] == [True, False, False]


def test_stale_resend_happens_only_once():
    cam = DigestCamera()
    with http_server(cam) as (client, seen):
        creds = Credentials("admin", "Right123!")
        assert client.user_check(creds).ok
        cam.password = "Changed123!"
        cam.expire_all()
        check = client.user_check(creds)
    assert not check.ok and cam.retries == 4
    assert len(authorized(seen)) == 3              # first login, stale one, one re-send


def test_a_reply_that_is_not_401_is_used_as_is():
    def open_door(handler, body):
        return 200, {}, device_info_ipc(HIK).encode()
    with http_server(open_door) as (client, seen):
        info = client.device_info(Credentials("admin", "whatever"))
    assert info.mac_address == "14:92:3c:4f:f8:42"
    assert authorized(seen) == []


@pytest.mark.parametrize("status", [401, 403])
def test_not_activated_spends_no_login(status):
    body = bad_xml_content(HIK).replace("badXmlContent", "notActivated")

    def inactive(handler, _):
        return status, {}, body.encode()
    with http_server(inactive) as (client, seen):
        with pytest.raises(NotActivated):
            client.device_info(Credentials("admin", "Right123!"))
        with pytest.raises(NotActivated):
            client.user_check(Credentials("admin", "Right123!"))
    assert authorized(seen) == [] and client.auth_requests == 0


def test_401_without_digest_challenge_spends_no_login_and_reports_the_lock():
    def locked(handler, _):
        return 401, {}, user_check_failed(HIK, "lock", 1200, 0).encode()
    with http_server(locked) as (client, seen):
        check = client.user_check(Credentials("admin", "Right123!"))
    assert not check.ok and check.locked and check.unlock_time == 1200
    assert authorized(seen) == []


def test_digest_challenge_is_found_among_several_schemes():
    cam = DigestCamera()

    def two_schemes(handler, body):
        status, headers, data = cam(handler, body)
        if "WWW-Authenticate" in headers:
            headers["WWW-Authenticate"] = 'Basic realm="x", ' + headers["WWW-Authenticate"]
        return status, headers, data
    with http_server(two_schemes) as (client, _):
        assert client.user_check(Credentials("admin", "Right123!")).ok


def test_netrc_in_the_environment_adds_no_login(tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.1.140 login admin password 12345\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with http_server(lambda h, b: (404, {}, b"")) as (client, seen):
        assert client.activate_status().supported is False
    assert authorized(seen) == []


def test_activate_status_reads_activated_and_support_version():
    body = f'<ActivateStatus{ns_attr(ISAPI)}><Activated>flase</Activated>' \
           "<supportVersion>3</supportVersion></ActivateStatus>"
    with http_server(lambda h, b: (200, {}, body.encode())) as (client, seen):
        status = client.activate_status()
    assert (status.activated, status.support_version, status.supported) == (False, 3, True)
    assert seen[0].authorization is None


@pytest.mark.parametrize(("body", "match"), [
    (b"<ActivateStatus><Activated>true</Activated>", "malformed XML"),
    (b"<html><body>login</body></html>", "not <ActivateStatus>"),
    (b"", "empty document"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><ActivateStatus/>', "unsafe XML")])
def test_unreadable_bodies_are_malformed_replies(body, match):
    with http_server(lambda h, b: (200, {}, body)) as (client, _):
        with pytest.raises(MalformedReply, match=match) as caught:
            client.activate_status()
    assert "GET /SDK/activateStatus" in str(caught.value)


@pytest.mark.parametrize("declared", [True, False])
def test_oversized_body_is_refused(declared):
    big = b"<ActivateStatus>" + b" " * (300 * 1024) + b"</ActivateStatus>"
    headers = {} if declared else {"no-length": "1", "Connection": "close"}
    with http_server(lambda h, b: (200, headers, big)) as (client, _):
        with pytest.raises(MalformedReply, match="larger than"):
            client.activate_status()


def test_http_error_carries_the_response_status():
    with http_server(lambda h, b: (400, {}, bad_xml_content(ISAPI).encode())) as (client, _):
        with pytest.raises(IsapiError, match="HTTP 400.*badXmlContent") as caught:
            client.activate_status()
    assert caught.value.http_status == 400
    assert caught.value.response_status.sub_status_code == "badXmlContent"


def test_http_error_without_a_body_is_an_isapi_error():
    with http_server(lambda h, b: (500, {}, b"")) as (client, _):
        with pytest.raises(IsapiError, match="HTTP 500") as caught:
            client.reboot(Credentials("admin", "x"))
    assert caught.value.response_status is None and not isinstance(caught.value,
                                                                    MalformedReply)


@pytest.mark.parametrize(("password", "why"), [
    ("12345", "8 to 16"), ("abcdefgh", "at least two"), ("admin12345", "user name"),
    ("Aa1!" * 5, "8 to 16")])
def test_activate_refuses_a_bad_password_before_sending(password, why):
    with http_server(lambda h, b: (500, {}, b"")) as (client, seen):
        with pytest.raises(ValueError, match=why):
            client.activate(password)
    assert seen == []


def test_activate_refuses_an_unknown_variant():
    with http_server(lambda h, b: (500, {}, b"")) as (client, seen):
        with pytest.raises(ValueError, match="variant"):
            client.activate("Secret123!", variant="v9")
    assert seen == []


def test_factory_reset_refuses_an_unknown_mode():
    with http_server(lambda h, b: (500, {}, b"")) as (client, seen):
        with pytest.raises(ValueError, match="basic, full"):
            client.factory_reset(Credentials("admin", "x"), "part")  # type: ignore[arg-type]
    assert seen == []


def test_v3_challenge_that_is_not_json_is_malformed():
    with http_server(lambda h, b: (200, {}, b"challenge=abc")) as (client, _):
        with pytest.raises(MalformedReply, match="not JSON"):
            client.activate("Secret123!", variant="v3")


def test_challenge_that_does_not_decrypt_is_malformed():
    body = b"<PublicKey><key>bm90IGEgY2lwaGVydGV4dA==</key></PublicKey>"
    with http_server(lambda h, b: (200, {}, body)) as (client, _):
        with pytest.raises(MalformedReply, match="could not be decrypted"):
            client.activate("Secret123!", variant="challenge")


@contextmanager
def raw_listener(address: str, behaviour: str) -> Iterator[tuple[int, list[int]]]:
    """A TCP listener that never speaks HTTP: 'silent' accepts and waits, 'close' hangs up."""
    sock = socket.socket()
    sock.bind((address, 0))
    sock.listen(8)
    sock.settimeout(0.05)
    accepted: list[int] = []
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            accepted.append(1)
            if behaviour == "close":
                conn.recv(65536)
                conn.close()
            else:
                conns.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(2)
        for conn in conns:
            conn.close()
        sock.close()


def test_connection_refused_is_named():
    with IsapiClient("127.0.1.149", 9, timeout=1) as client:
        with pytest.raises(ConnectionFailed, match="refused") as caught:
            client.activate_status()
    assert caught.value.kind == "refused"
    assert str(caught.value).startswith("127.0.1.149:9 GET /SDK/activateStatus: ")


def test_silent_camera_times_out_quickly():
    with raw_listener("127.0.1.141", "silent") as (port, accepted):
        with IsapiClient("127.0.1.141", port, timeout=0.3) as client:
            started = time.monotonic()
            with pytest.raises(ConnectionFailed, match="timed out") as caught:
                client.activate_status()
    assert caught.value.kind == "timeout" and time.monotonic() - started < 2
    assert len(accepted) == 1


def test_hang_up_without_reply_is_not_retried():
    with raw_listener("127.0.1.142", "close") as (port, accepted):
        with IsapiClient("127.0.1.142", port, timeout=1) as client:
            with pytest.raises(ConnectionFailed) as caught:
                client.reboot(Credentials("admin", "x"))
            time.sleep(0.1)
    assert caught.value.kind == "reset"
    assert len(accepted) == 1                     # no library retry behind our back


def test_client_refuses_bad_construction():
    for kwargs in ({"host": ""}, {"host": "x", "port": 0}, {"host": "x", "timeout": 0},
                   {"host": "x", "scheme": "ftp"}, {"host": "fe80::1"},
                   {"host": "fe80::1%eth1", "interface": "eth2"}, {"host": "192.168.1.64%eth0"},
                   {"host": "fe80::1%eth1", "session": requests.Session()}):
        with pytest.raises(ValueError):
            IsapiClient(**kwargs)
    assert IsapiClient("[::1]", 8080).target == "[::1]:8080"
    assert IsapiClient("fe80::1%eth1").target == "[fe80::1%eth1]:80"
    assert IsapiClient("[fe80::1%25eth1]").target == "[fe80::1%eth1]:80"
    assert IsapiClient("fe80::1", interface="eth1").target == "[fe80::1%eth1]:80"
    assert IsapiClient("192.168.1.64", interface="eth0.101").target == \
        "192.168.1.64:80 via eth0.101"


# --- against the simulated camera ---------------------------------------------------------------

@contextmanager
def sim_unit(profile: str, first: int, scale: float = SCALE):
    """One simulated unit of ``profile`` on 127.0.1.<first>, and a client for it."""
    with CameraFleet.start(1, profiles=(profile,), first=first, http_port=0,
                           time_scale=scale) as fleet:
        assert fleet.wait_running(5)
        cam = fleet.cameras[0]
        with IsapiClient(cam.address, cam.http_port, timeout=3) as client:
            yield cam, client


def test_sim_inactive_current_unit():
    with sim_unit("current", 100) as (cam, client):
        status = client.activate_status()
        assert (status.activated, status.supported) == (False, True)
        with pytest.raises(NotActivated):
            client.device_info(Credentials("admin", "Secret123!"))
        assert client.auth_requests == 0


def test_sim_legacy_has_no_activate_status_and_takes_admin_12345():
    with sim_unit("legacy", 101) as (cam, client):
        assert client.activate_status().supported is False
        check = client.user_check(Credentials("admin", "12345"))
        assert check.ok and check.is_default_password is True


@pytest.mark.parametrize(("profile", "variant"), [("current", "challenge"), ("g5", "v3"),
                                                  ("g5", None), ("g5", "challenge")])
def test_sim_activation_then_login(profile, variant):
    with sim_unit(profile, 102) as (cam, client):
        status = client.activate("Secret123!", variant=variant)
        assert status.ok and status.status_code == 1 and not status.reboot_required
        assert cam.activated
        assert client.activate_status().activated is True
        check = client.user_check(Credentials("admin", "Secret123!"))
        assert check.ok and check.is_activated is True
        with pytest.raises(AlreadyActivated):
            client.activate("Other1234!", variant=variant)


def test_sim_weak_password_is_accepted_as_risk_password():
    with sim_unit("current", 103) as (cam, client):
        status = client.activate("abcd12345")
        assert status.ok and status.sub_status_code == "riskPassword"


def test_sim_wrong_password_counts_down_then_locks():
    with sim_unit("current", 104, scale=20000.0) as (cam, client):
        cam.provision("Secret123!")
        attempts = cam.profile.lockout_attempts
        wrong, right = Credentials("admin", "Wrong1234!"), Credentials("admin", "Secret123!")
        lefts = [client.user_check(wrong).retry_login_time for _ in range(attempts - 1)]
        assert lefts == list(range(attempts - 1, 0, -1))
        last = client.user_check(wrong)
        assert last.locked and last.lock_status == "lock" and last.retry_login_time == 0
        assert last.unlock_time and last.unlock_time > 0
        refused = client.user_check(right)           # locked: even the right password fails
        assert not refused.ok and refused.locked
        time.sleep(cam.profile.lockout_seconds / 20000.0 + 0.05)
        assert client.user_check(right).ok


def test_sim_device_info_and_network_identify_the_unit():
    with sim_unit("g5", 105) as (cam, client):
        cam.provision("Secret123!")
        creds = Credentials("admin", "Secret123!")
        info = client.device_info(creds)
        assert info.mac_address == cam.mac and info.serial_number == cam.serial
        assert info.model == cam.behaviour.sample_model
        net = client.network(creds)
        assert net.ip_address == cam.address and net.dhcp is False


def test_sim_factory_reset_basic_asks_for_a_reboot_on_current_firmware():
    with sim_unit("current", 106) as (cam, client):
        cam.provision("Secret123!")
        creds = Credentials("admin", "Secret123!")
        status = client.factory_reset(creds, "basic")
        assert status.ok and status.reboot_required and status.status_code == 7
        reboot = client.reboot(creds)
        assert reboot.ok and not reboot.reboot_required


def test_sim_factory_reset_full_returns_g5_to_inactive():
    with sim_unit("g5", 107) as (cam, client):
        cam.provision("Secret123!")
        status = client.factory_reset(Credentials("admin", "Secret123!"), "full")
        assert status.ok and not status.reboot_required
        deadline = time.monotonic() + 3
        activated: bool | None = True
        while activated and time.monotonic() < deadline:
            try:
                activated = client.activate_status().activated
            except ConnectionFailed:      # rebooting: the unit drops connections
                time.sleep(0.01)
        assert activated is False
