"""Network setup by MAC, as SADP Tool does it: one unit or a batch from an address pool.

Why this shape:

* **By MAC, over SADP ``update``** (docs/hikvision-protocols.md §1.5): after a reset every unit
  sits on 192.168.1.64, so only a multicast request that names the MAC reaches one unit. Families
  whose profile says ``sadp_update = false`` fall back to ISAPI ``PUT ipAddress`` over a route
  the caller proves reaches that unit (the identity layer's ``Route``), never "whoever answers".
* **A failed-attempt budget that outlives the process**: the firmware locks ``update`` after
  ``sadp_update_lockout_attempts`` wrong passwords. rig counts its own failures per MAC in the
  record store (``store.sadp_attempts``) and refuses to send once one more failure could reach
  the lock: at most lockout - 1 failures are ever spent, whichever process spent them.
* **Success is what the network shows, not what the unit says**: a fresh SADP census must show
  the MAC with the new settings, then the new address must answer HTTP. A ``success`` reply
  alone is not enough (a unit can accept and not move), and a lost reply is not a failure if the
  census shows the move.
* **The password is an argument, never stored or logged**: the request carries its encoded form,
  results and the attempt ledger carry no secret.

The hand-over stage calls ``set_network`` (one unit) or ``set_networks`` (a batch); both return
``NetResult`` records whose ``outcome`` (rig.vocabulary.NetOutcome) says what happened.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rig.camera import sadp_commands
from rig.camera.discovery import DiscoveryError, run_discovery
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import AuthenticationFailed, ConnectionFailed, IsapiError
from rig.camera.isapi_types import Credentials, Ipv4Settings
from rig.camera.profiles import FirmwareProfile
from rig.camera.sadp import SadpDevice, normalize_mac
from rig.camera.transport import Route
from rig.records.sadp_attempts import SadpAttempts
from rig.vocabulary import NetMethod, NetOutcome

#: Shortest pause between two confirmation census rounds (seconds): units answer a round at
#: once with their old settings, so rounds that end early must not become a probe flood.
ROUND_SPACING = 0.25


class NetSetupError(ValueError):
    """A plan or pool that cannot be applied (bad address, mask, pool too large)."""


@dataclass(frozen=True)
class SadpPlace:
    """Where SADP goes out: one host address (``bind``) or interface, as for discovery.
    Tests and the simulator always give one (loopback); None for both is every interface."""

    bind: str | None = None
    interface: str | None = None


def _addr(text: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise NetSetupError(f"{what} {text!r} is not an IPv4 address") from None


@dataclass(frozen=True)
class Ipv4Plan:
    """The IPv4 settings one unit should end with. ``dhcp`` on: ``address`` may be None (the
    request then repeats the unit's current one, as SADP Tool does)."""

    address: str | None
    mask: str
    gateway: str
    dhcp: bool = False

    def __post_init__(self) -> None:
        if self.address is None and not self.dhcp:
            raise NetSetupError("a static plan needs an address")
        mask = _addr(self.mask, "mask")
        try:
            ipaddress.IPv4Network(f"0.0.0.0/{mask}")
        except ValueError:
            raise NetSetupError(f"mask {mask} is not a contiguous netmask") from None
        gateway = _addr(self.gateway, "gateway")
        address = None if self.address is None else _addr(self.address, "address")
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "gateway", gateway)
        object.__setattr__(self, "address", address)

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "mask": self.mask, "gateway": self.gateway,
                "dhcp": self.dhcp}

    def matches(self, device: SadpDevice) -> bool:
        """The census reply shows these settings in force."""
        if self.dhcp:
            return device.dhcp is True
        return (device.dhcp is False and device.ipv4 == self.address
                and device.mask == self.mask and device.gateway == self.gateway)


