"""One relay board's serial port: opened by name, reopened when the device vanishes, one
request and its whole reply at a time.

Why it does what it does (docs/gpio-serial.md §3.2-3.4):

- **Stable names.** The link (``/dev/serial/by-id/...``, ``by-path/...``) is resolved again at
  every (re)open, so a board re-enumerated after a USB reset is followed. A pyserial URL
  (``socket://``, ``rfc2217://``, ``loop://``) also works.
- **Unplugged / reset boards.** pyserial never reconnects: a vanished device shows up as
  ``SerialException`` (an OSError). The port closes, waits ``reconnect_delay``, reopens by name,
  lets the board re-apply what it commanded, and retries the action, at most
  ``reconnect_attempts`` times, then raises ``ActuatorError``.
- **One owner.** The port is opened with ``exclusive=True`` (an advisory flock: a second rig
  process fails to open it; other programs are not stopped by it).
- **No hangs.** Writes have ``write_timeout``; replies are read against a deadline; ``flush()``
  (tcdrain, reported to hang on some CDC devices) is never called.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from typing import TypeVar

import serial

from rig.actuators.base import ActuatorError
from rig.actuators.relay_protocols import RelayProtocol, ReplyError
from rig.vocabulary import BenchFaultKind


class SerialError(ActuatorError):
    """A USB-serial relay board failed: gone, held by another process, or a wrong reply."""

    kind = BenchFaultKind.SERIAL

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long one read call may block while a reply is awaited; the reply deadline is ``timeout``.
POLL_SECONDS = 0.05


def _is_lock_conflict(exc: OSError) -> bool:
    """pyserial's exclusive open failing because another process holds the flock."""
    return exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK) and "exclusive" in str(exc).lower()


class SerialLink:
    """The serial port of one board, speaking ``protocol``; ``part`` names it in errors.

    ``lock`` is the board's: every command holds it, so frames and replies of the slots
    sharing the board never interleave, and ``reapply(port, skip)`` (called after a reopen,
    before the action is retried) runs under it too.
    """

    def __init__(self, port: str, *, protocol: RelayProtocol, part: str, baudrate: int,
                 timeout: float, reconnect_attempts: int, reconnect_delay: float,
                 lock: threading.RLock,
                 reapply: Callable[[serial.SerialBase, Collection[int]], None]) -> None:
        self.port = port
        self.protocol = protocol
        self.part = part
        self.baudrate = baudrate
        self.timeout = timeout
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_delay = reconnect_delay
        #: The device node the open port resolved to (``/dev/ttyUSB1``), for logs and health.
        self.device: str | None = None
        #: How many times the port was reopened after failing (a health signal for the slot).
        self.reconnects = 0
        self._lock = lock
        self._reapply = reapply
        self._serial: serial.SerialBase | None = None
        self._opened_once = False
        self._closed = False

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Refuse every later command and close the port."""
        with self._lock:
            self._closed = True
            self._drop()

    def run(self, action: Callable[[serial.SerialBase], T], *, what: str,
            skip: Collection[int]) -> T:
        """Run ``action`` on the open port, reopening it when the device vanished.

        A port error (pyserial's SerialException is an OSError) closes the port; after
        ``reconnect_delay`` the port is reopened by name, ``reapply`` is called with ``skip``
        (the channels the action itself sets), and ``action`` is retried, up to
        ``reconnect_attempts`` times. Protocol errors (ActuatorError) are not retried: the port
        works, the board answers nonsense.
        """
        tail = f"; {what}" if what else ""
        with self._lock:
            if self._closed:
                raise SerialError(self.part, f"closed{tail}")
            last: OSError | None = None
            for attempt in range(self.reconnect_attempts + 1):
                if attempt:
                    log.warning("%s: port error (%s); reopening in %g s (attempt %d of %d)",
                                self.part, last, self.reconnect_delay, attempt,
                                self.reconnect_attempts)
                    time.sleep(self.reconnect_delay)
                try:
                    return action(self._ready(skip))
                except OSError as exc:
                    self._drop()
                    if _is_lock_conflict(exc):
                        raise SerialError(self.part, f"port is in use by another process "
                                                       f"(exclusive lock held){tail}") from exc
                    last = exc
            if self._opened_once:
                message = (f"port vanished (USB reset?) and did not come back after "
                           f"{self.reconnect_attempts} attempts{tail}")
            else:
                message = f"could not open the port in {self.reconnect_attempts + 1} tries"
            message += f" (last error: {last})"
            raise SerialError(self.part, message) from last

    def _ready(self, skip: Collection[int]) -> serial.SerialBase:
        """The open port, (re)opened now if needed; a reopen re-applies the board's state."""
        if self._serial is None:
            reopening = self._opened_once
            self._open()
            self._opened_once = True
            if reopening:
                self.reconnects += 1
                assert self._serial is not None
                self._reapply(self._serial, skip)
        assert self._serial is not None
        return self._serial

    def _open(self) -> None:
        """Open the port by its name, following the stable link to wherever it points now."""
        if "://" in self.port:
            port = serial.serial_for_url(self.port, do_not_open=True)
            device = self.port
        else:
            if not os.path.exists(self.port):
                raise FileNotFoundError(errno.ENOENT, "no such device (unplugged?)", self.port)
            device = os.path.realpath(self.port)
            port = serial.Serial()
            port.port = device
        port.baudrate = self.baudrate
        port.timeout = POLL_SECONDS
        port.write_timeout = self.timeout
        port.exclusive = True       # only POSIX native ports act on it; URL ports ignore it
        port.open()
        if self.device is not None and device != self.device:
            log.warning("%s: now at %s (was %s)", self.part, device, self.device)
        self._serial, self.device = port, device

    def _drop(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except OSError as exc:      # closing a vanished device may fail; it is gone anyway
                log.debug("%s: close failed: %s", self.part, exc)

    def exchange(self, port: serial.SerialBase, request: bytes, channel: int) -> bool | None:
        """Send one command and read its whole reply against the ``timeout`` deadline."""
        stale = port.in_waiting
        if stale:       # a late reply or noise must not be taken for this command's answer
            log.debug("%s: discarding %r", self.part, port.read(stale))
        port.write(request)
        reply = bytearray()
        deadline = time.monotonic() + self.timeout
        while not self.protocol.reply_complete(request, bytes(reply)):
            if time.monotonic() >= deadline:
                raise SerialError(self.part, f"channel {channel}: no complete reply to "
                                               f"{request!r} within {self.timeout:g} s "
                                               f"(got {bytes(reply)!r})")
            reply += port.read(port.in_waiting or 1)
        try:
            return self.protocol.parse_reply(request, bytes(reply))
        except ReplyError as exc:
            raise SerialError(self.part, f"channel {channel}: unexpected reply to "
                                           f"{request!r}: {exc}") from exc
