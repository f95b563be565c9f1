"""Safe parsing of XML that comes from the network (SADP datagrams, ISAPI bodies).

Cameras and anything else on the bench LAN are untrusted: a reply may be truncated, hostile
(entity expansion, external entities) or huge. Everything XML that rig reads goes through here:
size is capped before parsing, DTDs and entities are refused (defusedxml), nesting is capped while
parsing (a reply nested a thousand deep is no camera's, and would take the stack of whatever
walks it recursively), and element names are compared without their namespace, because
Hikvision firmware uses two namespaces (hikvision.com and isapi.org) or none at all.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

#: Largest XML document rig accepts. Real ProbeMatch replies are ~1.5 kB and ISAPI bodies a few kB.
DEFAULT_MAX_BYTES = 64 * 1024
#: Deepest element nesting rig accepts. Real ISAPI and SADP documents are under 6 levels deep.
MAX_DEPTH = 64


class XmlError(ValueError):
    """An XML document that could not be accepted; the message says why."""


def local_name(tag: str) -> str:
    """Element name without its ``{namespace}`` prefix."""
    return tag.rsplit("}", 1)[-1]


def parse(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES,
          what: str = "XML", max_depth: int = MAX_DEPTH) -> ET.Element:
    """Parse untrusted XML and return its root element.

    Raises XmlError for oversized or too deeply nested input, DTDs/entities and malformed
    documents. ``what`` names the document in the message (for example "SADP reply from
    127.0.1.4").
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise XmlError(f"{what}: {len(raw)} bytes is larger than the {max_bytes}-byte limit")
    if not raw.strip():
        raise XmlError(f"{what}: empty document")
    try:
        return _parse_shallow(raw, max_depth, what)
    except DefusedXmlException as exc:
        raise XmlError(f"{what}: refused unsafe XML ({type(exc).__name__})") from exc
    except ET.ParseError as exc:
        raise XmlError(f"{what}: malformed XML ({exc})") from exc
    except (ValueError, LookupError) as exc:
        if isinstance(exc, XmlError):
            raise
        # expat raises these, not ParseError, for a hostile encoding declaration:
        # encoding="bogus" → LookupError, "shift_jis" → ValueError, "idna" → UnicodeError.
        raise XmlError(f"{what}: unusable XML ({type(exc).__name__}: {exc})") from exc


def _parse_shallow(raw: bytes, max_depth: int, what: str) -> ET.Element:
    """The root, the depth counted per start/end event (no recursion, and parsing stops at the
    first element too deep, before the rest of the tree is built)."""
    depth = 0
    root: ET.Element | None = None
    events = DET.iterparse(io.BytesIO(raw), events=("start", "end"), forbid_dtd=True,
                           forbid_entities=True, forbid_external=True)
    for event, element in events:
        if event == "end":
            depth -= 1
            continue
        depth += 1
        if depth > max_depth:
            raise XmlError(f"{what}: elements nested deeper than {max_depth} levels")
        if root is None:
            root = element
    if root is None:
        raise XmlError(f"{what}: no root element")
    return root


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
