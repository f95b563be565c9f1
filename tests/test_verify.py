"""The judge (pure: no sockets): HTTP facts → finding, and SADP + HTTP facts → a unit's verdict,
per firmware family (current, g5, legacy) and expected state (full reset, basic restore)."""

from __future__ import annotations

import dataclasses

import pytest

from rig.camera.http_evidence import HttpEvidence, LoginTried, RequestError, RequestFailure
from rig.camera.isapi_types import ActivateStatus, DeviceInfo, UserCheck
from rig.camera.profiles import ProfileSet
from rig.camera.sadp import SadpDevice
from rig.verify import HttpState, classify_http, judge
from rig.vocabulary import ExpectedState, Fault, Verdict

PROFILES = ProfileSet.load()
MAC = "44:47:cc:00:00:01"
FULL, BASIC = ExpectedState.FULL, ExpectedState.BASIC

# --- facts, as check_http records them ----------------------------------------------------------

INACTIVE = ActivateStatus(activated=False, support_version=None, supported=True)      # current
INACTIVE_G5 = ActivateStatus(activated=False, support_version=3, supported=True)
ACTIVATED = ActivateStatus(activated=True, support_version=None, supported=True)
NO_ENDPOINT = ActivateStatus(activated=None, support_version=None, supported=False)   # 404
FACTORY = LoginTried("admin", "12345")       # the factory login: public, recorded
OWN = LoginTried("admin")                    # a password someone set: only the user is kept
ACCEPTED = UserCheck(ok=True, status_value=200, status_string="OK", is_activated=True,
                     is_default_password=False, is_risk_password=False, lock_status=None,
                     unlock_time=None, retry_login_time=None, http_status=200)
REFUSED = UserCheck(ok=False, http_status=401, lock_status="unlock", retry_login_time=3)
LOCKED = UserCheck(ok=False, http_status=401, lock_status="locked", unlock_time=900,
                   retry_login_time=0)
TARGET = "192.168.1.64:80"


def http(status: ActivateStatus | None = INACTIVE, **changes) -> HttpEvidence:
    """HTTP evidence: by default a current unit's inactive answer, no login."""
    return HttpEvidence(target=TARGET, activate_status=status, **changes)


def logged_in(login: LoginTried, check: UserCheck, status: ActivateStatus | None = NO_ENDPOINT,
              **changes) -> HttpEvidence:
    return http(status, login=login, user_check=check, login_attempts=1, **changes)


def failed(failure: RequestFailure, message: str) -> RequestError:
    transport = "refused" if failure is RequestFailure.NO_REPLY else None
    return RequestError(failure, f"{TARGET} GET /SDK/activateStatus: {message}",
                        transport=transport)


def sadp(**changes) -> SadpDevice:
    base = SadpDevice(uuid="13A888A9-F1B1-4020-AE9F-05607682D23B", mac=MAC, serial="S1",
                      model="DS-2CD2320D-I", device_type="142378", ipv4="192.168.1.64",
                      mask="255.255.255.0", gateway="0.0.0.0", ipv6=None, dhcp=False,
                      http_port=80, command_port=8000, firmware="V5.5.6build 180326",
                      dsp_version=None, activated=False, device_lock=False, boot_time=None,
                      source="192.168.1.64")
    return dataclasses.replace(base, **changes)


def info(mac: str = MAC, name: str = "IP CAMERA") -> DeviceInfo:
    return DeviceInfo(device_name=name, device_id=None, model=None, serial_number="S1",
                      mac_address=mac, firmware_version=None, firmware_released_date=None,
                      firmware_version_info=None, device_type=None, raw={})


# --- classify_http: the HTTP facts alone --------------------------------------------------------

REFUSAL = ("the camera refuses requests with notActivated: it has no password yet, the factory "
           "state of V5.3+ firmware.")

