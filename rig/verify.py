"""Evidence → verdict: is this unit back at factory defaults, and if not, which check failed?

The one judge: evidence (SADP replies, ``rig.camera.http_evidence.HttpEvidence``) holds what was
seen; everything concluded from it is decided here. ``classify_http`` reads the HTTP facts alone
(what ``rig verify HOST`` reports for one camera); ``judge`` weighs them with SADP for one unit
of a run.

Checks are named measurements with a pass rule (OpenHTF's idea), so a report can say exactly
what was wrong: "inactive-sadp: SADP says Activated=true". What "default" means depends on the
firmware family and on the method: a full reset (button, web "Default") must leave a current
unit inactive on its default address and a legacy unit on admin/12345; a basic web restore
("Restore") must keep the network and the users but reset the parameters.

An HTTP answer is only credited to a unit when it can be attributed to it: by deviceInfo's MAC
when a login worked, else by an address that no other unit on the bench answers on. Every unit
on a real bench comes back on 192.168.1.64, so an answer there is not evidence about any one
of them (see the identity strategies).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rig.camera.http_evidence import HttpEvidence, RequestError, RequestFailure
from rig.camera.isapi_types import UserCheck
from rig.camera.profiles import DEFAULT_DEVICE_NAME, FirmwareProfile
from rig.camera.sadp import SadpDevice
from rig.identity import Claim
from rig.vocabulary import PASSING_VERDICTS, ExpectedState, Fault, Verdict


class HttpState(enum.StrEnum):
    """What the HTTP side of a camera shows, as the judge reads its evidence."""

    INACTIVE = "inactive"                         # no password yet: factory state, V5.3+
    DEFAULT_CREDENTIALS = "default-credentials"   # admin/12345 works: factory state, legacy
    ACTIVATED = "activated"                       # has a password someone set
    UNREACHABLE = "unreachable"                   # no HTTP answer at all
    LOCKED = "locked"                             # login locked for this address: cannot tell
    ERROR = "error"                               # answered, but not in a way that settles it


@dataclass(frozen=True)
class HttpFinding:
    """The judge's reading of one HTTP check: its state, whether that is the factory default
    (None: cannot tell), the reason in words and one line for people (``text``)."""

    state: HttpState
    factory_default: bool | None
    reason: str
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"state": str(self.state), "factory_default": self.factory_default,
                "verdict": self.text, "reason": self.reason}


_Reading = tuple[HttpState, bool | None, str]

_INACTIVE_BY_REFUSAL = ("the camera refuses requests with notActivated: it has no password yet, "
                        "the factory state of V5.3+ firmware.")


def classify_http(evidence: HttpEvidence) -> HttpFinding:
    """What one HTTP check shows (pure: facts in, finding out). The free question decides when
    it can; otherwise the one login does, read with what activateStatus said."""
    state, factory_default, reason = (_by_activate_status(evidence)
                                      or _by_login(evidence))
    return HttpFinding(state, factory_default, reason,
                       _verdict_line(state, factory_default, reason, evidence))


def _by_activate_status(evidence: HttpEvidence) -> _Reading | None:
    """Settled without a login: no reply, refused or unreadable, or Activated=false. An error
    answer (the endpoint missing on this firmware) leaves it to the login."""
    error = evidence.activate_error
    if error is not None and error.failure is not RequestFailure.HTTP_ERROR:
        return _by_error(error, "unreadable activation status")
    status = evidence.activate_status
    if status is not None and status.supported and status.activated is False:
        return (HttpState.INACTIVE, True,
                "GET /SDK/activateStatus reports Activated=false: the camera has no password "
                "yet, the factory state of V5.3+ firmware.")
    return None


def _by_error(error: RequestError, unusable: str) -> _Reading:
    """A request without a usable answer: ``unusable`` heads the reason for a bad answer."""
    if error.failure is RequestFailure.NOT_ACTIVATED:
        return HttpState.INACTIVE, True, _INACTIVE_BY_REFUSAL
    if error.failure is RequestFailure.NO_REPLY:
        return HttpState.UNREACHABLE, None, error.message
    return HttpState.ERROR, None, f"{unusable}: {error.message}"


def _by_login(evidence: HttpEvidence) -> _Reading:
    """The login's answer (or its absence), with what activateStatus said."""
    status = evidence.activate_status
    known_activated = status is not None and status.activated is True
    if evidence.login is None:
        if known_activated:
            return (HttpState.ACTIVATED, False,
                    "GET /SDK/activateStatus reports Activated=true: the camera has been given "
                    "a password; no login was tried.")
        return (HttpState.ERROR, None,
                "the firmware has no /SDK/activateStatus and no login was allowed, so nothing "
                "tells whether it still has its factory login.")
    if evidence.login_error is not None:
        return _by_error(evidence.login_error, "login check failed")
    if evidence.user_check is None:
        return HttpState.ERROR, None, "a login was sent but no answer to it was recorded."
    return _by_user_check(evidence, known_activated)


