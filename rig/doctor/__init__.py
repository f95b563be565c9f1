"""``rig doctor``: a live, read-only probe of every part of a bench before a run.

Why a separate package and not a flag of ``rig run``: a run moves outputs; the doctor never
does. It reads (an interface's flags, the record store, SNMP GETs, a relay board's state query,
GPIO line information, one SADP census, the clock's sync state) and says, per part, ``ok``,
``warn`` or ``fail`` with a one-line fix, so an operator learns that the relay board moved to
another ttyUSB or that the switch's SNMPv3 key changed before the first slot is switched.

One module per bench area, each a ``probe(ctx) -> list[Finding]`` (rig.doctor.runner runs them
with deadlines and turns a crash into a ``fail``); rig.doctor.output formats the findings.
"""

from __future__ import annotations

from rig.doctor.findings import Finding, exit_code, worst
from rig.doctor.runner import DoctorContext, run_doctor

__all__ = ["DoctorContext", "Finding", "exit_code", "run_doctor", "worst"]
