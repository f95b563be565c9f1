"""A virtual PoE switch: a real SNMP agent on UDP whose ports power virtual cameras.

The rig turns a camera off and on by setting its PoE port's admin state over SNMP. This module is
the other side of that wire: a pysnmp command responder (docs/snmp-poe.md §5.3) serving the
POWER-ETHERNET-MIB port table and, on request, the same port state through vendor columns (Cisco
``cpeExtPsePortEnable``, TP-Link ``tpPoePortStatus``). It answers v1/v2c by community (a
read-only and a read-write one) and SNMPv3 authPriv (HMAC-SHA + AES-128) for one user, so the
rig's client and net-snmp's ``snmpget``/``snmpset``/``snmpwalk`` can both drive it.

What it models, and why:
- A port's admin state (``enabled``) and whether a powered device is plugged in are separate:
  detection status is deliveringPower(3) only when both hold, searching(2) when enabled with
  nothing plugged in, disabled(1) when off (RFC 3621; docs/snmp-poe.md §1.3).
- Ports start enabled: a switch powers its PoE ports by default.
- A SET is applied all or nothing: every varbind is checked first (access, object, type, value,
  port lock), then all are applied (RFC 3416 section 4.2.5; docs/snmp-poe.md §5.3). A bad varbind is
  answered with its errorStatus and its 1-based errorIndex, and nothing changes.
- The OIDs here are written out from docs/snmp-poe.md on purpose instead of being taken from the
  client's profiles in rig.actuators.poe_mibs, so a wrong OID on one side shows up in the tests.

The agent runs on its own thread with its own event loop and its own SnmpEngine. The UDP socket is
bound before the thread starts, so a port already in use raises at ``start()`` (pysnmp's own bind
would fail silently, docs/snmp-poe.md §5.3 pitfall 3) and port 0 gives an ephemeral port.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto.api import v2c
from pysnmp.smi import error as smi_error
from pysnmp.smi import instrum

log = logging.getLogger(__name__)

Oid = tuple[int, ...]

#: POWER-ETHERNET-MIB (RFC 3621) pethPsePortEntry columns, index group.port (docs/snmp-poe.md §1.1).
PETH_ADMIN_ENABLE: Oid = (1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 3)
PETH_DETECTION_STATUS: Oid = (1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 6)
PETH_POWER_CLASSIFICATIONS: Oid = (1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 10)
#: pethMainPseEntry columns, index group: nominal power (W), oper status, consumption (W).
PETH_MAIN_POWER: Oid = (1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1, 2)
PETH_MAIN_OPER_STATUS: Oid = (1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1, 3)
PETH_MAIN_CONSUMPTION: Oid = (1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1, 4)
#: CISCO-POWER-ETHERNET-EXT-MIB cpeExtPsePortEnable, AUGMENTS pethPsePortEntry (index group.port):
#: auto(1), static(2), limit(3) mean enabled, disable(4) means off (docs/snmp-poe.md §2.1).
CISCO_PORT_ENABLE: Oid = (1, 3, 6, 1, 4, 1, 9, 9, 402, 1, 2, 1, 1)
#: TPLINK-POWER-OVER-ETHERNET-MIB, index tpPoePortIndex: tpPoePortStatus disable(0)/enable(1) and
#: tpPoePowerStatus off(0), turning-on(1), on(2) (docs/snmp-poe.md §2.1; not checked on hardware).
TPLINK_PORT_STATUS: Oid = (1, 3, 6, 1, 4, 1, 11863, 6, 56, 1, 1, 2, 1, 1, 2)
TPLINK_POWER_STATUS: Oid = (1, 3, 6, 1, 4, 1, 11863, 6, 56, 1, 1, 2, 1, 1, 11)
#: SNMPv2-MIB system group scalars, so a plain ``snmpwalk`` of mib-2 says what it is talking to.
SYS_DESCR: Oid = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME: Oid = (1, 3, 6, 1, 2, 1, 1, 5, 0)

#: The MIB views the agent can present, in the order ``--mib`` lists them.
MIB_VIEWS = ("rfc3621", "cisco", "tplink")
#: Watts a simulated camera draws; only feeds pethMainPseConsumptionPower.
DEVICE_WATTS = 5
#: Nominal budget per port in Watts, for pethMainPsePower: a PoE+ (802.3at) switch that can
#: feed every port at class 4 (30 W) at once, so a bench reserving 15.4 W per port fits.
PORT_BUDGET_WATTS = 30
#: How long start() waits for the agent thread to come up, and stop() for it to end.
THREAD_WAIT_S = 5.0
#: Everything under iso.org.dod (1.3.6) is visible; the read-only community writes nowhere.
ALL: Oid = (1, 3, 6)
NOWHERE: Oid = (0, 0)


@runtime_checkable
class PoweredDevice(Protocol):
    """Anything a PoE port can power: rig.sim.camera.VirtualCamera has this method."""

    def set_power(self, on: bool) -> None: ...


Device = PoweredDevice | Callable[[bool], None]


@dataclass(frozen=True)
class V3User:
    """The agent's SNMPv3 user: authPriv with HMAC-SHA-96 and AES-128 (CFB), as most switches
    are configured (docs/snmp-poe.md §6). Keys are passphrases; net-snmp wants at least 8
    characters."""

    name: str
    auth_key: str
    priv_key: str

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("v3 user name must not be empty")
        for label, key in (("auth", self.auth_key), ("priv", self.priv_key)):
            if len(key) < 8:
                raise ValueError(f"v3 {label} key must have at least 8 characters")


@dataclass(frozen=True)
class SimPortState:
    """One port as the switch sees it. ``plugged``: a powered device is connected."""

    port: int
    enabled: bool
    plugged: bool
    writable: bool
    power_class: int = 0

    @property
    def delivering(self) -> bool:
        """Power flows: the port is enabled and a device is there to draw it."""
        return self.enabled and self.plugged

    @property
    def detection_status(self) -> int:
        """pethPsePortDetectionStatus: disabled(1), searching(2), deliveringPower(3)."""
        if not self.enabled:
            return 1
        return 3 if self.plugged else 2


@dataclass(frozen=True)
class SwitchStats:
    """PDUs that reached the agent's responders (authenticated and authorised), for tests that
    must prove how many requests a client sent."""

    get_pdus: int = 0
    next_pdus: int = 0
    bulk_pdus: int = 0
    set_pdus: int = 0
    set_varbinds: int = 0


@dataclass(frozen=True)
class Column:
    """A per-port object: how to read it from a port and, if writable, which values mean what."""

    name: str
    oid: Oid
    by_group: bool                      # instance index is group.port (else just port)
    read: Callable[[SimPortState], int]
    write: Mapping[int, bool] | None = None   # accepted value -> enabled; None = read-only

    def index(self, group: int, port: int) -> Oid:
        return (group, port) if self.by_group else (port,)


def _class_value(state: SimPortState) -> int:
    # RFC 3621 classes are 1-based (class0 = 1) and "valid only while deliveringPower"; a port
    # that delivers nothing reports class0 here, as many agents do.
    return state.power_class + 1 if state.delivering else 1


_RFC3621_COLUMNS = (
    Column("pethPsePortAdminEnable", PETH_ADMIN_ENABLE, True,
            lambda s: 1 if s.enabled else 2, {1: True, 2: False}),
    Column("pethPsePortDetectionStatus", PETH_DETECTION_STATUS, True,
            lambda s: s.detection_status),
    Column("pethPsePortPowerClassifications", PETH_POWER_CLASSIFICATIONS, True, _class_value),
)
_CISCO_COLUMNS = (
    Column("cpeExtPsePortEnable", CISCO_PORT_ENABLE, True,
            lambda s: 1 if s.enabled else 4, {1: True, 2: True, 3: True, 4: False}),
)
_TPLINK_COLUMNS = (
    Column("tpPoePortStatus", TPLINK_PORT_STATUS, False,
            lambda s: 1 if s.enabled else 0, {0: False, 1: True}),
    Column("tpPoePowerStatus", TPLINK_POWER_STATUS, False,
            lambda s: 2 if s.delivering else 0),
)


def columns_for(mibs: Sequence[str]) -> tuple[Column, ...]:
    """The port columns served for these views. A Cisco switch also serves the standard table
    (its MIB AUGMENTS it); with ``cisco`` alone the standard AdminEnable is left out, so a client
    using the wrong profile gets a clear noSuchObject / notWritable instead of silently working."""
    unknown = [m for m in mibs if m not in MIB_VIEWS]
    if unknown or not mibs:
        raise ValueError(f"unknown MIB view(s) {unknown or list(mibs)}; choose from "
                         f"{', '.join(MIB_VIEWS)}")
    chosen: dict[Oid, Column] = {}
    if "rfc3621" in mibs:
        chosen.update((c.oid, c) for c in _RFC3621_COLUMNS)
    if "cisco" in mibs:
        chosen.update((c.oid, c) for c in _CISCO_COLUMNS)
        chosen.update((c.oid, c) for c in _RFC3621_COLUMNS[1:])
    if "tplink" in mibs:
        chosen.update((c.oid, c) for c in _TPLINK_COLUMNS)
    return tuple(sorted(chosen.values(), key=lambda c: c.oid))


def parse_mibs(text: str) -> tuple[str, ...]:
    """``--mib`` value: a comma list of views, or ``both`` (= rfc3621,cisco)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    expanded: list[str] = []
    for name in names:
        for part in (("rfc3621", "cisco") if name == "both" else (name,)):
            if part not in expanded:
                expanded.append(part)
    columns_for(expanded)   # validates
    return tuple(expanded)


