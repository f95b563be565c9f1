"""Units: one SADP census, the way a run takes it, and per slot whether its expected unit
(by MAC, else by serial) answered; which units answered that no slot expects.

Why before a run: a unit that does not answer SADP cannot be verified, so its slot would end
``unreachable`` after a whole reset; a stranger on the bench network is a unit someone forgot,
which a serialised bench would mistake for a slot's. The doctor powers nothing: a unit whose
slot is off is missing here, and the fix says to look at its power first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rig.doctor.findings import Finding, fail, ok, warn
from rig.identity import slot_interface
from rig.vocabulary import DoctorArea, IdentityStrategy

if TYPE_CHECKING:
    from rig.bench import Bench, Slot
    from rig.camera.discovery import DiscoveryResult
    from rig.camera.sadp import SadpDevice
    from rig.doctor.runner import DoctorContext

_AREA = DoctorArea.UNITS


def census(bench: Bench, timeout: float) -> DiscoveryResult:
    """One discovery window where the run's census probes (rig.runner): every slot VLAN on a
    VLAN bench, else the bench address, else the bench interface; early once every expected
    MAC answered."""
    from rig.camera.discovery import run_discovery

    slots = bench.slots
    expect = [s.mac for s in slots if s.mac] if all(s.mac for s in slots) else []
    if bench.network.identity is IdentityStrategy.VLAN:
        names = sorted({i for i in (slot_interface(bench, s) for s in slots) if i})
        return run_discovery(timeout, interfaces=names, expect=expect)
    if bench.network.address:
        return run_discovery(timeout, bind=bench.network.address, expect=expect)
    return run_discovery(timeout, interface=bench.network.interface, expect=expect)


def probe(ctx: DoctorContext) -> list[Finding]:
    from rig.camera.discovery import DiscoveryError

    try:
        result = census(ctx.bench, ctx.sadp_timeout)
    except (DiscoveryError, OSError) as exc:
        return [fail(_AREA, "SADP", f"the census could not run: {exc}",
                     "fix the network findings above first")]
    devices = list(result.devices)
    findings = []
    matched: set[str] = set()
    for slot in ctx.bench.slots:
        finding, mac = _slot(slot, devices, ctx.sadp_timeout)
        findings.append(finding)
        if mac:
            matched.add(mac)
    findings += _extras(ctx.bench, [d for d in devices if d.mac not in matched])
    return findings


def _slot(slot: Slot, devices: list[SadpDevice], timeout: float) -> tuple[Finding, str | None]:
    """The slot's finding, and the MAC of the unit it matched (None: none)."""
    label = f"slot {slot.name}"
    if not slot.mac and not slot.serial:
        return ok(_AREA, label, "no unit named (mac or serial): learned by roll call"), None
    want = slot.mac or slot.serial
    found = next((d for d in devices if (slot.mac and d.mac == slot.mac)
                  or (not slot.mac and d.serial == slot.serial)), None)
    if found is None:
        return fail(_AREA, label, f"unit {want} did not answer SADP within {timeout:g} s",
                    f"is it powered and cabled? `rig power {slot.name} status`; "
                    "`rig discover` lists what answers"), None
    text = f"unit {want} answers from {found.source or found.ipv4}"
    if found.device_lock:
        return warn(_AREA, label, text + " but is locked (DeviceLock)",
                    "wait out its lockout before a web reset; the button still works"), found.mac
    return ok(_AREA, label, text), found.mac


def _extras(bench: Bench, others: list[SadpDevice]) -> list[Finding]:
    """Units no slot expects. When every slot has an address of its own (a loopback
    simulated bench), a unit answering from elsewhere belongs to another bench on this host."""
    if any(not (s.mac or s.serial) for s in bench.slots):
        return [ok(_AREA, "other units", f"{len(others)} unit(s) not named by a slot (slots "
                   "without mac/serial learn theirs by roll call)")] if others else []
    addresses = {s.address for s in bench.slots}
    if None not in addresses:
        elsewhere = [d for d in others if d.source not in addresses]
        others = [d for d in others if d.source in addresses]
        if elsewhere and not others:
            return [ok(_AREA, "other units", f"{len(elsewhere)} unit(s) outside this bench's "
                       "slot addresses (another bench on this host) ignored")]
    if not others:
        return [ok(_AREA, "other units", "none: every unit that answered is expected")]
    listed = ", ".join(f"{d.mac} ({d.serial or '?'}) from {d.source}" for d in others)
    return [warn(_AREA, "other units", f"{len(others)} unit(s) no slot expects: {listed}",
                 "remove them from the bench network, or name them in the bench file")]
