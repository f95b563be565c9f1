"""The virtual camera's web server over real HTTP on loopback: digest, lockout, activation, bodies.

These drive the server with plain requests and rig.camera.digest, independently of rig's ISAPI
client, so that a bug in one cannot hide a bug in the other.
"""

from __future__ import annotations

import pytest
import requests

from rig import xmlsafe
from rig.camera import activation, digest
from rig.camera.profiles import ProfileSet
from rig.sim.camera import VirtualCamera
from rig.sim.isapi_server import IsapiServer

PROFILES = ProfileSet.load()
SCALE = 1000.0   # boot 60 s → 60 ms; lockout 1800 s → 1.8 s


@pytest.fixture
def unit(request):
    """A running virtual camera with its web server on 127.0.1.60 (ephemeral port)."""
    profile = getattr(request, "param", "current")
    cam = VirtualCamera(PROFILES.get(profile), mac="44:47:cc:0a:00:01",
                        serial="DS-2CD2320D-I20240115AAWRE00000060", address="127.0.1.60",
                        http_port=0, time_scale=SCALE)
    server = IsapiServer(cam)
    server.serve_in_thread()
    cam.set_power(True)
    assert cam.wait_running(2)
    yield cam, f"http://127.0.1.60:{cam.http_port}"
    server.close()


def call(method: str, url: str, path: str, user: str | None = None, password: str | None = None,
         **kwargs) -> requests.Response:
    """One request; with credentials: fetch a nonce, then exactly one authenticated request."""
    response = requests.request(method, url + path, timeout=3, **kwargs)
    if user is None or response.status_code != 401:
        return response
    challenge = digest.parse_challenge(response.headers["WWW-Authenticate"])
    auth = digest.authorization(challenge, method, path, user, password or "")
    return requests.request(method, url + path, timeout=3, headers={"Authorization": auth},
                            **kwargs)


def fields(response: requests.Response) -> dict[str, str]:
    return xmlsafe.children_text(xmlsafe.parse(response.content))


def test_activate_status_needs_no_auth(unit):
    cam, url = unit
    r = call("GET", url, "/SDK/activateStatus")
    assert r.status_code == 200
    root = xmlsafe.parse(r.content)
    assert xmlsafe.local_name(root.tag) == "ActivateStatus"
    assert fields(r)["Activated"] == "false"
    assert r.headers["Server"].startswith("App-webs")


def test_inactive_unit_refuses_isapi_with_not_activated(unit):
    cam, url = unit
    r = call("GET", url, "/ISAPI/System/deviceInfo")
    assert r.status_code == 401
    assert fields(r)["subStatusCode"] == "notActivated"


@pytest.mark.parametrize("unit", ["g5"], indirect=True)
def test_g5_answers_403_before_activation(unit):
    cam, url = unit
    assert call("GET", url, "/ISAPI/System/deviceInfo").status_code == 403
    assert fields(call("GET", url, "/SDK/activateStatus"))["supportVersion"] == "3"


def test_digest_login_and_device_info(unit):
    cam, url = unit
    cam.provision("Secret123!")
    bare = call("GET", url, "/ISAPI/System/deviceInfo")
    assert bare.status_code == 401
    assert 'qop="auth"' in bare.headers["WWW-Authenticate"]
    r = call("GET", url, "/ISAPI/System/deviceInfo", "admin", "Secret123!")
    assert r.status_code == 200
    info = fields(r)
    assert info["macAddress"] == "44:47:cc:0a:00:01"
    assert info["serialNumber"] == cam.serial and info["deviceName"] == "yard"
    assert info["firmwareVersion"] == "V5.5.6"


def test_wrong_password_counts_down_then_locks(unit):
    cam, url = unit
    cam.provision("Secret123!")
    attempts = cam.profile.lockout_attempts
    for left in range(attempts - 1, 0, -1):
        r = call("GET", url, "/ISAPI/Security/userCheck", "admin", "wrong-pass1")
        assert r.status_code == 401
        body = fields(r)
        assert (body["lockStatus"], body["retryLoginTime"]) == ("unlock", str(left))
    r = call("GET", url, "/ISAPI/Security/userCheck", "admin", "wrong-pass1")
    assert fields(r)["lockStatus"] == "lock" and int(fields(r)["unlockTime"]) > 0
    locked = call("GET", url, "/ISAPI/Security/userCheck", "admin", "Secret123!")
    assert locked.status_code == 401 and fields(locked)["lockStatus"] == "lock"


def test_requests_without_credentials_never_count_toward_the_lock(unit):
    cam, url = unit
    cam.provision("Secret123!")
    for _ in range(cam.profile.lockout_attempts * 2):
        assert call("GET", url, "/ISAPI/System/deviceInfo").status_code == 401
    ok = call("GET", url, "/ISAPI/Security/userCheck", "admin", "Secret123!")
    assert ok.status_code == 200 and fields(ok)["statusValue"] == "200"


def test_unknown_nonce_is_stale_and_not_a_failed_login(unit):
    cam, url = unit
    cam.provision("Secret123!")
    fake = digest.Challenge(realm=f"IP Camera({cam.serial[-9:]})", nonce="00" * 16)
    for _ in range(cam.profile.lockout_attempts + 1):
        auth = digest.authorization(fake, "GET", "/ISAPI/Security/userCheck", "admin", "x")
        r = requests.get(url + "/ISAPI/Security/userCheck", headers={"Authorization": auth},
                         timeout=3)
        assert r.status_code == 401
        assert digest.parse_challenge(r.headers["WWW-Authenticate"]).stale
    assert not cam.is_locked()


