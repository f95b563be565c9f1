"""A simulated USB-serial relay board on a pseudo-terminal, wired to virtual cameras.

The driver under test opens a real tty path (the pty's slave side) with real pyserial, exactly
as it opens ``/dev/ttyUSB0`` on the bench; a thread on the master side plays the board's
firmware. So framing, timeouts, exclusive locks and hang-ups are all exercised through the real
transport (Jumpstarter's "mock driver beside every interface", docs/gpio-serial.md §3.3).

The firmware models here are written from the hardware facts, independently of
``rig.actuators.relay_protocols``, so an encoder bug is not mirrored by the simulator: tests
check the frames this board *received* against the bytes the boards document.

USB resets: ``unplug()`` closes the pty (the client's reads then report readiness without data,
its writes fail with EIO, and the ``/dev/serial/by-id``-like link disappears); ``replug()``
creates a new pty under a new path, points the link at it, and sets every relay to the
board's power-on default (``power_on_state``), as a board's microcontroller does when it comes
back from a reset.
"""

from __future__ import annotations

import abc
import logging
import os
import select
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: A channel change: (1-based channel, on).
Change = tuple[int, bool]


class _Firmware(abc.ABC):
    """What a board's microcontroller does with the bytes it receives.

    ``feed`` consumes bytes, updates ``states`` (1-based channel → on) in place and returns the
    complete commands it saw (for tests), the changes in the order they happened (a button
    pressed just before its camera is powered must reach the camera in that order), and the
    bytes to answer.
    """

    #: The most relays the wire format can address.
    MAX_CHANNELS = 255

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self._buffer = bytearray()

    @abc.abstractmethod
    def feed(self, data: bytes, states: dict[int, bool]) -> tuple[list[bytes], list[Change],
                                                                   bytes]:
        """Consume ``data``; return (commands seen, relay changes in order, reply bytes)."""

    def _binary_frames(self, data: bytes, start: int, size: int) -> list[bytes]:
        """Complete fixed-size frames beginning with ``start``; a byte that cannot begin a frame
        is skipped, which is how these boards resynchronise after noise."""
        self._buffer += data
        frames: list[bytes] = []
        while self._buffer:
            if self._buffer[0] != start:
                del self._buffer[0]
                continue
            if len(self._buffer) < size:
                break
            frames.append(bytes(self._buffer[:size]))
            del self._buffer[:size]
        return frames

    @staticmethod
    def _switch(states: dict[int, bool], channel: int, on: bool, changes: list[Change]) -> None:
        if states.get(channel) != on:
            states[channel] = on
            changes.append((channel, on))


class LcusFirmware(_Firmware):
    """LCUS/CH340: ``A0 ch op sum``; a bad checksum, op or channel is ignored, and a byte that
    cannot start a frame is skipped (how the boards resynchronise). Answers nothing."""

    def feed(self, data: bytes, states: dict[int, bool]) -> tuple[list[bytes], list[Change],
                                                                   bytes]:
        frames = self._binary_frames(data, 0xA0, 4)
        changes: list[Change] = []
        for frame in frames:
            _, channel, op, checksum = frame
            if (0xA0 + channel + op) & 0xFF == checksum and op in (0, 1) and (
                    1 <= channel <= self.channels):
                self._switch(states, channel, op == 1, changes)
        return frames, changes, b""


class NumatoFirmware(_Firmware):
    """Numato: CR-terminated ASCII lines; echo, optional ``on``/``off``, ``>`` prompt.

    Wire relay numbers are 0-based: ``0``-``9`` then uppercase ``A``-``V``; a lowercase letter
    (or a relay the board does not have) switches nothing, as on the real boards.
    """

    _LETTERS = "ABCDEFGHIJKLMNOPQRSTUV"
    MAX_CHANNELS = 10 + len(_LETTERS)

    def _channel(self, token: str) -> int | None:
        if len(token) == 1 and token.isdigit():
            index = int(token)
        elif len(token) == 1 and token in self._LETTERS:
            index = 10 + self._LETTERS.index(token)
        else:
            return None
        return index + 1 if index < self.channels else None

    def feed(self, data: bytes, states: dict[int, bool]) -> tuple[list[bytes], list[Change],
                                                                   bytes]:
        self._buffer += data
        frames: list[bytes] = []
        changes: list[Change] = []
        reply = bytearray()
        while True:
            ends = [i for i in (self._buffer.find(b"\r"), self._buffer.find(b"\n")) if i >= 0]
            if not ends:
                break
            end = min(ends)
            raw = bytes(self._buffer[:end + 1])
            del self._buffer[:end + 1]
            line = raw[:-1].decode("ascii", "replace").strip()
            if not line:
                continue            # a bare line ending (e.g. the \n of \n\r): nothing to do
            frames.append(raw)
            words = line.split()
            answer = b""
            if len(words) == 3 and words[0] == "relay":
                channel = self._channel(words[2])
                if channel is not None and words[1] in ("on", "off"):
                    self._switch(states, channel, words[1] == "on", changes)
                elif channel is not None and words[1] == "read":
                    answer = (b"on" if states[channel] else b"off") + b"\n\r"
            reply += line.encode("ascii", "replace") + b"\n\r" + answer + b">"
        return frames, changes, bytes(reply)


