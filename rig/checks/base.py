"""What every functional check is given: the unit (``CheckTarget``) and one check's view of it
(``CheckContext``).

A check is a plain function ``check(ctx) -> Finding`` in a module of its own
(rig.checks.device_info, .snapshot, ...). It sends its requests through ``ctx.calls`` and
returns what it found; it records nothing itself: the runner (rig.checks.runner) writes the
step and the evidence, so every check is recorded the same way and a check cannot forget.
Exceptions a check lets out are the runner's to map: a timeout or an unreadable answer is
``unknown``, never ``passed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rig.camera.isapi_types import DeviceInfo
from rig.camera.sadp import SadpDevice
from rig.checks.calls import CheckCalls
from rig.checks.config import ChecksConfig


@dataclass(frozen=True)
class CheckTarget:
    """The unit under test as the bench knows it: its MAC, its latest SADP reply (None when
    none was heard, e.g. ``rig qa HOST``) and its firmware family (profile name; None: from
    its firmware version)."""

    mac: str | None = None
    device: SadpDevice | None = None
    family: str | None = None

    @property
    def label(self) -> str:
        return self.mac or "the unit"


@dataclass(frozen=True)
class CheckContext:
    """One check's view: its requests (within its own time), the unit, the bench's plan, and
    the deviceInfo read right after the login (None, and why, when it could not be read)."""

    calls: CheckCalls
    target: CheckTarget
    config: ChecksConfig
    info: DeviceInfo | None
    info_error: str = ""
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    #: The bench's time scale (> 1 only for a simulated bench): waits between polls shrink.
    time_scale: float = 1.0

    @property
    def model(self) -> str | None:
        """The unit's model: deviceInfo's, else its SADP reply's."""
        if self.info is not None and self.info.model:
            return self.info.model
        return self.target.device.model if self.target.device else None
