"""Cisco IOS / IOS-XE Catalyst: CISCO-POWER-ETHERNET-EXT-MIB cpeExtPsePortEnable.

The column AUGMENTS pethPsePortEntry, so the index is group.port as in RFC 3621 and the standard
detection status still applies. Values: auto(1), static(2), limit(3) all mean powered; disable(4)
means off. Mesa CI drives a Catalyst 2960 with 4 = off, 1 = on (docs/snmp-poe.md §2.1).
"""

from __future__ import annotations

from rig.actuators.base import PowerState
from rig.actuators.poe_mibs import rfc3621

#: cpeExtPsePortEnable, read-write.
ADMIN_COLUMN = (1, 3, 6, 1, 4, 1, 9, 9, 402, 1, 2, 1, 1)
#: The standard pethPsePortDetectionStatus (Cisco augments the standard table).
STATUS_COLUMN = rfc3621.STATUS_COLUMN

_AUTO, _STATIC, _LIMIT, _DISABLE = 1, 2, 3, 4


def index(group: int, port: int) -> tuple[int, ...]:
    return (group, port)


def port_of(suffix: tuple[int, ...]) -> tuple[int, int] | None:
    return (suffix[0], suffix[1]) if len(suffix) == 2 else None


def admin_value(on: bool) -> int:
    return _AUTO if on else _DISABLE


def admin_state(value: int) -> PowerState:
    if value in (_AUTO, _STATIC, _LIMIT):
        return PowerState.ON
    return PowerState.OFF if value == _DISABLE else PowerState.UNKNOWN


def detection(value: int) -> tuple[bool | None, str]:
    return rfc3621.detection(value)
