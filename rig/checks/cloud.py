"""``cloud``: the unit is not bound to a Hik-Connect/EZVIZ account
(firmware_notes/topics/checks.md, "cloud"; a factory reset is reported not to clear that
binding: the kzmlabs hikvision-firmware-toolkit README, about an NVR).

Read from ``/ISAPI/System/Network/EZVIZ`` (enabled, registerStatus, bindStatus) and the SADP
reply's ``HCPlatformEnable``. Cloud off passes; bound fails ("still bound to a cloud account:
unbind it"); enabled and unbound passes; anything rig cannot read is unknown, never passed. A
unit without the service (notSupport, 404) is skipped, unless SADP says Hik-Connect is on:
then the unit has a cloud side rig cannot see, which is unknown.
"""

from __future__ import annotations

from rig import xmlsafe
from rig.checks import parsers
from rig.checks.base import CheckContext
from rig.checks.calls import NotSupported
from rig.checks.results import Finding, failed, passed, skipped, unknown
from rig.vocabulary import CheckName

NAME = CheckName.CLOUD
PATH = "/ISAPI/System/Network/EZVIZ"
UNBIND = "still bound to a cloud account: unbind it"


def check(ctx: CheckContext) -> Finding:
    """Judge the cloud binding (see the module docstring)."""
    device = ctx.target.device
    platform = xmlsafe.parse_bool(device.raw.get("HCPlatformEnable")) if device else None
    details = {"enabled": None, "registered": None, "bound": None, "sadp_hc_platform": platform}
    try:
        state = ctx.calls.read(PATH, parsers.cloud_state)
    except NotSupported:
        if platform:
            return unknown("SADP says Hik-Connect is on, but the unit has no EZVIZ settings "
                           "to read its binding from", **details)
        return skipped("no cloud service on this unit (EZVIZ notSupport)", **details)
    details.update(enabled=state.enabled, registered=state.registered, bound=state.bound)
    if state.bound:
        return failed(UNBIND, **details)
    if state.enabled is False:
        return passed("cloud off", **details)
    if state.enabled and state.bound is False:
        return passed("cloud on, not bound to an account", **details)
    return unknown("the unit's cloud state could not be read (enabled "
                   f"{_word(state.enabled)}, bind status {_word(state.bound)})", **details)


def _word(value: bool | None) -> str:
    return "unknown" if value is None else str(value).lower()
