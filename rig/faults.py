"""How a stage says it could not go on: the bench failed, or the unit did.

The split is LAVA's infrastructure-versus-device idea: a bench fault (an actuator, the switch, a
missing solenoid) counts toward taking the slot out of service; a unit fault is the camera's and
carries the verdict the judge gave it.
"""

from __future__ import annotations

from rig.actuators.base import ActuatorError
from rig.verify import UnitVerdict, not_default
from rig.vocabulary import BenchFaultKind


class BenchFault(Exception):
    """The bench, not the unit, failed: an actuator, the switch, a missing solenoid."""

    def __init__(self, message: str, kind: BenchFaultKind | None = None) -> None:
        super().__init__(message)
        self._kind = kind

    @property
    def kind(self) -> BenchFaultKind:
        """What failed, for the verdict's check and the metrics: as given, else the driver
        error this was raised from (``raise BenchFault(...) from exc``), else SETUP: raised on
        its own, the bench cannot do what was asked (no solenoid, a press over the cap)."""
        if self._kind is not None:
            return self._kind
        cause = self.__cause__
        if isinstance(cause, ActuatorError):
            return cause.kind
        return BenchFaultKind.SETUP if cause is None else BenchFaultKind.ACTUATOR


class UnitFault(Exception):
    """The unit failed a step (never came back, refused a login): carries the verdict."""

    def __init__(self, verdict: UnitVerdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict

    @classmethod
    def not_default(cls, check: str, detail: str) -> UnitFault:
        """A not-default verdict for a step that failed before verification could run."""
        return cls(not_default(check, detail))
