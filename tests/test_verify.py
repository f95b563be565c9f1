"""Verdicts from evidence (pure: no sockets), per firmware family and method."""

from __future__ import annotations

import dataclasses

from rig.camera.factory_state import HttpEvidence, HttpState
from rig.camera.isapi_types import DeviceInfo, UserCheck
from rig.camera.profiles import ProfileSet
from rig.camera.sadp import SadpDevice
from rig.records import Fault, Verdict
from rig.verify import BASIC, FULL, judge

PROFILES = ProfileSet.load()
MAC = "44:47:cc:00:00:01"


def sadp(**changes) -> SadpDevice:
    base = SadpDevice(uuid="13A888A9-F1B1-4020-AE9F-05607682D23B", mac=MAC, serial="S1",
                      model="DS-2CD2320D-I", device_type="142378", ipv4="192.168.1.64",
                      mask="255.255.255.0", gateway="0.0.0.0", ipv6=None, dhcp=False,
                      http_port=80, command_port=8000, firmware="V5.5.6build 180326",
                      dsp_version=None, activated=False, device_lock=False, boot_time=None,
                      source="192.168.1.64")
    return dataclasses.replace(base, **changes)


def http(state: HttpState, reason: str = "", **changes) -> HttpEvidence:
    return HttpEvidence(target="192.168.1.64:80", state=state,
                        factory_default=state in (HttpState.INACTIVE,
                                                  HttpState.DEFAULT_CREDENTIALS),
                        reason=reason, **changes)


def info(mac: str = MAC, name: str = "IP CAMERA") -> DeviceInfo:
    return DeviceInfo(device_name=name, device_id=None, model=None, serial_number="S1",
                      mac_address=mac, firmware_version=None, firmware_released_date=None,
                      firmware_version_info=None, device_type=None, raw={})


def test_inactive_current_unit_on_its_default_address_is_factory_default():
    v = judge(mac=MAC, profile=PROFILES.get("current"), expect=FULL, after=sadp(),
              http=http(HttpState.INACTIVE))
    assert v.verdict is Verdict.FACTORY_DEFAULT and v.passed and v.fault is Fault.NONE
    assert {c.name for c in v.checks} >= {"inactive-sadp", "inactive-http", "default-ipv4"}


def test_activated_unit_names_the_failed_check():
    v = judge(mac=MAC, profile=PROFILES.get("current"), expect=FULL,
              after=sadp(activated=True), http=http(HttpState.ACTIVATED))
    assert v.verdict is Verdict.NOT_DEFAULT and v.fault is Fault.UNIT
    assert v.check == "inactive-sadp" and "Activated=true" in v.reason


def test_wrong_address_after_reset_is_not_default():
    v = judge(mac=MAC, profile=PROFILES.get("current"), expect=FULL,
              after=sadp(ipv4="10.0.0.5"), http=http(HttpState.INACTIVE))
    assert v.check == "default-ipv4" and "10.0.0.5" in v.reason


def test_legacy_needs_its_default_credentials():
    legacy = PROFILES.get("legacy")
    ok = judge(mac=MAC, profile=legacy, expect=FULL, after=sadp(activated=None),
               http=http(HttpState.DEFAULT_CREDENTIALS, device_info=info()))
    assert ok.passed
    bad = judge(mac=MAC, profile=legacy, expect=FULL, after=sadp(activated=None),
                http=http(HttpState.ACTIVATED))
    assert bad.check == "default-credentials"


def test_no_sadp_reply_is_unreachable():
    v = judge(mac=MAC, profile=PROFILES.get("g5"), expect=FULL, after=None, http=None)
    assert v.verdict is Verdict.UNREACHABLE and v.check == "sadp-answers"


def test_sadp_without_http_is_unreachable():
    v = judge(mac=MAC, profile=PROFILES.get("g5"), expect=FULL, after=sadp(),
              http=http(HttpState.UNREACHABLE, reason="connection refused"))
    assert v.verdict is Verdict.UNREACHABLE and v.check == "http-answers"


def test_an_answer_on_a_shared_address_is_never_credited():
    other = sadp(mac="44:47:cc:00:00:02", activated=True)
    v = judge(mac=MAC, profile=PROFILES.get("current"), expect=FULL, after=sadp(),
              http=http(HttpState.INACTIVE), others=[other])
    assert not v.passed and v.check == "http-attribution"
    assert "2 units answer on 192.168.1.64" in v.reason


def test_a_logged_in_answer_from_another_mac_is_rejected():
    v = judge(mac=MAC, profile=PROFILES.get("legacy"), expect=FULL, after=sadp(activated=None),
              http=http(HttpState.DEFAULT_CREDENTIALS, device_info=info("44:47:cc:00:00:09")))
    assert v.check == "http-attribution" and "another unit answered" in v.reason


def test_basic_restore_keeps_network_and_users_and_resets_parameters():
    before = sadp(ipv4="10.1.2.3", gateway="10.1.2.1", activated=True)
    after = sadp(ipv4="10.1.2.3", gateway="10.1.2.1", activated=True)
    logged_in = UserCheck(ok=True, status_value=200, status_string="OK", is_activated=True,
                          is_default_password=False, is_risk_password=False, lock_status=None,
                          unlock_time=None, retry_login_time=None, http_status=200)
    ok = judge(mac=MAC, profile=PROFILES.get("current"), expect=BASIC, after=after,
               before=before, http=http(HttpState.ACTIVATED, user_check=logged_in,
                                        device_info=info()))
    assert ok.passed, ok.reason
    moved = judge(mac=MAC, profile=PROFILES.get("current"), expect=BASIC,
                  after=sadp(activated=True), before=before,
                  http=http(HttpState.ACTIVATED, user_check=logged_in, device_info=info()))
    assert moved.check == "network-kept"
    kept_name = judge(mac=MAC, profile=PROFILES.get("current"), expect=BASIC, after=after,
                      before=before, http=http(HttpState.ACTIVATED, user_check=logged_in,
                                               device_info=info(name="yard")))
    assert kept_name.check == "parameters-default"
