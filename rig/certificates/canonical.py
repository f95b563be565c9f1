"""The bytes that are signed and digested: RFC 8785 (JSON Canonicalization Scheme).

Why RFC 8785: a signature covers bytes, not meaning. JCS fixes one byte form for a JSON value
(keys sorted by UTF-16 code units, no insignificant whitespace, one spelling per string and per
number), so a verifier in any language rebuilds exactly the bytes that were signed from the
parsed certificate. We use the ``rfc8785`` package (Trail of Bits, pure Python, tested against
the RFC's examples) rather than a home-grown serializer: number formatting is where hand-written
canonicalizers go wrong.

Certificates themselves hold only texts, integers, booleans and null (``plain()`` enforces it),
so their canonical form is also what ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` gives: a buyer needs no JCS library to check one (README, Certificates).
"""

from __future__ import annotations

from typing import Any

#: I-JSON's exact integer range (RFC 7493): what RFC 8785 can write as a number.
SAFE_INTEGER = 2**53 - 1


class NotPlain(ValueError):
    """A certificate value that is not a text, integer, boolean, null, list or object."""


def canonical(value: Any) -> bytes:
    """``value`` in RFC 8785 canonical form (UTF-8 bytes)."""
    import rfc8785  # a few ms; only commands that sign or verify pay for it

    return rfc8785.dumps(value)


def plain(value: Any, where: str = "certificate") -> Any:
    """``value`` itself, after checking that it holds no floats and no integer beyond I-JSON's
    range: certificates keep every number an integer or a text (issue 13, item 2), so their
    canonical form is the plain sorted, compact JSON every library writes alike."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        if abs(value) > SAFE_INTEGER:
            raise NotPlain(f"{where}: {value} is beyond the exact integer range; give it as text")
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            plain(item, f"{where}[{i}]")
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotPlain(f"{where}: key {key!r} is not a text")
            plain(item, f"{where}.{key}")
        return value
    raise NotPlain(f"{where}: {type(value).__name__} {value!r} is not a text, integer, boolean, "
                   "null, list or object")
