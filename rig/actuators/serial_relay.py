"""USB-serial relay boards: one board, several slots' power switches and reset solenoids.

A board is a serial port (``/dev/ttyUSB*`` for CH340/FTDI boards, ``/dev/ttyACM*`` for Numato)
and a wire protocol from ``rig.actuators.relay_protocols``. ``SerialRelayBoard`` owns the port;
``power(ch)`` and ``solenoid(ch)`` hand out per-channel views that procedures use through the
``PowerControl`` and ``CappedButton`` interfaces, so a slot does not care whether its power is a
GPIO relay, a serial relay channel or a PoE port.

Why the driver does what it does (docs/gpio-serial.md §3.2-3.4, docs/gpio-serial.md §5; the port
itself, its stable name, exclusive open, reconnects and reply deadlines, is
rig.actuators.serial_link):

- **Stable names.** ``ttyUSB0`` becomes ``ttyUSB1`` after a USB reset, so give the board a
  ``/dev/serial/by-id/...`` name (FTDI, Numato) or ``/dev/serial/by-path/...`` (CH340 boards
  have no serial number).
- **Unplugged / reset boards.** A board that came back from a USB reset may have dropped (or
  set) every relay, so after a reconnect the commanded state of every channel is sent again.
  A failed "off" stays the intent (off is safe); a failed "on" is forgotten, so a reconnect
  never switches on something the caller was told failed.
- **One owner.** One lock per board serialises commands from the slots sharing it, so frames
  and replies never interleave; the exclusive open keeps a second rig process out.
- **No blind switching.** Opening the board changes no relay. ``all_off()`` is the safe state;
  pass ``guard=`` to have an ``OutputGuard`` call it on SIGTERM, SIGINT and at exit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection

import serial

from rig.actuators import relay_protocols
from rig.actuators.base import (
    DEFAULT_MAX_ON_SECONDS,
    ActuatorError,
    CappedButton,
    OutputGuard,
    PowerReading,
    PowerState,
)
from rig.actuators.relay_protocols import RelayProtocol
from rig.actuators.serial_link import SerialError, SerialLink

log = logging.getLogger(__name__)


class SerialRelayBoard:
    """A USB-serial relay board with ``channels`` relays numbered 1..channels.

    ``set``/``read`` act on one relay; ``power``/``solenoid`` give per-channel views. Thread-safe:
    several slots may share one board. Boards without read-back (LCUS) report the last commanded
    state, labelled as commanded rather than observed.
    """

    def __init__(self, port: str, *, protocol: str, channels: int, baudrate: int | None = None,
                 timeout: float = 1.0, name: str | None = None, reconnect_attempts: int = 3,
                 reconnect_delay: float = 0.5, guard: OutputGuard | None = None) -> None:
        self.protocol: RelayProtocol = relay_protocols.load(protocol)
        if isinstance(channels, bool) or not isinstance(channels, int) or not (
                1 <= channels <= self.protocol.MAX_CHANNELS):
            raise ValueError(f"a {protocol} board has 1..{self.protocol.MAX_CHANNELS} channels, "
                             f"not {channels!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if reconnect_attempts < 0 or reconnect_delay < 0:
            raise ValueError("reconnect_attempts and reconnect_delay must not be negative")
        self.port = port
        self.channels = channels
        self.baudrate = baudrate or self.protocol.DEFAULT_BAUDRATE
        self.timeout = timeout
        self.name = name or f"relay board {port}"
        #: Names the board in errors; always carries the port so the message leads to the cable.
        self._part = self.name if port in self.name else f"{self.name} ({port})"
        self._lock = threading.RLock()
        self._commanded: dict[int, bool] = {}
        self._views: dict[int, RelayChannel | RelaySolenoid] = {}
        self._link = SerialLink(port, protocol=self.protocol, part=self._part,
                                baudrate=self.baudrate, timeout=timeout,
                                reconnect_attempts=reconnect_attempts,
                                reconnect_delay=reconnect_delay, lock=self._lock,
                                reapply=self._reapply)
        self._link.run(lambda port: None, what="", skip=())
        if guard is not None:
            guard.register(self.all_off)

    # --- relays ---------------------------------------------------------------------------------

    def set(self, channel: int, on: bool) -> None:
        """Switch one relay. Raises ValueError for a channel outside 1..channels (nothing sent),
        ActuatorError when the board does not answer properly or stays away."""
        ch = self._check_channel(channel)
        on = bool(on)
        frame = self.protocol.encode_set(ch, on)
        with self._lock:
            try:
                self._link.run(lambda port: self._link.exchange(port, frame, ch),
                               what=f"channel {ch} not switched {'on' if on else 'off'}",
                               skip=(ch,))
            except ActuatorError:
                # The relay's state is unknown now. Keep a failed "off" as the intent (re-applied
                # at the next reconnect: off is safe); forget a failed "on" so a later reconnect
                # does not switch on something the caller was told failed.
                if on:
                    self._commanded.pop(ch, None)
                else:
                    self._commanded[ch] = False
                raise
            self._commanded[ch] = on

    def read(self, channel: int) -> bool | None:
        """The relay's state as the board reports it, or None if the protocol cannot read back
        (then ``commanded(channel)`` is all that is known)."""
        ch = self._check_channel(channel)
        if not self.protocol.HAS_READBACK:
            return None
        query = self.protocol.encode_read(ch)
        state = self._link.run(lambda port: self._link.exchange(port, query, ch),
                               what=f"channel {ch} not read", skip=())
        if state is None:
            raise SerialError(self._part, f"channel {ch}: the {self.protocol.NAME} protocol "
                                            f"returned no state for a read")
        return state

    def commanded(self, channel: int) -> bool | None:
        """The last state rig commanded on ``channel`` (None: never commanded since open, or the
        last "on" failed)."""
        ch = self._check_channel(channel)
        with self._lock:
            return self._commanded.get(ch)

    def all_off(self) -> None:
        """Every relay off: the safe state (released solenoids, unpowered slots).

        Solenoid views are released first through their own lock (so their cap bookkeeping
        stays right), then one frame per channel goes out in a single reconnect cycle, so a
        vanished board costs one bounded wait, not one per channel.
        """
        failures = self._release_solenoids()
        with self._lock:
            for ch in range(1, self.channels + 1):
                self._commanded[ch] = False
            frames = [(ch, self.protocol.encode_set(ch, False))
                      for ch in range(1, self.channels + 1)]

            def send_all(port: serial.SerialBase) -> None:
                for ch, frame in frames:
                    self._link.exchange(port, frame, ch)

            self._link.run(send_all, what="relays not switched off",
                           skip=range(1, self.channels + 1))
        if failures:
            raise failures[0]

    # --- views ----------------------------------------------------------------------------------

    def power(self, channel: int, *, name: str | None = None) -> RelayChannel:
        """``channel`` as a slot's power switch (a ``PowerControl``). The same view is returned
        for repeated calls; a channel already used as a solenoid is refused."""
        ch = self._check_channel(channel)
        with self._lock:
            view = self._views.get(ch)
            if isinstance(view, RelaySolenoid):
                raise ValueError(f"{self._part}: channel {ch} already drives solenoid "
                                 f"{view.name!r}")
            if view is None:
                view = RelayChannel(self, ch, name or f"{self.name} channel {ch}")
                self._views[ch] = view
            return view

    def solenoid(self, channel: int, *, max_on_seconds: float = DEFAULT_MAX_ON_SECONDS,
                 cooldown_ratio: float = 1.0, name: str | None = None) -> RelaySolenoid:
        """``channel`` as a reset-button solenoid with an on-time cap (a ``CappedButton``).

        One view per channel so the cap and cool-down are tracked in one place; asking again
        with a different cap, or for a channel used as power, is refused.
        """
        ch = self._check_channel(channel)
        with self._lock:
            view = self._views.get(ch)
            if isinstance(view, RelayChannel):
                raise ValueError(f"{self._part}: channel {ch} already switches power "
                                 f"({view.name!r})")
            if view is None:
                view = RelaySolenoid(self, ch, name or f"{self.name} solenoid {ch}",
                                     max_on_seconds=max_on_seconds, cooldown_ratio=cooldown_ratio)
                self._views[ch] = view
            elif (view.max_on_seconds, view.cooldown_ratio) != (max_on_seconds, cooldown_ratio):
                raise ValueError(f"{self._part}: channel {ch} already is a solenoid with a "
                                 f"{view.max_on_seconds:g} s cap")
            return view

    def _forget_view(self, channel: int, view: object) -> None:
        with self._lock:
            if self._views.get(channel) is view:
                del self._views[channel]

    # --- life cycle -----------------------------------------------------------------------------

    @property
    def device(self) -> str | None:
        """The device node the open port resolved to (``/dev/ttyUSB1``), for logs and health."""
        return self._link.device

    @property
    def reconnects(self) -> int:
        """How many times the port was reopened after failing (a health signal for the slot)."""
        return self._link.reconnects

    @property
    def is_open(self) -> bool:
        """Whether the port is open now (False between a failure and the next reopen)."""
        return self._link.is_open

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called; a closed board refuses every command."""
        return self._link.closed

    def close(self) -> None:
        """Release every solenoid and close the port. Power relays keep their state: closing a
        controller must not power-cycle the slots; call ``all_off()`` first for that."""
        self._release_solenoids()
        self._link.close()

    def __enter__(self) -> SerialRelayBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"SerialRelayBoard({self.port!r}, protocol={self.protocol.NAME!r}, "
                f"channels={self.channels})")

    # --- internals ------------------------------------------------------------------------------

    def _check_channel(self, channel: int) -> int:
        if isinstance(channel, bool) or not isinstance(channel, int):
            raise TypeError(f"{self._part}: channel must be an int, not {channel!r}")
        if not 1 <= channel <= self.channels:
            raise ValueError(f"{self._part}: channel {channel} out of range 1..{self.channels}")
        return channel

    def _release_solenoids(self) -> list[ActuatorError]:
        """Release every energised solenoid view; returns the failures so that the caller can
        still try the rest of its job (switching off, closing) before reporting them."""
        with self._lock:
            solenoids = [v for v in self._views.values() if isinstance(v, RelaySolenoid)]
        failures: list[ActuatorError] = []
        for solenoid in solenoids:
            if solenoid.energised:
                try:
                    solenoid.release()
                except ActuatorError as exc:
                    log.error("%s: %s", self._part, exc)
                    failures.append(exc)
        return failures

    def _reapply(self, port: serial.SerialBase, skip: Collection[int]) -> None:
        """After a reconnect: a board that went through a USB reset restarts with every relay at
        its power-on default, which need not be what rig commanded."""
        states = sorted((ch, on) for ch, on in self._commanded.items() if ch not in skip)
        for ch, on in states:
            self._link.exchange(port, self.protocol.encode_set(ch, on), ch)
        if states:
            log.warning("%s: reopened at %s; re-applied %s", self._part, self.device,
                        ", ".join(f"ch{ch} {'on' if on else 'off'}" for ch, on in states))



