"""Clock: is the system clock synchronised? Records, reports and the lockout counters carry
times, and a Raspberry Pi has no battery-backed clock: until NTP syncs it after boot, it runs
from the last saved time (or 1970), and a run recorded then sorts among the wrong days."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rig.doctor.findings import Finding, fail, ok, warn
from rig.vocabulary import DoctorArea

if TYPE_CHECKING:
    from rig.doctor.runner import DoctorContext

#: systemd-timesyncd touches this file once it has synchronised (timesyncd.service(8)).
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
#: A clock before this (2025-01-01 UTC) is wrong whatever the sync state says.
EARLIEST_PLAUSIBLE = 1735689600
_WAIT_S = 3.0
_NAME = "system clock"


@dataclass(frozen=True)
class ClockReading:
    """Whether the clock is synchronised (None: unknown) and which source said so."""

    synchronised: bool | None
    source: str


def read_clock_sync() -> ClockReading:
    """Ask, in turn: systemd (timedatectl), timesyncd's flag file, chrony. The first that
    knows answers."""
    if shutil.which("timedatectl"):
        answer = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
        if answer in ("yes", "no"):
            return ClockReading(answer == "yes", "timedatectl NTPSynchronized")
    if TIMESYNC_FLAG.exists():
        return ClockReading(True, str(TIMESYNC_FLAG))
    if shutil.which("chronyc"):
        answer = _run(["chronyc", "tracking"])
        for line in (answer or "").splitlines():
            if line.startswith("Leap status"):
                return ClockReading("Not synchronised" not in line, "chronyc tracking")
    return ClockReading(None, "no timedatectl, timesyncd flag or chronyc answer")


def _run(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_WAIT_S,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def probe(ctx: DoctorContext, now: float | None = None) -> list[Finding]:
    now = time.time() if now is None else now
    area = DoctorArea.CLOCK
    if now < EARLIEST_PLAUSIBLE:
        return [fail(area, _NAME, f"the clock says {time.strftime('%Y-%m-%d', time.gmtime(now))}"
                     ": records would carry the wrong day",
                     "set the time (NTP: timedatectl set-ntp true, or a battery-backed RTC)")]
    reading = (ctx.clock_source or read_clock_sync)()
    if reading.synchronised:
        return [ok(area, _NAME, f"synchronised ({reading.source})")]
    if reading.synchronised is None:
        return [warn(area, _NAME, f"sync state unknown: {reading.source}",
                     "run an NTP client (systemd-timesyncd or chrony) so records carry true "
                     "times")]
    return [warn(area, _NAME, f"not synchronised ({reading.source})",
                 "check NTP: timedatectl timesync-status; the Pi has no RTC, so its clock "
                 "drifts from boot until NTP syncs")]
