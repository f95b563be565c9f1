"""Safe parsing of XML that comes from the network (SADP datagrams, ISAPI bodies).

Cameras and anything else on the bench LAN are untrusted: a reply may be truncated, hostile
(entity expansion, external entities) or huge. Everything XML that rig reads goes through here:
size is capped before parsing, DTDs and entities are refused (defusedxml), and element names are
compared without their namespace, because Hikvision firmware uses two namespaces
(hikvision.com and isapi.org) or none at all.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

#: Largest XML document rig accepts. Real ProbeMatch replies are ~1.5 kB and ISAPI bodies a few kB.
DEFAULT_MAX_BYTES = 64 * 1024


class XmlError(ValueError):
    """An XML document that could not be accepted; the message says why."""


def local_name(tag: str) -> str:
    """Element name without its ``{namespace}`` prefix."""
    return tag.rsplit("}", 1)[-1]


def parse(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES,
          what: str = "XML") -> ET.Element:
    """Parse untrusted XML and return its root element.

    Raises XmlError for oversized input, DTDs/entities and malformed documents. ``what`` names the
    document in the message (for example "SADP reply from 127.0.1.4").
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise XmlError(f"{what}: {len(raw)} bytes is larger than the {max_bytes}-byte limit")
    if not raw.strip():
        raise XmlError(f"{what}: empty document")
    try:
        return DET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmlError(f"{what}: refused unsafe XML ({type(exc).__name__})") from exc
    except ET.ParseError as exc:
        raise XmlError(f"{what}: malformed XML ({exc})") from exc
    except (ValueError, LookupError) as exc:
        # expat raises these, not ParseError, for a hostile encoding declaration:
        # encoding="bogus" → LookupError, "shift_jis" → ValueError, "idna" → UnicodeError.
        raise XmlError(f"{what}: unusable XML ({type(exc).__name__}: {exc})") from exc


def children_text(element: ET.Element) -> dict[str, str]:
    """Map of direct children's local names to their stripped text (first occurrence wins)."""
    out: dict[str, str] = {}
    for child in element:
        out.setdefault(local_name(child.tag), (child.text or "").strip())
    return out


def find_text(element: ET.Element, name: str) -> str | None:
    """Text of the first descendant whose local name is ``name``, or None."""
    for node in element.iter():
        if local_name(node.tag) == name:
            return (node.text or "").strip()
    return None


def parse_bool(text: str | None) -> bool | None:
    """Read a firmware boolean. Real firmware writes ``flase`` for false; accept it."""
    if text is None:
        return None
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "flase", "0", "no"):
        return False
    return None
