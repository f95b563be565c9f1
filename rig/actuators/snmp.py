"""The bridge between rig's threads and pysnmp's asyncio API: one SNMP agent, one engine.

pysnmp 7 only has an asyncio API, and an SnmpEngine is bound to the event loop it first ran on:
reusing one across ``asyncio.run()`` calls hangs (docs/snmp-poe.md §4.4 pitfall 1). The rig's
runner and CLI are synchronous and threaded, so an ``SnmpSession`` owns one private event loop on
a dedicated thread with ONE SnmpEngine for its whole life; requests hand coroutines to that loop
and wait for them with a deadline. The session is not a lock: its owner (``PoeSwitch``) makes
every request one step at a time.

Rules kept here:
- Requests have bounded retries: an agent that is down costs ``timeout * (retries + 1)``, and a
  request whose coroutine never finishes is given up ``DEADLINE_MARGIN_S`` later.
- Numeric OIDs only and ``lookupMib=False``: no MIB compiler (pysmi) at run time
  (docs/snmp-poe.md §4.3).
- SNMPv3 always names both protocols: ``UsmUserData`` silently means MD5/DES otherwise
  (docs/snmp-poe.md §4.4).
- Every failure becomes an ``SnmpError`` naming the agent, the port(s) and the OID(s), with what
  to check for USM reports and errorStatus values.
- Communities and keys are never logged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pysnmp.hlapi.v3arch import asyncio as hl
from pysnmp.proto import errind

from rig.actuators.base import ActuatorError, PowerState
from rig.vocabulary import BenchFaultKind

log = logging.getLogger(__name__)

Oid = tuple[int, ...]
T = TypeVar("T")

#: Rows asked per GETBULK when walking a table.
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
#: the "Reeder"/Cisco variant most switches use, ``-blumenthal`` the other (docs/snmp-poe.md §6).
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

#: USM reports and what to check when one comes back (RFC 3414 section 3.2; docs/snmp-poe.md §6.1).
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


# --- errors ---------------------------------------------------------------------------------------

class SnmpError(ActuatorError):
    """An SNMP request failed: the agent refused it (errorStatus) or has no such object or port.

    Also the base of the SNMP errors below. ``oid`` and ``port`` name the varbind concerned when
    one is known, ``status`` the errorStatus name.
    """

    kind = BenchFaultKind.SNMP

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


def copy_error(exc: ActuatorError) -> ActuatorError:
    """The same failure as a fresh exception object, for another caller's thread."""
    copy: ActuatorError
    if isinstance(exc, SnmpError):
        copy = type(exc)(exc.part, exc.message, oid=exc.oid, port=exc.port, status=exc.status)
    else:
        copy = ActuatorError(exc.part, exc.message)
    copy.__cause__ = exc.__cause__
    return copy


# --- naming things in messages --------------------------------------------------------------------

def dotted(oid: Oid) -> str:
    return ".".join(str(n) for n in oid)


def port_ranges(ports: Sequence[int]) -> str:
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


def describe(ports: Sequence[int], oids: Sequence[Oid]) -> str:
    """What a request touches, for its error messages: one port and its OIDs, or a range."""
    unique = sorted(set(ports))
    if len(unique) == 1:
        return f"port {unique[0]} ({', '.join(dotted(o) for o in oids)})"
    if unique:
        return f"{len(unique)} ports {port_ranges(unique)} ({len(oids)} varbinds)"
    return ", ".join(dotted(o) for o in oids)


# --- credentials ----------------------------------------------------------------------------------

def make_auth(part: str, version: str, community: str, user: str | None, auth_key: str | None,
              priv_key: str | None, auth_protocol: str, priv_protocol: str) -> Any:
    """pysnmp's credentials for v2c (a community) or v3 (authPriv only); ValueError otherwise."""
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
                    part, weak)
    # Both protocols always passed: UsmUserData silently means MD5/DES otherwise
    # (docs/snmp-poe.md §4.4).
    return hl.UsmUserData(user, authKey=auth_key, privKey=priv_key,
                          authProtocol=AUTH_PROTOCOLS[auth_protocol],
                          privProtocol=PRIV_PROTOCOLS[priv_protocol])


# --- the loop thread ------------------------------------------------------------------------------