def address_pool(start: str, count: int, mask: str, gateway: str) -> list[Ipv4Plan]:
    """SADP Tool's batch: ``count`` static plans from ``start``, incrementing. Refuses a pool
    that leaves ``start``'s subnet or uses its network or broadcast address."""
    if count < 1:
        raise NetSetupError("a pool needs at least one address")
    first = ipaddress.IPv4Address(_addr(start, "start address"))
    network = ipaddress.IPv4Network(f"{first}/{_addr(mask, 'mask')}", strict=False)
    plans = []
    for offset in range(count):
        address = first + offset
        if address not in network or (network.prefixlen < 31 and address in (
                network.network_address, network.broadcast_address)):
            raise NetSetupError(f"a pool of {count} from {first} leaves {network} "
                                f"(or uses its network or broadcast address) at {address}")
        plans.append(Ipv4Plan(str(address), mask, gateway))
    return plans


@dataclass(frozen=True)
class NetResult:
    """What became of one unit's settings. ``failures`` is rig's count of failed ``update``
    attempts for the MAC after this call; ``attempts_left`` how many more rig would spend."""

    mac: str
    plan: Ipv4Plan
    outcome: NetOutcome
    method: NetMethod | None
    message: str
    failures: int = 0
    attempts_left: int | None = None
    reply: Mapping[str, Any] | None = None
    before: Mapping[str, Any] | None = None
    seen: Mapping[str, Any] | None = None
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is NetOutcome.CONFIRMED

    def to_json(self) -> dict[str, Any]:
        return {"mac": self.mac, "plan": self.plan.to_json(), "outcome": str(self.outcome),
                "ok": self.ok, "method": None if self.method is None else str(self.method),
                "message": self.message, "failures": self.failures,
                "attempts_left": self.attempts_left, "reply": self.reply,
                "before": self.before, "seen": self.seen, "http_status": self.http_status}


@dataclass(frozen=True)
class _Pending:
    """A request the unit accepted (or did not answer): confirmation decides."""

    result: NetResult
    unanswered: bool = False
    profile: FirmwareProfile | None = field(default=None, compare=False)


def update_budget(profile: FirmwareProfile) -> int:
    """Failed ``update`` attempts rig may spend on one unit: one fewer than the lock."""
    return max(profile.sadp_update_lockout_attempts - 1, 0)


def find_units(macs: Sequence[str], place: SadpPlace, timeout: float = 3.0
               ) -> dict[str, SadpDevice]:
    """The units among ``macs`` that answer one SADP census now (MAC → reply)."""
    wanted = {normalize_mac(m) for m in macs}
    result = run_discovery(timeout, bind=place.bind, interface=place.interface, expect=wanted)
    return {d.mac: d for d in result.devices if d.mac in wanted}


def set_network(mac: str, plan: Ipv4Plan, password: str, *, profile: FirmwareProfile,
                place: SadpPlace, attempts: SadpAttempts | None = None,
                route: Route | None = None, user: str = "admin", reply_timeout: float = 3.0,
                confirm_timeout: float = 30.0, http_timeout: float = 3.0) -> NetResult:
    """Give one unit ``plan``, by SADP ``update`` addressed by ``mac`` (ISAPI over ``route``
    where the profile has no ``update``), and confirm it by a fresh census and an HTTP answer.

    ``attempts`` (``store.sadp_attempts``) carries the failed-attempt count across processes;
    without it only this call's failures are known, which the CLI never allows. ``route`` is
    the identity layer's proven route to this unit (ISAPI fallback only).
    """
    return set_networks([(mac, plan)], password, profiles={normalize_mac(mac): profile},
                        place=place, attempts=attempts,
                        routes={normalize_mac(mac): route} if route else None, user=user,
                        reply_timeout=reply_timeout, confirm_timeout=confirm_timeout,
                        http_timeout=http_timeout)[0]


