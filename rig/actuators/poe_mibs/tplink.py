"""TP-Link JetStream (T-/SG-series, Omada): TPLINK-POWER-OVER-ETHERNET-MIB.

tpPoePortStatus is disable(0) / enable(1), note 0 and not 2; tpPoePowerStatus reports off(0),
turning-on(1), on(2), overload(3) and further faults (netdisco-mibs
tplink-power-over-ethernet-mib, docs/snmp-poe.md §2.1).

UNVERIFIED: no TP-Link switch was available; docs/snmp-poe.md §2.1 marks the index semantics
(port number vs. ifIndex on multi-unit stacks) as not checked. The table is indexed by
tpPoePortIndex alone, so this profile serves group 1 only.
"""

from __future__ import annotations

from rig.actuators.base import PowerState

#: tpPoePortStatus, read-write.
ADMIN_COLUMN = (1, 3, 6, 1, 4, 1, 11863, 6, 56, 1, 1, 2, 1, 1, 2)
#: tpPoePowerStatus, read-only.
STATUS_COLUMN = (1, 3, 6, 1, 4, 1, 11863, 6, 56, 1, 1, 2, 1, 1, 11)

#: The values docs/snmp-poe.md §2.1 lists; the MIB has more fault codes, read here as unknown.
_POWER = {0: "off", 1: "turning-on", 2: "on", 3: "overload"}


def index(group: int, port: int) -> tuple[int, ...]:
    if group != 1:
        raise ValueError(f"the tplink profile has no groups (tpPoePortIndex only), not {group}")
    return (port,)


def port_of(suffix: tuple[int, ...]) -> tuple[int, int] | None:
    return (1, suffix[0]) if len(suffix) == 1 else None


def admin_value(on: bool) -> int:
    return 1 if on else 0


def admin_state(value: int) -> PowerState:
    return {1: PowerState.ON, 0: PowerState.OFF}.get(value, PowerState.UNKNOWN)


def detection(value: int) -> tuple[bool | None, str]:
    text = _POWER.get(value, f"unknown power status {value}")
    return (value == 2 if value in _POWER else None), text