def _by_user_check(evidence: HttpEvidence, known_activated: bool) -> _Reading:
    """userCheck's answer: accepted, locked, or refused (with the attempts left)."""
    check, login = evidence.user_check, evidence.login
    assert check is not None and login is not None
    who = login.text if login.factory else f"login as {login.user}"
    if check.ok:
        if login.factory:
            return (HttpState.DEFAULT_CREDENTIALS, True,
                    f"the factory login {who} was accepted: the factory state of firmware "
                    "before V5.3.")
        return (HttpState.ACTIVATED, False,
                f"{who} was accepted: the camera has a password that someone set.")
    if check.locked:
        return (HttpState.LOCKED, False if known_activated else None,
                "the camera has locked logins from this address after failed attempts "
                f"(unlock in {check.unlock_time} s); even a right password is refused now"
                + ("; it reports Activated=true." if known_activated else "."))
    left = "" if check.retry_login_time is None else \
        f" (attempts left before the lock: {check.retry_login_time})"
    if login.factory:
        return (HttpState.ACTIVATED, False,
                f"the factory login {who} was refused{left}: the password was changed.")
    if known_activated:
        return (HttpState.ACTIVATED, False,
                f"{who} was refused{left}, and /SDK/activateStatus reports Activated=true.")
    return (HttpState.ERROR, None,
            f"{who} was refused{left}; the factory login was not tried (one login per check), "
            "so the factory state is unknown.")


def _verdict_line(state: HttpState, factory_default: bool | None, reason: str,
                  evidence: HttpEvidence) -> str:
    """One line for people: FACTORY DEFAULT / NOT DEFAULT / UNKNOWN / UNREACHABLE / ERROR."""
    check, tried = evidence.user_check, evidence.login
    login = (tried.text if tried.factory else f"as {tried.text}") if tried else "as None"
    if state is HttpState.INACTIVE:
        return "FACTORY DEFAULT: inactive (activation required)"
    if state is HttpState.DEFAULT_CREDENTIALS:
        return f"FACTORY DEFAULT: legacy default credentials {login} accepted"
    if state is HttpState.UNREACHABLE:
        return f"UNREACHABLE: {reason}"
    if state is HttpState.ERROR:
        return f"ERROR: {reason}"
    if state is HttpState.LOCKED:
        head = "NOT DEFAULT: activated; " if factory_default is False else "UNKNOWN: "
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


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class UnitVerdict:
    verdict: Verdict
    fault: Fault
    reason: str
    check: str | None = None
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return self.verdict in PASSING_VERDICTS

    def to_json(self) -> dict[str, Any]:
        return {"verdict": str(self.verdict), "fault": str(self.fault), "reason": self.reason,
                "check": self.check, "checks": [c.to_json() for c in self.checks]}


