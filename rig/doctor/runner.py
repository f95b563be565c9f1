"""Run every area's probe side by side, each within a deadline, and never raise.

Why threads and deadlines: the probes wait on different things (a SADP window, SNMP
round trips, a serial reply, subprocesses) and each bounds its own waits; running them side by
side makes the doctor as slow as its slowest probe, not their sum. The runner's deadline is the
backstop for a probe whose own bound failed: it is reported as a ``fail`` and left behind (a
thread cannot be killed; every probe's waits are bounded, so it ends on its own).
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.bench import Bench
from rig.doctor import clock, gpio, network, records, relays, switches, units
from rig.doctor.clock import ClockReading
from rig.doctor.findings import Finding, fail
from rig.vocabulary import DoctorArea

log = logging.getLogger(__name__)

#: Seconds every area gets, beyond its own bounded waits, before it is given up.
DEFAULT_DEADLINE_S = 20.0


@dataclass(frozen=True)
class DoctorContext:
    """What the probes read: the bench, where its records are, and the seams a simulated bench
    needs in-process (``pin_factory``: the simulator's MockFactory, as ``BenchHardware`` takes
    it; ``clock_source``: how clock sync is read, for tests)."""

    bench: Bench
    db_path: Path
    pin_factory: Any = None
    sadp_timeout: float = 3.0
    deadline: float = DEFAULT_DEADLINE_S
    clock_source: Callable[[], ClockReading] | None = None


Probe = Callable[[DoctorContext], list[Finding]]

#: Every area and its probe, in report order.
PROBES: tuple[tuple[DoctorArea, Probe], ...] = (
    (DoctorArea.NETWORK, network.probe),
    (DoctorArea.RECORDS, records.probe),
    (DoctorArea.SWITCH, switches.probe),
    (DoctorArea.RELAY, relays.probe),
    (DoctorArea.GPIO, gpio.probe),
    (DoctorArea.UNITS, units.probe),
    (DoctorArea.CLOCK, clock.probe),
)


def run_doctor(ctx: DoctorContext,
               probes: Sequence[tuple[DoctorArea, Probe]] = PROBES) -> list[Finding]:
    """Every probe's findings, in area order. A probe that raises or overruns the deadline is
    one ``fail`` naming what happened; nothing escapes."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(len(probes), 1),
                                                 thread_name_prefix="rig-doctor")
    try:
        futures = [(area, pool.submit(_guarded, area, probe, ctx)) for area, probe in probes]
        end = time.monotonic() + ctx.deadline
        findings: list[Finding] = []
        for area, future in futures:
            try:
                findings += future.result(max(end - time.monotonic(), 0.0))
            except concurrent.futures.TimeoutError:
                findings.append(fail(area, str(area), f"the {area} probe did not finish within "
                                     f"{ctx.deadline:g} s",
                                     "something it waits on hangs: run rig doctor again with "
                                     "-v to see where"))
        return findings
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _guarded(area: DoctorArea, probe: Probe, ctx: DoctorContext) -> list[Finding]:
    """``probe(ctx)``, with a crash turned into a finding: the doctor reports, never raises."""
    try:
        return list(probe(ctx))
    except Exception as exc:  # noqa: BLE001 - a crashing probe is a finding, not a traceback
        log.debug("doctor: the %s probe crashed", area, exc_info=True)
        return [fail(area, str(area), f"the {area} probe crashed: {type(exc).__name__}: {exc}",
                     "a bug in rig doctor or an unexpected system state: report it with "
                     "this line")]
