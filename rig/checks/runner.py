"""Running the selected functional checks on one activated unit, and recording each one.

The order: ONE login first (``GET /ISAPI/Security/userCheck``), asked of the unit's login
budget when the caller keeps one (rig.logins.LoginAllowance), then deviceInfo, which gives the
model the per-model exceptions match and the firmware two checks compare. A login that is
refused or not sent leaves every check ``unknown`` with that reason, and nothing else is sent.
Then each selected check runs in the vocabulary's order with its own time
(``[checks] timeout_s``; the storage check under ``format`` adds ``format_timeout_s``); a
failed login in the middle (a 401 to a signed request, ISAPI or RTSP) stops the rest the same
way, so a run never spends more than that one failed login.

Records, per check (the data contract reports and certificates read): a step named
``check <name>`` (ok; failed, with the reason, when the check failed or is unknown; timeout
when its time ran out; skipped), an EvidenceKind.CHECK record ``CheckResult.to_json()``, and
for the snapshot an EvidenceKind.SNAPSHOT record with its thumbnail plus the JPEG attached as
``snapshot.jpg``. The grade is not recorded here: the caller gives it to ``finish_unit``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import AuthenticationFailed, IsapiError, NotActivated
from rig.camera.isapi_types import Credentials, DeviceInfo, UserCheck
from rig.checks import cloud, device_info, firmware, ircut, rtsp, snapshot, storage
from rig.checks.base import CheckContext, CheckTarget
from rig.checks.calls import CheckCalls, LoginRefused
from rig.checks.config import ChecksConfig
from rig.checks.results import CheckResult, Finding, grade, skipped, unknown
from rig.logins import LoginAllowance
from rig.recorder import Recorder
from rig.vocabulary import CheckName, CheckOutcome, EvidenceKind, Grade, StepOutcome, StoragePolicy

CheckFunction = Callable[[CheckContext], Finding]
#: Every check, by name: adding one is a module with NAME and check(ctx), and a line here.
CHECKS: Mapping[CheckName, CheckFunction] = MappingProxyType({
    m.NAME: m.check for m in (device_info, snapshot, rtsp, ircut, storage, firmware, cloud)})
_WHO = "the functional checks' login"


@dataclass(frozen=True)
class ChecksResult:
    """Every check's result and the grade they earn (None when no check was selected)."""

    results: tuple[CheckResult, ...]
    grade: Grade | None

    @property
    def passed(self) -> bool:
        """Every check passed or was skipped (exit status 0 of ``rig qa``)."""
        return self.grade is Grade.FULLY_FUNCTIONAL

    def to_json(self) -> dict[str, Any]:
        return {"grade": str(self.grade) if self.grade else None,
                "checks": [r.to_json() for r in self.results]}


@dataclass(frozen=True)
class _Login:
    """What the checks' login gave: deviceInfo, or why not; ``stop``: nothing may be sent."""

    info: DeviceInfo | None
    error: str
    stop: str


def run_checks(client: IsapiClient, rec: Recorder, target: CheckTarget, config: ChecksConfig,
               credentials: Credentials, logins: LoginAllowance | None = None, *,
               only: Iterable[CheckName] | None = None, time_scale: float = 1.0,
               sleep: Callable[[float], None] = time.sleep) -> ChecksResult:
    """Run the checks the bench selects for the unit (``only``: these instead of
    ``config.run``) over ``client`` (a route only this unit answers on), logged in as
    ``credentials``, recording each through ``rec``. See the module docstring."""
    wanted = tuple(only) if only is not None else config.run
    if not wanted:
        return ChecksResult((), None)
    login = _log_in(client, rec, target, credentials, logins)
    model = (login.info.model if login.info and login.info.model
             else target.device.model if target.device else None)
    selected = config.selected(model, wanted)
    results: list[CheckResult] = []
    stop = login.stop
    for name in (c for c in CheckName if c in wanted):
        key = name in config.key
        if name not in selected:
            rule = config.rule_for(model)
            finding = skipped(f"the bench does not run {name} on model {model} "
                              f"([[checks.model]] match = {rule.match if rule else '?'})")
            results.append(_record(rec, name, key, finding))
            continue
        if stop:
            results.append(_record(rec, name, key, unknown(f"not checked: {stop}")))
            continue
        ctx = CheckContext(CheckCalls(client, credentials, _seconds(name, config)), target,
                           config, login.info, login.error, sleep, time_scale)
        result, stop = _run_one(rec, name, key, ctx, target, logins)
        results.append(result)
    return ChecksResult(tuple(results), grade(results, config))


def _seconds(name: CheckName, config: ChecksConfig) -> float:
    """A check's own time: the bench's ``timeout_s``, plus ``format_timeout_s`` for the
    storage check when it formats."""
    if name is CheckName.STORAGE and config.storage is StoragePolicy.FORMAT:
        return config.timeout_s + config.format_timeout_s
    return config.timeout_s