class _Ports:
    """The switch's port state and the devices plugged in. Thread-safe; knows nothing of SNMP.

    Device callbacks run under the lock, in the order the changes happened, so a camera never
    sees power events out of order.
    """

    def __init__(self, count: int, *, enabled: bool) -> None:
        self._lock = threading.RLock()
        self._state = {p: SimPortState(p, enabled=enabled, plugged=False, writable=True)
                       for p in range(1, count + 1)}
        self._devices: dict[int, Callable[[bool], None]] = {}

    def __contains__(self, port: object) -> bool:
        return port in self._state

    def numbers(self) -> list[int]:
        return sorted(self._state)

    def get(self, port: int) -> SimPortState:
        with self._lock:
            return self._state[self._check(port)]

    def _check(self, port: int) -> int:
        if port not in self._state:
            raise KeyError(f"no port {port} (ports are 1..{len(self._state)})")
        return port

    def _update(self, port: int, **changes: Any) -> None:
        old = self._state[port]
        new = replace(old, **changes)
        self._state[port] = new
        sink = self._devices.get(port)
        if sink is not None and new.delivering != old.delivering:
            sink(new.delivering)

    def set_enabled(self, changes: Mapping[int, bool]) -> None:
        """Apply admin states (already validated) together."""
        with self._lock:
            for port in changes:
                self._check(port)
            for port, enabled in changes.items():
                self._update(port, enabled=enabled)

    def set_writable(self, port: int, writable: bool) -> None:
        with self._lock:
            self._update(self._check(port), writable=writable)

    def attach(self, port: int, sink: Callable[[bool], None], power_class: int) -> None:
        with self._lock:
            self._check(port)
            if port in self._devices:
                raise ValueError(f"port {port} already has a device attached")
            self._update(port, plugged=True, power_class=power_class)
            self._devices[port] = sink
            sink(self._state[port].delivering)   # the device learns its power once, now

    def detach(self, port: int) -> None:
        with self._lock:
            was_powered = self._state[self._check(port)].delivering
            sink = self._devices.pop(port, None)
            self._update(port, plugged=False, power_class=0)
            if sink is not None and was_powered:
                sink(False)