def test_activation_over_http_then_login(unit):
    cam, url = unit
    key = activation.new_client_key()
    body = f"<PublicKey><key>{activation.public_key_param(key)}</key></PublicKey>"
    r = call("POST", url, "/ISAPI/Security/challenge", data=body)
    assert r.status_code == 200
    random_hex = activation.decrypt_challenge(key, fields(r)["key"])
    password, _ = activation.encrypt_password(random_hex, "Secret123!")
    r = call("PUT", url, "/ISAPI/System/activate",
             data=f"<ActivateInfo><password>{password}</password></ActivateInfo>")
    assert r.status_code == 200 and fields(r)["statusCode"] == "1"
    assert fields(call("GET", url, "/SDK/activateStatus"))["Activated"] == "true"
    again = call("POST", url, "/ISAPI/Security/challenge", data=body)
    assert again.status_code == 403 and fields(again)["subStatusCode"] == "hasActivated"
    assert call("GET", url, "/ISAPI/Security/userCheck", "admin", "Secret123!").status_code == 200


@pytest.mark.parametrize("unit", ["g5"], indirect=True)
def test_v3_activation_over_http(unit):
    cam, url = unit
    key = activation.new_client_key("v3")
    r = call("POST", url, "/ISAPI/System/activate/GetChallengeV3?format=json",
             json={"publicKey": activation.public_key_param(key)})
    assert r.status_code == 200
    random_hex = activation.decrypt_challenge(key, r.json()["challenge"])
    password, iv = activation.encrypt_password(random_hex, "Secret123!", "v3")
    r = call("POST", url, "/ISAPI/System/activate/StartActivateV3?format=json",
             json={"password": password, "iv": iv})
    assert r.json()["statusCode"] == 1 and cam.activated


@pytest.mark.parametrize("unit", ["g5"], indirect=True)
def test_v3_refuses_a_small_key(unit):
    cam, url = unit
    small = activation.new_client_key("challenge")
    r = call("POST", url, "/ISAPI/System/activate/GetChallengeV3?format=json",
             json={"publicKey": activation.public_key_param(small)})
    assert r.status_code == 400 and r.json()["statusString"] == "Invalid JSON Content"


@pytest.mark.parametrize("unit", ["legacy"], indirect=True)
def test_legacy_has_no_activation_endpoints_and_takes_admin_12345(unit):
    cam, url = unit
    assert call("GET", url, "/SDK/activateStatus").status_code == 404
    assert call("POST", url, "/ISAPI/Security/challenge", data="<PublicKey/>").status_code == 404
    r = call("GET", url, "/ISAPI/Security/userCheck", "admin", "12345")
    assert r.status_code == 200 and fields(r)["isDefaultPassword"] == "true"


def test_factory_reset_basic_answers_reboot_required(unit):
    cam, url = unit
    cam.provision("Secret123!")
    r = call("PUT", url, "/ISAPI/System/factoryReset?mode=basic", "admin", "Secret123!")
    assert fields(r)["statusCode"] == "7" and fields(r)["subStatusCode"] == "rebootRequired"
    bad = call("PUT", url, "/ISAPI/System/factoryReset?mode=part", "admin", "Secret123!")
    assert bad.status_code == 400


def test_network_settings_round_trip(unit):
    cam, url = unit
    cam.provision("Secret123!")
    body = ("<IPAddress><addressingType>static</addressingType><ipAddress>10.9.8.7</ipAddress>"
            "<subnetMask>255.255.0.0</subnetMask><DefaultGateway><ipAddress>10.9.0.1</ipAddress>"
            "</DefaultGateway></IPAddress>")
    path = "/ISAPI/System/Network/interfaces/1/ipAddress"
    assert call("PUT", url, path, "admin", "Secret123!", data=body).status_code == 200
    text = call("GET", url, path, "admin", "Secret123!").text
    assert "<ipAddress>10.9.8.7</ipAddress>" in text and "<ipAddress>10.9.0.1</ipAddress>" in text
    assert (cam.settings.mask, cam.settings.gateway) == ("255.255.0.0", "10.9.0.1")


@pytest.mark.parametrize("payload,status", [
    (b"<IPAddress><ipAddress>1.2.3.4</ipAddress>", 400),                       # truncated
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><IPAddress>&a;</IPAddress>', 400),
    (b"<a>" + b"x" * (70 * 1024) + b"</a>", 413),                              # oversized
])
def test_malformed_bodies_get_a_clean_error(unit, payload, status):
    cam, url = unit
    cam.provision("Secret123!")
    before = cam.settings
    r = call("PUT", url, "/ISAPI/System/Network/interfaces/1/ipAddress", "admin", "Secret123!",
             data=payload)
    assert r.status_code == status
    assert cam.settings == before


def test_unknown_path_and_bad_json(unit):
    cam, url = unit
    assert call("GET", url, "/ISAPI/Nope").status_code == 404
    assert call("GET", url, "/ISAPI/System/reboot").status_code == 405
    r = call("POST", url, "/ISAPI/System/activate/GetChallengeV3", data=b"{not json")
    assert r.status_code == 404          # current firmware has no V3 exchange


@pytest.mark.parametrize("unit", ["g5"], indirect=True)
def test_bad_json_gets_a_clean_error(unit):
    cam, url = unit
    r = call("POST", url, "/ISAPI/System/activate/GetChallengeV3", data=b"{not json")
    assert r.status_code == 400 and r.json()["subStatusCode"] == "badJsonContent"
    assert not cam.activated


def test_unit_that_is_off_drops_the_connection(unit):
    cam, url = unit
    cam.set_power(False)
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/SDK/activateStatus", timeout=2)
