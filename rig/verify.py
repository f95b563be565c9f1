"""Evidence → verdict: is this unit back at factory defaults, and if not, which check failed?

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

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rig.camera.factory_state import HttpEvidence, HttpState
from rig.camera.profiles import DEFAULT_DEVICE_NAME, FirmwareProfile
from rig.camera.sadp import SadpDevice
from rig.identity import HttpRoute
from rig.vocabulary import Fault, Verdict

FULL = "full"     # everything back to the factory: button, web-full
BASIC = "basic"   # web "Restore": network and users kept, parameters reset


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
        return self.verdict is Verdict.FACTORY_DEFAULT

    def to_json(self) -> dict[str, Any]:
        return {"verdict": str(self.verdict), "fault": str(self.fault), "reason": self.reason,
                "check": self.check, "checks": [c.to_json() for c in self.checks]}


def judge(*, mac: str, profile: FirmwareProfile, expect: str, after: SadpDevice | None,
          http: HttpEvidence | None, before: SadpDevice | None = None,
          expected_ipv4: str | None = None, others: Iterable[SadpDevice] = (),
          route: HttpRoute | None = None) -> UnitVerdict:
    """The verdict for one unit from what the bench saw after its reset.

    ``after``: the unit's SADP reply after boot (None: it never answered). ``http``: the HTTP
    evidence gathered over ``route``. ``before``: its reply before the reset (basic restore
    compares the network with it). ``others``: the other units on the bench now (attribution).
    """
    if after is None:
        return UnitVerdict(Verdict.UNREACHABLE, Fault.UNIT,
                           f"unit {mac} never answered SADP after the reset", "sadp-answers",
                           (Check("sadp-answers", False, "no SADP reply"),))
    checks: list[Check] = [Check("sadp-answers", True, f"SADP reply from {after.source}")]
    checks.append(_attribution(after, http, others, route))
    if http is None or http.state in (HttpState.UNREACHABLE,):
        reason = http.reason if http else "no HTTP check was possible"
        checks.append(Check("http-answers", False, reason))
        return _verdict(checks, Verdict.UNREACHABLE)
    if http.state is HttpState.ERROR:
        checks.append(Check("http-answers", False, http.reason))
        return _verdict(checks, Verdict.NOT_DEFAULT)
    checks.append(Check("http-answers", True, http.verdict))
    if expect == FULL:
        checks += _full_reset(profile, after, http, expected_ipv4 or profile.default_ipv4)
    else:
        checks += _basic_restore(after, http, before)
    return _verdict(checks, Verdict.NOT_DEFAULT)


def _attribution(after: SadpDevice, http: HttpEvidence | None, others: Iterable[SadpDevice],
                 route: HttpRoute | None) -> Check:
    """Is the HTTP answer this unit's? The answer's own deviceInfo MAC overrules any route; an
    exclusive route (link-local from the MAC, the slot's VLAN) attributes an answer without
    one; otherwise nobody else may be answering on the unit's address."""
    via = f" ({route.strategy}: {route.how})" if route else ""
    info = http.device_info if http else None
    if info is not None and info.mac_address:
        same = info.mac_address == after.mac
        return Check("http-attribution", same,
                     f"deviceInfo macAddress {info.mac_address}" + (
                         via if same else f" is not this unit's {after.mac}: another unit "
                                          f"answered{via}"))
    if route is not None and route.exclusive:
        return Check("http-attribution", True, f"{route.strategy}: {route.how}")
    sharing = sharing_address(after, others)
    if sharing:
        return Check("http-attribution", False,
                     f"{len(sharing) + 1} units answer on {after.ipv4} ({', '.join(sharing)} too):"
                     " an HTTP answer there cannot be credited to this unit; choose an identity "
                     "strategy for this bench")
    return Check("http-attribution", True, route.how if route else
                 f"{after.ipv4} is this unit's own address on the bench")


def sharing_address(device: SadpDevice, others: Iterable[SadpDevice]) -> list[str]:
    """The MACs of the other units that answer on ``device``'s IPv4 address, sorted."""
    return sorted(o.mac for o in others if o.mac != device.mac and o.ipv4 == device.ipv4)


def _full_reset(profile: FirmwareProfile, after: SadpDevice, http: HttpEvidence,
                expected_ipv4: str) -> list[Check]:
    checks = []
    if profile.activated_from_factory:
        checks.append(Check("default-credentials", http.state is HttpState.DEFAULT_CREDENTIALS,
                            http.verdict))
    else:
        checks.append(Check("inactive-sadp", after.activated is False,
                            f"SADP Activated={_text(after.activated)}"))
        checks.append(Check("inactive-http", http.state is HttpState.INACTIVE, http.verdict))
    checks.append(Check("default-ipv4", after.ipv4 == expected_ipv4 and
                        after.mask == profile.default_mask,
                        f"SADP IPv4 {after.ipv4}/{after.mask}, default "
                        f"{expected_ipv4}/{profile.default_mask}"))
    return checks


def _basic_restore(after: SadpDevice, http: HttpEvidence,
                   before: SadpDevice | None) -> list[Check]:
    checks = [Check("still-activated", http.state is HttpState.ACTIVATED and bool(
        http.user_check and http.user_check.ok), http.verdict)]
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


def _verdict(checks: list[Check], failing: Verdict) -> UnitVerdict:
    failed = [c for c in checks if not c.passed]
    if not failed:
        return UnitVerdict(Verdict.FACTORY_DEFAULT, Fault.NONE,
                           "; ".join(c.name for c in checks) + ": all passed", None, tuple(checks))
    first = failed[0]
    return UnitVerdict(failing, Fault.UNIT, f"{first.name}: {first.detail}", first.name,
                       tuple(checks))


def _text(value: bool | None) -> str:
    return "missing" if value is None else str(value).lower()
