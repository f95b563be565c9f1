"""The crypto of ISAPI activation (docs/hikvision-protocols.md §2.4), both sides of the exchange.

Legacy "challenge" exchange (field-proven form, qb60/hikvision-configure):
  client → device  POST /ISAPI/Security/challenge  <PublicKey><key>b64(hex(RSA modulus))</key>
  device → client  <key>b64(hex(RSA-PKCS1v15(random)))</key>; the last 32 chars of the plaintext
                   are a 32-hex-digit random string
  client → device  PUT /ISAPI/System/activate  <password>b64(hex(AES-128-ECB(random[:16] + pw,
                   zero padded), key = bytes.fromhex(random)))</password>
"V3" exchange (G5 firmware, single source): same idea in JSON with a 3072-bit key, AES-CBC with
PKCS#7 padding and an explicit IV.

The device side lives here too because the simulated camera must run the real exchange.
"""

from __future__ import annotations

import base64
import binascii
import os
import string
import threading

from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

#: Key sizes each exchange needs (the V3 exchange rejects smaller keys on real G5 units).
KEY_BITS = {"challenge": 1024, "v3": 3072}
_EXPONENT = 65537


class ActivationError(ValueError):
    """The activation exchange could not be completed; the message says where."""


# --- client side -------------------------------------------------------------------------------

def new_client_key(variant: str = "challenge") -> rsa.RSAPrivateKey:
    """A fresh RSA key pair for the client's side of an activation exchange."""
    return rsa.generate_private_key(public_exponent=_EXPONENT, key_size=KEY_BITS[variant])


class ClientKeys:
    """One client key pair per exchange variant, made on first use and then reused.

    Why reuse is safe: the key pair is the client's, not the device's. Each device encrypts its
    own single-use random string to our public key; the private key never leaves this process,
    and one device learns nothing from the public key another device also saw. Why it matters:
    the V3 exchange wants a 3072-bit key, which takes seconds to make on a Raspberry Pi (about
    0.1 s on a desktop); a batch of 48 units would spend minutes making keys. Thread-safe: slots
    activate from their own worker threads."""

    def __init__(self) -> None:
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._lock = threading.Lock()

    def get(self, variant: str) -> rsa.RSAPrivateKey:
        with self._lock:
            if variant not in self._keys:
                self._keys[variant] = new_client_key(variant)
            return self._keys[variant]


def public_key_param(key: rsa.RSAPrivateKey) -> str:
    """What the device expects in <key>: Base64 of the lowercase hex modulus."""
    modulus = key.public_key().public_numbers().n
    return base64.b64encode(format(modulus, "x").encode("ascii")).decode("ascii")


def decrypt_challenge(key: rsa.RSAPrivateKey, challenge_b64: str) -> str:
    """The device's random string (32 hex digits) from its Base64(hex(ciphertext)) reply."""
    try:
        cipher = bytes.fromhex(base64.b64decode(challenge_b64, validate=True).decode("ascii"))
        plain = key.decrypt(cipher, rsa_padding.PKCS1v15()).decode("ascii")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ActivationError(f"device challenge could not be decrypted: {exc}") from None
    random_hex = plain[-32:]
    if len(random_hex) != 32 or any(c not in string.hexdigits for c in random_hex):
        raise ActivationError("device challenge does not end in a 32-hex-digit random string")
    return random_hex


def encrypt_password(random_hex: str, password: str, variant: str = "challenge",
                     iv: bytes | None = None) -> tuple[str, str | None]:
    """Encrypt the new admin password for PUT activate. Returns (password field, iv hex or None)."""
    plain = random_hex[:16].encode("ascii") + password.encode("utf-8")
    aes_key = bytes.fromhex(random_hex)
    if variant == "v3":
        iv = iv or os.urandom(16)
        padder = sym_padding.PKCS7(128).padder()
        padded = padder.update(plain) + padder.finalize()
        enc = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
        blob, iv_hex = enc.update(padded) + enc.finalize(), iv.hex()
    else:
        padded = plain + b"\0" * (-len(plain) % 16)
        enc = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()  # noqa: S305 (firmware's choice)
        blob, iv_hex = enc.update(padded) + enc.finalize(), None
    return base64.b64encode(blob.hex().encode("ascii")).decode("ascii"), iv_hex


# --- device side (the simulated camera) --------------------------------------------------------

def public_key_from_param(param: str, variant: str = "challenge") -> rsa.RSAPublicKey:
    """Rebuild the client's RSA public key from <key>; refuse keys of the wrong size."""
    try:
        modulus = int(base64.b64decode(param, validate=True).decode("ascii"), 16)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ActivationError("public key is not Base64 of a hex modulus") from None
    bits = modulus.bit_length()
    if bits < KEY_BITS[variant] - 8:
        raise ActivationError(f"public key of {bits} bits; this exchange needs {KEY_BITS[variant]}")
    return rsa.RSAPublicNumbers(_EXPONENT, modulus).public_key()


def make_challenge(public_key: rsa.RSAPublicKey) -> tuple[str, str]:
    """A fresh random string and its encrypted form for the reply. Returns (random_hex, <key>)."""
    random_hex = os.urandom(16).hex()
    cipher = public_key.encrypt(random_hex.encode("ascii"), rsa_padding.PKCS1v15())
    return random_hex, base64.b64encode(cipher.hex().encode("ascii")).decode("ascii")


def decrypt_password(random_hex: str, field: str, variant: str = "challenge",
                     iv_hex: str | None = None) -> str:
    """Recover the password a client sent; ActivationError if it was not made with our challenge."""
    try:
        blob = bytes.fromhex(base64.b64decode(field, validate=True).decode("ascii"))
        aes_key = bytes.fromhex(random_hex)
        if not blob or len(blob) % 16:
            raise ValueError("ciphertext is not a whole number of AES blocks")
        if variant == "v3":
            iv = bytes.fromhex(iv_hex or "")
            dec = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).decryptor()
            unpadder = sym_padding.PKCS7(128).unpadder()
            plain = unpadder.update(dec.update(blob) + dec.finalize()) + unpadder.finalize()
        else:
            dec = Cipher(algorithms.AES(aes_key), modes.ECB()).decryptor()  # noqa: S305
            plain = (dec.update(blob) + dec.finalize()).rstrip(b"\0")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ActivationError(f"encrypted password could not be decrypted: {exc}") from None
    if plain[:16] != random_hex[:16].encode("ascii"):
        raise ActivationError("encrypted password was not made with this device's challenge")
    try:
        return plain[16:].decode("utf-8")
    except UnicodeDecodeError:
        raise ActivationError("decrypted password is not UTF-8") from None


def password_problem(password: str, user: str = "admin") -> str | None:
    """Why Hikvision would refuse this password, or None (8-16 chars, 2+ kinds, no user name)."""
    if not 8 <= len(password) <= 16:
        return "must be 8 to 16 characters"
    if user and user.lower() in password.lower():
        return "must not contain the user name"
    if _kinds(password) < 2:
        return "must mix at least two of lower case, upper case, digits and symbols"
    return None


def is_risk_password(password: str) -> bool:
    """Accepted but weak: fewer than three kinds of characters (firmware answers riskPassword)."""
    return _kinds(password) < 3


def _kinds(password: str) -> int:
    """How many of lower case, upper case, digits and symbols the password uses."""
    groups = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    symbols = any(not c.isalnum() for c in password)
    return sum(any(c in g for c in password) for g in groups) + symbols