def set_networks(items: Sequence[tuple[str, Ipv4Plan]], password: str, *,
                 profiles: Mapping[str, FirmwareProfile], place: SadpPlace,
                 attempts: SadpAttempts | None = None,
                 routes: Mapping[str, Route] | None = None, user: str = "admin",
                 reply_timeout: float = 3.0, confirm_timeout: float = 30.0,
                 http_timeout: float = 3.0) -> list[NetResult]:
    """The batch form (SADP Tool's "start IP, increment"): one census to find every unit, one
    request per unit (one after another: each is its own attempt), one confirmation census for
    all. Results come back in the order of ``items``; ``profiles`` and ``routes`` are by MAC."""
    items = [(normalize_mac(mac), plan) for mac, plan in items]
    if len({mac for mac, _ in items}) != len(items):
        raise NetSetupError("a MAC is listed twice")
    before = find_units([mac for mac, _ in items], place, timeout=reply_timeout)
    steps: list[NetResult | _Pending] = []
    for mac, plan in items:
        device = before.get(mac)
        if device is None:
            steps.append(NetResult(mac, plan, NetOutcome.NOT_FOUND, None,
                                   f"{mac} did not answer SADP: nothing was sent"))
            continue
        if plan.address is None:
            plan = replace(plan, address=device.ipv4)
        profile = profiles.get(mac)
        if profile is None:
            steps.append(NetResult(mac, plan, NetOutcome.UNSUPPORTED, None,
                                   f"{mac}: firmware family unknown: nothing was sent"))
            continue
        steps.append(_apply(mac, plan, password, profile, place, attempts,
                            (routes or {}).get(mac), user, device, reply_timeout,
                            http_timeout))
    pending = [s for s in steps if isinstance(s, _Pending)]
    confirmed = _confirm(pending, place, confirm_timeout, http_timeout, attempts)
    return [confirmed[s.result.mac] if isinstance(s, _Pending) else s for s in steps]


def _apply(mac: str, plan: Ipv4Plan, password: str, profile: FirmwareProfile,
           place: SadpPlace, attempts: SadpAttempts | None, route: Route | None, user: str,
           device: SadpDevice, reply_timeout: float,
           http_timeout: float) -> NetResult | _Pending:
    before = device.to_json()
    before.pop("raw", None)
    if profile.sadp_update:
        return _sadp_update(mac, plan, password, profile, place, attempts, before,
                            reply_timeout)
    if route is None:
        return NetResult(mac, plan, NetOutcome.UNSUPPORTED, None,
                         f"{mac}: firmware family {profile.name!r} has no SADP update, and no "
                         f"route that reaches this unit alone was given for the ISAPI fallback",
                         before=before)
    return _isapi_update(mac, plan, password, user, route, before, http_timeout, profile)


def _sadp_update(mac: str, plan: Ipv4Plan, password: str, profile: FirmwareProfile,
                 place: SadpPlace, attempts: SadpAttempts | None, before: dict[str, Any],
                 reply_timeout: float) -> NetResult | _Pending:
    """One ``update``, unless rig's count says one more failure could lock the unit."""
    budget = update_budget(profile)
    failures = attempts.failures(mac) if attempts is not None else 0
    base = NetResult(mac, plan, NetOutcome.ERROR, NetMethod.SADP_UPDATE, "", failures,
                     max(budget - failures, 0), before=before)
    if failures >= budget:
        return replace(base, outcome=NetOutcome.BUDGET_SPENT, message=(
            f"{mac}: not sent: {failures} failed SADP update attempt(s) are recorded and the "
            f"firmware locks update after {profile.sadp_update_lockout_attempts} for "
            f"{profile.sadp_update_lockout_minutes:g} min, so rig stops at {budget}. Check the "
            f"password; a reset or power cycle of the unit clears its count (then "
            f"'rig net set --clear-attempts')"))
    if before.get("activated") is False:
        return replace(base, outcome=NetOutcome.REFUSED, message=(
            f"{mac}: not sent: the unit is not activated (SADP Activated=false) and has no "
            f"password to check; activate it first (rig activate)"))
    assert plan.address is not None
    field_ = sadp_commands.encode_password(password, profile.sadp_password_encoding)
    request_uuid, datagram = sadp_commands.build_update(
        mac, address=plan.address, mask=plan.mask, gateway=plan.gateway, dhcp=plan.dhcp,
        password_field=field_, http_port=int(before.get("http_port") or 80))
    try:
        exchange = sadp_commands.exchange(datagram, request_uuid, mac, timeout=reply_timeout,
                                          bind=place.bind, interface=place.interface)
    except sadp_commands.SadpCommandError as exc:
        return replace(base, message=f"{mac}: update not sent: {exc}")
    if exchange.reply is None:
        note = f" (unreadable: {'; '.join(exchange.unreadable)})" if exchange.unreadable else ""
        return _Pending(replace(base, message=f"{mac}: no reply to update{note}"),
                        unanswered=True, profile=profile)
    reply = exchange.reply.to_json()
    if exchange.reply.ok:
        return _Pending(replace(base, reply=reply), profile=profile)
    return _failed(base, exchange.reply, profile, attempts)


