"""The hand-over stage: after a unit is proven reset, leave it in the bench's final state.

The manual procedure ends with "set the camera up again" (SADP Tool: activate, give it an
address). Here the stage runs inside the slot's serialised turn like the reset itself, reaches
the unit only over its identity route (never "whoever answers on 192.168.1.64"), and proves
what it did before the unit is counted:

- ``provisioned``: activate the unit with the bench's password (the "challenge" exchange, or V3
  on G5 firmware; legacy firmware has no activation, so its factory admin password is changed
  instead), then prove it: a SADP reply sent after the activation says Activated=true, and a
  Digest login with the new password works.
- ``factory-after-checks`` (the refurbisher's "test, then wipe"): the same activation and proof,
  the functional checks where the bench has them, then the reset again and its verification:
  the unit leaves inactive, exactly as a factory unit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from rig.bench import Bench, BenchError
from rig.camera import activation
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import IsapiError
from rig.camera.isapi_types import Credentials, UserCheck
from rig.camera.profiles import FirmwareProfile
from rig.camera.sadp import SadpDevice
from rig.context import SlotContext, Unit
from rig.faults import UnitFault
from rig.identity import NoRoute, slot_interface
from rig.logins import LOGIN_BUDGET_CHECK, LoginAllowance
from rig.netsetup import Ipv4Plan, NetResult, SadpPlace, address_pool, set_network
from rig.procedures import Procedure
from rig.recorder import Recorder
from rig.verification import verify_unit
from rig.verify import (
    UnitVerdict,
    handover_checks,
    handover_failed,
    judge_handover,
    with_network,
)
from rig.vocabulary import EvidenceKind, FinalState, StepOutcome


@dataclass(frozen=True)
class HandoverPlan:
    """What the stage does for every unit of a run: the final state and the login to give."""

    final_state: FinalState
    credentials: Credentials
    #: Slot name → the IPv4 settings a provisioned unit gets (``[handover] pool_start``: the
    #: bench's n-th slot gets the pool's n-th address); empty: the address is left as it is.
    networks: Mapping[str, Ipv4Plan] = field(default_factory=dict, compare=False)
    #: The client's activation key pairs, made once for the whole run (activation.ClientKeys).
    keys: activation.ClientKeys = field(default_factory=activation.ClientKeys, compare=False)

    @classmethod
    def for_bench(cls, bench: Bench) -> HandoverPlan | None:
        """The bench's plan, None when units stay at factory state. The password is read from
        its environment variable and checked against the firmware's rules now, before anything
        moves (BenchError naming the variable, never the value)."""
        config = bench.handover
        if not config.activates:
            return None
        assert config.password is not None
        where = f"{bench.path}: handover.password_env"
        try:
            password = config.password.get()
        except BenchError as exc:
            raise BenchError(f"{exc} ({where} names it)") from None
        problem = activation.password_problem(password, config.user)
        if problem:
            raise BenchError(f"{where}: the password in ${config.password.env} {problem} "
                             "(Hikvision's rule for an admin password)")
        try:
            return cls(config.final_state, Credentials(config.user, password),
                       _pool(bench) if config.final_state is FinalState.PROVISIONED else {})
        except ValueError as exc:
            raise BenchError(f"{where}: {exc}") from None


def hand_over(ctx: SlotContext, rec: Recorder, unit: Unit, reset: UnitVerdict,
              plan: HandoverPlan, procedure: Procedure) -> UnitVerdict:
    """Take a unit proven reset (``reset``) to ``plan``'s final state; returns the final
    verdict. Raises BenchFault and Interrupted like any stage."""
    assert unit.mac is not None
    try:
        proven = provision(ctx, rec, unit, plan)
    except UnitFault as fault:
        return handover_failed(reset, fault.verdict)
    if proven.passed and ctx.slot.name in plan.networks:
        proven = with_network(proven, set_address(ctx, rec, unit, plan))
    if not proven.passed or plan.final_state is not FinalState.FACTORY_AFTER_CHECKS:
        return judge_handover(reset, proven)
    rec.note("functional checks: none configured on this bench")
    again = procedure(replace(ctx, credentials=plan.credentials), rec, unit)
    return verify_unit(ctx, rec, again)


def _login(client: IsapiClient, plan: HandoverPlan, logins: LoginAllowance | None, mac: str,
           device: SadpDevice | None) -> tuple[UserCheck | None, str]:
    """The proof's one login, within the unit's login budget; (answer, why there is none)."""
    refused = logins.refusal(mac, device) if logins else None
    if refused:
        return None, f"no login sent: {refused}"
    sent = client.auth_requests
    try:
        login = client.user_check(plan.credentials)
    except IsapiError as exc:
        if logins and client.auth_requests > sent:
            logins.spent(mac, device, None, "the hand-over's login")
        return None, str(exc)
    if logins:
        logins.spent(mac, device, login, "the hand-over's login")
    return login, ""


def _pool(bench: Bench) -> dict[str, Ipv4Plan]:
    """SADP Tool's "start IP, increment" over the bench's slots, in bench-file order."""
    config = bench.handover
    if config.pool_start is None:
        return {}
    plans = address_pool(config.pool_start, len(bench.slots), config.mask,
                         config.gateway or "0.0.0.0")
    return {slot.name: plan for slot, plan in zip(bench.slots, plans, strict=True)}


def set_address(ctx: SlotContext, rec: Recorder, unit: Unit, plan: HandoverPlan) -> NetResult:
    """Give the activated unit its address by MAC (SADP ``update``; ISAPI over its identity
    route where the family has none), confirmed by a fresh census and an HTTP answer there.
    Recorded as a step before anything is sent, so a crash leaves the intent on record."""
    assert unit.mac is not None
    target = plan.networks[ctx.slot.name]
    sighting = ctx.census.last(unit.mac)
    with rec.step("network", f"{target.address}/{target.mask} by MAC") as step_id:
        route = None
        if sighting is not None:
            try:
                route = ctx.route(unit.mac, sighting.device).route
            except NoRoute:
                route = None
        result = set_network(
            unit.mac, target, plan.credentials.password,
            profile=ctx.family_of(sighting.device) if sighting else ctx.profile,
            place=_sadp_place(ctx),
            attempts=rec.store.sadp_attempts, route=route, user=plan.credentials.user,
            confirm_timeout=ctx.boot_timeout())
        rec.evidence(EvidenceKind.NETWORK, result.to_json(), step_id)
        if not result.ok:
            rec.finish(step_id, StepOutcome.FAILED, result.message)
        return result


def _sadp_place(ctx: SlotContext) -> SadpPlace:
    """Where the slot's SADP goes: its own link on a VLAN bench (the unit is heard there
    only), else the bench's controller address or interface."""
    link = slot_interface(ctx.bench, ctx.slot)
    if link:
        return SadpPlace(interface=link)
    network = ctx.bench.network
    return SadpPlace(bind=network.address, interface=None if network.address
                     else network.interface)


