"""Ed25519 (RFC 8032) over the canonical certificate: the envelope

    {"certificate": {...}, "signature": {"alg": "Ed25519", "key_id": K, "value": V}}

where V is the standard base64 (with padding) of the 64-byte signature of the UTF-8 bytes of
the certificate object in RFC 8785 canonical form, and K is the first 16 hex digits of the
SHA-256 of the raw 32-byte public key.

Why Ed25519: small keys and signatures, deterministic signing (no nonce to get wrong), and a
verifier in every language (``cryptography``, libsodium, Go's crypto/ed25519, ``openssl
pkeyutl -rawin``). ``cryptography`` is imported inside the functions, so ``rig --help`` does not
load it.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from rig.certificates.canonical import canonical

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

ALGORITHM = "Ed25519"
KEY_ID_HEX_DIGITS = 16


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    """The 32 bytes of an Ed25519 public key (RFC 8032's encoding)."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw public key: short enough to print, long enough
    that two benches' keys do not collide by chance."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:KEY_ID_HEX_DIGITS]


def signed_bytes(certificate: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the certificate object in canonical form."""
    return canonical(certificate)


def sign(certificate: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signed envelope of ``certificate``."""
    signature = private_key.sign(signed_bytes(certificate))
    return {"certificate": certificate,
            "signature": {"alg": ALGORITHM, "key_id": key_id(private_key.public_key()),
                          "value": base64.b64encode(signature).decode("ascii")}}


def envelope_text(envelope: dict[str, Any]) -> str:
    """The certificate file's text: the whole envelope in canonical form plus a newline, so
    every byte of the file is significant (a changed byte is a changed certificate)."""
    return canonical(envelope).decode("utf-8") + "\n"


def digest(certificate: dict[str, Any]) -> str:
    """SHA-256 (hex) of the signed bytes: the QR code's and the store's handle on them."""
    return hashlib.sha256(signed_bytes(certificate)).hexdigest()