CLASSIFIED = [
    ("current inactive", http(INACTIVE), HttpState.INACTIVE, True,
     "FACTORY DEFAULT: inactive (activation required)"),
    ("g5 inactive", http(INACTIVE_G5), HttpState.INACTIVE, True,
     "FACTORY DEFAULT: inactive (activation required)"),
    ("refused as not activated", http(None, activate_error=failed(
        RequestFailure.NOT_ACTIVATED, "HTTP 401: camera is not activated")),
     HttpState.INACTIVE, True, "FACTORY DEFAULT: inactive (activation required)"),
    ("no reply", http(None, activate_error=failed(RequestFailure.NO_REPLY, "connection refused")),
     HttpState.UNREACHABLE, None,
     f"UNREACHABLE: {TARGET} GET /SDK/activateStatus: connection refused"),
    ("unreadable status", http(None, activate_error=failed(RequestFailure.MALFORMED, "garbage")),
     HttpState.ERROR, None,
     f"ERROR: unreadable activation status: {TARGET} GET /SDK/activateStatus: garbage"),
    ("activated, no login allowed", http(ACTIVATED), HttpState.ACTIVATED, False,
     "NOT DEFAULT: activated (reported by /SDK/activateStatus; no login tried)"),
    ("legacy, no login allowed", http(NO_ENDPOINT), HttpState.ERROR, None,
     "ERROR: the firmware has no /SDK/activateStatus and no login was allowed, so nothing tells "
     "whether it still has its factory login."),
    ("legacy factory login accepted", logged_in(FACTORY, ACCEPTED), HttpState.DEFAULT_CREDENTIALS,
     True, "FACTORY DEFAULT: legacy default credentials admin/12345 accepted"),
    ("legacy factory login refused", logged_in(FACTORY, REFUSED), HttpState.ACTIVATED, False,
     "NOT DEFAULT: activated; admin/12345 rejected (retries left: 3)"),
    ("status error, factory login refused", logged_in(FACTORY, REFUSED, None, activate_error=failed(
        RequestFailure.HTTP_ERROR, "HTTP 401")), HttpState.ACTIVATED, False,
     "NOT DEFAULT: activated; admin/12345 rejected (retries left: 3)"),
    ("own login accepted", logged_in(OWN, ACCEPTED, ACTIVATED), HttpState.ACTIVATED, False,
     "NOT DEFAULT: activated; login as admin accepted"),
    ("own login refused, activated", logged_in(OWN, REFUSED, ACTIVATED), HttpState.ACTIVATED,
     False, "NOT DEFAULT: activated; as admin rejected (retries left: 3)"),
    ("own login refused, legacy", logged_in(OWN, REFUSED), HttpState.ERROR, None,
     "ERROR: login as admin was refused (attempts left before the lock: 3); the factory login "
     "was not tried (one login per check), so the factory state is unknown."),
    ("locked, legacy", logged_in(FACTORY, LOCKED), HttpState.LOCKED, None,
     "UNKNOWN: login locked for this address (unlock in 900 s)"),
    ("locked, activated", logged_in(FACTORY, LOCKED, ACTIVATED), HttpState.LOCKED, False,
     "NOT DEFAULT: activated; login locked for this address (unlock in 900 s)"),
    ("login refused as not activated", http(NO_ENDPOINT, login=FACTORY, login_attempts=1,
                                            login_error=failed(RequestFailure.NOT_ACTIVATED, "x")),
     HttpState.INACTIVE, True, "FACTORY DEFAULT: inactive (activation required)"),
    ("login without reply", http(NO_ENDPOINT, login=FACTORY,
                                 login_error=failed(RequestFailure.NO_REPLY, "timed out")),
     HttpState.UNREACHABLE, None, f"UNREACHABLE: {TARGET} GET /SDK/activateStatus: timed out"),
    ("login error answer", http(NO_ENDPOINT, login=FACTORY, login_attempts=1,
                                login_error=failed(RequestFailure.HTTP_ERROR, "HTTP 500")),
     HttpState.ERROR, None,
     f"ERROR: login check failed: {TARGET} GET /SDK/activateStatus: HTTP 500"),
]


@pytest.mark.parametrize(("evidence", "state", "factory_default", "text"),
                         [c[1:] for c in CLASSIFIED], ids=[c[0] for c in CLASSIFIED])
def test_classify_http(evidence, state, factory_default, text):
    finding = classify_http(evidence)
    assert (finding.state, finding.factory_default, finding.text) == (state, factory_default,
                                                                      text)
    assert finding.to_json() == {"state": str(state), "factory_default": factory_default,
                                 "verdict": text, "reason": finding.reason}


def test_classify_http_reasons_name_what_settled_it():
    assert classify_http(http(None, activate_error=failed(
        RequestFailure.NOT_ACTIVATED, "401"))).reason == REFUSAL
    assert classify_http(logged_in(FACTORY, ACCEPTED)).reason == (
        "the factory login admin/12345 was accepted: the factory state of firmware before V5.3.")
    assert classify_http(logged_in(FACTORY, LOCKED, ACTIVATED)).reason == (
        "the camera has locked logins from this address after failed attempts (unlock in 900 s);"
        " even a right password is refused now; it reports Activated=true.")
    assert classify_http(logged_in(OWN, REFUSED, ACTIVATED)).reason == (
        "login as admin was refused (attempts left before the lock: 3), and "
        "/SDK/activateStatus reports Activated=true.")


