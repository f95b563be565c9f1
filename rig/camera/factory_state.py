"""The HTTP evidence of factory state: is this camera back at its factory defaults?

What "factory default" means depends on the firmware (reference §3.1):
- V5.3.0 and later: the unit is **inactive** (no password). ``GET /SDK/activateStatus`` says so
  without any login.
- before V5.3.0: the unit is active with **admin/12345**, and has no activateStatus endpoint.
  Only a login can tell, and a login may fail: each failure counts toward the illegal-login lock.

So ``check_http`` asks the free question first and spends at most ONE login attempt: either with
the credentials it was given or, failing those, once with the profiles' factory login. The
evidence records what was asked, what the camera said and how many logins it cost, so a verdict
can be argued from it later (the verifier adds SADP to this).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import ConnectionFailed, IsapiError, MalformedReply, NotActivated
from rig.camera.isapi_types import ActivateStatus, Credentials, DeviceInfo, Ipv4Settings, UserCheck
from rig.camera.profiles import ProfileSet


class HttpState(enum.StrEnum):
    """What the HTTP side of the camera showed."""

    INACTIVE = "inactive"                         # no password yet: factory state, V5.3+
    DEFAULT_CREDENTIALS = "default-credentials"   # admin/12345 works: factory state, legacy
    ACTIVATED = "activated"                       # has a password someone set
    UNREACHABLE = "unreachable"                   # no HTTP answer at all
    LOCKED = "locked"                             # login locked for this address: cannot tell
    ERROR = "error"                               # answered, but not in a way that settles it


@dataclass(frozen=True)
class HttpEvidence:
    """Everything one HTTP check learned, and the state it concludes. Never holds a password."""

    target: str
    state: HttpState
    factory_default: bool | None
    reason: str
    activate_status: ActivateStatus | None = None
    user_check: UserCheck | None = None
    login: str | None = None             # login tried: "admin/12345" (a factory login, public)
    #                                      or just the user name (a password someone set)
    default_login: bool = False          # that login was a factory login
    device_info: DeviceInfo | None = None
    network: Ipv4Settings | None = None
    profile: str | None = None           # firmware family matched from deviceInfo
    login_attempts: int = 0              # credential checks sent: 0 or 1
    notes: tuple[str, ...] = ()          # side findings that did not change the state

    @property
    def verdict(self) -> str:
        """One line for people: FACTORY DEFAULT / NOT DEFAULT / UNKNOWN / UNREACHABLE / ERROR."""
        check = self.user_check
        login = self.login if self.default_login else f"as {self.login}"
        if self.state is HttpState.INACTIVE:
            return "FACTORY DEFAULT: inactive (activation required)"
        if self.state is HttpState.DEFAULT_CREDENTIALS:
            return f"FACTORY DEFAULT: legacy default credentials {login} accepted"
        if self.state is HttpState.UNREACHABLE:
            return f"UNREACHABLE: {self.reason}"
        if self.state is HttpState.ERROR:
            return f"ERROR: {self.reason}"
        if self.state is HttpState.LOCKED:
            head = "NOT DEFAULT: activated; " if self.factory_default is False else "UNKNOWN: "
            unlock = check.unlock_time if check else None
            return head + "login locked for this address" + (
                f" (unlock in {unlock} s)" if unlock else "")
        if check is None:
            return "NOT DEFAULT: activated (reported by /SDK/activateStatus; no login tried)"
        if check.ok:
            return f"NOT DEFAULT: activated; login {login} accepted"
        left = check.retry_login_time
        return f"NOT DEFAULT: activated; {login} rejected" + (
            f" (retries left: {left})" if left is not None else "")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (records, reports, ``rig verify --json``)."""
        def part(value: Any) -> Any:
            return value.to_json() if value is not None else None

        return {"target": self.target, "state": str(self.state),
                "factory_default": self.factory_default, "verdict": self.verdict,
                "reason": self.reason, "activate_status": part(self.activate_status),
                "user_check": part(self.user_check), "login": self.login,
                "default_login": self.default_login, "device_info": part(self.device_info),
                "network": part(self.network), "profile": self.profile,
                "login_attempts": self.login_attempts, "notes": list(self.notes)}



def factory_logins(profile_set: ProfileSet) -> tuple[Credentials, ...]:
    """The logins a unit has straight from the factory (legacy: admin/12345), from the profiles."""
    seen: list[Credentials] = []
    for p in profile_set.profiles:
        if p.default_password is not None:
            creds = Credentials(p.default_user, p.default_password)
            if creds not in seen:
                seen.append(creds)
    return tuple(seen)


