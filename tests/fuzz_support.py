"""What the property-based fuzz tests (tests/test_fuzz_*.py) share: the hypothesis budget, byte
mutations, generated XML, and the property itself ("a value or the module's own error").

The budget: ``RIG_FUZZ_EXAMPLES`` examples per target (default 100: the whole fuzz suite in
about 15 s); a long run is the same tests with a larger number, for instance

    RIG_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_*.py

Every example must finish within ``RIG_FUZZ_DEADLINE_MS`` (default 2000: generous, because
other suites may share the machine; a parser that hangs is far past it).

hypothesis is in the ``test`` extra. Without it these tests skip on a developer's machine but
fail under CI (``CI=true``): a fuzz suite that silently skips protects nothing.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import pytest

try:
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
except ImportError:                           # pragma: no cover - depends on the install
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        raise
    pytest.skip("hypothesis is in the test extra; not installed", allow_module_level=True)

T = TypeVar("T")

EXAMPLES = int(os.environ.get("RIG_FUZZ_EXAMPLES", "100"))
DEADLINE_MS = int(os.environ.get("RIG_FUZZ_DEADLINE_MS", "2000"))

#: The settings every fuzz target uses. Health checks about slow or large data are off: the
#: generators are deliberately big (whole bench files, nested documents).
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(milliseconds=DEADLINE_MS),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much],
                print_blob=True)


def value_or(errors: type[BaseException] | tuple[type[BaseException], ...],
             call: Callable[[], T]) -> T | None:
    """The property every target checks: ``call()`` returns a value or raises one of
    ``errors`` (the module's documented error types); anything else fails the example."""
    try:
        return call()
    except errors:
        return None


# --- bytes ---------------------------------------------------------------------------------------

@st.composite
def mutated(draw: st.DrawFn, data: bytes, max_ops: int = 4) -> bytes:
    """``data`` after 1..``max_ops`` random edits: a byte replaced, a slice deleted, duplicated
    or moved, random bytes inserted, the end cut off."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, max_ops))):
        if not out:
            out += draw(st.binary(min_size=1, max_size=16))
            continue
        at = draw(st.integers(0, len(out) - 1))
        end = draw(st.integers(at, min(len(out), at + 64)))
        op = draw(st.sampled_from(("replace", "delete", "insert", "duplicate", "truncate")))
        if op == "replace":
            out[at] = draw(st.integers(0, 255))
        elif op == "delete":
            del out[at:end]
        elif op == "insert":
            out[at:at] = draw(st.binary(max_size=16) | st.sampled_from(SPECIAL_BYTES))
        elif op == "duplicate":
            out[at:at] = out[at:end]
        else:
            del out[at:]
    return bytes(out)


#: Bytes that tend to break parsers: markup, entities, encodings, line ends, NUL, high bytes,
#: numbers str.isdigit() accepts but int() refuses ("²") or reads ("٣" is 3), huge numbers.
SPECIAL_BYTES = (b"<", b">", b"&", b"&amp;", b"]]>", b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"\x00",
                 b"\r\n", b"\xff\xfe", b"\xc3", b'"', b"'", b"<![CDATA[", b"<?xml?>",
                 b'<?xml version="1.0" encoding="utf-16"?>', b"&#0;", b"&#x110000;",
                 b"\xe2\x80\xae", b"[", b"{", b"=", b"#", "²".encode(), "٣".encode(), b"-1",
                 b"99999999999999999999")


# --- XML -----------------------------------------------------------------------------------------

NAMESPACES = ("", "{http://www.hikvision.com/ver20/XMLSchema}",
              "{http://www.isapi.org/ver20/XMLSchema}", "{urn:x}")
#: Text that is legal in XML 1.0 (the serialiser does not check; the parser would refuse).
XML_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(
    "\t\n0123456789-:."), max_size=24)


def xml_names(known: Sequence[str]) -> st.SearchStrategy[str]:
    """Element names: mostly ones the reader looks for, sometimes anything well-formed."""
    return st.sampled_from(known) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,12}",
                                                  fullmatch=True)


def xml_texts(values: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """Element text: words the readers know (true, flase, 200, ...), numbers or anything."""
    words = ("true", "false", "flase", "TRUE", "1", "0", "-1", "200", "401", "7", "1e9",
             "99999999999999999999", "nan", " 12 ", "", "unlock", "lock", "static", "dynamic",
             "44:47:cc:00:00:01", "4447cc000001", "192.168.1.64", "H.264", "H265", *values)
    return st.sampled_from(words) | XML_TEXT | st.integers().map(str)


@st.composite
def xml_trees(draw: st.DrawFn, roots: Sequence[str], names: Sequence[str],
              values: Sequence[str] = (), max_depth: int = 3) -> ET.Element:
    """An element tree whose root is usually one the reader expects, with children named as it
    expects, nested up to ``max_depth``."""
    ns = draw(st.sampled_from(NAMESPACES))
    root = ET.Element(ns + draw(st.sampled_from(roots) if draw(st.integers(0, 9)) else
                                xml_names(names)))
    _fill(draw, root, ns, names, values, max_depth)
    return root


def _fill(draw: st.DrawFn, parent: ET.Element, ns: str, names: Sequence[str],
          values: Sequence[str], depth: int) -> None:
    parent.text = draw(st.none() | xml_texts(values))
    if depth <= 0:
        return
    for _ in range(draw(st.integers(0, 5 if depth > 1 else 2))):
        child = ET.SubElement(parent, draw(st.sampled_from((ns, ns, "", "{urn:y}")))
                              + draw(xml_names(names)))
        _fill(draw, child, ns, names, values, depth - draw(st.integers(1, depth)))


def xml_bytes(roots: Sequence[str], names: Sequence[str],
              values: Sequence[str] = ()) -> st.SearchStrategy[bytes]:
    """Serialised generated trees, half of them mutated, plus raw bytes now and then."""
    trees = xml_trees(roots, names, values).map(
        lambda root: ET.tostring(root, encoding="utf-8", xml_declaration=True))
    return st.one_of(trees, trees.flatmap(mutated), st.binary(max_size=200))


def any_json() -> st.SearchStrategy[Any]:
    """Any JSON value, nested a few levels."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                        max_leaves=12)