# --- judge: per family and expected state -------------------------------------------------------

JUDGED = [
    # profile, expect, SADP after, HTTP facts, verdict, failed check (None: passed)
    ("current", FULL, sadp(), http(INACTIVE), Verdict.FACTORY_DEFAULT, None),
    ("g5", FULL, sadp(), http(INACTIVE_G5), Verdict.FACTORY_DEFAULT, None),
    ("legacy", FULL, sadp(activated=None), logged_in(FACTORY, ACCEPTED, device_info=info()),
     Verdict.FACTORY_DEFAULT, None),
    ("current", FULL, sadp(), http(ACTIVATED), Verdict.NOT_DEFAULT, "inactive-http"),
    ("g5", FULL, sadp(), logged_in(FACTORY, REFUSED, ACTIVATED), Verdict.NOT_DEFAULT,
     "inactive-http"),
    ("legacy", FULL, sadp(activated=None), logged_in(FACTORY, REFUSED), Verdict.NOT_DEFAULT,
     "default-credentials"),
    ("legacy", FULL, sadp(activated=None), logged_in(FACTORY, LOCKED), Verdict.NOT_DEFAULT,
     "default-credentials"),
    ("g5", FULL, sadp(), http(None, activate_error=failed(RequestFailure.NO_REPLY, "refused")),
     Verdict.UNREACHABLE, "http-answers"),
    ("current", FULL, sadp(), http(None, activate_error=failed(RequestFailure.MALFORMED, "?")),
     Verdict.NOT_DEFAULT, "http-answers"),
    ("current", BASIC, sadp(activated=True), logged_in(OWN, ACCEPTED, ACTIVATED,
                                                       device_info=info()),
     Verdict.FACTORY_DEFAULT, None),
    ("g5", BASIC, sadp(activated=True), logged_in(OWN, ACCEPTED, ACTIVATED, device_info=info()),
     Verdict.FACTORY_DEFAULT, None),
    ("legacy", BASIC, sadp(activated=None), logged_in(OWN, ACCEPTED, device_info=info()),
     Verdict.FACTORY_DEFAULT, None),
    ("current", BASIC, sadp(), http(INACTIVE), Verdict.NOT_DEFAULT, "still-activated"),
    ("legacy", BASIC, sadp(activated=None), logged_in(FACTORY, ACCEPTED, device_info=info()),
     Verdict.NOT_DEFAULT, "still-activated"),
    ("g5", BASIC, sadp(activated=True), logged_in(OWN, REFUSED, ACTIVATED), Verdict.NOT_DEFAULT,
     "still-activated"),
    ("current", BASIC, sadp(activated=True), logged_in(OWN, LOCKED, ACTIVATED),
     Verdict.NOT_DEFAULT, "still-activated"),
    ("legacy", BASIC, sadp(activated=None), logged_in(OWN, REFUSED), Verdict.NOT_DEFAULT,
     "http-answers"),
]


@pytest.mark.parametrize(("profile", "expect", "after", "evidence", "verdict", "check"), JUDGED,
                         ids=[f"{j[0]}-{j[1]}-{n}" for n, j in enumerate(JUDGED)])
def test_judge_per_family_and_expected_state(profile, expect, after, evidence, verdict, check):
    v = judge(mac=MAC, profile=PROFILES.get(profile), expect=expect, after=after, http=evidence)
    assert (v.verdict, v.check) == (verdict, check), v.reason
    finding = classify_http(evidence)
    answers = next(c for c in v.checks if c.name == "http-answers")
    assert answers.detail == (finding.reason if check == "http-answers" else finding.text)
    if check not in (None, "http-answers"):
        assert next(c for c in v.checks if c.name == check).detail == finding.text


def test_inactive_current_unit_on_its_default_address_is_factory_default():
    v = judge(mac=MAC, profile=PROFILES.get("current"), expect=FULL, after=sadp(), http=http())
    assert v.verdict is Verdict.FACTORY_DEFAULT and v.passed and v.fault is Fault.NONE
    assert [c.name for c in v.checks] == ["sadp-answers", "http-attribution", "http-answers",
                                          "inactive-sadp", "inactive-http", "default-ipv4"]
    assert v.reason == ("sadp-answers; http-attribution; http-answers; inactive-sadp; "
                        "inactive-http; default-ipv4: all passed")


