"""KMTronic USB One Relay (FTDI virtual COM port, 9600 Bd).

``FF 01 01`` switches the relay on, ``FF 01 00`` off; ``FF 01 03`` asks for its state and the
board answers ``FF 01 xx`` with xx 01 = on, 00 = off (info.kmtronic.com, "Controlling USB One
relay by Raspberry Pi"; a single source, docs/gpio-serial.md §3.1). The second byte is the relay
number, channel 1 = ``01``. Only the one-relay board is documented in our notes, so
MAX_CHANNELS is 1: the multi-relay KMTronic boards use another status command.
"""

from __future__ import annotations

from rig.actuators.relay_protocols import ReplyError

NAME = "kmtronic"
DEFAULT_BAUDRATE = 9600
HAS_READBACK = True
MAX_CHANNELS = 1

_START = 0xFF
_OFF, _ON, _STATUS = 0x00, 0x01, 0x03


def encode_set(channel: int, on: bool) -> bytes:
    return bytes([_START, channel, _ON if on else _OFF])


def encode_read(channel: int) -> bytes:
    return bytes([_START, channel, _STATUS])


def _is_read(request: bytes) -> bool:
    return len(request) == 3 and request[2] == _STATUS


def reply_complete(request: bytes, received: bytes) -> bool:
    return not _is_read(request) or len(received) >= 3


def parse_reply(request: bytes, reply: bytes) -> bool | None:
    if not _is_read(request):
        return None
    frame = reply[:3]
    if len(frame) != 3 or frame[0] != _START or frame[1] != request[1] or frame[2] not in (
            _OFF, _ON):
        raise ReplyError(f"expected FF {request[1]:02X} 00|01, got {reply.hex(' ').upper()!r}")
    return frame[2] == _ON
