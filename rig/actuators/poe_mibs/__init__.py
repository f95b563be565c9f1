"""PoE MIB profiles: one small module per way a switch exposes per-port PoE over SNMP.

Switches agree on what a PoE port is but not on where it lives: RFC 3621's pethPsePortTable is
the common case, Cisco IOS adds its own enable column, TP-Link JetStream has a private table with
other values (docs/snmp-poe.md §2). Like labgrid's power backends, each profile is a plain
module with the same members, so adding a vendor is adding a file:

- ``ADMIN_COLUMN``: the writable column that switches the port (OID without the index).
- ``STATUS_COLUMN``: the read-only column that says whether power flows, or None.
- ``index(group, port)``: the instance suffix for a port; ``port_of(suffix)`` the inverse
  (None when the suffix is not a port of this profile), for walking the table.
- ``admin_value(on)``: the INTEGER to SET; ``admin_state(value)``: what a read value means.
- ``detection(value)``: ``(drawing_power, text)`` from a status value (None when unknown).

Profiles hold numeric OIDs only: MIB files are never loaded (no pysmi, docs/snmp-poe.md §4.3).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Protocol, cast

from rig.actuators.base import PowerState

Oid = tuple[int, ...]

_REQUIRED = ("ADMIN_COLUMN", "STATUS_COLUMN", "index", "port_of", "admin_value", "admin_state",
             "detection")


class MibProfile(Protocol):
    """What rig.actuators.poe needs from a profile module."""

    ADMIN_COLUMN: Oid
    STATUS_COLUMN: Oid | None

    def index(self, group: int, port: int) -> Oid: ...

    def port_of(self, suffix: Oid) -> tuple[int, int] | None: ...

    def admin_value(self, on: bool) -> int: ...

    def admin_state(self, value: int) -> PowerState: ...

    def detection(self, value: int) -> tuple[bool | None, str]: ...


def names() -> list[str]:
    """The profiles shipped, by module name."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> MibProfile:
    """The profile module called ``name``; ValueError naming the choices if there is none."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name not in names():
        raise ValueError(f"unknown PoE MIB profile {name!r}; choose from {', '.join(names())}")
    module = importlib.import_module(f"{__name__}.{name}")
    missing = [attr for attr in _REQUIRED if not hasattr(module, attr)]
    if missing:
        raise TypeError(f"PoE MIB profile {name!r} lacks {', '.join(missing)}")
    return cast(MibProfile, module)