@dataclass
class _Running:
    """The loop thread and what lives on it; stopped as one."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    engine: Any = None
    target: Any = None

    def stop(self, part: str) -> None:
        """Close the engine on its own loop, then stop the loop and its thread (bounded)."""
        try:
            asyncio.run_coroutine_threadsafe(_shutdown(self.engine), self.loop).result(
                DEADLINE_MARGIN_S)
        except Exception as exc:  # noqa: BLE001 - closing must not fail the caller
            log.warning("%s: SNMP engine did not close cleanly: %s", part, exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE_MARGIN_S)
        if not self.thread.is_alive():
            self.loop.close()


async def _shutdown(engine: Any) -> None:
    if engine is not None:
        engine.close_dispatcher()
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class SnmpSession:
    """One agent at ``host:port``, reached from synchronous threads through a private loop.

    The loop thread and engine start on first use (``start()``) and live until ``detach()``;
    ``part`` names the agent in every error. Not thread-safe on its own: the owner serialises
    calls, so a request and the next never interleave on the one engine.
    """

    def __init__(self, part: str, host: str, port: int, *, auth: Any, version: str,
                 timeout: float, retries: int, thread_name: str) -> None:
        self.part = part
        self.host = host
        self.port = port
        self.version = version
        self.timeout = timeout
        self.retries = retries
        self._auth = auth
        self._thread_name = thread_name
        self._running: _Running | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        """Start the loop thread and open the engine, unless already running."""
        if self._closed:
            raise ActuatorError(self.part, "switch connection is closed")
        if self._running is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True, name=self._thread_name)
        thread.start()
        self._running = running = _Running(loop, thread)
        try:
            running.engine, running.target = self._await(self._open(), "opening the SNMP engine")
        except BaseException:
            self._running = None
            loop.call_soon_threadsafe(loop.stop)
            thread.join(DEADLINE_MARGIN_S)
            raise

    def detach(self) -> _Running | None:
        """Mark the session closed and hand back what runs, for ``stop(part)`` outside the
        owner's lock (stopping takes up to seconds; callers waiting only need "closed")."""
        self._closed = True
        running, self._running = self._running, None
        return running

    async def _open(self) -> tuple[Any, Any]:
        # Both made on the loop thread: the engine's dispatcher binds to the running loop.
        engine = hl.SnmpEngine()
        try:
            target = await hl.UdpTransportTarget.create((self.host, self.port),
                                                        timeout=self.timeout,
                                                        retries=self.retries)
        except Exception as exc:
            engine.close_dispatcher()
            raise SnmpError(self.part, f"cannot reach {self.host}:{self.port}: {exc}") from exc
        return engine, target

    def _await(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        """Run ``coro`` on the loop thread and wait, bounded by the request deadline."""
        assert self._running is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._running.loop)
        deadline = self.timeout * (self.retries + 1) + DEADLINE_MARGIN_S
        try:
            return future.result(deadline)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SnmpTimeout(self.part, f"{what}: no result within {deadline:.1f} s "
                                         "(SNMP engine stuck)") from None

    # --- requests ---------------------------------------------------------------------------------

    def exchange(self, op: str, ports: Sequence[int], oids: Sequence[Oid],
                 values: Sequence[int] | None = None) -> list[tuple[Oid, Any]]:
        """One GET, GETBULK or SET (``values``: the INTEGERs to write) of ``oids``, whose varbind
        ``i`` belongs to ``ports[i]``; every failure becomes an SnmpError naming them."""
        if values is None:
            var_binds = [hl.ObjectType(hl.ObjectIdentity(o)) for o in oids]
        else:
            var_binds = [hl.ObjectType(hl.ObjectIdentity(o), hl.Integer(v))
                         for o, v in zip(oids, values, strict=True)]
        self.start()
        what = f"{op} {describe(ports, oids)}"
        try:
            indication, status, index, rows = self._await(self._request(op, var_binds), what)
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
        assert self._running is not None
        common = (self._running.engine, self._auth, self._running.target, hl.ContextData())
        if op == "SET":
            result = await hl.set_cmd(*common, *var_binds, lookupMib=False)
        elif op == "GETBULK":
            result = await hl.bulk_cmd(*common, 0, BULK_ROWS, *var_binds, lookupMib=False)
        else:
            result = await hl.get_cmd(*common, *var_binds, lookupMib=False)
        indication, status, index, rows = result
        return indication, status, index, [(tuple(oid), value) for oid, value in rows]

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