def test_activated_unit_names_the_failed_check():
    v = judge(mac=MAC, profile=PROFILES.get("current"), expect=FULL,
              after=sadp(activated=True), http=http(ACTIVATED))
    assert v.verdict is Verdict.NOT_DEFAULT and v.fault is Fault.UNIT
    assert v.check == "inactive-sadp" and v.reason == "inactive-sadp: SADP Activated=true"


def test_wrong_address_after_reset_is_not_default():
    v = judge(mac=MAC, profile=PROFILES.get("current"), expect=FULL,
              after=sadp(ipv4="10.0.0.5"), http=http())
    assert v.check == "default-ipv4"
    assert v.reason == "default-ipv4: SADP IPv4 10.0.0.5/255.255.255.0, default " \
                       "192.168.1.64/255.255.255.0"


def test_legacy_needs_its_default_credentials():
    legacy = PROFILES.get("legacy")
    ok = judge(mac=MAC, profile=legacy, expect=FULL, after=sadp(activated=None),
               http=logged_in(FACTORY, ACCEPTED, device_info=info()))
    assert ok.passed
    bad = judge(mac=MAC, profile=legacy, expect=FULL, after=sadp(activated=None),
                http=logged_in(FACTORY, REFUSED))
    assert bad.check == "default-credentials"
    assert bad.reason == ("default-credentials: NOT DEFAULT: activated; admin/12345 rejected "
                          "(retries left: 3)")


def test_no_sadp_reply_is_unreachable():
    v = judge(mac=MAC, profile=PROFILES.get("g5"), expect=FULL, after=None, http=None)
    assert v.verdict is Verdict.UNREACHABLE and v.check == "sadp-answers"
    assert v.reason == f"unit {MAC} never answered SADP after the reset"


def test_sadp_without_http_is_unreachable():
    v = judge(mac=MAC, profile=PROFILES.get("g5"), expect=FULL, after=sadp(),
              http=http(None, activate_error=RequestError(RequestFailure.NO_REPLY,
                                                          "connection refused")))
    assert v.verdict is Verdict.UNREACHABLE and v.check == "http-answers"
    assert v.reason == "http-answers: connection refused"
    none = judge(mac=MAC, profile=PROFILES.get("g5"), expect=FULL, after=sadp(), http=None)
    assert none.reason == "http-answers: no HTTP check was possible"


def test_an_answer_on_a_shared_address_is_never_credited():
    other = sadp(mac="44:47:cc:00:00:02", activated=True)
    v = judge(mac=MAC, profile=PROFILES.get("current"), expect=FULL, after=sadp(),
              http=http(), others=[other])
    assert not v.passed and v.check == "http-attribution"
    assert "2 units answer on 192.168.1.64" in v.reason


def test_a_logged_in_answer_from_another_mac_is_rejected():
    v = judge(mac=MAC, profile=PROFILES.get("legacy"), expect=FULL, after=sadp(activated=None),
              http=logged_in(FACTORY, ACCEPTED, device_info=info("44:47:cc:00:00:09")))
    assert v.check == "http-attribution" and "another unit answered" in v.reason


def test_basic_restore_keeps_network_and_users_and_resets_parameters():
    before = sadp(ipv4="10.1.2.3", gateway="10.1.2.1", activated=True)
    after = sadp(ipv4="10.1.2.3", gateway="10.1.2.1", activated=True)
    ok = judge(mac=MAC, profile=PROFILES.get("current"), expect=BASIC, after=after,
               before=before, http=logged_in(OWN, ACCEPTED, ACTIVATED, device_info=info()))
    assert ok.passed, ok.reason
    moved = judge(mac=MAC, profile=PROFILES.get("current"), expect=BASIC,
                  after=sadp(activated=True), before=before,
                  http=logged_in(OWN, ACCEPTED, ACTIVATED, device_info=info()))
    assert moved.check == "network-kept"
    assert moved.reason == ("network-kept: IPv4 10.1.2.3/255.255.255.0 gw 10.1.2.1 before, "
                            "192.168.1.64/255.255.255.0 gw 0.0.0.0 after")
    kept_name = judge(mac=MAC, profile=PROFILES.get("current"), expect=BASIC, after=after,
                      before=before, http=logged_in(OWN, ACCEPTED, ACTIVATED,
                                                    device_info=info(name="yard")))
    assert kept_name.check == "parameters-default"
    assert kept_name.reason == "parameters-default: deviceName 'yard', default 'IP CAMERA'"