def judge(*, mac: str, profile: FirmwareProfile, expect: ExpectedState,
          after: SadpDevice | None, http: HttpEvidence | None, before: SadpDevice | None = None,
          expected_ipv4: str | None = None, others: Iterable[SadpDevice] = (),
          claim: Claim | None = None) -> UnitVerdict:
    """The verdict for one unit from what the bench saw after its reset.

    ``after``: the unit's SADP reply after boot (None: it never answered). ``http``: the HTTP
    evidence gathered over a route that ``claim`` says reaches this unit. ``before``: its reply
    before the reset (basic restore compares the network with it). ``others``: the other units
    on the bench now (attribution).
    """
    if after is None:
        return UnitVerdict(Verdict.UNREACHABLE, Fault.UNIT,
                           f"unit {mac} never answered SADP after the reset", "sadp-answers",
                           (Check("sadp-answers", False, "no SADP reply"),))
    checks: list[Check] = [Check("sadp-answers", True, f"SADP reply from {after.source}")]
    checks.append(_attribution(after, http, others, claim))
    if http is None:
        checks.append(Check("http-answers", False, "no HTTP check was possible"))
        return _verdict(checks, Verdict.UNREACHABLE)
    finding = classify_http(http)
    if finding.state is HttpState.UNREACHABLE:
        checks.append(Check("http-answers", False, finding.reason))
        return _verdict(checks, Verdict.UNREACHABLE)
    if finding.state is HttpState.ERROR:
        checks.append(Check("http-answers", False, finding.reason))
        return _verdict(checks, Verdict.NOT_DEFAULT)
    checks.append(Check("http-answers", True, finding.text))
    if expect == ExpectedState.FULL:
        checks += _full_reset(profile, after, finding, expected_ipv4 or profile.default_ipv4)
    else:
        checks += _basic_restore(after, http, finding, before)
    return _verdict(checks, Verdict.NOT_DEFAULT)


def _attribution(after: SadpDevice, http: HttpEvidence | None, others: Iterable[SadpDevice],
                 claim: Claim | None) -> Check:
    """Is the HTTP answer this unit's? The answer's own deviceInfo MAC overrules any route; an
    exclusive route (link-local from the MAC, the slot's VLAN) attributes an answer without
    one; otherwise nobody else may be answering on the unit's address."""
    via = f" ({claim.kind}: {claim.how})" if claim else ""
    info = http.device_info if http else None
    if info is not None and info.mac_address:
        same = info.mac_address == after.mac
        return Check("http-attribution", same,
                     f"deviceInfo macAddress {info.mac_address}" + (
                         via if same else f" is not this unit's {after.mac}: another unit "
                                          f"answered{via}"))
    if claim is not None and claim.exclusive:
        return Check("http-attribution", True, f"{claim.kind}: {claim.how}")
    sharing = sharing_address(after, others)
    if sharing:
        return Check("http-attribution", False,
                     f"{len(sharing) + 1} units answer on {after.ipv4} ({', '.join(sharing)} too):"
                     " an HTTP answer there cannot be credited to this unit; choose an identity "
                     "strategy for this bench")
    return Check("http-attribution", True, claim.how if claim else
                 f"{after.ipv4} is this unit's own address on the bench")


def sharing_address(device: SadpDevice, others: Iterable[SadpDevice]) -> list[str]:
    """The MACs of the other units that answer on ``device``'s IPv4 address, sorted."""
    return sorted(o.mac for o in others if o.mac != device.mac and o.ipv4 == device.ipv4)


def _full_reset(profile: FirmwareProfile, after: SadpDevice, finding: HttpFinding,
                expected_ipv4: str) -> list[Check]:
    checks = []
    if profile.activated_from_factory:
        checks.append(Check("default-credentials",
                            finding.state is HttpState.DEFAULT_CREDENTIALS, finding.text))
    else:
        checks.append(Check("inactive-sadp", after.activated is False,
                            f"SADP Activated={_text(after.activated)}"))
        checks.append(Check("inactive-http", finding.state is HttpState.INACTIVE, finding.text))
    checks.append(Check("default-ipv4", after.ipv4 == expected_ipv4 and
                        after.mask == profile.default_mask,
                        f"SADP IPv4 {after.ipv4}/{after.mask}, default "
                        f"{expected_ipv4}/{profile.default_mask}"))
    return checks


