"""Readers of the ISAPI bodies the functional checks rely on (firmware_notes/topics/checks.md).

Pure functions from a parsed root (rig.xmlsafe: size, depth and entities already refused) to
plain records, so they are tested on sample and hostile bodies without any HTTP. Element names
are matched without their namespace (hikvision.com, std-cgi.com or none). A body that is not
the record asked for raises ValueError; a field that is missing or unreadable comes back as
None, and the check decides what an absent fact means (unknown, never passed).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from rig import xmlsafe
from rig.camera.isapi_types import int_or_none

#: A card id goes into a URL path (``/hdd/<id>/format``): digits only, or it is not sent.
_CARD_ID = re.compile(r"[0-9]{1,6}")
_MAX_CARDS = 16
#: IR-cut modes rig knows (firmware_notes: day, night, auto; some firmware schedule,
#: eventTrigger). Another word read back is reported as it is, never written back.
IRCUT_MODES = ("day", "night", "auto", "schedule", "eventTrigger")


def root_named(root: ET.Element, *names: str) -> None:
    """Refuse a body whose root is not one of ``names`` (case-insensitive, any namespace)."""
    found = xmlsafe.local_name(root.tag)
    if found.lower() not in {n.lower() for n in names}:
        raise ValueError(f"root element is <{found[:40]}>, not <{names[0]}>")


def _children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    for child in element:
        if xmlsafe.local_name(child.tag).lower() == name.lower():
            yield child


def _text(element: ET.Element, name: str) -> str | None:
    """The stripped text of ``element``'s first descendant named ``name``, None if absent."""
    value = xmlsafe.find_text(element, name)
    return value if value else None


@dataclass(frozen=True)
class StreamConfig:
    """The main stream's configured video (``StreamingChannel`` / ``Video``)."""

    width: int | None
    height: int | None
    codec: str | None

    @property
    def family(self) -> str | None:
        """``H.264`` / ``H.265`` (firmware may add ``-BP`` or ``+``: the prefix decides)."""
        codec = (self.codec or "").upper().replace(".", "")
        for name in ("H264", "H265"):
            if codec.startswith(name):
                return f"H.{name[1:]}"
        return None


def stream_config(root: ET.Element) -> StreamConfig:
    """The main stream's size and codec: the snapshot must have this size."""
    root_named(root, "StreamingChannel")
    video = next(_children(root, "Video"), None)
    if video is None:
        raise ValueError("StreamingChannel has no <Video>")
    return StreamConfig(width=_positive(_text(video, "videoResolutionWidth")),
                        height=_positive(_text(video, "videoResolutionHeight")),
                        codec=_text(video, "videoCodecType"))


def _positive(text: str | None, high: int = 100_000) -> int | None:
    value = int_or_none(text)
    return value if value is not None and 0 < value <= high else None


def ircut_mode(root: ET.Element) -> str | None:
    """``IrcutFilter`` / ``IrcutFilterType``, as written (None when absent)."""
    root_named(root, "IrcutFilter")
    mode = _text(root, "IrcutFilterType")
    return mode[:40] if mode else None


def ircut_xml(mode: str) -> str:
    """The PUT body that asks for ``mode`` (one of IRCUT_MODES)."""
    if mode not in IRCUT_MODES:
        raise ValueError(f"not an IR-cut mode: {mode!r}")
    return ('<?xml version="1.0" encoding="UTF-8"?><IrcutFilter version="2.0" '
            'xmlns="http://www.hikvision.com/ver20/XMLSchema">'
            f"<IrcutFilterType>{escape(mode)}</IrcutFilterType></IrcutFilter>")


@dataclass(frozen=True)
class Card:
    """One storage card (``hdd``). Capacities in MB; ``id`` only ever digits."""

    id: str
    type: str | None
    status: str | None
    capacity_mb: int | None
    free_mb: int | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "status": self.status,
                "capacity_mb": self.capacity_mb, "free_mb": self.free_mb}


def cards(root: ET.Element) -> tuple[Card, ...]:
    """The cards of ``storage`` / ``hddList`` (an empty list: no card). ValueError for a card
    whose id could not safely go into a URL, or for more cards than a camera has."""
    root_named(root, "storage")
    hdd_list = next(_children(root, "hddList"), None)
    if hdd_list is None:
        return ()
    found = []
    for hdd in _children(hdd_list, "hdd"):
        fields = xmlsafe.children_text(hdd)
        card_id = fields.get("id", "")
        if not _CARD_ID.fullmatch(card_id):
            raise ValueError(f"card id {card_id[:20]!r} is not a number")
        found.append(Card(id=card_id, type=(fields.get("hddType") or None),
                          status=(fields.get("status") or "").lower()[:40] or None,
                          capacity_mb=_size(fields.get("capacity")),
                          free_mb=_size(fields.get("freeSpace"))))
        if len(found) > _MAX_CARDS:
            raise ValueError(f"more than {_MAX_CARDS} cards listed")
    return tuple(found)


def _size(text: str | None) -> int | None:
    value = int_or_none(text)
    return value if value is not None and value >= 0 else None


@dataclass(frozen=True)
class FormatStatus:
    """``formatStatus``: ``formating`` (sic) and ``percent`` 0-100 (None when unreadable)."""

    formatting: bool | None
    percent: int | None


def format_status(root: ET.Element) -> FormatStatus:
    """A format's progress; a percent outside 0-100 is unreadable (None), not clamped."""
    root_named(root, "formatStatus")
    fields = xmlsafe.children_text(root)
    percent = int_or_none(fields.get("percent"))
    return FormatStatus(
        formatting=xmlsafe.parse_bool(fields.get("formating", fields.get("formatting"))),
        percent=percent if percent is not None and 0 <= percent <= 100 else None)


@dataclass(frozen=True)
class CloudState:
    """``EZVIZ``: enabled, registered, bound (None: not said, or not readable)."""

    enabled: bool | None
    registered: bool | None
    bound: bool | None


def cloud_state(root: ET.Element) -> CloudState:
    """The EZVIZ state; ``bindStatus`` is bind/unbind on most firmware, true/false on some."""
    root_named(root, "EZVIZ")
    fields = xmlsafe.children_text(root)
    bind = (fields.get("bindStatus") or "").strip().lower()
    bound = {"bind": True, "bound": True, "unbind": False, "unbound": False}.get(
        bind, xmlsafe.parse_bool(bind) if bind else None)
    return CloudState(enabled=xmlsafe.parse_bool(fields.get("enabled")),
                      registered=xmlsafe.parse_bool(fields.get("registerStatus")),
                      bound=bound)


def rtsp_port(root: ET.Element) -> int | None:
    """The RTSP port in ``AdminAccessProtocolList`` (None when the list has no usable RTSP
    entry: the caller uses 554)."""
    root_named(root, "AdminAccessProtocolList")
    for entry in _children(root, "AdminAccessProtocol"):
        fields = xmlsafe.children_text(entry)
        if (fields.get("protocol") or "").upper() != "RTSP":
            continue
        port = int_or_none(fields.get("portNo"))
        if port is not None and 0 < port < 65536:
            return port
    return None
