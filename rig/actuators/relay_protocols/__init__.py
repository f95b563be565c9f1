"""Serial relay board protocols: one plain module per board family, loaded by name.

Each module is the whole knowledge of one family's wire format, with no I/O of its own, so the
driver (``rig.actuators.serial_relay``) owns the port, locking and reconnects once for all of
them, and adding a board is adding a file here (labgrid's power backends work the same way).

Channels are **1-based everywhere in rig** (bench files, CLI, ``SerialRelayBoard``). A module
whose wire numbering differs (Numato counts from 0) converts inside its ``encode_*`` functions.

A module provides:

``NAME``             its name (the module name), as used in bench files and ``--protocol``
``DEFAULT_BAUDRATE`` the line speed the board expects (nominal on USB CDC boards)
``HAS_READBACK``     whether the board can report a relay's state
``MAX_CHANNELS``     the largest channel count the wire format addresses
``encode_set(channel, on) -> bytes``       the command that switches one relay
``encode_read(channel) -> bytes``          the query for one relay (only if HAS_READBACK)
``reply_complete(request, received) -> bool``  whether ``received`` holds the whole answer to
                                           ``request`` (True at once for boards that answer
                                           nothing)
``parse_reply(request, reply) -> bool | None``  checks the answer; a read returns the relay's
                                           state, a set returns None; garbage raises ReplyError
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType
from typing import Protocol, cast

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")
_REQUIRED = ("NAME", "DEFAULT_BAUDRATE", "HAS_READBACK", "MAX_CHANNELS", "encode_set",
             "encode_read", "reply_complete", "parse_reply")


class ReplyError(ValueError):
    """The board answered something its protocol does not allow (garbage, wrong echo)."""


class RelayProtocol(Protocol):
    """The shape every protocol module has (for type checkers; modules satisfy it as-is)."""

    NAME: str
    DEFAULT_BAUDRATE: int
    HAS_READBACK: bool
    MAX_CHANNELS: int

    def encode_set(self, channel: int, on: bool) -> bytes: ...

    def encode_read(self, channel: int) -> bytes: ...

    def reply_complete(self, request: bytes, received: bytes) -> bool: ...

    def parse_reply(self, request: bytes, reply: bytes) -> bool | None: ...


def available() -> list[str]:
    """Names of the protocol modules in this package, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__)
                  if _NAME_RE.fullmatch(m.name))


def load(name: str) -> RelayProtocol:
    """The protocol module called ``name``; ValueError naming the known ones if there is none,
    or naming what is missing if a module is incomplete (caught at load, not mid-run)."""
    known = available()
    if name not in known:
        raise ValueError(f"unknown relay protocol {name!r} (known: {', '.join(known)})")
    module: ModuleType = importlib.import_module(f"{__name__}.{name}")
    missing = [attr for attr in _REQUIRED if not hasattr(module, attr)]
    if missing:
        raise ValueError(f"relay protocol module {name!r} lacks {', '.join(missing)}")
    return cast(RelayProtocol, module)