def check_http(client: IsapiClient, profile_set: ProfileSet, *,
               credentials: Credentials | None = None,
               try_default: bool = True) -> HttpEvidence:
    """Collect the HTTP evidence of factory state, spending at most ONE login attempt.

    1. ``GET /SDK/activateStatus`` (free). Activated=false → inactive, factory default.
    2. Otherwise (activated, or no such endpoint as on legacy firmware) one userCheck: with
       ``credentials`` if given, else (``try_default``) with the factory login. The factory login
       accepted → default-credentials; refused → activated, with the lock counter reported.
    3. With a login that works, deviceInfo and the IPv4 settings are read too (no extra risk:
       those credentials are known good).
    Never raises for camera trouble: unreachable and malformed answers become states.
    """
    target = client.target
    defaults = factory_logins(profile_set)
    notes: list[str] = []

    def done(state: HttpState, factory_default: bool | None, reason: str,
             **found: Any) -> HttpEvidence:
        return HttpEvidence(target=target, state=state, factory_default=factory_default,
                            reason=reason, notes=tuple(notes), **found)

    try:
        status = client.activate_status()
    except ConnectionFailed as exc:
        return done(HttpState.UNREACHABLE, None, str(exc))
    except NotActivated:
        return done(HttpState.INACTIVE, True, _INACTIVE_BY_REFUSAL)
    except MalformedReply as exc:
        return done(HttpState.ERROR, None, f"unreadable activation status: {exc}")
    except IsapiError as exc:
        # The camera answered, just not this endpoint: firmware-dependent (legacy is uncertain,
        # reference §2.3). Go on as if the endpoint were missing.
        notes.append(f"activateStatus unavailable: {exc}")
        status = ActivateStatus(activated=None, support_version=None, supported=False)

    if status.supported and status.activated is False:
        return done(HttpState.INACTIVE, True,
                    "GET /SDK/activateStatus reports Activated=false: the camera has no "
                    "password yet, the factory state of V5.3+ firmware.",
                    activate_status=status)

    login = credentials or (defaults[0] if try_default and defaults else None)
    known_activated = status.activated is True
    if login is None:
        if known_activated:
            return done(HttpState.ACTIVATED, False,
                        "GET /SDK/activateStatus reports Activated=true: the camera has been "
                        "given a password; no login was tried.", activate_status=status)
        return done(HttpState.ERROR, None,
                    "the firmware has no /SDK/activateStatus and no login was allowed, so "
                    "nothing tells whether it still has its factory login.",
                    activate_status=status)

    is_default = login in defaults
    who = f"{login.user}/{login.password}" if is_default else login.user
    before = client.auth_requests
    found: dict[str, Any] = {"activate_status": status, "login": who,
                             "default_login": is_default}
    try:
        check = client.user_check(login)
    except NotActivated:
        return done(HttpState.INACTIVE, True, _INACTIVE_BY_REFUSAL,
                    login_attempts=min(client.auth_requests - before, 1), **found)
    except ConnectionFailed as exc:
        return done(HttpState.UNREACHABLE, None, str(exc),
                    login_attempts=min(client.auth_requests - before, 1), **found)
    except IsapiError as exc:
        return done(HttpState.ERROR, None, f"login check failed: {exc}",
                    login_attempts=min(client.auth_requests - before, 1), **found)
    found.update(user_check=check, login_attempts=min(client.auth_requests - before, 1))
    if not is_default:
        who = f"login as {who}"

    if check.ok:
        found.update(_details(client, login, profile_set, notes))
        if is_default:
            return done(HttpState.DEFAULT_CREDENTIALS, True,
                        f"the factory login {who} was accepted: the factory state of firmware "
                        "before V5.3.", **found)
        return done(HttpState.ACTIVATED, False,
                    f"{who} was accepted: the camera has a password that someone set.", **found)
    if check.locked:
        return done(HttpState.LOCKED, False if known_activated else None,
                    "the camera has locked logins from this address after failed attempts "
                    f"(unlock in {check.unlock_time} s); even a right password is refused now"
                    + ("; it reports Activated=true." if known_activated else "."), **found)
    left = "" if check.retry_login_time is None else \
        f" (attempts left before the lock: {check.retry_login_time})"
    if is_default:
        return done(HttpState.ACTIVATED, False,
                    f"the factory login {who} was refused{left}: the password was changed.",
                    **found)
    if known_activated:
        return done(HttpState.ACTIVATED, False,
                    f"{who} was refused{left}, and /SDK/activateStatus reports Activated=true.",
                    **found)
    return done(HttpState.ERROR, None,
                f"{who} was refused{left}; the factory login was not tried (one login per "
                "check), so the factory state is unknown.", **found)


_INACTIVE_BY_REFUSAL = ("the camera refuses requests with notActivated: it has no password yet, "
                        "the factory state of V5.3+ firmware.")


def _details(client: IsapiClient, login: Credentials, profile_set: ProfileSet,
             notes: list[str]) -> dict[str, Any]:
    """deviceInfo, IPv4 settings and the firmware family, with a working login.

    A failure here is a note, not a verdict: the login already settled the state.
    """
    found: dict[str, Any] = {}
    try:
        info = client.device_info(login)
    except IsapiError as exc:
        notes.append(f"deviceInfo unavailable: {exc}")
    else:
        found["device_info"] = info
        if info.firmware_version:
            profile = profile_set.for_firmware(info.firmware_version)
            if profile is not None:
                found["profile"] = profile.name
            else:
                notes.append(f"firmware {info.firmware_version} matches no known profile")
    try:
        found["network"] = client.network(login)
    except IsapiError as exc:
        notes.append(f"IPv4 settings unavailable: {exc}")
    return found
