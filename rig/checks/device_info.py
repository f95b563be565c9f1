"""``device-info``: deviceInfo answers, and its model, serial and firmware are the unit's SADP
reply's (firmware_notes/topics/checks.md, "device-info").

SADP's serial is the long form (model + date + serial number) and deviceInfo's may be too, so
one must contain the other; SADP's ``V5.5.6build 180326`` is deviceInfo's ``V5.5.6`` plus
``build 180326``, so only the version part is compared.
"""

from __future__ import annotations

from rig.camera.profiles import FirmwareVersion
from rig.checks.base import CheckContext
from rig.checks.results import Finding, failed, passed, unknown
from rig.vocabulary import CheckName

NAME = CheckName.DEVICE_INFO


def check(ctx: CheckContext) -> Finding:
    """Compare deviceInfo with the SADP reply (see the module docstring)."""
    info = ctx.info
    if info is None:
        return unknown(f"deviceInfo could not be read: {ctx.info_error or 'no answer'}",
                       model=None, serial=None, firmware=None, mac=None)
    details = {"model": info.model, "serial": info.serial_number,
               "firmware": info.firmware_version, "mac": info.mac_address}
    missing = [k for k in ("model", "serial", "firmware") if not details[k]]
    if missing:
        return failed(f"deviceInfo does not say its {', '.join(missing)}", **details)
    device = ctx.target.device
    if device is None:
        return passed(f"deviceInfo answers ({info.model}, firmware {info.firmware_version}); "
                      "no SADP reply to compare it with", **details)
    problems = _mismatches(info.model or "", info.serial_number or "",
                           info.firmware_version or "", device.model, device.serial,
                           device.firmware)
    if ctx.target.mac and info.mac_address and info.mac_address != ctx.target.mac:
        problems.append(f"MAC {info.mac_address} is not the unit's {ctx.target.mac}")
    if problems:
        return failed("deviceInfo does not match the SADP reply: " + "; ".join(problems),
                      **details)
    return passed(f"deviceInfo matches the SADP reply ({info.model}, firmware "
                  f"{info.firmware_version})", **details)


def _mismatches(model: str, serial: str, firmware: str, sadp_model: str | None,
                sadp_serial: str | None, sadp_firmware: str | None) -> list[str]:
    """What differs between deviceInfo and SADP (facts SADP does not give are not compared)."""
    out = []
    if sadp_model and sadp_model.strip().upper() != model.strip().upper():
        out.append(f"model {model!r} is {sadp_model!r} in SADP")
    if sadp_serial and not (serial in sadp_serial or sadp_serial in serial):
        out.append(f"serial {serial!r} is {sadp_serial!r} in SADP")
    if sadp_firmware and not same_version(firmware, sadp_firmware):
        out.append(f"firmware {firmware!r} is {sadp_firmware!r} in SADP")
    return out


def same_version(a: str, b: str) -> bool:
    """The version parts agree (builds are not compared); unreadable ones must be equal."""
    try:
        return FirmwareVersion.parse(a) == FirmwareVersion.parse(b)
    except ValueError:
        return a.strip() == b.strip()