class RelayChannel:
    """One relay channel as a slot's power switch; satisfies ``PowerControl``.

    ``close()`` only detaches this view: the relay keeps its state and the board stays open
    (other slots share it).
    """

    def __init__(self, board: SerialRelayBoard, channel: int, name: str) -> None:
        self.board = board
        self.channel = channel
        self.name = name
        self._closed = False

    def on(self) -> None:
        self._usable()
        self.board.set(self.channel, True)

    def off(self) -> None:
        self._usable()
        self.board.set(self.channel, False)

    def read(self) -> PowerReading:
        """The board's read-back where it has one; otherwise the commanded state, reported as
        UNKNOWN with detail "commanded on/off" because nothing observed it."""
        observed = self.board.read(self.channel)
        commanded = self.board.commanded(self.channel)
        if observed is None:
            detail = ("never commanded since the board was opened" if commanded is None
                      else f"commanded {'on' if commanded else 'off'}")
            return PowerReading(PowerState.UNKNOWN, detail=f"{detail} (no read-back)")
        detail = "read back from the board"
        if commanded is not None and commanded != observed:
            detail += f"; MISMATCH: commanded {'on' if commanded else 'off'}"
        return PowerReading(PowerState.ON if observed else PowerState.OFF, detail=detail)

    def close(self) -> None:
        self._closed = True
        self.board._forget_view(self.channel, self)

    def _usable(self) -> None:
        if self._closed:
            raise SerialError(self.name, "closed")

    def __repr__(self) -> str:
        return f"RelayChannel({self.name!r})"


class RelaySolenoid(CappedButton):
    """A reset-button solenoid on one relay channel, with ``CappedButton``'s on-time cap,
    watchdog and cool-down; a press over the cap is refused before any byte is written."""

    def __init__(self, board: SerialRelayBoard, channel: int, name: str, *,
                 max_on_seconds: float = DEFAULT_MAX_ON_SECONDS,
                 cooldown_ratio: float = 1.0) -> None:
        super().__init__(name, max_on_seconds=max_on_seconds, cooldown_ratio=cooldown_ratio)
        self.board = board
        self.channel = channel

    def _energise(self) -> None:
        self.board.set(self.channel, True)

    def _release(self) -> None:
        self.board.set(self.channel, False)

    def close(self) -> None:
        """Release (unless the board is already closed and so cannot have it energised) and
        detach this view."""
        try:
            if self.energised or not self.board.closed:
                self.release()
        finally:
            self.board._forget_view(self.channel, self)

    def __repr__(self) -> str:
        return f"RelaySolenoid({self.name!r}, max_on_seconds={self.max_on_seconds:g})"
