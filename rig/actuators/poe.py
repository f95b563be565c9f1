"""PoE ports on a managed switch, switched over SNMP: one slot's power is one switch port.

pysnmp 7 only has an asyncio API, and an SnmpEngine is bound to the event loop it first ran on:
reusing one across ``asyncio.run()`` calls hangs (reference snmp-poe.md §4.4 pitfall 1). The rig's
runner and CLI are synchronous and threaded, so a ``PoeSwitch`` owns one private event loop on a
dedicated thread with ONE SnmpEngine for its whole life; public methods hand coroutines to that
loop and wait for them with a deadline. A lock makes every public method one step at a time, so
a set and its read-back are never interleaved with another thread's request.

Safety rules this module keeps:
- Several ports change in ONE SET request (many varbinds; agents apply a PDU as a whole).
- Every SET is verified by reading the admin state back; a mismatch raises.
- Ports this rig turned off are remembered (before the SET goes out: a SET that timed out may
  still have landed); ``restore_ports()`` turns them all back on and raises, after logging at
  ERROR, naming every port that stayed off.
- Requests have bounded retries: an agent that is down costs ``timeout * (retries + 1)``.
- Numeric OIDs only and ``lookupMib=False``: no MIB compiler (pysmi) at run time (§4.3).
- Communities and keys are never logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from pysnmp.hlapi.v3arch import asyncio as hl
from pysnmp.proto import errind

from rig.actuators import poe_mibs
from rig.actuators.base import ActuatorError, PowerReading, PowerState

log = logging.getLogger(__name__)

Oid = tuple[int, ...]
T = TypeVar("T")

#: Varbinds per GET: 48 admin+status pairs stay well under a 1500-byte message.
MAX_GET_VARBINDS = 48
#: Rows asked per GETBULK when walking the port table.
BULK_ROWS = 24
#: Extra wait, beyond timeout * (retries + 1), before a request is given up as hung.
DEADLINE_MARGIN_S = 2.0

AUTH_PROTOCOLS = {
    "sha": hl.USM_AUTH_HMAC96_SHA,
    "sha224": hl.USM_AUTH_HMAC128_SHA224,
    "sha256": hl.USM_AUTH_HMAC192_SHA256,
    "sha384": hl.USM_AUTH_HMAC256_SHA384,
    "sha512": hl.USM_AUTH_HMAC384_SHA512,
    "md5": hl.USM_AUTH_HMAC96_MD5,
}
#: AES-192/256 come in two key-localisation variants that do not interoperate: plain names are
#: the "Reeder"/Cisco variant most switches use, ``-blumenthal`` the other (reference §6).
PRIV_PROTOCOLS = {
    "aes": hl.USM_PRIV_CFB128_AES,
    "aes128": hl.USM_PRIV_CFB128_AES,
    "aes192": hl.USM_PRIV_CFB192_AES,
    "aes256": hl.USM_PRIV_CFB256_AES,
    "aes192-blumenthal": hl.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "aes256-blumenthal": hl.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "des": hl.USM_PRIV_CBC56_DES,
    "3des": hl.USM_PRIV_CBC168_3DES,
}
_WEAK = {"md5", "des", "3des"}

#: USM reports and what to check when one comes back (RFC 3414 §3.2).
_AUTH_FAULTS: dict[type, str] = {
    errind.WrongDigest: "wrong auth key or auth protocol (usmStatsWrongDigests)",
    errind.DecryptionError: "wrong priv key or priv protocol (usmStatsDecryptionErrors)",
    errind.UnknownUserName: "unknown user name (usmStatsUnknownUserNames)",
    errind.UnsupportedSecurityLevel: "security level not allowed for this user "
                                     "(usmStatsUnsupportedSecLevels)",
    errind.NotInTimeWindow: "not in time window (usmStatsNotInTimeWindows)",
    errind.AuthenticationFailure: "authentication failure",
    errind.AuthenticationError: "authentication error",
    errind.UnknownSecurityName: "unknown security name",
}

#: What to check when the agent answers with an errorStatus.
_STATUS_HINTS = {
    "noAccess": "this community or user may not write (a read-only community?)",
    "notWritable": "the object is read-only here or the port is locked by the switch",
    "noCreation": "the switch has no such port",
    "wrongValue": "the switch refuses this value (wrong MIB profile?)",
    "wrongType": "the switch expects another type (wrong MIB profile?)",
    "authorizationError": "this community or user is not authorised",
    "noSuchName": "no such object or port",
}


class SnmpError(ActuatorError):
    """An SNMP request failed: the agent refused it (errorStatus) or has no such object or port.

    Also the base of the SNMP errors below. ``oid`` and ``port`` name the varbind concerned when
    one is known, ``status`` the errorStatus name.
    """

    def __init__(self, part: str, message: str, *, oid: Oid | None = None,
                 port: int | None = None, status: str | None = None) -> None:
        super().__init__(part, message)
        self.oid = oid
        self.port = port
        self.status = status


class SnmpTimeout(SnmpError):
    """No answer after the bounded retries: agent down or unreachable (v2c: or wrong community,
    which agents answer with silence)."""


class SnmpAuthError(SnmpError):
    """The agent rejected our SNMPv3 credentials (a USM report such as wrongDigests)."""


class PortVerifyError(SnmpError):
    """The agent accepted a SET but reading the admin state back shows something else.
    ``wrong`` maps each such port to the state it reads."""

    wrong: dict[int, PowerState]

    def __init__(self, part: str, message: str, *, oid: Oid | None = None,
                 port: int | None = None, status: str | None = None) -> None:
        super().__init__(part, message, oid=oid, port=port, status=status)
        self.wrong = {}


class PortRestoreError(ActuatorError):
    """Ports this rig turned off could not be turned back on. ``errors`` maps each port to why."""

    def __init__(self, part: str, errors: Mapping[int, Exception]) -> None:
        self.errors = dict(sorted(errors.items()))
        self.ports = tuple(self.errors)
        listed = ", ".join(str(p) for p in self.ports)
        first = next(iter(self.errors.values()))
        super().__init__(part, f"port(s) {listed} LEFT UNPOWERED: could not turn them back on "
                               f"({first})")


def dotted(oid: Oid) -> str:
    return ".".join(str(n) for n in oid)


class PoeSwitch:
    """A managed switch whose PoE ports the rig switches over SNMP v2c or v3 (authPriv).

    ``mib`` names a profile in rig.actuators.poe_mibs; ``group`` is the pethPsePortGroupIndex
    (1 on a standalone switch, the stack member otherwise). Ports are numbered as the switch
    indexes them, which is not always the front panel (reference §1.4): see ``walk_ports()``.
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
        self._auth = self._make_auth(version, community, user, auth_key, priv_key,
                                     auth_protocol, priv_protocol)
        self._lock = threading.RLock()
        self._batch_cond = threading.Condition()
        self._batch_queue: list[_PortRequest] = []
        self._batch_sending = False
        self._turned_off: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: Any = None
        self._target: Any = None
        self._closed = False

    def _make_auth(self, version: str, community: str, user: str | None, auth_key: str | None,
                   priv_key: str | None, auth_protocol: str, priv_protocol: str) -> Any:
        if version == "2c":
            if not community:
                raise ValueError("SNMP v2c needs a community")
            return hl.CommunityData(community, mpModel=1)
        if version != "3":
            raise ValueError(f"SNMP version must be '2c' or '3', not {version!r}")
        if not (user and auth_key and priv_key):
            raise ValueError("SNMPv3 needs user, auth_key and priv_key (authPriv)")
        for label, key in (("auth_key", auth_key), ("priv_key", priv_key)):
            if len(key) < 8:
                raise ValueError(f"SNMPv3 {label} must have at least 8 characters")
        if auth_protocol not in AUTH_PROTOCOLS:
            raise ValueError(f"unknown auth_protocol {auth_protocol!r}; choose from "
                             f"{', '.join(AUTH_PROTOCOLS)}")
        if priv_protocol not in PRIV_PROTOCOLS:
            raise ValueError(f"unknown priv_protocol {priv_protocol!r}; choose from "
                             f"{', '.join(PRIV_PROTOCOLS)}")
        for weak in {auth_protocol, priv_protocol} & _WEAK:
            log.warning("%s: SNMPv3 with %s is weak; use sha/aes where the switch allows it",
                        self.part, weak)
        # Both protocols always passed: UsmUserData silently means MD5/DES otherwise (§4.4).
        return hl.UsmUserData(user, authKey=auth_key, privKey=priv_key,
                              authProtocol=AUTH_PROTOCOLS[auth_protocol],
                              privProtocol=PRIV_PROTOCOLS[priv_protocol])

    # --- public API -----------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the SNMP engine now rather than on the first request (it takes 0.1-0.2 s): a
        batch does this while it takes its first census, so no slot's power-off waits on it."""
        with self._lock:
            self._ensure_started()

    def port(self, n: int) -> PoePort:
        """Port ``n`` as a PowerControl for one slot."""
        self._check_ports([n])
        return PoePort(self, n)

    def set_port(self, port: int, on: bool) -> None:
        """Power ``port`` on or off and verify it.

        Slots call this from their own threads. Calls that arrive while a SET is in flight go
        out together in the next one (group commit): a 48-slot bench powering off at once
        costs two or three SETs, not 48 queued behind one another, and a lone call waits for
        nobody. A batch the agent refuses is retried port by port, so one locked port fails
        only its own caller.
        """
        self._check_ports([port])
        request = _PortRequest(port, bool(on))
        with self._batch_cond:
            self._batch_queue.append(request)
        while True:
            with self._batch_cond:
                while self._batch_sending and not request.done:
                    self._batch_cond.wait()
                if request.done:
                    break
                batch = self._take_batch()
                self._batch_sending = True
            try:
                self._send_batch(batch)
            finally:
                with self._batch_cond:
                    self._batch_sending = False
                    self._batch_cond.notify_all()
        if request.error is not None:
            raise request.error

    def _take_batch(self) -> list[_PortRequest]:
        """The queued requests, one per port in arrival order (a second request for the same
        port waits for the next batch: its order relative to the first is kept), and at most
        one power-on: the bench's power-on schedule spaced them, a SET that happened to be
        slow must not bunch them back together (inrush, PoE classification)."""
        batch: dict[int, _PortRequest] = {}
        rest: list[_PortRequest] = []
        has_on = False
        for request in self._batch_queue:
            if request.port in batch or (request.on and has_on):
                rest.append(request)
            else:
                batch[request.port] = request
                has_on = has_on or request.on
        self._batch_queue = rest
        return list(batch.values())

    def _send_batch(self, batch: list[_PortRequest]) -> None:
        """One SET for the batch; each request gets its own outcome (and its own exception
        object: callers in different threads must not share a traceback). A request whose
        outcome is unknown (an unexpected error) is reported failed, never done."""
        settled: set[int] = set()
        try:
            try:
                self.set_ports({r.port: r.on for r in batch})
            except PortVerifyError as exc:
                for request in batch:
                    wrong = exc.wrong.get(request.port)
                    request.error = None if wrong is None else PortVerifyError(
                        self.part, f"the switch accepted the SET but port {request.port} reads "
                        f"{wrong.value} ({dotted(self._admin_oid(request.port))})",
                        oid=self._admin_oid(request.port), port=request.port)
            except SnmpError as exc:
                if exc.status is None or len(batch) == 1:   # unreachable, or one port anyway
                    for request in batch:
                        request.error = _copy_error(exc)
                else:                                       # refused: find whose port it was
                    self._send_one_by_one(batch, settled)
            except ActuatorError as exc:
                for request in batch:
                    request.error = _copy_error(exc)
            settled.update(id(r) for r in batch)
        finally:
            for request in batch:
                if id(request) not in settled and request.error is None:
                    request.error = ActuatorError(self.part, f"port {request.port}: the SET was "
                                                  "not completed (unexpected error)")
                request.done = True

    def _send_one_by_one(self, batch: list[_PortRequest], settled: set[int]) -> None:
        """After the agent refused a batch: each port alone. An unreachable agent ends it (as
        in restore_ports): the rest get that error at once instead of a timeout each."""
        for i, request in enumerate(batch):
            try:
                self.set_ports({request.port: request.on})
            except (SnmpTimeout, SnmpAuthError) as exc:
                for rest in batch[i:]:
                    rest.error = _copy_error(exc)
                    settled.add(id(rest))
                return
            except ActuatorError as exc:
                request.error = _copy_error(exc)
            settled.add(id(request))

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
            var_binds = [hl.ObjectType(hl.ObjectIdentity(oid),
                                       hl.Integer(self.profile.admin_value(states[p])))
                         for oid, p in zip(oids, ports, strict=True)]
            try:
                self._exchange("SET", ports, oids, var_binds)
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
                    log.info("%s: port(s) %s %s", self.part, _ranges(chosen), label)

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

    def walk_ports(self) -> list[tuple[int, int]]:
        """Every (group, port) the switch lists in the profile's admin column, in order: the
        switch's own numbering, to map onto front-panel ports and slots (reference §1.4)."""
        column = self.profile.ADMIN_COLUMN
        found: list[tuple[int, int]] = []
        last = column
        with self._lock:
            while True:
                rows = self._exchange(
                    "GETBULK", [], [last],
                    [hl.ObjectType(hl.ObjectIdentity(last))], bulk=True)
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
            log.info("%s: restored power on port(s) %s", self.part, _ranges(restored))
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
            if self._closed:
                return
            self._closed = True
            left = sorted(self._turned_off)
            loop, thread, engine = self._loop, self._thread, self._engine
            self._loop = self._thread = self._engine = self._target = None
        if left:
            log.warning("%s: closing with port(s) %s still turned off by this rig", self.part,
                        ", ".join(map(str, left)))
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(engine), loop).result(
                DEADLINE_MARGIN_S)
        except Exception as exc:  # noqa: BLE001 - closing must not fail the caller
            log.warning("%s: SNMP engine did not close cleanly: %s", self.part, exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(DEADLINE_MARGIN_S)
        if not thread.is_alive():
            loop.close()

    def __enter__(self) -> PoeSwitch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PoeSwitch({self.host!r}, {self.udp_port}, version={self.version!r}, " \
               f"mib={self.mib!r}, group={self.group})"

    # --- the loop thread --------------------------------------------------------------------------

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise ActuatorError(self.part, "switch connection is closed")
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, daemon=True,
                                      name=f"poe-{self.host}:{self.udp_port}")
            thread.start()
            self._loop, self._thread = loop, thread
            try:
                self._engine, self._target = self._await(self._open(), "opening the SNMP engine")
            except BaseException:
                self._loop = self._thread = None
                loop.call_soon_threadsafe(loop.stop)
                thread.join(DEADLINE_MARGIN_S)
                raise
        return self._loop

    async def _open(self) -> tuple[Any, Any]:
        # Both made on the loop thread: the engine's dispatcher binds to the running loop.
        engine = hl.SnmpEngine()
        try:
            target = await hl.UdpTransportTarget.create((self.host, self.udp_port),
                                                        timeout=self.timeout,
                                                        retries=self.retries)
        except Exception as exc:
            engine.close_dispatcher()
            raise SnmpError(self.part, f"cannot reach {self.host}:{self.udp_port}: {exc}") \
                from exc
        return engine, target

    @staticmethod
    async def _shutdown(engine: Any) -> None:
        if engine is not None:
            engine.close_dispatcher()
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _await(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        """Run ``coro`` on the loop thread and wait, bounded by the request deadline."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        deadline = self.timeout * (self.retries + 1) + DEADLINE_MARGIN_S
        try:
            return future.result(deadline)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SnmpTimeout(self.part, f"{what}: no result within {deadline:.1f} s "
                                         "(SNMP engine stuck)") from None

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
            rows = self._exchange("GET", chunk_owners, chunk,
                                  [hl.ObjectType(hl.ObjectIdentity(o)) for o in chunk])
            if len(rows) != len(chunk):
                raise SnmpError(self.part, f"GET {self._describe(chunk_owners, chunk)}: the "
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

    def _exchange(self, op: str, ports: Sequence[int], oids: Sequence[Oid],
                  var_binds: Sequence[Any], bulk: bool = False) -> list[tuple[Oid, Any]]:
        """One request; every failure becomes an SnmpError naming switch, port(s) and OID(s)."""
        self._ensure_started()
        what = f"{op} {self._describe(ports, oids)}"
        try:
            indication, status, index, rows = self._await(
                self._request(op, var_binds), what)
        except SnmpError:
            raise
        except Exception as exc:   # pysnmp raises PySnmpError and friends for local faults
            raise SnmpError(self.part, f"{what}: {type(exc).__name__}: {exc}") from exc
        if indication:
            raise self._indication_error(what, indication, oids, ports)
        if status:
            raise self._status_error(what, str(status.prettyPrint()), int(index), ports, oids)
        return rows

    async def _request(self, op: str, var_binds: Sequence[Any]) -> tuple[Any, Any, Any,
                                                                        list[tuple[Oid, Any]]]:
        common = (self._engine, self._auth, self._target, hl.ContextData())
        if op == "SET":
            result = await hl.set_cmd(*common, *var_binds, lookupMib=False)
        elif op == "GETBULK":
            result = await hl.bulk_cmd(*common, 0, BULK_ROWS, *var_binds, lookupMib=False)
        else:
            result = await hl.get_cmd(*common, *var_binds, lookupMib=False)
        indication, status, index, rows = result
        return indication, status, index, [(tuple(oid), value) for oid, value in rows]

    def _describe(self, ports: Sequence[int], oids: Sequence[Oid]) -> str:
        unique = sorted(set(ports))
        if len(unique) == 1:
            return f"port {unique[0]} ({', '.join(dotted(o) for o in oids)})"
        if unique:
            return f"{len(unique)} ports {_ranges(unique)} ({len(oids)} varbinds)"
        return ", ".join(dotted(o) for o in oids)

    def _indication_error(self, what: str, indication: Any, oids: Sequence[Oid],
                          ports: Sequence[int]) -> SnmpError:
        port = ports[0] if len(set(ports)) == 1 else None
        oid = oids[0] if len(oids) == 1 else None
        if isinstance(indication, errind.RequestTimedOut):
            cause = ("wrong community or agent down" if self.version == "2c"
                     else "agent down or unreachable")
            return SnmpTimeout(self.part, f"{what}: timeout ({cause}): no answer after "
                               f"{self.retries + 1} tries of {self.timeout:g} s", oid=oid,
                               port=port)
        for kind, meaning in _AUTH_FAULTS.items():
            if isinstance(indication, kind):
                return SnmpAuthError(self.part, f"{what}: SNMPv3 rejected: {meaning}", oid=oid,
                                     port=port, status=type(indication).__name__)
        return SnmpError(self.part, f"{what}: {indication}", oid=oid, port=port)

    def _status_error(self, what: str, status: str, index: int, ports: Sequence[int],
                      oids: Sequence[Oid]) -> SnmpError:
        hint = _STATUS_HINTS.get(status, "")
        if 1 <= index <= len(oids):
            oid = oids[index - 1]
            port = ports[index - 1] if index <= len(ports) else None
            where = f"varbind {index}" + (f", port {port}" if port is not None else "") + \
                    f", OID {dotted(oid)}"
        else:
            oid, port, where = None, None, f"error index {index}"
        return SnmpError(self.part, f"{what}: refused by the agent: {status} at {where}"
                         + (f" ({hint})" if hint else ""), oid=oid, port=port, status=status)


def _ranges(ports: Sequence[int]) -> str:
    """1,2,3,5 → '1-3,5': keeps a 48-port message short."""
    parts: list[str] = []
    start = prev = ports[0]
    for p in [*ports[1:], None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if p is not None:
            start = prev = p
    return ",".join(parts)


@dataclass
class _PortRequest:
    """One caller's set_port, waiting for the batch it goes out in."""

    port: int
    on: bool
    done: bool = False
    error: BaseException | None = None


def _copy_error(exc: ActuatorError) -> ActuatorError:
    """The same failure as a fresh exception object, for another caller's thread."""
    copy: ActuatorError
    if isinstance(exc, SnmpError):
        copy = type(exc)(exc.part, exc.message, oid=exc.oid, port=exc.port, status=exc.status)
    else:
        copy = ActuatorError(exc.part, exc.message)
    copy.__cause__ = exc.__cause__
    return copy


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
