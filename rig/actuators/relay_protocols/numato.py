"""Numato Lab USB relay boards (1/2/4/8/16/32 channels; USB CDC ACM, /dev/ttyACM*).

ASCII commands ended by CR: ``relay on N``, ``relay off N``, ``relay read N``. The board echoes
the command, then (for a read) ``on`` or ``off``, then a ``>`` prompt, lines separated by
``\\n\\r`` (Numato sample code, NumatoLab/NumatoIO_Python, pdudaemon's numatousb driver;
docs/gpio-serial.md §3.1).

**Channel mapping.** The wire counts relays from 0; rig counts from 1 like everywhere else, so
rig channel 1 is wire relay ``0`` and rig channel N is wire relay N-1. Wire relays 10 and up are
one uppercase letter: 10 = ``A`` ... 31 = ``V`` (Numato samples use ``chr(55 + n)``; a lowercase
letter is ignored by the board, per the michaelkeating.com write-up). The 64-channel board's
two-digit numbering is not supported (MAX_CHANNELS = 32).

The baud rate is nominal on CDC; 19200 is what Numato's own samples use. Tell ModemManager to
leave the board alone (udev ``ENV{ID_MM_DEVICE_IGNORE}="1"`` for VID 2a19) or its AT probes mix
with the commands.
"""

from __future__ import annotations

import re

from rig.actuators.relay_protocols import ReplyError

NAME = "numato"
DEFAULT_BAUDRATE = 19200
HAS_READBACK = True
MAX_CHANNELS = 32

PROMPT = ">"
_LINE_BREAKS = re.compile(r"[\r\n]+")


def wire_index(channel: int) -> str:
    """The relay token on the wire for rig's 1-based ``channel``: 1 → ``0``, 11 → ``A``."""
    index = channel - 1
    if not 0 <= index < MAX_CHANNELS:
        raise ValueError(f"numato: channel {channel} outside 1..{MAX_CHANNELS}")
    return str(index) if index < 10 else chr(ord("A") + index - 10)


def encode_set(channel: int, on: bool) -> bytes:
    return f"relay {'on' if on else 'off'} {wire_index(channel)}\r".encode("ascii")


def encode_read(channel: int) -> bytes:
    return f"relay read {wire_index(channel)}\r".encode("ascii")


def reply_complete(request: bytes, received: bytes) -> bool:
    return PROMPT.encode("ascii") in received


def parse_reply(request: bytes, reply: bytes) -> bool | None:
    """Check the echo and the prompt; a read returns True for ``on``, False for ``off``.

    Anything else (a different echo, an error text, non-ASCII noise) is garbage: the board is
    not a Numato, is in a strange state, or another program shares the port.
    """
    try:
        text = reply.decode("ascii")
    except UnicodeDecodeError:
        raise ReplyError(f"not ASCII: {reply!r}") from None
    command = request.decode("ascii").strip()
    lines = [line.strip() for line in _LINE_BREAKS.split(text) if line.strip()]
    if not lines or lines[-1] != PROMPT:
        raise ReplyError(f"no {PROMPT!r} prompt at the end of {reply!r}")
    if lines[0] != command:
        raise ReplyError(f"echo {lines[0]!r} is not the command {command!r} (reply {reply!r})")
    body = lines[1:-1]
    if command.startswith("relay read "):
        if body not in (["on"], ["off"]):
            raise ReplyError(f"expected 'on' or 'off' after the echo, got {reply!r}")
        return body == ["on"]
    if body:
        raise ReplyError(f"unexpected text after the echo: {reply!r}")
    return None
