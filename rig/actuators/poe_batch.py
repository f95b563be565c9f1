"""Group commit for PoE port switching: concurrent callers share SET requests.

Slots switch their ports from their own threads. Calls that arrive while a SET is in flight go
out together in the next one: a 48-slot bench powering off at once costs two or three SETs,
not 48 queued behind one another, and a lone call waits for nobody. The rules:

- One request per port per batch, in arrival order: a second request for the same port waits
  for the next batch, so its order relative to the first is kept.
- At most one power-on per batch: the bench's power-on schedule spaced them, and a SET that
  happened to be slow must not bunch them back together (inrush, PoE classification).
- A batch the agent refuses (an errorStatus) is retried port by port, so one locked port fails
  only its own caller; an agent that stops answering (timeout, USM rejection) ends the retry:
  the rest get that error at once instead of a timeout each.
- Each caller gets its own outcome and its own exception object (callers in different threads
  must not share a traceback). A request whose outcome is unknown (an unexpected error) is
  reported failed, never done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rig.actuators.base import ActuatorError
from rig.actuators.snmp import (
    Oid,
    PortVerifyError,
    SnmpAuthError,
    SnmpError,
    SnmpTimeout,
    copy_error,
    dotted,
)


@dataclass
class _PortRequest:
    """One caller's set_port, waiting for the batch it goes out in."""

    port: int
    on: bool
    done: bool = False
    error: BaseException | None = None


class GroupCommit:
    """Batches concurrent ``switch(port, on)`` calls into calls of ``send({port: on, ...})``.

    ``send`` sets every port of its mapping in ONE request and raises as ``PoeSwitch.set_ports``
    does; ``admin_oid(port)`` names a port's admin-state OID in verify errors; ``part`` names
    the switch in errors.
    """

    def __init__(self, part: str, send: Callable[[Mapping[int, bool]], None],
                 admin_oid: Callable[[int], Oid]) -> None:
        self.part = part
        self._send = send
        self._admin_oid = admin_oid
        self._cond = threading.Condition()
        self._queue: list[_PortRequest] = []
        self._sending = False

    def switch(self, port: int, on: bool) -> None:
        """Power ``port`` on or off in the next SET that may carry it; raises its own outcome."""
        request = _PortRequest(port, bool(on))
        with self._cond:
            self._queue.append(request)
        while True:
            with self._cond:
                while self._sending and not request.done:
                    self._cond.wait()
                if request.done:
                    break
                batch = self._take_batch()
                self._sending = True
            try:
                self._send_batch(batch)
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error

    def _take_batch(self) -> list[_PortRequest]:
        """The queued requests, one per port in arrival order and at most one power-on; the
        rest stay queued for the next batch."""
        batch: dict[int, _PortRequest] = {}
        rest: list[_PortRequest] = []
        has_on = False
        for request in self._queue:
            if request.port in batch or (request.on and has_on):
                rest.append(request)
            else:
                batch[request.port] = request
                has_on = has_on or request.on
        self._queue = rest
        return list(batch.values())

    def _send_batch(self, batch: list[_PortRequest]) -> None:
        """One SET for the batch; each request gets its own outcome."""
        settled: set[int] = set()
        try:
            try:
                self._send({r.port: r.on for r in batch})
            except PortVerifyError as exc:
                self._split_verify_error(batch, exc)
            except SnmpError as exc:
                if exc.status is None or len(batch) == 1:   # unreachable, or one port anyway
                    for request in batch:
                        request.error = copy_error(exc)
                else:                                       # refused: find whose port it was
                    self._send_one_by_one(batch, settled)
            except ActuatorError as exc:
                for request in batch:
                    request.error = copy_error(exc)
            settled.update(id(r) for r in batch)
        finally:
            for request in batch:
                if id(request) not in settled and request.error is None:
                    request.error = ActuatorError(self.part, f"port {request.port}: the SET was "
                                                  "not completed (unexpected error)")
                request.done = True

    def _split_verify_error(self, batch: list[_PortRequest], exc: PortVerifyError) -> None:
        """A read-back that disagreed: only the ports that read wrong fail, each on its own."""
        for request in batch:
            wrong = exc.wrong.get(request.port)
            request.error = None if wrong is None else PortVerifyError(
                self.part, f"the switch accepted the SET but port {request.port} reads "
                f"{wrong.value} ({dotted(self._admin_oid(request.port))})",
                oid=self._admin_oid(request.port), port=request.port)

    def _send_one_by_one(self, batch: list[_PortRequest], settled: set[int]) -> None:
        """After the agent refused a batch: each port alone. An unreachable agent ends it (as
        in restore_ports): the rest get that error at once instead of a timeout each."""
        for i, request in enumerate(batch):
            try:
                self._send({request.port: request.on})
            except (SnmpTimeout, SnmpAuthError) as exc:
                for rest in batch[i:]:
                    rest.error = copy_error(exc)
                    settled.add(id(rest))
                return
            except ActuatorError as exc:
                request.error = copy_error(exc)
            settled.add(id(request))
