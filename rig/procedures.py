"""Reset recipes as recorded steps: hard (button through power-up), poe-cycle, web-basic, web-full
and auto. Each step is written to the record store before it acts and closed after it (with
its outcome), so a crash leaves an honest trail and a report can draw every unit's timeline.

A procedure is a stage: it gets the slot's immutable context, a recorder and the unit it works
on, and returns a ``ResetOutcome`` (what the reset must have left, and the unit's reply after
it); it fails with BenchFault or UnitFault. It talks to the slot's hands (power, solenoid) and
to the unit through SADP (the shared census) and ISAPI; it never knows whether they are
simulated. Every wait is interruptible (Ctrl-C, SIGTERM) and bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from rig.bench import describe_output
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import IsapiError
from rig.camera.isapi_types import UserCheck
from rig.camera.sadp import SadpDevice
from rig.context import SlotContext, Unit
from rig.faults import BenchFault, UnitFault
from rig.logins import LOGIN_BUDGET_CHECK
from rig.recorder import Recorder
from rig.rollcall import adopt_newcomer
from rig.verify import judge
from rig.vocabulary import (
    BenchFaultKind,
    EvidenceKind,
    ExpectedState,
    Method,
    ResetMode,
    StepOutcome,
)

#: Extra press time around power-on: the solenoid goes in before power and stays past the hold.
PRESS_MARGIN_S = 2.0
#: Unscaled headroom for the solenoid watchdog: the time from energising to power-on includes
#: commands (an SNMP SET queued behind others) that a simulated bench's time_scale does not
#: shrink. The step still releases the button once the hold has run from power-on; this only
#: keeps the safety net from firing first. Never past the bench's cap.
PRESS_SLACK_S = 2.0


@dataclass(frozen=True)
class ResetOutcome:
    """What a procedure leaves for verification: the state the reset must have produced, the
    unit (its MAC may have been learned at boot) and its first SADP reply after the reset."""

    expect: ExpectedState
    unit: Unit
    after: SadpDevice


Procedure = Callable[[SlotContext, Recorder, Unit], ResetOutcome]


# --- steps every recipe shares -------------------------------------------------------------------

def power_off(ctx: SlotContext, rec: Recorder) -> None:
    """Cut the slot's power (recorded in the outputs ledger first)."""
    with rec.step("power off", ctx.hands.power_target):
        ctx.hands.cut_power("reset in progress")
    ctx.turn.unit_off()


def power_on(ctx: SlotContext, rec: Recorder, at: float | None = None) -> float:
    """Apply power at the instant the bench's schedule granted (asked for now when ``at`` is
    None); returns the monotonic time of power-on."""
    with rec.step("power on", ctx.hands.power_target):
        if at is None:
            at = ctx.limits.power_on.reserve(time.monotonic(), ctx.after_power_on(), 0.0,
                                             ctx.cancel)
        ctx.sleep(max(at - time.monotonic(), 0.0))
        return ctx.hands.apply_power()       # the hold runs from here, not from the records


def wait_boot(ctx: SlotContext, rec: Recorder, unit: Unit, since: float) -> SadpDevice:
    """Wait until the unit answers SADP in a round that started after ``since``; returns its
    reply (a slot without identity adopts the one newcomer)."""
    timeout = ctx.boot_timeout()
    with rec.step("wait for boot", f"up to {timeout:.1f} s") as step_id:
        if unit.mac is None:
            found = adopt_newcomer(ctx, rec, since, timeout)
        else:
            found = ctx.census.seen_after(unit.mac, since, timeout, ctx.cancel)
        if found is None:
            rec.finish(step_id, StepOutcome.TIMEOUT, f"no SADP reply within {timeout:.1f} s")
            raise UnitFault(judge(mac=unit.mac or "(unknown)", profile=ctx.profile,
                                  expect=ExpectedState.FULL, after=None, http=None))
        rec.evidence(EvidenceKind.SADP_AFTER, found.to_json(), step_id)
        return found


def _booted(ctx: SlotContext, rec: Recorder, unit: Unit, since: float,
            expect: ExpectedState, power_cycled: bool = False) -> ResetOutcome:
    """Wait for boot and say what the reset left: the unit, now known by its reply. After a
    power cycle its failed-login count is cleared if its firmware profile says so."""
    found = wait_boot(ctx, rec, unit, since)
    if power_cycled and ctx.logins.power_cycled(found.mac, found):
        rec.note("failed-login count cleared by the power cycle (firmware profile)")
    return ResetOutcome(expect, Unit(found.mac, unit.before), found)


# --- recipes -------------------------------------------------------------------------------------