def _failed(base: NetResult, reply: sadp_commands.CommandReply, profile: FirmwareProfile,
            attempts: SadpAttempts | None) -> NetResult:
    """A refused ``update``: count it (whatever the reason: the firmware's count is not public,
    so rig assumes the worst) and say how many rig has left."""
    mac, budget = base.mac, update_budget(profile)
    failures = (attempts.failed(mac, f"update Result {reply.result}") if attempts is not None
                else base.failures + 1)
    left = max(budget - failures, 0)
    spent = (f"{failures} failed attempt(s) counted; rig spends at most {budget} (the "
             f"firmware locks update after {profile.sadp_update_lockout_attempts}), {left} left")
    locked = str(reply.raw.get("DeviceLock", "")).lower() == "true"
    if locked:
        outcome, what = NetOutcome.LOCKED, "SADP update is locked on the unit"
    elif reply.result == "denied":
        outcome, what = NetOutcome.REFUSED, "the unit refused the new settings (denied)"
    else:
        outcome, what = NetOutcome.WRONG_PASSWORD, "the unit refused the password"
    return replace(base, outcome=outcome, message=f"{mac}: {what}; {spent}",
                   failures=failures, attempts_left=left, reply=reply.to_json())


def _isapi_update(mac: str, plan: Ipv4Plan, password: str, user: str, route: Route,
                  before: dict[str, Any], timeout: float,
                  profile: FirmwareProfile) -> NetResult | _Pending:
    """The fallback: ONE signed PUT over the caller's route (one login at most)."""
    base = NetResult(mac, plan, NetOutcome.ERROR, NetMethod.ISAPI, "", before=before)
    settings = Ipv4Settings(dhcp=plan.dhcp, ip_address=plan.address, subnet_mask=plan.mask,
                            gateway=plan.gateway, raw={})
    try:
        with IsapiClient.at(route, timeout=timeout) as client:
            client.set_network(Credentials(user, password), settings)
    except AuthenticationFailed as exc:
        return replace(base, outcome=NetOutcome.WRONG_PASSWORD,
                       message=f"{mac}: ISAPI login refused (one login spent): {exc}")
    except ConnectionFailed as exc:
        return replace(base, outcome=NetOutcome.NO_REPLY, message=f"{mac}: {exc}")
    except IsapiError as exc:
        return replace(base, outcome=NetOutcome.REFUSED, message=f"{mac}: {exc}",
                       http_status=exc.http_status)
    return _Pending(replace(base, message=f"{mac}: ISAPI accepted the settings"),
                    profile=profile)


def _census_until(pending: Sequence[_Pending], place: SadpPlace,
                  timeout: float) -> tuple[dict[str, SadpDevice], dict[str, SadpDevice]]:
    """Census rounds until every pending unit shows its plan, or ``timeout``. Returns the
    units that showed it and the last reply of those that did not."""
    waiting = {p.result.mac: p.result.plan for p in pending}
    shown: dict[str, SadpDevice] = {}
    last: dict[str, SadpDevice] = {}
    deadline = time.monotonic() + timeout
    while waiting:
        started = time.monotonic()
        window = min(1.0, deadline - started)
        if window <= 0:
            break
        try:
            result = run_discovery(window, bind=place.bind, interface=place.interface,
                                   expect=list(waiting))
        except (DiscoveryError, OSError):
            break
        for device in result.devices:
            plan = waiting.get(device.mac)
            if plan is None:
                continue
            if plan.matches(device):
                shown[device.mac] = device
                del waiting[device.mac]
            else:
                last[device.mac] = device
        time.sleep(max(0.0, ROUND_SPACING - (time.monotonic() - started)))
    return shown, last