def _basic_restore(after: SadpDevice, http: HttpEvidence, finding: HttpFinding,
                   before: SadpDevice | None) -> list[Check]:
    checks = [Check("still-activated", finding.state is HttpState.ACTIVATED and bool(
        http.user_check and http.user_check.ok), finding.text)]
    if before is not None:
        kept = (after.ipv4, after.mask, after.gateway) == (before.ipv4, before.mask,
                                                           before.gateway)
        checks.append(Check("network-kept", kept,
                            f"IPv4 {before.ipv4}/{before.mask} gw {before.gateway} before, "
                            f"{after.ipv4}/{after.mask} gw {after.gateway} after"))
    name = http.device_info.device_name if http.device_info else None
    checks.append(Check("parameters-default", name == DEFAULT_DEVICE_NAME,
                        f"deviceName {name!r}, default {DEFAULT_DEVICE_NAME!r}"))
    return checks


def _verdict(checks: list[Check], failing: Verdict,
             passing: Verdict = Verdict.FACTORY_DEFAULT) -> UnitVerdict:
    failed = [c for c in checks if not c.passed]
    if not failed:
        return UnitVerdict(passing, Fault.NONE,
                           "; ".join(c.name for c in checks) + ": all passed", None, tuple(checks))
    first = failed[0]
    return UnitVerdict(failing, Fault.UNIT, f"{first.name}: {first.detail}", first.name,
                       tuple(checks))


def _text(value: bool | None) -> str:
    return "missing" if value is None else str(value).lower()


def not_default(check: str, detail: str) -> UnitVerdict:
    """A not-default verdict for a step that failed before verification could run (a refused
    login, a unit that never rebooted, no route to it)."""
    return UnitVerdict(Verdict.NOT_DEFAULT, Fault.UNIT, f"{check}: {detail}", check,
                       (Check(check, False, detail),))


# --- the hand-over ---------------------------------------------------------------------------

def handover_checks(family: FirmwareProfile, after: SadpDevice | None,
                    login: UserCheck | None, login_error: str = "") -> UnitVerdict:
    """Is the unit provisioned as asked? Its SADP reply after the activation says
    Activated=true (firmware with activation), and a login with the new password worked."""
    checks: list[Check] = []
    if not family.activated_from_factory:
        checks.append(Check("activated-sadp", after is not None and after.activated is True,
                            "no SADP reply after the activation" if after is None
                            else f"SADP Activated={_text(after.activated)}"))
    ok = login is not None and login.ok
    detail = (f"login error: {login_error}" if login is None else
              "login with the new password accepted" if ok else
              f"login with the new password refused ({login.retry_login_time} attempt(s) left)")
    checks.append(Check("new-password-login", ok, detail))
    return _verdict(checks, Verdict.HANDOVER_FAILED, passing=Verdict.PROVISIONED)


def judge_handover(reset: UnitVerdict, handover: UnitVerdict) -> UnitVerdict:
    """The final verdict of a provisioned unit: the reset's checks, then the hand-over's."""
    checks = reset.checks + handover.checks
    if handover.passed:
        return UnitVerdict(Verdict.PROVISIONED, Fault.NONE, "reset proven, then "
                           + handover.reason, None, checks)
    return UnitVerdict(Verdict.HANDOVER_FAILED, handover.fault, handover.reason,
                       handover.check, checks)


def handover_failed(reset: UnitVerdict, failure: UnitVerdict) -> UnitVerdict:
    """A hand-over step that failed outright (a refused activation, no route)."""
    return UnitVerdict(Verdict.HANDOVER_FAILED, Fault.UNIT, failure.reason, failure.check,
                       reset.checks + failure.checks)


def with_network(handover: UnitVerdict, network: Any) -> UnitVerdict:
    """The hand-over's verdict with its network check added: the census shows the unit on its
    new address and HTTP answers there (``network``: a rig.netsetup.NetResult)."""
    plan = network.plan
    asked = "DHCP" if plan.dhcp else f"{plan.address}/{plan.mask}"
    detail = network.message if network.ok else f"{asked} not taken: {network.message}"
    checks = [*handover.checks, Check("network", network.ok, detail)]
    return _verdict(checks, Verdict.HANDOVER_FAILED, passing=Verdict.PROVISIONED)