class KmtronicFirmware(_Firmware):
    """KMTronic USB One Relay: ``FF ch 00|01`` switches, ``FF ch 03`` answers ``FF ch xx``."""

    def feed(self, data: bytes, states: dict[int, bool]) -> tuple[list[bytes], list[Change],
                                                                   bytes]:
        frames = self._binary_frames(data, 0xFF, 3)
        changes: list[Change] = []
        reply = bytearray()
        for frame in frames:
            _, channel, op = frame
            if not 1 <= channel <= self.channels:
                continue
            if op in (0, 1):
                self._switch(states, channel, op == 1, changes)
            elif op == 3:
                reply += bytes([0xFF, channel, 1 if states[channel] else 0])
        return frames, changes, bytes(reply)


#: The wire protocols the simulator speaks, by the names rig.actuators.relay_protocols uses.
FIRMWARES: dict[str, type[_Firmware]] = {
    "lcus": LcusFirmware, "numato": NumatoFirmware, "kmtronic": KmtronicFirmware}


@dataclass
class _Plug:
    """One 'USB connection': a pty pair and the thread serving it."""

    master: int
    slave: int
    path: str
    wake_r: int
    wake_w: int
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class SimulatedRelayBoard:
    """A relay board on a pty that speaks ``protocol`` and calls back on relay changes.

    ``attach(channel, camera.set_power)`` wires a channel to a virtual camera's power input,
    ``attach(channel, camera.set_button)`` to its reset button. Callbacks run in the board's
    thread, in the order the relays changed, only on a change.

    Test hooks: ``frames`` (complete commands received), ``wire`` (every byte received),
    ``reply_override`` (answer these bytes instead of the real reply: garbage), ``mute``
    (answer nothing), ``reply_delay`` (answer late, after the client gave up).
    """

    def __init__(self, protocol: str = "lcus", channels: int = 4, *,
                 link: str | os.PathLike[str] | None = None,
                 power_on_state: bool | None = False) -> None:
        if protocol not in FIRMWARES:
            raise ValueError(f"unknown relay protocol {protocol!r} "
                             f"(known: {', '.join(sorted(FIRMWARES))})")
        limit = FIRMWARES[protocol].MAX_CHANNELS
        if not 1 <= channels <= limit:
            raise ValueError(f"a simulated {protocol} board has 1..{limit} channels, "
                             f"not {channels}")
        self.protocol = protocol
        self.channels = channels
        self.link = Path(link) if link is not None else None
        #: Relay states when the board powers up (start, replug); None keeps them (a board
        #: whose relays are powered from elsewhere and latch).
        self.power_on_state = power_on_state
        self.reply_override: bytes | None = None
        self.mute = False
        self.reply_delay = 0.0
        self._firmware = FIRMWARES[protocol](channels)
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._plug_lock = threading.Lock()
        self._states = {ch: bool(power_on_state) for ch in range(1, channels + 1)}
        self._callbacks: dict[int, list[Callable[[bool], None]]] = {}
        self._frames: list[bytes] = []
        self._wire = bytearray()
        self._plug: _Plug | None = None
        self._stopped = False

    # --- wiring and inspection ------------------------------------------------------------------

    def attach(self, channel: int, callback: Callable[[bool], None]) -> None:
        """Call ``callback(on)`` whenever relay ``channel`` (1-based) changes. The current state
        is not pushed: the camera and the relay are assumed to agree when wired."""
        if not 1 <= channel <= self.channels:
            raise ValueError(f"channel {channel} out of range 1..{self.channels}")
        with self._lock:
            self._callbacks.setdefault(channel, []).append(callback)

    @property
    def path(self) -> str | None:
        """The pty the board is on now (None while unplugged)."""
        plug = self._plug
        return plug.path if plug else None

    @property
    def plugged(self) -> bool:
        return self._plug is not None

    @property
    def states(self) -> dict[int, bool]:
        with self._lock:
            return dict(self._states)

    def state(self, channel: int) -> bool:
        with self._lock:
            return self._states[channel]

    @property
    def frames(self) -> list[bytes]:
        with self._lock:
            return list(self._frames)

    @property
    def wire(self) -> bytes:
        with self._lock:
            return bytes(self._wire)

    def clear_records(self) -> None:
        with self._lock:
            self._frames.clear()
            self._wire.clear()

    def wait_frames(self, count: int, timeout: float = 2.0) -> list[bytes]:
        """Wait until at least ``count`` commands arrived and were acted upon, callbacks
        included (LCUS boards answer nothing, so a client's ``set`` returns before the board
        has read the frame); returns them all."""
        with self._received:
            self._received.wait_for(lambda: len(self._frames) >= count, timeout)
            return list(self._frames)

    # --- plugging -------------------------------------------------------------------------------

    def start(self) -> SimulatedRelayBoard:
        """Plug the board in: create the pty (and the link) and start serving."""
        if self._stopped:
            raise RuntimeError("a stopped board cannot be started again")
        with self._plug_lock:
            if self._plug is None:
                self._connect()
        return self

    def unplug(self) -> None:
        """Imitate a USB reset or a pulled cable: the pty and the link disappear."""
        with self._plug_lock:
            self._disconnect()

    def replug(self) -> str:
        """Come back as a new device (new pty path, link updated) with the relays at their
        power-on default; returns the new path."""
        if self._stopped:
            raise RuntimeError("the board was stopped")
        with self._plug_lock:
            if self._plug is not None:
                raise RuntimeError("the board is plugged in; unplug() first")
            changes: list[Change] = []
            with self._lock:
                self._firmware = FIRMWARES[self.protocol](self.channels)   # fresh MCU state
                if self.power_on_state is not None:
                    for ch in range(1, self.channels + 1):
                        _Firmware._switch(self._states, ch, self.power_on_state, changes)
            self._notify(changes)
            return self._connect().path

    def stop(self) -> None:
        """Unplug for good and remove the link. Idempotent; returns within one wake-up."""
        self._stopped = True
        with self._plug_lock:
            self._disconnect()

    def __enter__(self) -> SimulatedRelayBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _connect(self) -> _Plug:
        master, slave = os.openpty()
        # Raw on both sides: no echo, no CR/LF translation, before any client configures it
        # (pyserial makes the slave raw too when it opens it).
        tty.setraw(master)
        tty.setraw(slave)
        wake_r, wake_w = os.pipe()
        plug = _Plug(master=master, slave=slave, path=os.ttyname(slave), wake_r=wake_r,
                     wake_w=wake_w)
        # The board keeps its own slave descriptor open: with no slave open, reads on the
        # master fail with EIO, and a client that closes to reconnect would look like a reset.
        plug.thread = threading.Thread(target=self._serve, args=(plug,), daemon=True,
                                       name=f"sim relay board {plug.path}")
        self._plug = plug
        plug.thread.start()
        if self.link is not None:
            self.link.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.link.with_name(self.link.name + ".new")
            temporary.unlink(missing_ok=True)
            os.symlink(plug.path, temporary)
            os.replace(temporary, self.link)       # atomic: a reader never sees no link
        log.debug("sim relay board plugged in at %s", plug.path)
        return plug

    def _disconnect(self) -> None:
        plug, self._plug = self._plug, None
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        if plug is None:
            return
        plug.stop.set()
        os.write(plug.wake_w, b"x")
        if plug.thread is not None:
            plug.thread.join(timeout=5)
        # Closed only after the thread left select(): no descriptor is closed under it.
        for fd in (plug.master, plug.slave, plug.wake_r, plug.wake_w):
            os.close(fd)
        log.debug("sim relay board unplugged from %s", plug.path)

    # --- serving --------------------------------------------------------------------------------

    def _serve(self, plug: _Plug) -> None:
        while not plug.stop.is_set():
            ready, _, _ = select.select([plug.master, plug.wake_r], [], [])
            if plug.wake_r in ready:
                return
            try:
                data = os.read(plug.master, 4096)
            except OSError as exc:
                log.debug("sim relay board read: %s", exc)
                plug.stop.wait(0.01)
                continue
            if data:
                self._receive(plug, data)

    def _receive(self, plug: _Plug, data: bytes) -> None:
        with self._lock:
            self._wire += data
            frames, changes, reply = self._firmware.feed(data, self._states)
            if reply and self.reply_override is not None:
                reply = self.reply_override
            if self.mute:
                reply = b""
            delay = self.reply_delay
        self._notify(changes)
        with self._lock:
            # Recorded after the callbacks ran: wait_frames() then means "acted upon".
            self._frames += frames
            self._received.notify_all()
        if reply and delay > 0:
            plug.stop.wait(delay)
        if reply and not plug.stop.is_set():
            try:
                os.write(plug.master, reply)
            except OSError as exc:
                log.debug("sim relay board write: %s", exc)

    def _notify(self, changes: list[Change]) -> None:
        for channel, on in changes:
            with self._lock:
                callbacks = list(self._callbacks.get(channel, ()))
            for callback in callbacks:
                try:
                    callback(on)
                except Exception:  # noqa: BLE001 - a broken consumer must not kill the board
                    log.exception("sim relay board: callback for channel %d failed", channel)