def hard(ctx: SlotContext, rec: Recorder, unit: Unit) -> ResetOutcome:
    """Power off, settle, press, power on, hold for the profile's time, release, wait for boot.

    The solenoid goes in ``PRESS_MARGIN_S / 2`` before power-on, while the unit is still
    unpowered (as when a technician holds the button before plugging in): inside the settle,
    so the press costs the batch no time of its own. Waits for a free solenoid, a PoE boot
    place or a power-on instant come before the coil is energised: they lengthen the time off,
    never the press.
    """
    if ctx.slot.button is None:
        raise BenchFault(f"slot {ctx.slot.name} has no reset-button solenoid: "
                         "a hard reset is impossible")
    hold = ctx.scaled(ctx.profile.hold_seconds[1])
    lead = ctx.scaled(PRESS_MARGIN_S) / 2
    press = hold + ctx.scaled(PRESS_MARGIN_S)
    cap = ctx.bench.solenoid_max_on_seconds
    if press > cap:                                  # refused before anything moves
        raise BenchFault(f"the {ctx.profile.name} profile needs a {press:g} s press; the "
                         f"bench caps solenoids at {cap:g} s")
    power_off(ctx, rec)             # opens the slot's hands (a GPIO relay opens off)
    off_at = time.monotonic()
    settle = ctx.bench.settle_seconds
    with rec.step("settle", f"{settle:g} s off"):
        ctx.sleep(max(off_at + settle - lead - time.monotonic(), 0.0))
    ctx.turn.acquire()
    with ExitStack() as booting, ExitStack() as pressing:
        with rec.step("press", f"{describe_output(ctx.slot.button)}, from "
                               f"{lead:.2f} s before power-on"):
            booting.enter_context(ctx.limits.boot_turn(ctx.slot, ctx.cancel))
            pressing.enter_context(ctx.limits.solenoid_turn(ctx.cancel))
            ctx.sleep(ctx.hands.button().cooldown_left())   # a press just before (a second
            at = ctx.limits.power_on.reserve(off_at + settle,  # reset): the coil rests first
                                             ctx.after_power_on(), lead, ctx.cancel)
            ctx.sleep(max(at - lead - time.monotonic(), 0.0))
            button = pressing.enter_context(ctx.hands.pressed(
                min(press + PRESS_SLACK_S, cap), f"held {press:.2f} s through power-up"))
            ctx.sleep(max(at - time.monotonic(), 0.0))
        powered_at = power_on(ctx, rec, at)
        with rec.step("hold", f"{hold:.2f} s from power-on"):
            ctx.sleep(max(hold - (time.monotonic() - powered_at), 0))
            if button.watchdog_fired or not button.energised:
                raise BenchFault("the solenoid's watchdog released the button before the "
                                 f"{hold:.2f} s hold ended (power-on came too long after the "
                                 "coil went in); the unit may not have been reset",
                                 BenchFaultKind.ACTUATOR)
        with rec.step("release"):
            pressing.close()
        return _booted(ctx, rec, unit, powered_at, ExpectedState.FULL, power_cycled=True)


def poe_cycle(ctx: SlotContext, rec: Recorder, unit: Unit) -> ResetOutcome:
    """Power off, settle, power on, wait for boot: a reboot (and the rest state of a PoE port)."""
    power_off(ctx, rec)
    with rec.step("settle", f"{ctx.bench.settle_seconds:g} s off"):
        ctx.sleep(ctx.bench.settle_seconds)
    ctx.turn.acquire()
    with ctx.limits.boot_turn(ctx.slot, ctx.cancel):
        return _booted(ctx, rec, unit, power_on(ctx, rec), ExpectedState.FULL,
                       power_cycled=True)


def web_basic(ctx: SlotContext, rec: Recorder, unit: Unit) -> ResetOutcome:
    return _web_reset(ctx, rec, unit, ResetMode.BASIC)


def web_full(ctx: SlotContext, rec: Recorder, unit: Unit) -> ResetOutcome:
    return _web_reset(ctx, rec, unit, ResetMode.FULL)


def auto(ctx: SlotContext, rec: Recorder, unit: Unit) -> ResetOutcome:
    """The network reset where credentials work, else the button. At most one login is spent
    deciding, and none when SADP says the unit is in its login lock or the unit's failed
    logins leave no room (the button needs no login)."""
    device, credentials, shared = unit.before, ctx.credentials, ctx.turn.address
    if credentials is None or device is None or unit.mac is None:
        return hard(ctx, rec, unit)
    refused = ctx.logins.refusal(unit.mac, device)
    if shared is not None:
        rec.note(f"auto: units share {shared} after a full reset (serialised bench), "
                 "hard reset one at a time")
    elif device.device_lock:
        rec.note("auto: SADP reports the login lock, hard reset")
    elif refused is not None:
        rec.note(f"auto: no login check ({refused}), hard reset")
    else:
        try:
            client = ctx.web_client(unit.mac, device)
        except (BenchFault, UnitFault) as exc:
            rec.note(f"auto: no web route to this unit ({exc}), hard reset")
            return hard(ctx, rec, unit)
        if _login_works(ctx, rec, client, unit):
            rec.note("auto: credentials work, web-full reset")
            return _web_reset(ctx, rec, unit, ResetMode.FULL, login_checked=True)
        rec.note("auto: no working web login, hard reset")
    return hard(ctx, rec, unit)


