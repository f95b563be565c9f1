"""Relay boards: the device is there, this user may open it, and the board answers its
protocol's state query. Opening a board changes no relay (rig.actuators.serial_relay), and the
only frame sent is a read: never a set.

Why each: a board on another ttyUSB after a USB reset, a user outside the ``dialout`` group, or
another process holding the port (the driver's exclusive lock) each stop a run at its first
switch; a solenoid channel that reads energised before a run is a coil left on.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rig.bench import RelayBoardConfig, RelayOutput, Slot
from rig.doctor.findings import Finding, fail, ok, warn
from rig.vocabulary import DoctorArea

if TYPE_CHECKING:
    from rig.actuators.serial_relay import SerialRelayBoard
    from rig.doctor.runner import DoctorContext

_AREA = DoctorArea.RELAY
#: Seconds to wait for one reply; a board that answers answers within milliseconds.
REPLY_TIMEOUT_S = 1.0


def probe(ctx: DoctorContext) -> list[Finding]:
    findings: list[Finding] = []
    for name, cfg in ctx.bench.relay_boards.items():
        findings.append(_board(cfg, _channels(ctx.bench.slots, name)))
    return findings


def _channels(slots: tuple[Slot, ...], board: str) -> dict[int, tuple[str, str]]:
    """Channel → (slot, "power" or "solenoid") for the channels the bench uses on ``board``."""
    used = {}
    for slot in slots:
        for role, output in (("power", slot.power), ("solenoid", slot.button)):
            if isinstance(output, RelayOutput) and output.board == board:
                used[output.channel] = (slot.name, role)
    return used


def _present(cfg: RelayBoardConfig) -> Finding | None:
    """A finding when the device path is missing or not openable by this user, else None."""
    label = f"relay board {cfg.name}"
    if "://" in cfg.port:
        return None             # a pyserial URL (socket://, rfc2217://): nothing on disk
    if not os.path.exists(cfg.port):
        dangling = os.path.islink(cfg.port)
        what = "a link to a missing device" if dangling else "missing"
        return fail(_AREA, label, f"{cfg.port} is {what}: unplugged, or on another port after "
                    "a USB reset",
                    "plug it in; name it by /dev/serial/by-id (or by-path for CH340) in the "
                    "bench file")
    device = os.path.realpath(cfg.port)
    if not os.access(device, os.R_OK | os.W_OK):
        return fail(_AREA, label, f"{device} is not readable and writable by this user",
                    "add the service user to the device's group (dialout) and log in again")
    return None


def _board(cfg: RelayBoardConfig, used: dict[int, tuple[str, str]]) -> Finding:
    from rig.actuators.base import ActuatorError
    from rig.actuators.serial_relay import SerialRelayBoard

    missing = _present(cfg)
    if missing is not None:
        return missing
    label = f"relay board {cfg.name}"
    try:
        board = SerialRelayBoard(cfg.port, protocol=cfg.protocol, channels=cfg.channels,
                                 baudrate=cfg.baudrate, timeout=REPLY_TIMEOUT_S,
                                 reconnect_attempts=0, name=label)
    except ActuatorError as exc:
        return fail(_AREA, label, f"cannot open: {exc.message}",
                    "stop the process that holds it (a running rig?) or replug the board")
    try:
        if not board.protocol.HAS_READBACK:
            return warn(_AREA, label, f"{cfg.port} opens, but {cfg.protocol} boards have no "
                        "state query: doctor cannot prove the board answers",
                        "watch its LEDs during `rig power SLOT cycle` once")
        return _query(board, cfg, used)
    finally:
        board.close()


def _query(board: SerialRelayBoard, cfg: RelayBoardConfig,
           used: dict[int, tuple[str, str]]) -> Finding:
    """Read every channel the bench uses (channel 1 when none): the protocol's query only."""
    from rig.actuators.base import ActuatorError

    label = f"relay board {cfg.name}"
    states = {}
    for channel in sorted(used) or [1]:
        try:
            states[channel] = board.read(channel)
        except ActuatorError as exc:
            return fail(_AREA, label, f"opens, but does not answer its {cfg.protocol} state "
                        f"query: {exc.message}", f"check protocol = {cfg.protocol!r} and "
                        "baudrate against the board; replug it")
    engaged = [f"channel {ch} (slot {used[ch][0]})" for ch, on in states.items()
               if on and ch in used and used[ch][1] == "solenoid"]
    if engaged:
        return fail(_AREA, label, f"solenoid energised now: {', '.join(engaged)}",
                    "run `rig safe BENCH` to release it, then find what left it on")
    shown = ", ".join(f"{ch} {'on' if on else 'off'}" for ch, on in states.items())
    return ok(_AREA, label, f"{cfg.port} answers its {cfg.protocol} state query "
                            f"(channels {shown})")
