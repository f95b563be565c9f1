"""The HTTP evidence of factory state: what the bench asked a camera and what it answered.

Facts only: whether the camera is back at its factory defaults is decided from these by the
judge (``rig.verify.classify_http``), never here. What the collector does decide is what to
ask, because a question can cost something (docs/hikvision-protocols.md §3.1):

- V5.3.0 and later: ``GET /SDK/activateStatus`` tells without any login whether the unit is
  inactive (no password: its factory state).
- before V5.3.0: there is no such endpoint (404) and only a login can tell; each failed login
  counts toward the illegal-login lock.

So ``check_http`` asks the free question first and spends at most ONE login attempt, and none
when the free answer already settles it (inactive, refused as not activated, no reply, an
unreadable reply) or when no login is allowed. A factory login (admin/12345) is public and
recorded as such; a password someone set is never recorded, only its user name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import ConnectionFailed, IsapiError, MalformedReply, NotActivated
from rig.camera.isapi_types import (
    ActivateStatus,
    Credentials,
    DeviceInfo,
    Ipv4Settings,
    UserCheck,
)
from rig.camera.profiles import ProfileSet


class RequestFailure(enum.StrEnum):
    """How a request failed to give a usable answer (the client's exception, as a word)."""

    NO_REPLY = "no-reply"            # no HTTP reply at all: refused, timeout, unreachable…
    NOT_ACTIVATED = "not-activated"  # refused with notActivated: the camera has no password yet
    MALFORMED = "malformed"          # a reply that cannot be read
    HTTP_ERROR = "http-error"        # any other error answer (HTTP 401, 500…)


@dataclass(frozen=True)
class RequestError:
    """A request that got no usable answer: how it failed, and the client's own message
    (which names the target, method and path)."""

    failure: RequestFailure
    message: str
    transport: str | None = None      # no reply: why ("refused", "timeout"…, ConnectionFailed)
    http_status: int | None = None

    @classmethod
    def of(cls, exc: IsapiError) -> RequestError:
        """The fact an ISAPI exception stands for."""
        if isinstance(exc, ConnectionFailed):
            return cls(RequestFailure.NO_REPLY, str(exc), transport=exc.kind)
        if isinstance(exc, NotActivated):
            failure = RequestFailure.NOT_ACTIVATED
        elif isinstance(exc, MalformedReply):
            failure = RequestFailure.MALFORMED
        else:
            failure = RequestFailure.HTTP_ERROR
        return cls(failure, str(exc), http_status=exc.http_status)

    def to_json(self) -> dict[str, Any]:
        return {"failure": str(self.failure), "message": self.message,
                "transport": self.transport, "http_status": self.http_status}


@dataclass(frozen=True)
class LoginTried:
    """The one login sent. Only a factory login's password is kept: it is public (from the
    firmware profiles); a password someone set is never recorded, only its user name."""

    user: str
    factory_password: str | None = None

    @property
    def factory(self) -> bool:
        return self.factory_password is not None

    @property
    def text(self) -> str:
        """``admin/12345`` for a factory login, else just the user name."""
        return f"{self.user}/{self.factory_password}" if self.factory else self.user


@dataclass(frozen=True)
class HttpEvidence:
    """What one HTTP check asked and what the camera said. Never holds a set password."""

    target: str
    activate_status: ActivateStatus | None = None  # the answer (supported=False: 404, legacy)
    activate_error: RequestError | None = None     # …or why there was none
    login: LoginTried | None = None                # None: no login was sent
    user_check: UserCheck | None = None            # the login's answer, with the lock fields
    login_error: RequestError | None = None        # …or why there was none
    device_info: DeviceInfo | None = None          # read only with a login that worked
    network: Ipv4Settings | None = None
    profile: str | None = None                     # firmware family matched from deviceInfo
    login_attempts: int = 0                        # credential checks sent: 0 or 1
    notes: tuple[str, ...] = ()                    # side findings, in words

    @property
    def no_reply(self) -> bool:
        """No HTTP reply to the request that ended the check: worth asking again later."""
        return any(e is not None and e.failure is RequestFailure.NO_REPLY
                   for e in (self.activate_error, self.login_error))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping of the facts (records, ``rig verify --json``)."""
        def part(value: Any) -> Any:
            return value.to_json() if value is not None else None

        return {"target": self.target, "activate_status": part(self.activate_status),
                "activate_error": part(self.activate_error), "user_check": part(self.user_check),
                "login": self.login.text if self.login else None,
                "default_login": bool(self.login and self.login.factory),
                "login_error": part(self.login_error), "device_info": part(self.device_info),
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

    1. ``GET /SDK/activateStatus`` (free).
    2. Unless that settled it (``login_needed``), one userCheck: with ``credentials`` if given,
       else (``try_default``) with the factory login; none when neither is allowed.
    3. With a login that works, deviceInfo and the IPv4 settings too (no extra risk: those
       credentials are known good).
    Never raises for camera trouble: every failure is a recorded fact.
    """
    notes: list[str] = []
    evidence = _ask_activate_status(client, notes)
    if login_needed(evidence):
        defaults = factory_logins(profile_set)
        login = credentials or (defaults[0] if try_default and defaults else None)
        if login is not None:
            evidence = _log_in(client, profile_set, evidence, login, defaults, notes)
    return replace(evidence, notes=tuple(notes))


def _ask_activate_status(client: IsapiClient, notes: list[str]) -> HttpEvidence:
    """The free question. An error answer is kept and noted: the camera answered, just not this
    endpoint, which is firmware-dependent (legacy is uncertain,
    docs/hikvision-protocols.md §2.3)."""
    try:
        return HttpEvidence(target=client.target, activate_status=client.activate_status())
    except IsapiError as exc:
        error = RequestError.of(exc)
        if error.failure is RequestFailure.HTTP_ERROR:
            notes.append(f"activateStatus unavailable: {exc}")
        return HttpEvidence(target=client.target, activate_error=error)


def login_needed(evidence: HttpEvidence) -> bool:
    """Whether a login may tell more than the free question did: not after no reply, a
    notActivated refusal, an unreadable reply or Activated=false. The endpoint missing (404) or
    answering with an error leaves it open."""
    error = evidence.activate_error
    if error is not None:
        return error.failure is RequestFailure.HTTP_ERROR
    status = evidence.activate_status
    return not (status is not None and status.supported and status.activated is False)


def _log_in(client: IsapiClient, profile_set: ProfileSet, evidence: HttpEvidence,
            login: Credentials, defaults: tuple[Credentials, ...],
            notes: list[str]) -> HttpEvidence:
    """The one userCheck, and with a login that works the unit's details."""
    tried = LoginTried(login.user, login.password if login in defaults else None)
    before = client.auth_requests
    try:
        check = client.user_check(login)
    except IsapiError as exc:
        return replace(evidence, login=tried, login_error=RequestError.of(exc),
                       login_attempts=min(client.auth_requests - before, 1))
    evidence = replace(evidence, login=tried, user_check=check,
                       login_attempts=min(client.auth_requests - before, 1))
    return _details(client, login, profile_set, evidence, notes) if check.ok else evidence


def _details(client: IsapiClient, login: Credentials, profile_set: ProfileSet,
             evidence: HttpEvidence, notes: list[str]) -> HttpEvidence:
    """deviceInfo, IPv4 settings and the firmware family, with a working login. A failure here
    is a note: the login already answered the question."""
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
    return replace(evidence, **found)
