"""``firmware-baseline``: the unit's firmware is at least the bench's minimum for its family
(``[checks.firmware_min]``), compared by number (``V5.5.10`` > ``V5.5.9``)."""

from __future__ import annotations

from rig.camera.profiles import FirmwareVersion, ProfileSet
from rig.checks.base import CheckContext
from rig.checks.results import Finding, failed, passed, skipped, unknown
from rig.vocabulary import CheckName

NAME = CheckName.FIRMWARE_BASELINE


def check(ctx: CheckContext) -> Finding:
    """Compare the firmware with the bench's minimum for its family."""
    found = ctx.info.firmware_version if ctx.info else None
    if not found and ctx.target.device is not None:
        found = ctx.target.device.firmware
    if not found:
        return unknown("the unit's firmware version could not be read"
                       + (f": {ctx.info_error}" if ctx.info_error else ""),
                       firmware=None, family=ctx.target.family, minimum=None)
    family = ctx.target.family or _family_of(found)
    minimum = ctx.config.minimum_for(family)
    details = {"firmware": found, "family": family,
               "minimum": str(minimum) if minimum else None}
    if minimum is None:
        return skipped(f"the bench names no minimum firmware for family {family or '?'}",
                       **details)
    try:
        version = FirmwareVersion.parse(found)
    except ValueError:
        return unknown(f"firmware {found!r} is not a version rig can compare", **details)
    if version < minimum:
        return failed(f"firmware {found} is below the bench's minimum {minimum} for family "
                      f"{family}", **details)
    return passed(f"firmware {found} is at least {minimum} ({family})", **details)


def _family_of(firmware: str) -> str | None:
    profile = ProfileSet.load().for_firmware(firmware)
    return profile.name if profile else None
