"""LCUS-1/2/4/8 relay boards (LC Technology; CH340 USB-serial, /dev/ttyUSB*, 9600 8N1).

Frame: ``A0 <channel> <op> <checksum>``, channel 1-based on the wire as in rig, op 00 = off,
01 = on, checksum = (A0 + channel + op) & FF. Relay 1 on is ``A0 01 01 A2``, off ``A0 01 00 A1``
(vendor listings and several public drivers agree; docs/gpio-serial.md §3.1).

No read-back: the ``FF`` query answers differently per board batch and most boards answer
nothing, so rig never relies on it and reports the last commanded state instead. The board
answers nothing to a switch command either, so nothing confirms a frame arrived; a CH340 has no
serial number, so name the port by /dev/serial/by-path (docs/gpio-serial.md §3.4).
"""

from __future__ import annotations

NAME = "lcus"
DEFAULT_BAUDRATE = 9600
HAS_READBACK = False
#: The family's largest board (LCUS-8); the frame itself could address more.
MAX_CHANNELS = 8

_START = 0xA0
_OFF, _ON = 0x00, 0x01


def encode_set(channel: int, on: bool) -> bytes:
    op = _ON if on else _OFF
    return bytes([_START, channel, op, (_START + channel + op) & 0xFF])


def encode_read(channel: int) -> bytes:
    """Refused: there is no query that every LCUS board answers (see the module docstring)."""
    raise ValueError("lcus boards have no reliable state read-back")


def reply_complete(request: bytes, received: bytes) -> bool:
    return True     # the board never answers a switch command


def parse_reply(request: bytes, reply: bytes) -> bool | None:
    return None