class _Mib(instrum.AbstractMibInstrumController):
    """The agent's whole MIB: system scalars, the PSE main table and the chosen port columns,
    computed live from the port state on every request."""

    def __init__(self, ports: _Ports, columns: Sequence[Column], *, group: int,
                 sys_name: str, started: float) -> None:
        self._ports = ports
        self._columns = tuple(columns)
        self._group = group
        self._objects: dict[Oid, Callable[[], Any]] = {
            SYS_DESCR: lambda: v2c.OctetString(f"rig virtual PoE switch, {len(ports.numbers())}"
                                               " ports"),
            SYS_UPTIME: lambda: v2c.TimeTicks(int((time.monotonic() - started) * 100)),
            SYS_NAME: lambda: v2c.OctetString(sys_name),
            PETH_MAIN_POWER + (group,):
                lambda: v2c.Gauge32(PORT_BUDGET_WATTS * len(ports.numbers())),
            PETH_MAIN_OPER_STATUS + (group,): lambda: v2c.Integer(1),
            PETH_MAIN_CONSUMPTION + (group,): lambda: v2c.Gauge32(
                DEVICE_WATTS * sum(ports.get(p).delivering for p in ports.numbers())),
        }
        self._cells: dict[Oid, tuple[Column, int]] = {}
        for column in self._columns:
            for port in ports.numbers():
                self._cells[column.oid + column.index(group, port)] = (column, port)
        self._order = sorted([*self._objects, *self._cells])

    def _value(self, oid: Oid) -> Any | None:
        getter = self._objects.get(oid)
        if getter is not None:
            return getter()
        cell = self._cells.get(oid)
        if cell is not None:
            column, port = cell
            return v2c.Integer(column.read(self._ports.get(port)))
        return None

    def _column_of(self, oid: Oid) -> Column | None:
        for column in self._columns:
            if oid[:len(column.oid)] == column.oid and len(oid) > len(column.oid):
                return column
        return None

    @staticmethod
    def _denied(view: str, oid: Oid, value: Any, idx: int, ctx: dict[str, Any]) -> bool:
        """VACM check through the responder's acFun: truthy means not in the user's view."""
        check = ctx.get("acFun")
        return bool(check and check(view, (oid, value), **{**ctx, "idx": idx}))

    def read_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Oid, Any]]:
        answer = []
        for idx, (name, _) in enumerate(var_binds):
            oid = tuple(name)
            value = self._value(oid)
            if value is None or self._denied("read", oid, None, idx, ctx):
                # v2c/v3 report absence in the varbind; pysnmp turns it into noSuchName for v1
                value = v2c.NoSuchInstance("") if (value is None and self._column_of(oid)) \
                    else v2c.NoSuchObject("")
            answer.append((oid, value))
        return answer

    def read_next_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Oid, Any]]:
        answer = []
        for idx, (name, _) in enumerate(var_binds):
            oid = tuple(name)
            pos = bisect.bisect_right(self._order, oid)
            while pos < len(self._order) and self._denied("read", self._order[pos], None, idx,
                                                          ctx):
                pos += 1
            if pos == len(self._order):
                answer.append((oid, v2c.EndOfMibView("")))
            else:
                found = self._order[pos]
                answer.append((found, self._value(found)))
        return answer

    def write_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Oid, Any]]:
        """Check every varbind, then apply all: a bad one raises with its index, nothing moves."""
        changes: dict[int, bool] = {}
        for idx, (name, value) in enumerate(var_binds):
            oid = tuple(name)
            if self._denied("write", oid, value, idx, ctx):
                raise smi_error.NoAccessError(name=name, idx=idx)
            cell = self._cells.get(oid)
            if cell is None:
                column = self._column_of(oid)
                if column is not None and column.write is not None:
                    raise smi_error.NoCreationError(name=name, idx=idx)   # no such port
                raise smi_error.NotWritableError(name=name, idx=idx)
            column, port = cell
            if column.write is None:
                raise smi_error.NotWritableError(name=name, idx=idx)
            # v1 SETs arrive as rfc1155 classes: compare tags, not Python types
            # (docs/snmp-poe.md §5.3 pitfall 2)
            if value.getTagSet() != v2c.Integer32.tagSet:
                raise smi_error.WrongTypeError(name=name, idx=idx)
            if int(value) not in column.write:
                raise smi_error.WrongValueError(name=name, idx=idx)
            if not self._ports.get(port).writable:
                raise smi_error.NotWritableError(name=name, idx=idx)
            changes[port] = column.write[int(value)]
        self._ports.set_enabled(changes)
        return [(tuple(name), value) for name, value in var_binds]