def _user_check(ctx: SlotContext, client: IsapiClient, unit: Unit, what: str) -> UserCheck:
    """The one userCheck with the bench's credentials, its outcome recorded against the unit's
    login budget (an error after the login went out counts as a failure)."""
    assert ctx.credentials is not None and unit.mac is not None
    sent = client.auth_requests
    try:
        check = client.user_check(ctx.credentials)
    except IsapiError:
        if client.auth_requests > sent:
            ctx.logins.spent(unit.mac, unit.before, None, what)
        raise
    ctx.logins.spent(unit.mac, unit.before, check, what)
    return check


def _login_works(ctx: SlotContext, rec: Recorder, client: IsapiClient, unit: Unit) -> bool:
    """One recorded login check (auto's only login); any failure means "use the button"."""
    assert ctx.credentials is not None
    with rec.step("login check", f"as {ctx.credentials.user}") as step_id:
        try:
            result = _user_check(ctx, client, unit, "auto's login check")
        except IsapiError as exc:
            rec.note(f"web login check failed: {exc}")
            return False
        finally:
            client.close()
        rec.evidence(EvidenceKind.USER_CHECK, result.to_json(), step_id)
        return result.ok


def _login_allowed(ctx: SlotContext, rec: Recorder, unit: Unit) -> None:
    """Refuse the web reset, without a login, when the unit's lock or budget forbids one."""
    assert unit.mac is not None
    refused = ctx.logins.refusal(unit.mac, unit.before)
    if refused is None:
        return
    with rec.step("login check", "not sent") as step_id:
        rec.finish(step_id, StepOutcome.SKIPPED, refused)
    raise UnitFault.not_default(LOGIN_BUDGET_CHECK, refused)


def _web_reset(ctx: SlotContext, rec: Recorder, unit: Unit, mode: ResetMode,
               login_checked: bool = False) -> ResetOutcome:
    """ISAPI factoryReset, a reboot when the firmware asks for one, then wait for the unit."""
    if ctx.credentials is None:
        raise BenchFault(f"web-{mode} needs the admin password: give --password-env or "
                         "[defaults] password_env in the bench file")
    shared = ctx.turn.address
    if mode is ResetMode.FULL and shared is not None:
        raise BenchFault(f"web-full would leave every unit of this serialised bench on "
                         f"{shared}, where they cannot be checked one at a time: use the hard "
                         "method (or identity ipv6-link-local or vlan)")
    device = unit.before
    if unit.mac is None or device is None or not device.ipv4:
        raise UnitFault(judge(mac=unit.mac or "(unknown)", profile=ctx.profile,
                              expect=ExpectedState.FULL, after=None, http=None))
    if not login_checked:
        _login_allowed(ctx, rec, unit)
    client = ctx.web_client(unit.mac, device)
    try:
        if not login_checked:
            _login_or_fail(ctx, rec, client, unit)
        started = _factory_reset(ctx, rec, client, mode)
    finally:
        client.close()
    with rec.step("wait for reboot") as step_id:
        if not ctx.census.gone_after(unit.mac, started, ctx.boot_timeout(), ctx.cancel):
            rec.finish(step_id, StepOutcome.TIMEOUT, "the unit never went down")
            raise UnitFault.not_default("reboot", "the unit never rebooted after factoryReset")
    return _booted(ctx, rec, unit, time.monotonic(), ExpectedState(mode.value))


def _login_or_fail(ctx: SlotContext, rec: Recorder, client: IsapiClient, unit: Unit) -> None:
    """The web reset's one login check; a refusal is the unit's fault."""
    credentials = ctx.credentials
    assert credentials is not None
    with rec.step("login check", f"as {credentials.user}") as step_id:
        check = _isapi(lambda: _user_check(ctx, client, unit, "the web reset's login check"))
        rec.evidence(EvidenceKind.USER_CHECK, check.to_json(), step_id)
        if not check.ok:
            rec.finish(step_id, StepOutcome.FAILED, "login refused")
            raise UnitFault.not_default(
                "web-login", f"login refused: {check.retry_login_time} attempt(s) left")


def _factory_reset(ctx: SlotContext, rec: Recorder, client: IsapiClient,
                   mode: ResetMode) -> float:
    """factoryReset, and the reboot the firmware may ask for; returns when it was sent."""
    credentials = ctx.credentials
    with rec.step(f"factoryReset {mode}") as step_id:
        status = _isapi(lambda: client.factory_reset(credentials, mode))
        rec.evidence(EvidenceKind.FACTORY_RESET, status.to_json(), step_id)
        started = time.monotonic()
    if status.reboot_required:
        with rec.step("reboot", "the firmware answered rebootRequired") as step_id:
            reply = _isapi(lambda: client.reboot(credentials))
            rec.evidence(EvidenceKind.REBOOT, reply.to_json(), step_id)
    return started


def _isapi(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except IsapiError as exc:
        raise UnitFault.not_default("web-request", str(exc)) from exc


PROCEDURES: dict[Method, Procedure] = {
    Method.HARD: hard, Method.POE_CYCLE: poe_cycle, Method.WEB_BASIC: web_basic,
    Method.WEB_FULL: web_full, Method.AUTO: auto,
}
