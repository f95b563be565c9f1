"""Functional checks: does a reset unit actually work? (issue 12; the exchanges they rely on:
firmware_notes/topics/checks.md).

Seven checks, named by ``rig.vocabulary.CheckName``, one module each, each a plain function
``check(ctx) -> Finding``: ``device-info`` (deviceInfo matches SADP), ``snapshot`` (a JPEG of
the configured size that is not flat), ``rtsp`` (DESCRIBE with Digest gives an H.264/H.265
video track), ``ir-cut`` (day and night read back, the mode restored), ``storage`` (the
bench's card policy: format, flag, ignore), ``firmware-baseline`` (at least the bench's
minimum for the family) and ``cloud`` (not bound to a Hik-Connect/EZVIZ account). The bench
file's ``[checks]`` table (rig.checks.config) selects them, names the key ones and sets the
thresholds; rig.checks.results grades a unit from the results.

The one entry point, for the hand-over and ``rig qa``::

    from rig.checks import CheckTarget, run_checks
    outcome = run_checks(client, rec, CheckTarget(mac, sadp_device, family), bench.checks,
                         credentials, logins, time_scale=bench.time_scale)
    store.runs.finish_unit(..., grade=outcome.grade)

- ``client``: an IsapiClient over a route only this unit answers on (``ctx.web_client``);
- ``rec``: the unit's Recorder; ``credentials``: the activated unit's admin login;
- ``target``: the unit's MAC, latest SADP reply and firmware family name (any may be None);
- ``logins``: the slot's LoginAllowance (None outside a run): the checks spend at most the
  one login it allows, and nothing is sent when it refuses;
- ``only``: run these checks instead of the bench's ``run`` (``rig qa --check``).

It returns ``ChecksResult(results, grade)``; ``grade`` is None when the bench selects no
check. It raises nothing for a unit's failure: every check ends passed, failed, unknown or
skipped, and unknown is never a pass. What it records is described in rig.checks.runner.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CheckResult", "CheckTarget", "ChecksConfig", "ChecksResult", "grade", "run_checks"]


def __getattr__(name: str) -> Any:
    """The entry points, imported on first use: bench.py reads rig.checks.config at every
    start, and the checks themselves pull in the ISAPI and RTSP clients."""
    if name in ("run_checks", "ChecksResult"):
        from rig.checks import runner
        return getattr(runner, name)
    if name in ("CheckResult", "grade"):
        from rig.checks import results
        return getattr(results, name)
    if name == "CheckTarget":
        from rig.checks.base import CheckTarget
        return CheckTarget
    if name == "ChecksConfig":
        from rig.checks.config import ChecksConfig
        return ChecksConfig
    raise AttributeError(f"module 'rig.checks' has no attribute {name!r}")
