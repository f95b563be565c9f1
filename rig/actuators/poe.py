"""PoE ports on a managed switch, switched over SNMP: one slot's power is one switch port.

The SNMP plumbing (one private event loop and engine per switch, deadlines, credentials, error
translation) is rig.actuators.snmp; concurrent ``set_port`` calls are batched by
rig.actuators.poe_batch. This module is what a port means: the MIB profile's columns, admin
state and detection status, and the ports this rig must not leave dark. A lock makes every
public method one step at a time, so a set and its read-back are never interleaved with another
thread's request.

Safety rules this module keeps:
- Several ports change in ONE SET request (many varbinds; agents apply a PDU as a whole).
- Every SET is verified by reading the admin state back; a mismatch raises.
- Ports this rig turned off are remembered (before the SET goes out: a SET that timed out may
  still have landed); ``restore_ports()`` turns them all back on and raises, after logging at
  ERROR, naming every port that stayed off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from pysnmp.hlapi.v3arch import asyncio as hl

from rig.actuators import poe_mibs
from rig.actuators.base import ActuatorError, PowerReading, PowerState
from rig.actuators.poe_batch import GroupCommit
from rig.actuators.snmp import (
    Oid,
    PortVerifyError,
    SnmpAuthError,
    SnmpError,
    SnmpSession,
    SnmpTimeout,
    describe,
    dotted,
    make_auth,
    port_ranges,
)

__all__ = ["MAX_GET_VARBINDS", "PoePort", "PoeSwitch", "PortRestoreError", "PortVerifyError",
           "SnmpAuthError", "SnmpError", "SnmpTimeout"]

log = logging.getLogger(__name__)

#: Varbinds per GET: 48 admin+status pairs stay well under a 1500-byte message.
MAX_GET_VARBINDS = 48


class PortRestoreError(ActuatorError):
    """Ports this rig turned off could not be turned back on. ``errors`` maps each port to why."""

    def __init__(self, part: str, errors: Mapping[int, Exception]) -> None:
        self.errors = dict(sorted(errors.items()))
        self.ports = tuple(self.errors)
        listed = ", ".join(str(p) for p in self.ports)
        first = next(iter(self.errors.values()))
        super().__init__(part, f"port(s) {listed} LEFT UNPOWERED: could not turn them back on "
                               f"({first})")


class PoeSwitch:
    """A managed switch whose PoE ports the rig switches over SNMP v2c or v3 (authPriv).

    ``mib`` names a profile in rig.actuators.poe_mibs; ``group`` is the pethPsePortGroupIndex
    (1 on a standalone switch, the stack member otherwise). Ports are numbered as the switch
    indexes them, which is not always the front panel (docs/snmp-poe.md §1.4): see ``walk_ports()``.
    """

    def __init__(self, host: str, port: int = 161, *, version: str = "2c",
                 community: str = "private", user: str | None = None,
                 auth_key: str | None = None, priv_key: str | None = None,
                 auth_protocol: str = "sha", priv_protocol: str = "aes",
                 mib: str = "rfc3621", group: int = 1, timeout: float = 2.0,
                 retries: int = 1, name: str | None = None) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"port must be 1..65535, not {port}")
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be positive and retries not negative")
        if group < 1:
            raise ValueError(f"group must be >= 1, not {group}")
        self.host = host
        self.udp_port = port
        self.version = version
        self.mib = mib
        self.profile = poe_mibs.load(mib)
        self.group = group
        self.timeout = timeout
        self.retries = retries
        self.name = name or "PoE switch"
        self.part = f"{self.name} {host}:{port}"
        auth = make_auth(self.part, version, community, user, auth_key, priv_key,
                         auth_protocol, priv_protocol)
        self._snmp = SnmpSession(self.part, host, port, auth=auth, version=version,
                                 timeout=timeout, retries=retries,
                                 thread_name=f"poe-{host}:{port}")
        self._lock = threading.RLock()
        # Looked up at call time: set_ports is what a batch sends (tests replace it).
        self._batches = GroupCommit(self.part, lambda states: self.set_ports(states),
                                    self._admin_oid)
        self._turned_off: set[int] = set()

    # --- public API -----------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the SNMP engine now rather than on the first request (it takes 0.1-0.2 s): a
        batch does this while it takes its first census, so no slot's power-off waits on it."""
        with self._lock:
            self._snmp.start()

    def port(self, n: int) -> PoePort:
        """Port ``n`` as a PowerControl for one slot."""
        self._check_ports([n])
        return PoePort(self, n)

    def set_port(self, port: int, on: bool) -> None:
        """Power ``port`` on or off and verify it.

        Slots call this from their own threads; calls that arrive while a SET is in flight
        share the next one (rig.actuators.poe_batch: a refused batch is retried port by port,
        so one locked port fails only its own caller, and power-ons never share a SET).
        """
        self._check_ports([port])
        self._batches.switch(port, on)

    def set_ports(self, states: Mapping[int, bool]) -> None:
        """Set every port in ``states`` (port → on) in ONE SET request, then read all back.

        Raises SnmpTimeout / SnmpAuthError / SnmpError (nothing or everything applied, as the
        agent decides for the whole PDU) or PortVerifyError when the read-back disagrees.
        """
        ports = self._check_ports(states)
        if not ports:
            return
        states = {p: bool(states[p]) for p in ports}
        with self._lock:
            # Remember before sending: a SET that times out may have been applied.
            newly_off = {p for p in ports if not states[p]} - self._turned_off
            self._turned_off |= newly_off
            oids = [self._admin_oid(p) for p in ports]
            values = [self.profile.admin_value(states[p]) for p in ports]
            try:
                self._snmp.exchange("SET", ports, oids, values)
            except SnmpError as exc:
                if exc.status is not None:
                    # Refused (errorStatus) or rejected (USM report): the agent applied nothing.
                    self._turned_off -= newly_off
                raise
            values = self._get(ports, oids)
            wrong: list[tuple[int, Oid, PowerState]] = []
            for p, oid in zip(ports, oids, strict=True):
                state = self.profile.admin_state(self._integer(values[oid], p, oid))
                if state is PowerState.ON:
                    self._turned_off.discard(p)
                if state is not (PowerState.ON if states[p] else PowerState.OFF):
                    wrong.append((p, oid, state))
            if wrong:
                p, oid, _ = wrong[0]
                error = PortVerifyError(self.part, "the switch accepted the SET but " + "; ".join(
                    f"port {q} reads {state.value} ({dotted(o)})" for q, o, state in wrong),
                    oid=oid, port=p)
                error.wrong = {q: state for q, _, state in wrong}
                raise error
            for label, on in (("on", True), ("off", False)):
                chosen = sorted(p for p in ports if states[p] is on)
                if chosen:
                    log.info("%s: port(s) %s %s", self.part, port_ranges(chosen), label)

    def read_ports(self, ports: Iterable[int]) -> dict[int, PowerReading]:
        """Admin state and detection status of each port: ``drawing_power`` is True only when
        the switch reports power delivered (deliveringPower(3) in RFC 3621)."""
        wanted = self._check_ports(ports)
        if not wanted:
            return {}
        status_column = self.profile.STATUS_COLUMN
        oids: list[Oid] = []
        owners: list[int] = []
        for p in wanted:
            oids.append(self._admin_oid(p))
            owners.append(p)
            if status_column is not None:
                oids.append(status_column + self.profile.index(self.group, p))
                owners.append(p)
        with self._lock:
            values = self._get(owners, oids)
        readings = {}
        for p in wanted:
            admin_oid = self._admin_oid(p)
            state = self.profile.admin_state(self._integer(values[admin_oid], p, admin_oid))
            drawing, detail = None, "no status column in this MIB profile"
            if status_column is not None:
                status_oid = status_column + self.profile.index(self.group, p)
                drawing, detail = self.profile.detection(
                    self._integer(values[status_oid], p, status_oid))
            readings[p] = PowerReading(state, drawing, detail)
        return readings

    def get_scalars(self, oids: Sequence[Oid]) -> list[tuple[Oid, Any]]:
        """One GET of objects that belong to no port (system group, pethMainPseTable), as the
        agent answers them, noSuchObject included: read-only, for rig doctor."""
        with self._lock:
            return self._snmp.exchange("GET", [], list(oids))

    def walk_ports(self) -> list[tuple[int, int]]:
        """Every (group, port) the switch lists in the profile's admin column, in order: the
        switch's own numbering, to map onto front-panel ports and slots (docs/snmp-poe.md §1.4)."""
        column = self.profile.ADMIN_COLUMN
        found: list[tuple[int, int]] = []
        last = column
        with self._lock:
            while True:
                rows = self._snmp.exchange("GETBULK", [], [last])
                done = not rows
                for oid, value in rows:
                    if oid[:len(column)] != column or isinstance(value, hl.EndOfMibView):
                        done = True
                        break
                    if oid <= last:
                        raise SnmpError(self.part, f"walk of {dotted(column)}: the agent "
                                        f"answered {dotted(oid)} after {dotted(last)} "
                                        "(OIDs not increasing)", oid=oid)
                    last = oid
                    address = self.profile.port_of(oid[len(column):])
                    if address is not None:
                        found.append(address)
                if done:
                    break
        if not found:
            raise SnmpError(self.part, f"no PoE ports under {dotted(column)}: the switch does "
                            f"not implement this column (wrong MIB profile {self.mib!r}?)",
                            oid=column)
        return found

    @property
    def turned_off(self) -> frozenset[int]:
        """Ports this rig turned off and has not yet seen back on."""
        with self._lock:
            return frozenset(self._turned_off)

    def restore_ports(self, on_unrestored: Callable[[int, Exception], None] | None = None
                      ) -> list[int]:
        """Turn every port this rig turned off back on; returns the ports restored.

        One SET for all first; if the agent refuses it, port by port, so one locked port does
        not keep the others dark. A port that stays off is logged at ERROR, passed to
        ``on_unrestored(port, error)`` (for the run's records) and, after all were tried, named
        in the PortRestoreError raised.
        """
        with self._lock:
            ports = sorted(self._turned_off)
            if not ports:
                return []
            failures: dict[int, Exception] = {}
            try:
                self.set_ports(dict.fromkeys(ports, True))
            except (SnmpTimeout, SnmpAuthError) as exc:
                # The agent is unreachable: trying port by port would only multiply the wait.
                failures = dict.fromkeys(ports, exc)
            except SnmpError:
                for p in ports:
                    try:
                        self.set_ports({p: True})
                    except (SnmpTimeout, SnmpAuthError) as exc:
                        failures.update((q, exc) for q in ports if q >= p)
                        break
                    except SnmpError as exc:
                        failures[p] = exc
            restored = [p for p in ports if p not in failures]
        if restored:
            log.info("%s: restored power on port(s) %s", self.part, port_ranges(restored))
        if failures:
            for p, exc in failures.items():
                log.error("%s: PORT %d LEFT UNPOWERED: could not turn it back on: %s",
                          self.part, p, exc)
                if on_unrestored is not None:
                    try:
                        on_unrestored(p, exc)
                    except Exception:  # noqa: BLE001 - every port must be reported
                        log.exception("%s: on_unrestored callback failed for port %d",
                                      self.part, p)
            raise PortRestoreError(self.part, failures)
        return restored

    def close(self) -> None:
        """Close the SNMP engine and stop the loop thread. Ports are left as they are; ports
        this rig turned off and did not restore are logged."""
        with self._lock:
            if self._snmp.closed:
                return
            running = self._snmp.detach()
            left = sorted(self._turned_off)
        if left:
            log.warning("%s: closing with port(s) %s still turned off by this rig", self.part,
                        ", ".join(map(str, left)))
        if running is not None:
            running.stop(self.part)

    def __enter__(self) -> PoeSwitch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PoeSwitch({self.host!r}, {self.udp_port}, version={self.version!r}, " \
               f"mib={self.mib!r}, group={self.group})"

    # --- requests -------------------------------------------------------------------------------

    def _admin_oid(self, port: int) -> Oid:
        return self.profile.ADMIN_COLUMN + self.profile.index(self.group, port)

    def _check_ports(self, ports: Iterable[int]) -> list[int]:
        checked = []
        for p in ports:
            if isinstance(p, bool) or not isinstance(p, int) or p < 1:
                raise ValueError(f"{self.part}: port must be a positive integer, not {p!r}")
            if p not in checked:
                checked.append(p)
        return checked

    def _get(self, owners: Sequence[int], oids: Sequence[Oid]) -> dict[Oid, Any]:
        """GET ``oids`` (chunked to keep messages small); ``owners[i]`` is the port of oids[i]."""
        values: dict[Oid, Any] = {}
        for start in range(0, len(oids), MAX_GET_VARBINDS):
            chunk = list(oids[start:start + MAX_GET_VARBINDS])
            chunk_owners = list(owners[start:start + MAX_GET_VARBINDS])
            rows = self._snmp.exchange("GET", chunk_owners, chunk)
            if len(rows) != len(chunk):
                raise SnmpError(self.part, f"GET {describe(chunk_owners, chunk)}: the "
                                f"agent answered {len(rows)} varbinds for {len(chunk)}")
            for (oid, value), p in zip(rows, chunk_owners, strict=True):
                if isinstance(value, hl.NoSuchInstance):
                    raise SnmpError(self.part, f"GET port {p}: no such instance {dotted(oid)}: "
                                    f"the switch has no port {self.group}.{p} "
                                    "(walk_ports() lists its ports)", oid=oid, port=p,
                                    status="noSuchInstance")
                if isinstance(value, hl.NoSuchObject):
                    raise SnmpError(self.part, f"GET port {p}: no such object {dotted(oid)}: "
                                    f"the switch does not implement this column (wrong MIB "
                                    f"profile {self.mib!r}?)", oid=oid, port=p,
                                    status="noSuchObject")
                values[oid] = value
        return values

    def _integer(self, value: Any, port: int, oid: Oid) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SnmpError(self.part, f"port {port}: {dotted(oid)} is not an INTEGER: "
                            f"{value!r}", oid=oid, port=port) from None


class PoePort:
    """One switch port as a slot's PowerControl. ``close()`` leaves the port powered as it is
    and only stops this handle: the switch connection is shared and closed by its owner."""

    def __init__(self, switch: PoeSwitch, port: int) -> None:
        self.switch = switch
        self.port = port
        self.name = f"{switch.part} port {port}"
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise ActuatorError(self.name, "port handle is closed")

    def on(self) -> None:
        self._check()
        self.switch.set_port(self.port, True)

    def off(self) -> None:
        self._check()
        self.switch.set_port(self.port, False)

    def read(self) -> PowerReading:
        self._check()
        return self.switch.read_ports([self.port])[self.port]

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"PoePort({self.switch!r}, {self.port})"
