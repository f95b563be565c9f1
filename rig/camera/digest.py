"""HTTP Digest authentication (RFC 7616, MD5 and SHA-256, qop=auth), for both ends.

rig builds the Authorization header itself instead of using a library's auth handler: a Hikvision
camera locks the client address after a few failed logins, so every credential check must be
exactly one authenticated request, never a retry behind our back. The simulated camera verifies
with the same functions.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class DigestError(ValueError):
    """A Digest header that cannot be used; the message says why."""


@dataclass(frozen=True)
class Challenge:
    """A server's WWW-Authenticate: Digest challenge."""

    realm: str
    nonce: str
    qop: str | None = "auth"
    algorithm: str = "MD5"
    opaque: str | None = None
    stale: bool = False

    def header(self) -> str:
        parts = [f'realm="{self.realm}"', f'nonce="{self.nonce}"']
        if self.qop:
            parts.append(f'qop="{self.qop}"')
        if self.opaque:
            parts.append(f'opaque="{self.opaque}"')
        parts.append(f"algorithm={self.algorithm}")
        if self.stale:
            parts.append('stale="TRUE"')
        return "Digest " + ", ".join(parts)


def _params(header: str, scheme: str = "digest") -> dict[str, str]:
    head, _, rest = header.strip().partition(" ")
    if head.lower() != scheme:
        raise DigestError(f"not a Digest header: {header[:60]!r}")
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _PARAM_RE.finditer(rest)}


def parse_challenge(header: str) -> Challenge:
    """Read a WWW-Authenticate header (client side). Picks the Digest challenge."""
    params = _params(header)
    if "realm" not in params or "nonce" not in params:
        raise DigestError("Digest challenge without realm or nonce")
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in _HASHES:
        raise DigestError(f"unsupported Digest algorithm {algorithm!r}")
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    if qops and "auth" not in qops:
        raise DigestError(f"server offers qop {qops}; only 'auth' is supported")
    return Challenge(realm=params["realm"], nonce=params["nonce"], qop="auth" if qops else None,
                     algorithm=algorithm, opaque=params.get("opaque"),
                     stale=params.get("stale", "").lower() == "true")


def response_digest(challenge: Challenge, method: str, uri: str, user: str, password: str,
                    nc: str, cnonce: str) -> str:
    """The ``response`` value both ends compute."""
    h = _HASHES[challenge.algorithm]

    def hx(text: str) -> str:
        return h(text.encode("utf-8")).hexdigest()

    ha1 = hx(f"{user}:{challenge.realm}:{password}")
    ha2 = hx(f"{method}:{uri}")
    if challenge.qop:
        return hx(f"{ha1}:{challenge.nonce}:{nc}:{cnonce}:{challenge.qop}:{ha2}")
    return hx(f"{ha1}:{challenge.nonce}:{ha2}")


def authorization(challenge: Challenge, method: str, uri: str, user: str, password: str,
                  nc: int = 1, cnonce: str | None = None) -> str:
    """An Authorization header answering ``challenge`` (client side)."""
    nc_text = f"{nc:08x}"
    cnonce = cnonce or os.urandom(8).hex()
    digest = response_digest(challenge, method, uri, user, password, nc_text, cnonce)
    parts = [f'username="{user}"', f'realm="{challenge.realm}"', f'nonce="{challenge.nonce}"',
             f'uri="{uri}"', f"algorithm={challenge.algorithm}", f'response="{digest}"']
    if challenge.qop:
        parts += [f"qop={challenge.qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    if challenge.opaque:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)


@dataclass(frozen=True)
class Credentials:
    """What a client sent in its Authorization header (server side)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str = ""
    cnonce: str = ""

    def matches(self, challenge: Challenge, method: str, password: str) -> bool:
        """True when the client knew ``password`` (constant-time compare)."""
        expected = response_digest(challenge, method, self.uri, self.username, password,
                                   self.nc, self.cnonce)
        return hmac.compare_digest(expected, self.response)


def parse_authorization(header: str) -> Credentials:
    """Read a client's Authorization: Digest header (server side)."""
    params = _params(header)
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in params]
    if missing:
        raise DigestError(f"Digest authorization without {', '.join(missing)}")
    return Credentials(username=params["username"], realm=params["realm"], nonce=params["nonce"],
                       uri=params["uri"], response=params["response"],
                       algorithm=params.get("algorithm", "MD5").upper(), qop=params.get("qop"),
                       nc=params.get("nc", ""), cnonce=params.get("cnonce", ""))