def provision(ctx: SlotContext, rec: Recorder, unit: Unit, plan: HandoverPlan) -> UnitVerdict:
    """Activate the unit (or change a legacy unit's factory password) and prove it; returns the
    hand-over's own verdict (its checks). Raises UnitFault when a request fails."""
    assert unit.mac is not None
    sighting = ctx.census.last(unit.mac)
    if sighting is None:
        raise UnitFault.not_default("activation", "the unit stopped answering SADP")
    family, mac, device = ctx.family_of(sighting.device), unit.mac, sighting.device
    legacy = family.activated_from_factory      # its password change logs in: budgeted
    refused = ctx.logins.refusal(mac, device) if legacy else None
    if refused:
        raise UnitFault.not_default(LOGIN_BUDGET_CHECK, refused)
    client = ctx.web_client(mac, device)
    try:
        sent = client.auth_requests
        try:
            since = activate_over(rec, client, family, plan)
        except UnitFault:
            if legacy and client.auth_requests > sent:
                ctx.logins.spent(mac, device, None, "the hand-over's password change")
            raise
        return prove(rec, client, family, plan, lambda: ctx.census.seen_after(
            mac, since, ctx.boot_timeout(), ctx.cancel), ctx.logins, mac)
    finally:
        client.close()


def activate_over(rec: Recorder, client: IsapiClient, family: FirmwareProfile,
                  plan: HandoverPlan) -> float:
    """Give the unit ``plan``'s password over ``client`` (a route only it answers on), as a
    recorded step; returns when it was given (monotonic). Raises UnitFault."""
    legacy = family.activated_from_factory
    how = "password change from the factory login" if legacy else "activation"
    with rec.step("activate", f"{how}, as {plan.credentials.user}") as step_id:
        try:
            if legacy:
                factory = Credentials(family.default_user, family.default_password or "")
                status = client.set_password(factory, plan.credentials.password)
            else:
                status = client.activate(plan.credentials.password,
                                         user=plan.credentials.user, keys=plan.keys)
        except (IsapiError, ValueError) as exc:
            rec.finish(step_id, StepOutcome.FAILED, str(exc))
            raise UnitFault.not_default("activation", str(exc)) from exc
        rec.evidence(EvidenceKind.ACTIVATION, {"how": how, **status.to_json()}, step_id)
    return time.monotonic()


def prove(rec: Recorder, client: IsapiClient, family: FirmwareProfile, plan: HandoverPlan,
          reply_after: Callable[[], SadpDevice | None],
          logins: LoginAllowance | None = None, mac: str = "") -> UnitVerdict:
    """The proof, as a recorded step: a SADP reply sent after the activation
    (``reply_after``: None when none came) and one login with the new password, asked of the
    unit's login budget first when a run keeps one (``logins``)."""
    with rec.step("confirm hand-over", "SADP Activated=true and a login with the new "
                                       "password") as step_id:
        after = reply_after()
        login, error = _login(client, plan, logins, mac, after)
        rec.evidence(EvidenceKind.HANDOVER, {
            "sadp": after.to_json() if after else None,
            "login": login.to_json() if login else None, "login_error": error or None,
            "user": plan.credentials.user}, step_id)
        verdict = handover_checks(family, after, login, error)
        if not verdict.passed:
            rec.finish(step_id, StepOutcome.FAILED, verdict.reason)
        return verdict

