"""POWER-ETHERNET-MIB (RFC 3621): the standard PoE port table, index group.port.

pethPsePortAdminEnable is a TruthValue: true(1) powers the port, false(2) turns the PSE function
off. Used by HP/Aruba, Netgear, Cisco SB (CBS350, which labgrid and pdudaemon drive), Extreme and
most others (docs/snmp-poe.md §1, docs/snmp-poe.md §2.1).
"""

from __future__ import annotations

from rig.actuators.base import PowerState

#: pethPsePortAdminEnable, read-write.
ADMIN_COLUMN = (1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 3)
#: pethPsePortDetectionStatus, read-only.
STATUS_COLUMN = (1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 6)

_DETECTION = {1: "disabled", 2: "searching", 3: "deliveringPower", 4: "fault", 5: "test",
              6: "otherFault"}


def index(group: int, port: int) -> tuple[int, ...]:
    # group is the stack member or module, 1 on a standalone switch (RFC 3621 pethPsePortTable;
    # docs/snmp-poe.md §1.2)
    return (group, port)


def port_of(suffix: tuple[int, ...]) -> tuple[int, int] | None:
    return (suffix[0], suffix[1]) if len(suffix) == 2 else None


def admin_value(on: bool) -> int:
    return 1 if on else 2


def admin_state(value: int) -> PowerState:
    return {1: PowerState.ON, 2: PowerState.OFF}.get(value, PowerState.UNKNOWN)


def detection(value: int) -> tuple[bool | None, str]:
    # Only deliveringPower(3) means a device draws power; enabled with nothing plugged in is
    # searching(2) (docs/snmp-poe.md §1.3).
    text = _DETECTION.get(value, f"unknown detection status {value}")
    return (value == 3 if value in _DETECTION else None), text