def _log_in(client: IsapiClient, rec: Recorder, target: CheckTarget, creds: Credentials,
            logins: LoginAllowance | None) -> _Login:
    """The one budgeted login, then deviceInfo, as the step ``checks login``."""
    with rec.step("checks login", f"one login as {creds.user}, then deviceInfo") as step_id:
        check, stop = _user_check(client, target, creds, logins)
        info, error = None, stop
        if not stop:
            try:
                info = CheckCalls(client, creds, client.timeout).device_info()
            except (IsapiError, TimeoutError) as exc:
                error = str(exc)
                if isinstance(exc, AuthenticationFailed | NotActivated):
                    stop = _spent(logins, target, exc)
        rec.evidence(EvidenceKind.USER_CHECK, {
            "login": check.to_json() if check else None, "error": stop or None,
            "device_info": info.to_json() if info else None,
            "device_info_error": error or None, "user": creds.user}, step_id)
        if stop:
            rec.finish(step_id, StepOutcome.FAILED, stop)
    return _Login(info, error, stop)


def _user_check(client: IsapiClient, target: CheckTarget, creds: Credentials,
                logins: LoginAllowance | None) -> tuple[UserCheck | None, str]:
    """(the login's answer, "" or why no check may be sent)."""
    mac, device = target.mac or "", target.device
    refused = logins.refusal(mac, device) if logins and mac else None
    if refused:
        return None, f"no login sent: {refused}"
    sent = client.auth_requests
    try:
        check = client.user_check(creds)
    except IsapiError as exc:
        if logins and mac and client.auth_requests > sent:
            logins.spent(mac, device, None, _WHO)
        return None, f"the login could not be checked: {exc}"
    if logins and mac:
        logins.spent(mac, device, check, _WHO)
    if not check.ok:
        state = " (locked)" if check.locked else ""
        return check, f"the login as {creds.user} was refused{state}"
    return check, ""


def _spent(logins: LoginAllowance | None, target: CheckTarget, exc: Exception) -> str:
    """A signed request refused after the login worked: one failed login is spent; say so,
    and why nothing more is sent."""
    if isinstance(exc, NotActivated):
        return f"the unit says it is not activated ({exc})"
    if logins and target.mac:
        check = exc.user_check if isinstance(exc, AuthenticationFailed) else None
        logins.spent(target.mac, target.device, check, _WHO)
    return f"a login was refused during the checks ({exc})"


def _run_one(rec: Recorder, name: CheckName, key: bool, ctx: CheckContext,
             target: CheckTarget, logins: LoginAllowance | None) -> tuple[CheckResult, str]:
    """Run one check inside its step; (its result, "" or why later checks may not send)."""
    stop = ""
    timed_out = False
    with rec.step(f"check {name}", f"within {ctx.calls.seconds:g} s") as step_id:
        try:
            finding = CHECKS[name](ctx)
        except (AuthenticationFailed, LoginRefused, NotActivated) as exc:
            stop = _spent(logins, target, exc)
            finding = unknown(stop)
        except TimeoutError as exc:
            timed_out = True
            finding = unknown(f"no answer within the check's {ctx.calls.seconds:g} s ({exc})")
        except IsapiError as exc:
            finding = unknown(str(exc))
        except Exception as exc:       # a check's own fault must not end the unit's job
            finding = unknown(f"the check could not finish ({type(exc).__name__}: {exc})")
        result = _evidence(rec, name, key, finding, step_id)
        _close(rec, step_id, finding, timed_out)
    return result, stop


def _record(rec: Recorder, name: CheckName, key: bool, finding: Finding) -> CheckResult:
    """A check decided without sending anything (skipped by the bench, not checked)."""
    with rec.step(f"check {name}") as step_id:
        result = _evidence(rec, name, key, finding, step_id)
        _close(rec, step_id, finding, False)
    return result


def _evidence(rec: Recorder, name: CheckName, key: bool, finding: Finding,
              step_id: int) -> CheckResult:
    result = CheckResult(name, finding.outcome, finding.reason, key, dict(finding.details))
    rec.evidence(EvidenceKind.CHECK, result.to_json(), step_id)
    if finding.snapshot is not None:
        shot = finding.snapshot
        evidence_id = rec.evidence(EvidenceKind.SNAPSHOT, shot.to_json(), step_id)
        rec.attach("snapshot.jpg", "image/jpeg", shot.jpeg, evidence_id)
    return result


def _close(rec: Recorder, step_id: int, finding: Finding, timed_out: bool) -> None:
    """The step's outcome: ok stays ok (the block ends it), the rest say the reason."""
    if finding.outcome is CheckOutcome.PASSED:
        return
    if finding.outcome is CheckOutcome.SKIPPED:
        outcome = StepOutcome.SKIPPED
    else:
        outcome = StepOutcome.TIMEOUT if timed_out else StepOutcome.FAILED
    rec.finish(step_id, outcome, finding.reason)
