"""Activation outside a run (``rig activate``): the units SADP found, chosen by MAC, serial,
slot or "every inactive one", each activated over a route only it answers on, then proven.

The same steps as the run's hand-over stage (rig.handover), recorded the same way as a manual
run, with one difference: there is no batch holding serialised turns here, so a unit that
shares its address with another (every reset unit on 192.168.1.64) is refused unless the bench
file's identity strategy gives it a route of its own (vlan, ipv6-link-local).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rig.bench import Bench, Slot
from rig.camera.discovery import DiscoveryResult
from rig.camera.isapi import IsapiClient
from rig.camera.profiles import ProfileSet
from rig.camera.sadp import SadpDevice, SadpError, normalize_mac
from rig.camera.transport import Route
from rig.faults import UnitFault
from rig.handover import HandoverPlan, activate_over, prove
from rig.identity import Claim, NoRoute, UnitRoute, http_route, slot_interface
from rig.recorder import Recorder
from rig.records import RecordStore
from rig.verify import UnitVerdict, sharing_address
from rig.vocabulary import EvidenceKind, Fault, FinalState, RouteKind, Verdict

METHOD = "manual: activate"


@dataclass(frozen=True)
class Target:
    """A unit to activate, and its slot when a bench file names one."""

    device: SadpDevice
    slot: Slot | None = None

    @property
    def label(self) -> str:
        return self.slot.name if self.slot else self.device.mac


@dataclass(frozen=True)
class Selection:
    """What the operator asked for (any mix; ``inactive``: every inactive unit found)."""

    macs: Sequence[str] = ()
    serials: Sequence[str] = ()
    slots: Sequence[str] = ()
    inactive: bool = False


def choose(found: DiscoveryResult, wanted: Selection, bench: Bench | None) -> list[Target]:
    """The targets, in the order asked. ValueError naming what was not found."""
    by_mac = {d.mac: d for d in found.devices}
    targets: list[Target] = []
    for text in wanted.macs:
        try:
            mac = normalize_mac(text)
        except SadpError:
            raise ValueError(f"{text!r} is not a MAC address") from None
        targets.append(Target(_need(by_mac.get(mac), f"no unit {mac} answered SADP")))
    for serial in wanted.serials:
        device = next((d for d in found.devices if d.serial == serial), None)
        targets.append(Target(_need(device, f"no unit with serial {serial} answered SADP")))
    for name in wanted.slots:
        if bench is None:
            raise ValueError("--slot needs --bench (the bench file says what is in the slot)")
        targets.append(Target(_in_slot(found, bench, bench.slot(name)), bench.slot(name)))
    if wanted.inactive:
        targets += [Target(d) for d in found.devices if d.activated is False]
    return [_with_slot(t, bench) for t in _unique(targets)]


def _need(device: SadpDevice | None, why: str) -> SadpDevice:
    if device is None:
        raise ValueError(why)
    return device


def _in_slot(found: DiscoveryResult, bench: Bench, slot: Slot) -> SadpDevice:
    """The unit of ``slot``: by the bench file's MAC or serial, else (VLAN bench) the one
    unit heard on the slot's own interface."""
    for device in found.devices:
        if (slot.mac and device.mac == slot.mac) or (slot.serial and
                                                      device.serial == slot.serial):
            return device
    interface = slot_interface(bench, slot)
    heard = found.on_interface(interface) if interface else ()
    if len(heard) == 1:
        return heard[0]
    raise ValueError(f"slot {slot.name}: its unit did not answer SADP (the bench file gives "
                     "neither its MAC nor its serial, or it is not on the bench)")


def _with_slot(target: Target, bench: Bench | None) -> Target:
    if target.slot is not None or bench is None:
        return target
    slot = next((s for s in bench.slots if s.mac == target.device.mac or
                 (s.serial and s.serial == target.device.serial)), None)
    return Target(target.device, slot)


def _unique(targets: list[Target]) -> list[Target]:
    seen: set[str] = set()
    return [t for t in targets if not (t.device.mac in seen or seen.add(t.device.mac))]


def route_to(target: Target, found: DiscoveryResult, bench: Bench | None) -> UnitRoute:
    """A route only this unit answers on: the bench's identity strategy where it gives one
    (vlan needs the slot), else the unit's own address if nobody else answers there. NoRoute
    says why not."""
    device = target.device
    port = device.http_port or 80
    if bench is not None and target.slot is not None:
        route = http_route(bench, target.slot, device.mac, device.ipv4, port, shared=None,
                           heard_on=found.heard_on.get(device.mac, ()),
                           neighbours=[d.mac for d in found.devices])
        if route.claim.exclusive:
            return route
    if not device.ipv4:
        raise NoRoute("its SADP reply gives no IPv4 address")
    others = sharing_address(device, found.devices)
    if others:
        raise NoRoute(f"{len(others) + 1} units answer on {device.ipv4} ({', '.join(others)} "
                      "too): an activation sent there could reach another unit; activate them "
                      "in a run's hand-over ([handover] final_state = \"provisioned\"), or give "
                      "a bench file whose identity is vlan or ipv6-link-local")
    return UnitRoute(Route(device.ipv4, port), Claim(
        RouteKind.OWN_ADDRESS, f"{device.ipv4} is this unit's own address", exclusive=False))


def activate_one(store: RecordStore, run_id: int, target: Target, route: UnitRoute,
                 plan: HandoverPlan, profiles: ProfileSet,
                 rediscover: Callable[[str], SadpDevice | None],
                 timeout: float) -> UnitVerdict:
    """Activate ``target`` over ``route`` and prove it (a fresh SADP reply, a login with the
    new password); every step and its evidence recorded as a unit of the manual run."""
    device = target.device
    unit_id = store.runs.start_unit(run_id, target.label, method=METHOD,
                                    expected_mac=device.mac)
    rec = Recorder(store, run_id, unit_id, target.label)
    rec.evidence(EvidenceKind.SADP_BEFORE, device.to_json())
    rec.evidence(EvidenceKind.HTTP_ROUTE, {"mac": device.mac, **route.to_json()})
    family = profiles.for_firmware(device.firmware or "") or (
        target.slot.profile if target.slot else profiles.get("current"))
    client = IsapiClient.at(route.route, timeout=timeout)
    try:
        activate_over(rec, client, family, plan)
        verdict = prove(rec, client, family, plan, lambda: rediscover(device.mac))
    except UnitFault as fault:
        verdict = UnitVerdict(Verdict.HANDOVER_FAILED, Fault.UNIT, fault.verdict.reason,
                              fault.verdict.check, fault.verdict.checks)
    finally:
        client.close()
    store.runs.finish_unit(unit_id, verdict.verdict, verdict.reason,
                           None if verdict.fault is Fault.NONE else verdict.fault,
                           check=verdict.check, mac=device.mac, serial=device.serial,
                           final_state=FinalState.PROVISIONED if verdict.passed else None,
                           count_health=False)
    return verdict

