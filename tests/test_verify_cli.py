"""``rig verify`` and the HTTP evidence of factory state behind it.

The command runs end to end against simulated cameras on loopback (127.0.1.120-139, and the unused
127.0.1.149 for "unreachable"); check_http's requests and the judge's reading of the facts
they gather are also driven with a scripted client, for the answers the simulator does not give
(garbage, errors, locks on legacy firmware).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from rig.camera.http_evidence import (
    HttpEvidence,
    LoginTried,
    RequestError,
    RequestFailure,
    check_http,
    factory_logins,
)
from rig.camera.isapi_errors import ConnectionFailed, IsapiError, MalformedReply, NotActivated
from rig.camera.isapi_types import ActivateStatus, Credentials, DeviceInfo, UserCheck
from rig.camera.profiles import ProfileSet
from rig.cli import main
from rig.commands.verify import parse_target
from rig.sim.camera import VirtualCamera
from rig.sim.fleet import CameraFleet
from rig.verify import HttpState, classify_http

PROFILES = ProfileSet.load()
SCALE = 1000.0


@contextmanager
def sim_unit(profile: str, first: int) -> Iterator[VirtualCamera]:
    with CameraFleet.start(1, profiles=(profile,), first=first, http_port=0,
                           time_scale=SCALE) as fleet:
        assert fleet.wait_running(5)
        yield fleet.cameras[0]


def verify(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def target(cam: VirtualCamera) -> str:
    return f"{cam.address}:{cam.http_port}"


# --- HOST[:PORT] --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("192.168.1.64", ("192.168.1.64", 80)), ("192.168.1.64:8080", ("192.168.1.64", 8080)),
    ("[::1]:8080", ("::1", 8080)), ("[fe80::1]", ("fe80::1", 80)), ("fe80::1", ("fe80::1", 80)),
    ("cam-3.bench:81", ("cam-3.bench", 81))])
def test_parse_target(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["", "[::1", "[::1]8080", "[nothex]:80", "1.2.3.4:0",
                                  "1.2.3.4:65536", "1.2.3.4:http", "a b:80", "http://x/",
                                  "[fe80::1%eth1]:80"])
def test_parse_target_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_target(text)


@pytest.mark.parametrize("argv", [["1.2.3.4:0"], ["1.2.3.4", "--timeout", "0"],
                                  ["1.2.3.4", "--timeout", "soon"], []])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["verify", *argv])
    assert caught.value.code == 2


def test_user_without_password_is_a_usage_error(capsys):
    code, out, err = verify(capsys, "127.0.1.149", "--user", "admin")
    assert code == 2 and "--user needs --password-env" in err and out == ""


def test_a_password_on_the_command_line_is_refused_unechoed(capsys):
    """issue 16.5: a command line shows in the process list; --password points to
    --password-env and never repeats what it was given."""
    for argv in (["--password", "Secret123!"], ["--password=Secret123!"]):
        code, out, err = verify(capsys, "127.0.1.149", *argv)
        assert code == 2 and out == "" and "--password-env VAR" in err
        assert "Secret123!" not in err


def test_password_env_not_set_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("RIG_TEST_NO_SUCH_PW", raising=False)
    code, out, err = verify(capsys, "127.0.1.149", "--password-env", "RIG_TEST_NO_SUCH_PW")
    assert code == 2 and "RIG_TEST_NO_SUCH_PW is not set" in err and out == ""


# --- end to end against the simulated camera ----------------------------------------------------

def test_inactive_unit_is_factory_default(capsys):
    with sim_unit("current", 120) as cam:
        code, out, _ = verify(capsys, target(cam))
        assert code == 0
        assert "FACTORY DEFAULT: inactive (activation required)" in out
        assert out.splitlines()[0] == f"target:            {target(cam)}"
        assert "  logins spent:    0" in out
        code, out, _ = verify(capsys, target(cam), "--json")
    data = json.loads(out)
    assert code == 0 and data["state"] == "inactive" and data["factory_default"] is True
    assert data["activate_status"]["activated"] is False and data["login_attempts"] == 0


def test_g5_inactive_unit_is_factory_default(capsys):
    with sim_unit("g5", 121) as cam:
        code, out, _ = verify(capsys, target(cam))
    assert code == 0 and "FACTORY DEFAULT: inactive" in out and "supportVersion=3" in out


def test_activated_unit_is_not_default_and_costs_one_attempt(capsys):
    with sim_unit("current", 122) as cam:
        cam.provision("Secret123!")
        left = cam.profile.lockout_attempts - 1
        code, out, _ = verify(capsys, target(cam))
        assert code == 1
        assert f"NOT DEFAULT: activated; admin/12345 rejected (retries left: {left})" in out
        code, out, _ = verify(capsys, target(cam), "--json")
    data = json.loads(out)
    assert code == 1 and data["state"] == "activated" and data["factory_default"] is False
    assert data["login_attempts"] == 1 and data["user_check"]["retry_login_time"] == left - 1


def test_legacy_unit_with_admin_12345_is_factory_default(capsys):
    with sim_unit("legacy", 123) as cam:
        code, out, _ = verify(capsys, target(cam))
        assert code == 0
        assert "FACTORY DEFAULT: legacy default credentials admin/12345 accepted" in out
        assert cam.mac in out and cam.serial in out and "  profile:         legacy" in out
        code, out, _ = verify(capsys, target(cam), "--json")
    data = json.loads(out)
    assert data["state"] == "default-credentials" and data["profile"] == "legacy"
    assert data["device_info"]["mac_address"] == cam.mac
    assert data["network"]["ip_address"] == cam.address and data["login_attempts"] == 1


def test_legacy_unit_with_a_changed_password_is_not_default(capsys):
    with sim_unit("legacy", 124) as cam:
        cam.provision("Secret123!")
        code, out, _ = verify(capsys, target(cam))
    assert code == 1 and "NOT DEFAULT: activated; admin/12345 rejected" in out


def test_given_credentials_show_the_unit_and_never_the_password(capsys, monkeypatch):
    monkeypatch.setenv("RIG_TEST_PW", "Secret123!")
    with sim_unit("g5", 125) as cam:
        cam.provision("Secret123!")
        code, out, _ = verify(capsys, target(cam), "--password-env", "RIG_TEST_PW")
        assert code == 1 and "NOT DEFAULT: activated; login as admin accepted" in out
        assert cam.mac in out and "  profile:         g5" in out and "Secret123!" not in out
        code, out, _ = verify(capsys, target(cam), "--password-env", "RIG_TEST_PW", "--json")
    assert code == 1 and "Secret123!" not in out
    assert json.loads(out)["device_info"]["serial_number"] == cam.serial


def test_no_default_login_spends_nothing(capsys):
    with sim_unit("current", 126) as cam:
        cam.provision("Secret123!")
        code, out, _ = verify(capsys, target(cam), "--no-default-login", "--json")
        data = json.loads(out)
        assert code == 1 and data["login_attempts"] == 0 and data["user_check"] is None
        # the camera's counter is untouched: the next wrong login is still the first failure
        code, out, _ = verify(capsys, target(cam), "--json")
        assert json.loads(out)["user_check"]["retry_login_time"] == \
            cam.profile.lockout_attempts - 1


def test_no_default_login_on_legacy_cannot_decide(capsys):
    with sim_unit("legacy", 127) as cam:
        code, out, _ = verify(capsys, target(cam), "--no-default-login")
    assert code == 3 and out.splitlines()[1].startswith("ERROR: ")


def test_locked_activated_unit_is_reported_as_locked(capsys):
    with sim_unit("current", 128) as cam:
        cam.provision("Secret123!")
        for _ in range(cam.profile.lockout_attempts):
            verify(capsys, target(cam))
        code, out, _ = verify(capsys, target(cam), "--json")
    data = json.loads(out)
    assert code == 1 and data["state"] == "locked" and data["user_check"]["locked"] is True
    assert data["verdict"].startswith("NOT DEFAULT: activated; login locked for this address")


def test_unreachable_host_exits_3_with_a_clear_message(capsys):
    code, out, _ = verify(capsys, "127.0.1.149:8080", "--timeout", "0.5")
    assert code == 3
    assert out.splitlines()[1].startswith("UNREACHABLE: 127.0.1.149:8080 GET /SDK/activateStatus")
    assert "connection refused" in out
    code, out, _ = verify(capsys, "127.0.1.149:8080", "--timeout", "0.5", "--json")
    data = json.loads(out)
    assert code == 3 and data["state"] == "unreachable" and data["factory_default"] is None


# --- check_http's facts and the judge's reading, with a scripted client --------------------------

@dataclass
class ScriptedClient:
    """Stands in for IsapiClient: each method returns or raises what the test scripted."""

    status: ActivateStatus | Exception
    check: UserCheck | Exception | None = None
    info: DeviceInfo | Exception | None = None
    target: str = "192.0.2.1:80"
    auth_requests: int = 0
    logins: list[Credentials] = field(default_factory=list)

    @staticmethod
    def _give(value):
        if isinstance(value, Exception):
            raise value
        return value

    def activate_status(self) -> ActivateStatus:
        return self._give(self.status)

    def user_check(self, creds: Credentials) -> UserCheck:
        self.logins.append(creds)
        self.auth_requests += 1
        return self._give(self.check)

    def device_info(self, creds: Credentials) -> DeviceInfo:
        return self._give(self.info or IsapiError("no deviceInfo"))

    def network(self, creds: Credentials):
        raise IsapiError("no network")


LEGACY = ActivateStatus(activated=None, support_version=None, supported=False)
ACTIVATED = ActivateStatus(activated=True, support_version=None, supported=True)
REFUSED = UserCheck(ok=False, http_status=401, lock_status="unlock", retry_login_time=3)
LOCKED = UserCheck(ok=False, http_status=401, lock_status="locked", unlock_time=900,
                   retry_login_time=0)


INACTIVE = ActivateStatus(activated=False, support_version=3, supported=True)
ACCEPTED = UserCheck(ok=True, http_status=200, status_value=200)


def test_factory_login_comes_from_the_profiles():
    assert factory_logins(PROFILES) == (Credentials("admin", "12345"),)


def concluded(evidence: HttpEvidence) -> tuple[HttpState, bool | None]:
    finding = classify_http(evidence)
    return finding.state, finding.factory_default


@pytest.mark.parametrize(("status", "failure", "state"), [
    (MalformedReply("garbage"), RequestFailure.MALFORMED, HttpState.ERROR),
    (ConnectionFailed("refused", kind="refused"), RequestFailure.NO_REPLY, HttpState.UNREACHABLE),
    (NotActivated("notActivated"), RequestFailure.NOT_ACTIVATED, HttpState.INACTIVE)])
def test_activate_status_failures_spend_no_login(status, failure, state):
    client = ScriptedClient(status=status)
    evidence = check_http(client, PROFILES)
    assert client.logins == [] and evidence.login is None and evidence.login_attempts == 0
    assert evidence.activate_status is None and evidence.activate_error is not None
    assert evidence.activate_error.failure is failure
    assert evidence.activate_error.message == str(status)
    assert concluded(evidence)[0] is state


def test_no_reply_records_the_transport_kind():
    evidence = check_http(ScriptedClient(status=ConnectionFailed("timed out", kind="timeout")),
                          PROFILES)
    assert evidence.no_reply and evidence.activate_error.transport == "timeout"
    assert evidence.to_json()["activate_error"] == {
        "failure": "no-reply", "message": "timed out", "transport": "timeout",
        "http_status": None}


@pytest.mark.parametrize("credentials", [None, Credentials("admin", "Secret123!")])
def test_inactive_spends_no_login_even_with_credentials(credentials):
    client = ScriptedClient(status=INACTIVE, check=ACCEPTED)
    evidence = check_http(client, PROFILES, credentials=credentials)
    assert client.logins == [] and evidence.activate_status == INACTIVE
    assert concluded(evidence) == (HttpState.INACTIVE, True)


def test_activate_status_http_error_falls_back_to_one_login():
    client = ScriptedClient(status=IsapiError("HTTP 401", http_status=401), check=REFUSED)
    evidence = check_http(client, PROFILES)
    assert client.logins == [Credentials("admin", "12345")] and evidence.login_attempts == 1
    assert evidence.activate_status is None and evidence.activate_error == RequestError(
        RequestFailure.HTTP_ERROR, "HTTP 401", http_status=401)
    assert evidence.login == LoginTried("admin", "12345") and evidence.user_check == REFUSED
    assert evidence.notes and "activateStatus unavailable" in evidence.notes[0]
    assert concluded(evidence) == (HttpState.ACTIVATED, False)


def test_given_credentials_refused_on_legacy_cannot_decide():
    client = ScriptedClient(status=LEGACY, check=REFUSED)
    evidence = check_http(client, PROFILES, credentials=Credentials("admin", "Secret123!"))
    assert client.logins == [Credentials("admin", "Secret123!")]
    assert evidence.login == LoginTried("admin") and not evidence.login.factory
    assert evidence.to_json()["login"] == "admin" and not evidence.to_json()["default_login"]
    assert "Secret123!" not in json.dumps(evidence.to_json())
    assert "Secret123!" not in repr(evidence)
    assert concluded(evidence) == (HttpState.ERROR, None)


def test_given_factory_credentials_are_recorded_as_the_factory_login():
    client = ScriptedClient(status=LEGACY, check=ACCEPTED)
    evidence = check_http(client, PROFILES, credentials=Credentials("admin", "12345"),
                          try_default=False)
    assert evidence.login == LoginTried("admin", "12345") and evidence.login.factory
    assert concluded(evidence) == (HttpState.DEFAULT_CREDENTIALS, True)


def test_lock_on_unknown_firmware_is_unknown():
    evidence = check_http(ScriptedClient(status=LEGACY, check=LOCKED), PROFILES)
    assert evidence.user_check == LOCKED and evidence.user_check.locked
    assert evidence.activate_status == LEGACY and evidence.login_attempts == 1
    finding = classify_http(evidence)
    assert (finding.state, finding.factory_default) == (HttpState.LOCKED, None)
    assert finding.text == "UNKNOWN: login locked for this address (unlock in 900 s)"


def test_not_activated_at_login_means_inactive():
    client = ScriptedClient(status=LEGACY, check=NotActivated("401 notActivated"))
    evidence = check_http(client, PROFILES)
    assert evidence.user_check is None and evidence.login_attempts == 1
    assert evidence.login_error.failure is RequestFailure.NOT_ACTIVATED
    assert concluded(evidence) == (HttpState.INACTIVE, True)


@pytest.mark.parametrize(("error", "state"), [
    (ConnectionFailed("reset", kind="reset"), HttpState.UNREACHABLE),
    (MalformedReply("garbage"), HttpState.ERROR), (IsapiError("HTTP 500"), HttpState.ERROR)])
def test_login_without_a_usable_answer(error, state):
    client = ScriptedClient(status=LEGACY, check=error)
    evidence = check_http(client, PROFILES)
    assert len(client.logins) == 1 and evidence.login_error.message == str(error)
    assert concluded(evidence) == (state, None)


def test_details_failing_after_a_good_login_are_notes():
    evidence = check_http(ScriptedClient(status=ACTIVATED, check=ACCEPTED), PROFILES)
    assert evidence.device_info is None and evidence.network is None
    assert [n.split(":")[0] for n in evidence.notes] == ["deviceInfo unavailable",
                                                         "IPv4 settings unavailable"]
    assert concluded(evidence) == (HttpState.DEFAULT_CREDENTIALS, True)


def test_activated_with_no_login_allowed():
    client = ScriptedClient(status=ACTIVATED)
    evidence = check_http(client, PROFILES, try_default=False)
    assert client.logins == [] and evidence.login is None and evidence.login_attempts == 0
    finding = classify_http(evidence)
    assert (finding.state, finding.factory_default) == (HttpState.ACTIVATED, False)
    assert finding.text.startswith("NOT DEFAULT: activated (reported by")


def test_legacy_with_no_login_allowed_cannot_decide():
    client = ScriptedClient(status=LEGACY)
    evidence = check_http(client, PROFILES, try_default=False)
    assert client.logins == [] and concluded(evidence) == (HttpState.ERROR, None)