def _confirm(pending: Sequence[_Pending], place: SadpPlace, timeout: float,
             http_timeout: float, attempts: SadpAttempts | None) -> dict[str, NetResult]:
    """Confirmation of every accepted request: census first, then HTTP at the new address."""
    if not pending:
        return {}
    shown, last = _census_until(pending, place, timeout)
    out: dict[str, NetResult] = {}
    for step in pending:
        result, mac = step.result, step.result.mac
        device = shown.get(mac)
        if device is None:
            out[mac] = _not_confirmed(step, last.get(mac), attempts)
            continue
        seen = device.to_json()
        seen.pop("raw", None)
        status = http_answer(device.ipv4 or "", device.http_port or 80, http_timeout,
                             place.interface)
        if result.method is NetMethod.SADP_UPDATE and attempts is not None:
            attempts.cleared(mac, "update accepted")
        left = None if step.profile is None else update_budget(step.profile)
        failures = 0 if result.method is NetMethod.SADP_UPDATE else result.failures
        if status is None:
            out[mac] = replace(result, outcome=NetOutcome.NO_HTTP, seen=seen, failures=failures,
                               attempts_left=left, message=(
                                   f"{mac}: SADP shows {device.ipv4}, but HTTP does not answer "
                                   f"at {device.ipv4}:{device.http_port or 80}"))
        else:
            out[mac] = replace(result, outcome=NetOutcome.CONFIRMED, seen=seen,
                               failures=failures, attempts_left=left, http_status=status,
                               message=f"{mac}: now on {device.ipv4} "
                                       f"({'DHCP' if device.dhcp else 'static'}), HTTP answers")
    return out


def _not_confirmed(step: _Pending, device: SadpDevice | None,
                   attempts: SadpAttempts | None) -> NetResult:
    """The census does not show the plan. An unanswered ``update`` counts as a failed attempt
    then: it may have been a wrong password whose refusal was lost."""
    result = step.result
    where = (f"it still reports {device.ipv4}/{device.mask} gw {device.gateway} "
             f"DHCP {device.dhcp}" if device else "it did not answer the census")
    if step.unanswered and step.profile is not None:
        mac = result.mac
        failures = (attempts.failed(mac, "update unanswered") if attempts is not None
                    else result.failures + 1)
        left = max(update_budget(step.profile) - failures, 0)
        return replace(result, outcome=NetOutcome.NO_REPLY, failures=failures,
                       attempts_left=left,
                       message=f"{result.message}, and {where}; counted as a failed attempt "
                               f"({failures} counted, {left} left)")
    return replace(result, outcome=NetOutcome.NOT_CONFIRMED,
                   message=f"{result.mac}: the unit accepted the settings, but {where}")


def confirm_network(mac: str, plan: Ipv4Plan, *, place: SadpPlace, timeout: float = 10.0,
                    http_timeout: float = 3.0) -> NetResult:
    """Whether unit ``mac`` is on ``plan`` now, without sending it anything: census rounds
    until it reports the plan (or ``timeout``), then an HTTP answer at its address. For a
    caller that must settle a setting it may have left half-applied (a run killed between the
    request and its confirmation): ``confirmed``, ``no-http`` or ``not-confirmed``."""
    mac = normalize_mac(mac)
    pending = _Pending(NetResult(mac, plan, NetOutcome.ERROR, None, ""))
    return _confirm([pending], place, timeout, http_timeout, None)[mac]


def http_answer(address: str, port: int, timeout: float = 3.0,
                interface: str | None = None) -> int | None:
    """The HTTP status of ``GET /SDK/activateStatus`` at ``address`` (no login spent), or None
    when nothing answers. Any status proves a web server is there. ``interface`` pins the
    request to the link the census heard the unit on (a VLAN bench: every slot's link holds
    the same subnet, so the routing table alone would pick the first)."""
    if not address:
        return None
    try:
        with IsapiClient(address, port, timeout=timeout, interface=interface) as client:
            status = client.activate_status()
    except ConnectionFailed:
        return None
    except IsapiError as exc:
        return exc.http_status
    return 200 if status.supported else 404
