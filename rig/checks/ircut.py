"""``ir-cut``: the IR-cut filter switches: day, read back, night, read back, then the mode it
was found in is restored (firmware_notes/topics/checks.md, "ir-cut").

A unit without the filter answers ``notSupport``: the check is skipped ("no IR-cut filter"),
which does not count against the unit. A read-back that differs from the mode asked is a
stuck filter and fails, naming both. The found mode is restored whatever happened in between,
as long as the unit still answers; a restore that fails is said in the reason.
"""

from __future__ import annotations

from typing import Any

from rig.camera.isapi_errors import AuthenticationFailed, IsapiError, NotActivated
from rig.checks import parsers
from rig.checks.base import CheckContext
from rig.checks.calls import CheckTimeout, NotSupported
from rig.checks.results import Finding, failed, passed, skipped, unknown
from rig.vocabulary import CheckName

NAME = CheckName.IR_CUT
PATH = "/ISAPI/Image/channels/1/ircutFilter"
SEQUENCE = ("day", "night")


def check(ctx: CheckContext) -> Finding:
    """Switch day, night, restore (see the module docstring)."""
    try:
        initial = ctx.calls.read(PATH, parsers.ircut_mode)
    except NotSupported:
        return skipped("no IR-cut filter (the unit answers notSupport)", initial=None,
                       asked=[], read=[], restored=None)
    details: dict[str, Any] = {"initial": initial, "asked": [], "read": [], "restored": None}
    if initial is None:
        return unknown("the IR-cut mode could not be read", **details)
    stuck = None
    try:
        for mode in SEQUENCE:
            details["asked"].append(mode)
            ctx.calls.put_xml(PATH, parsers.ircut_xml(mode))
            read = ctx.calls.read(PATH, parsers.ircut_mode)
            details["read"].append(read)
            if read != mode:
                stuck = f"asked for {mode}, the filter reads {read or 'nothing'}"
                break
    finally:
        details["restored"], restore_error = _restore(ctx, initial)
    if stuck:
        return failed(f"stuck IR-cut filter: {stuck}{restore_error}", **details)
    if details["restored"] is False:
        return failed(f"the filter switched, but{restore_error[1:]}", **details)
    return passed(f"day and night read back as asked; {initial} restored", **details)


def _restore(ctx: CheckContext, initial: str) -> tuple[bool | None, str]:
    """Put the found mode back: (done, "; why not" or "")."""
    if initial not in parsers.IRCUT_MODES:
        return None, f"; mode {initial!r} not restored (not a mode rig writes)"
    try:
        ctx.calls.put_xml(PATH, parsers.ircut_xml(initial))
    except (AuthenticationFailed, NotActivated):
        raise
    except (IsapiError, CheckTimeout) as exc:
        return False, f"; mode {initial} could not be restored ({exc})"
    return True, ""
