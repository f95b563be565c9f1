"""The bench's signing key: Ed25519, created on first use beside the record store, readable by
its owner only, and a keyring of every public key it ever had so that certificates signed
before a rotation still verify.

Layout (``key_dir``: ``certificate-keys/`` in the record store's directory, mode 0700)::

    signing-key.pem   the private key (PKCS#8 PEM, unencrypted), mode 0600: refused otherwise
    keyring.json      {"keys": [{"key_id", "public_key_pem", "created_at", "retired_at"}]}

Why beside the record store: a bench's records and its key go together (one data directory per
bench; a service sets ``RIG_DB`` to ``/var/lib/rig/…``). Why refuse a readable key rather than
fix it: someone else may already have copied it; the operator must decide (rotate). The private
key is never printed nor logged; only the public half leaves this module as text.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rig.certificates.signing import key_id

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

KEY_DIR_NAME = "certificate-keys"
PRIVATE_NAME = "signing-key.pem"
KEYRING_NAME = "keyring.json"


class KeyFileError(RuntimeError):
    """The signing key or keyring cannot be used (permissions, owner, unreadable)."""


def key_dir(db_path: str | os.PathLike[str]) -> Path:
    """Where the keys of the record store at ``db_path`` live."""
    return Path(db_path).expanduser().resolve().parent / KEY_DIR_NAME


@dataclass(frozen=True)
class KeyringEntry:
    key_id: str
    public_key_pem: str
    created_at: str
    retired_at: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def public_pem(public_key: Ed25519PublicKey) -> str:
    """SubjectPublicKeyInfo PEM: what openssl and every Ed25519 library load."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_pem(text: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError if it is not one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = text.encode() if isinstance(text, str) else text
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def check_private_file(path: Path) -> None:
    """Refuse a key file that group or others may read or write, or that someone else owns."""
    info = path.stat()
    mode = info.st_mode & 0o777
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable or writable by others (mode {mode:o}): refusing "
                           f"to sign with it. If others may have copied it, rotate "
                           f"(rig certificate key --rotate) after chmod 600 {path}")
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise KeyFileError(f"{path} belongs to uid {info.st_uid}, not to this user: refusing "
                           "to sign with it")


def _write_private(path: Path, private_key: Ed25519PrivateKey) -> None:
    """Write ``private_key`` to ``path`` (which must not exist), owner-only from its creation."""
    from cryptography.hazmat.primitives import serialization

    pem = private_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())


class BenchKeys:
    """The signing key and keyring in one directory (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.private_path = self.directory / PRIVATE_NAME
        self.keyring_path = self.directory / KEYRING_NAME

    def signing_key(self, create: bool = True) -> Ed25519PrivateKey:
        """The current private key, created (and put in the keyring) on first use. Raises
        KeyFileError for a key others may read, or none when ``create`` is false."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if not self.private_path.exists():
            if not create:
                raise KeyFileError(f"no signing key in {self.directory}")
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                _write_private(self.private_path, Ed25519PrivateKey.generate())
            except FileExistsError:
                pass                   # another process created it meanwhile: use theirs
        check_private_file(self.private_path)
        try:
            key = serialization.load_pem_private_key(self.private_path.read_bytes(), None)
        except (OSError, ValueError, TypeError) as exc:
            raise KeyFileError(f"{self.private_path}: not a usable private key "
                               f"({type(exc).__name__})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{self.private_path}: not an Ed25519 key")
        self._remember(key.public_key())
        return key

    def keyring(self) -> list[KeyringEntry]:
        """Every public key this bench signed with, oldest first ([] before the first)."""
        try:
            data = json.loads(self.keyring_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"{self.keyring_path}: unreadable keyring: {exc}") from None
        try:
            return [KeyringEntry(k["key_id"], k["public_key_pem"], k["created_at"],
                                 k.get("retired_at")) for k in data["keys"]]
        except (KeyError, TypeError) as exc:
            raise KeyFileError(f"{self.keyring_path}: not a keyring ({exc})") from None

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """key id → public key, for every key in the keyring (each checked against its id)."""
        out = {}
        for entry in self.keyring():
            key = load_public_pem(entry.public_key_pem)
            if key_id(key) != entry.key_id:
                raise KeyFileError(f"{self.keyring_path}: key {entry.key_id} does not match "
                                   "its public key")
            out[entry.key_id] = key
        return out

    def rotate(self) -> tuple[str | None, str]:
        """A new signing key; the old one's public key stays in the keyring (marked retired)
        so that its certificates still verify, and its private key is deleted.
        Returns (old key id or None, new key id)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        old = key_id(self.signing_key().public_key()) if self.private_path.exists() else None
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = self.directory / f".{PRIVATE_NAME}.new"
        fresh.unlink(missing_ok=True)
        new_key = Ed25519PrivateKey.generate()
        _write_private(fresh, new_key)
        self._remember(new_key.public_key(), retire=old)   # in the keyring before it signs
        os.replace(fresh, self.private_path)
        return old, key_id(new_key.public_key())

    def _remember(self, public_key: Ed25519PublicKey, retire: str | None = None) -> None:
        """Add ``public_key`` to the keyring if it is not there (and mark ``retire`` retired)."""
        entries = self.keyring()
        new_id = key_id(public_key)
        if any(e.key_id == new_id for e in entries) and retire is None:
            return
        rows: list[dict[str, Any]] = [
            {"key_id": e.key_id, "public_key_pem": e.public_key_pem, "created_at": e.created_at,
             "retired_at": _now() if e.key_id == retire and e.retired_at is None
             else e.retired_at} for e in entries]
        if not any(e.key_id == new_id for e in entries):
            rows.append({"key_id": new_id, "public_key_pem": public_pem(public_key),
                         "created_at": _now(), "retired_at": None})
        temp = self.keyring_path.with_name(f".{KEYRING_NAME}.{os.getpid()}")
        temp.write_text(json.dumps({"keys": rows}, indent=2) + "\n", encoding="utf-8")
        os.replace(temp, self.keyring_path)
