"""The verification stage: collect the evidence that a reset unit is back at factory defaults,
and hand it to the one judge (rig.verify).

SADP comes from the shared census (the unit's latest reply); HTTP is asked over the unit's own
route by the bench's identity strategy, and the route is recorded as evidence. A unit answers
SADP before its web server is up, so an unreachable HTTP check is tried again (no login is
spent on a refused connection), a bounded number of times.
"""

from __future__ import annotations

from rig.camera.http_evidence import HttpEvidence, check_http, login_needed
from rig.camera.profiles import FirmwareProfile
from rig.camera.sadp import SadpDevice
from rig.context import SlotContext
from rig.identity import NoRoute, UnitRoute
from rig.logins import LOGIN_BUDGET_CHECK
from rig.procedures import ResetOutcome
from rig.recorder import Recorder
from rig.verify import UnitVerdict, classify_http, judge, not_default
from rig.vocabulary import EvidenceKind, ExpectedState, StepOutcome

#: Tries of an unreachable HTTP check, this far apart (scaled).
HTTP_ATTEMPTS = 5
HTTP_RETRY_S = 6.0


def verify_unit(ctx: SlotContext, rec: Recorder, outcome: ResetOutcome) -> UnitVerdict:
    """Collect the HTTP evidence over the unit's route and judge it with SADP."""
    mac = outcome.unit.mac
    assert mac is not None
    sighting = ctx.census.last(mac)
    after = sighting.device if sighting else None
    with rec.step("verify") as step_id:
        http, route, profile = None, None, ctx.profile
        if after is not None:
            profile = _family(ctx, rec, after)
            try:
                route = ctx.route(mac, after)
            except NoRoute as exc:
                rec.finish(step_id, StepOutcome.FAILED, str(exc))
                return not_default("http-attribution", f"no route to this unit: {exc}")
            rec.evidence(EvidenceKind.HTTP_ROUTE, {"mac": mac, **route.to_json()}, step_id)
            http = _http_evidence(ctx, rec, mac, route, outcome.expect, step_id)
        others = [d for m, d in ctx.census.present().items() if m != mac]
        verdict = judge(mac=mac, profile=profile, expect=outcome.expect, after=after,
                        http=http, before=outcome.unit.before,
                        expected_ipv4=ctx.slot.address, others=others,
                        claim=route.claim if route else None)
        rec.evidence(EvidenceKind.VERDICT, verdict.to_json(), step_id)
        if not verdict.passed:
            rec.finish(step_id, StepOutcome.FAILED, verdict.reason)
        return verdict


def _family(ctx: SlotContext, rec: Recorder, after: SadpDevice) -> FirmwareProfile:
    """The firmware family the unit's reply shows; it overrules the bench file's."""
    detected = ctx.family_of(after)
    if detected.name == ctx.profile.name:
        return ctx.profile
    rec.note(f"firmware {after.firmware} is family {detected.name}, "
             f"the bench says {ctx.profile.name}: judged as {detected.name}")
    return detected


def _http_evidence(ctx: SlotContext, rec: Recorder, mac: str, route: UnitRoute,
                   expect: ExpectedState, step_id: int) -> HttpEvidence:
    """Ask over ``route``, again while the web server is not up yet (never once a login was
    spent); every attempt is recorded. A login goes out only if the unit's login allowance
    lets it (DeviceLock, its failed logins across runs, one failed login per run)."""
    for attempt in range(1, HTTP_ATTEMPTS + 1):
        refused = _login_refused(ctx, mac)
        client = ctx.client(route)
        try:
            http = check_http(client, ctx.profiles,
                              credentials=ctx.credentials
                              if expect is ExpectedState.BASIC and not refused else None,
                              try_default=expect is ExpectedState.FULL and not refused)
        finally:
            client.close()
        _spent(ctx, mac, http)
        record = {"attempt": attempt, **http.to_json(), "finding": classify_http(http).to_json()}
        if refused and http.login is None:
            record[LOGIN_BUDGET_CHECK] = refused
        rec.evidence(EvidenceKind.HTTP, record, step_id)
        if not http.no_reply or http.login_attempts:
            break
        if attempt < HTTP_ATTEMPTS:
            ctx.sleep(ctx.scaled(HTTP_RETRY_S))
    if refused and http.login is None and login_needed(http):
        rec.note(f"no login in verification: {refused}")
    return http


def _login_refused(ctx: SlotContext, mac: str) -> str | None:
    """Why verification may not log in to ``mac`` now (None: it may, once)."""
    sighting = ctx.census.last(mac)
    return ctx.logins.refusal(mac, sighting.device if sighting else None)


def _spent(ctx: SlotContext, mac: str, http: HttpEvidence) -> None:
    """Record the check's login, if one went out, against the unit's budget."""
    if http.login_attempts:
        sighting = ctx.census.last(mac)
        ctx.logins.spent(mac, sighting.device if sighting else None, http.user_check,
                         "verification's login")