class _Counter:
    """Thread-safe PDU counters behind ``VirtualSwitch.stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = SwitchStats()

    def add(self, **increments: int) -> None:
        with self._lock:
            self._stats = replace(self._stats, **{k: getattr(self._stats, k) + v
                                                  for k, v in increments.items()})

    @property
    def stats(self) -> SwitchStats:
        with self._lock:
            return self._stats


def _counting(base: type, field: str, counter: _Counter) -> type:
    """A responder class that counts its PDUs before handling them."""

    class Counting(base):  # type: ignore[valid-type, misc]
        def handle_management_operation(self, snmp_engine: Any, state_reference: Any,
                                        context_name: Any, pdu: Any) -> None:
            counter.add(**{field: 1})
            super().handle_management_operation(snmp_engine, state_reference, context_name, pdu)

    return Counting


def _bulk_responder(counter: _Counter) -> type:
    """GETBULK responder that counts PDUs and stops at the end of the MIB.

    pysnmp repeats a row of endOfMibView for every remaining repetition; net-snmp's
    ``snmpbulkwalk`` prints each of them. Like snmpd, answer at most one such row.
    """

    class BulkResponder(cmdrsp.BulkCommandResponder):
        _non_repeaters = 0
        _repeaters = 0

        def handle_management_operation(self, snmp_engine: Any, state_reference: Any,
                                        context_name: Any, pdu: Any) -> None:
            counter.add(bulk_pdus=1)
            requested = len(v2c.apiPDU.get_varbinds(pdu))
            self._non_repeaters = min(max(0, int(v2c.apiBulkPDU.get_non_repeaters(pdu))),
                                      requested)
            self._repeaters = requested - self._non_repeaters
            super().handle_management_operation(snmp_engine, state_reference, context_name, pdu)

        def send_varbinds(self, snmp_engine: Any, state_reference: Any, error_status: Any,
                          error_index: Any, var_binds: Any) -> None:
            var_binds = list(var_binds)
            width = self._repeaters
            if width:
                for start in range(self._non_repeaters, len(var_binds), width):
                    row = var_binds[start:start + width]
                    if all(isinstance(value, v2c.EndOfMibView) for _, value in row):
                        var_binds = var_binds[:start + width]
                        break
            super().send_varbinds(snmp_engine, state_reference, error_status, error_index,
                                  var_binds)

    return BulkResponder


def _set_responder(counter: _Counter) -> type:
    """SET responder that counts PDUs and reports errors with the right errorIndex.

    pysnmp 7.1's ``process_pdu`` resets the errorIndex to 1 whenever the failing varbind is not
    the last one (``if len(varBinds) > errorIndex: errorIndex = 1``), so a refusal in the middle
    of a 48-port SET would name the wrong port. Errors are answered here instead.
    """

    class SetResponder(cmdrsp.SetCommandResponder):
        def handle_management_operation(self, snmp_engine: Any, state_reference: Any,
                                        context_name: Any, pdu: Any) -> None:
            var_binds = v2c.apiPDU.get_varbinds(pdu)
            counter.add(set_pdus=1, set_varbinds=len(var_binds))
            try:
                super().handle_management_operation(snmp_engine, state_reference,
                                                     context_name, pdu)
            except smi_error.MibOperationError as exc:
                status = self.SMI_ERROR_MAP.get(type(exc), "genErr")
                index = int(exc.get("idx", 0)) + 1
                self.send_varbinds(snmp_engine, state_reference, status, index, var_binds)
                self.release_state_information(state_reference)

    return SetResponder


class VirtualSwitch:
    """A PoE switch with ``ports`` ports (1..N in group ``group``) behind a real SNMP agent.

    ``communities``: v1/v2c community strings, read-only and read-write (None disables one).
    ``v3_user``: the authPriv user, or None for no SNMPv3. ``mibs``: the views served (see
    ``MIB_VIEWS``). ``enabled``: the admin state every port starts in.
    """

    def __init__(self, ports: int = 8, *, bind: str = "127.0.0.1", udp_port: int = 0,
                 community_ro: str | None = "public", community_rw: str | None = "private",
                 v3_user: V3User | None = None, mibs: Sequence[str] = ("rfc3621",),
                 group: int = 1, enabled: bool = True,
                 sys_name: str = "rig-sim-switch") -> None:
        if not 1 <= ports <= 512:
            raise ValueError(f"ports must be 1..512, not {ports}")
        if group < 1:
            raise ValueError(f"group must be >= 1, not {group}")
        if community_ro is not None and community_ro == community_rw:
            raise ValueError("the read-only and read-write communities must differ")
        self.columns = columns_for(mibs)
        self.mibs = tuple(mibs)
        self.bind = bind
        self.requested_port = udp_port
        self.community_ro = community_ro
        self.community_rw = community_rw
        self.v3_user = v3_user
        self.group = group
        self.sys_name = sys_name
        self._ports = _Ports(ports, enabled=enabled)
        self._counter = _Counter()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.udp_port: int | None = None

    # --- ports, as a person at the bench (or a test) sees them ---------------------------------

    @property
    def port_numbers(self) -> list[int]:
        return self._ports.numbers()

    def state(self, port: int) -> SimPortState:
        return self._ports.get(port)

    def attach(self, port: int, device: Device, *, power_class: int = 0) -> None:
        """Plug ``device`` into ``port``: from now on it gets ``set_power(on)`` (or, for a plain
        callable, ``device(on)``) whenever power on the port starts or stops, and at once with
        the port's current power. ``power_class`` is the 802.3af class it presents (0..4)."""
        if not 0 <= power_class <= 4:
            raise ValueError(f"power_class must be 0..4, not {power_class}")
        sink = device.set_power if isinstance(device, PoweredDevice) else device
        if not callable(sink):
            raise TypeError("device must have set_power(on) or be callable with (on)")
        self._ports.attach(port, sink, power_class)

    def detach(self, port: int) -> None:
        """Unplug whatever is on ``port`` (it loses power)."""
        self._ports.detach(port)

    def set_enabled(self, port: int, on: bool) -> None:
        """Change a port's admin state locally, as the switch's console would."""
        self._ports.set_enabled({port: on})

    def set_writable(self, port: int, writable: bool) -> None:
        """Lock (``False``) or unlock a port: SETs on a locked port are answered notWritable,
        like a port pinned by switch policy, so tests can meet an agent that refuses."""
        self._ports.set_writable(port, writable)

    @property
    def stats(self) -> SwitchStats:
        return self._counter.stats

    def oids(self, port: int) -> dict[str, str]:
        """Dotted OIDs of every served column for ``port``, by object name."""
        if port not in self._ports:
            raise KeyError(f"no port {port}")
        return {c.name: ".".join(map(str, c.oid + c.index(self.group, port)))
                for c in self.columns}

    # --- the agent --------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def address(self) -> tuple[str, int]:
        if self.udp_port is None:
            raise RuntimeError("virtual switch not started")
        return self.bind, self.udp_port

    def start(self) -> VirtualSwitch:
        """Bind the UDP port and start answering. Raises OSError if the address is unusable."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("virtual switch already started")
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((self.bind, self.requested_port))
            except BaseException:
                sock.close()
                raise
            self._sock = sock
            self.udp_port = sock.getsockname()[1]
            ready = threading.Event()
            failure: list[BaseException] = []
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._run, args=(ready, failure),
                                            name=f"sim-switch-{self.udp_port}", daemon=True)
            self._thread.start()
        if not ready.wait(THREAD_WAIT_S) or failure:
            self.stop()
            if failure:
                raise failure[0]
            raise RuntimeError("virtual switch agent did not start")
        log.info("virtual switch on %s:%d: %d ports, views %s", self.bind, self.udp_port,
                 len(self.port_numbers), ",".join(self.mibs))
        return self

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(ready, failure))
        finally:
            loop.close()

    async def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        snmp_engine: engine.SnmpEngine | None = None
        try:
            self._stop = asyncio.Event()
            snmp_engine = engine.SnmpEngine()
            self._configure(snmp_engine)
        except BaseException as exc:  # noqa: BLE001 - handed to start() in the caller's thread
            failure.append(exc)
            if snmp_engine is not None:
                snmp_engine.close_dispatcher()
            ready.set()
            return
        ready.set()
        try:
            await self._stop.wait()
        finally:
            snmp_engine.close_dispatcher()

    def _configure(self, snmp_engine: engine.SnmpEngine) -> None:
        assert self._sock is not None
        transport = udp.UdpTransport(loop=asyncio.get_running_loop())
        config.add_transport(snmp_engine, udp.DOMAIN_NAME,
                             transport.open_server_mode(sock=self._sock))
        # Read-only users get an explicit write view that matches nothing: with no write view
        # at all pysnmp's VACM lets them write (docs/snmp-poe.md §5.3 pitfall 1, pysnmp #48).
        for security_name, community, write in (("ro", self.community_ro, NOWHERE),
                                                ("rw", self.community_rw, ALL)):
            if community is None:
                continue
            config.add_v1_system(snmp_engine, security_name, community)
            for model in (1, 2):
                config.add_vacm_user(snmp_engine, model, security_name, "noAuthNoPriv",
                                     readSubTree=ALL, writeSubTree=write)
        if self.v3_user is not None:
            config.add_v3_user(snmp_engine, self.v3_user.name,
                               config.USM_AUTH_HMAC96_SHA, self.v3_user.auth_key,
                               config.USM_PRIV_CFB128_AES, self.v3_user.priv_key)
            config.add_vacm_user(snmp_engine, 3, self.v3_user.name, "authPriv",
                                 readSubTree=ALL, writeSubTree=ALL)
        snmp_context = context.SnmpContext(snmp_engine)
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(
            b"", _Mib(self._ports, self.columns, group=self.group, sys_name=self.sys_name,
                      started=time.monotonic()))
        counter = self._counter
        _counting(cmdrsp.GetCommandResponder, "get_pdus", counter)(snmp_engine, snmp_context)
        _counting(cmdrsp.NextCommandResponder, "next_pdus", counter)(snmp_engine, snmp_context)
        _bulk_responder(counter)(snmp_engine, snmp_context)
        _set_responder(counter)(snmp_engine, snmp_context)

    def stop(self) -> None:
        """Stop answering and free the UDP port. Safe to call any number of times."""
        with self._lock:
            thread, loop, stop = self._thread, self._loop, self._stop
            self._thread = self._loop = self._stop = None
            sock, self._sock = self._sock, None
        if thread is not None and loop is not None:
            if stop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(stop.set)
                except RuntimeError:   # the loop closed in the meantime
                    pass
            thread.join(THREAD_WAIT_S)
            if thread.is_alive():
                log.warning("virtual switch agent thread did not end within %.0f s",
                            THREAD_WAIT_S)
        if sock is not None:
            sock.close()

    def __enter__(self) -> VirtualSwitch:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

