"""Everything ``rig certificate verify`` checks, each with a reason a person can act on.

In order: the file is a certificate envelope (strict JSON: no duplicate keys, no fractional
numbers), it is in the canonical form it was issued in (every byte counts; a reformatted copy
is refused even when its signature still holds, which the report also says), its key id names a
key we hold (the bench keyring, or ``--key``) and matches that key, the Ed25519 signature holds
over the canonical certificate, and, with the record store, the certificate is the one recorded
and the unit's evidence still has the digest it pins. The first check that fails ends the
key and signature checks; the store checks run only on a valid signature.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rig.certificates.canonical import NotPlain, canonical, plain
from rig.certificates.content import CERTIFICATE_TYPE, CERTIFICATE_VERSION
from rig.certificates.evidence import evidence_digest
from rig.certificates.signing import ALGORITHM, digest, key_id, signed_bytes
from rig.records import RecordError, RecordStore

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_KEY_ID = re.compile(r"[0-9a-f]{16}")


class Malformed(ValueError):
    """Not a certificate envelope; the message says what is wrong."""


@dataclass(frozen=True)
class Finding:
    name: str          # format, canonical-form, key, signature, record, evidence-digest
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    findings: tuple[Finding, ...]
    certificate: dict[str, Any] | None

    @property
    def valid(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    @property
    def reason(self) -> str:
        """The first failure's detail ("" when valid)."""
        return next((f"{f.name}: {f.detail}" for f in self.findings if not f.ok), "")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise Malformed(f"key {key!r} appears twice")
        out[key] = value
    return out


def _no_float(text: str) -> Any:
    raise Malformed(f"number {text} is not an integer (certificates hold none)")


def parse_envelope(data: bytes) -> dict[str, Any]:
    """The envelope in ``data``, checked for shape. Raises Malformed."""
    try:
        envelope = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates,
                              parse_float=_no_float, parse_constant=_no_float)
    except UnicodeDecodeError:
        raise Malformed("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise Malformed(f"not JSON: {exc}") from None
    if not isinstance(envelope, dict) or set(envelope) != {"certificate", "signature"}:
        raise Malformed('not a certificate envelope {"certificate": …, "signature": …}')
    signature, certificate = envelope["signature"], envelope["certificate"]
    if not isinstance(signature, dict) or set(signature) != {"alg", "key_id", "value"}:
        raise Malformed('signature must be {"alg", "key_id", "value"}')
    if signature["alg"] != ALGORITHM:
        raise Malformed(f"signature alg {signature['alg']!r} is not {ALGORITHM}")
    if not isinstance(signature["key_id"], str) or not _KEY_ID.fullmatch(signature["key_id"]):
        raise Malformed(f"key_id {signature['key_id']!r} is not 16 lowercase hex digits")
    signature_bytes(signature["value"])
    if not isinstance(certificate, dict) or certificate.get("type") != CERTIFICATE_TYPE:
        raise Malformed(f"certificate type is not {CERTIFICATE_TYPE!r}")
    if certificate.get("version") != CERTIFICATE_VERSION:
        raise Malformed(f"certificate version {certificate.get('version')!r} is not "
                        f"{CERTIFICATE_VERSION} (a newer rig issued it?)")
    try:
        plain(certificate)
    except NotPlain as exc:
        raise Malformed(str(exc)) from None
    return envelope


def signature_bytes(value: Any) -> bytes:
    """The 64 signature bytes from their base64, which must be the one canonical spelling
    (padded, no stray bits): otherwise two texts would carry one signature."""
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 64 or base64.b64encode(raw).decode("ascii") != value:
        raise Malformed("signature value is not the base64 of a 64-byte Ed25519 signature")
    return raw


def check_signature(envelope: dict[str, Any],
                    public_keys: Mapping[str, Ed25519PublicKey]) -> list[Finding]:
    """The key and signature findings for a well-formed envelope."""
    from cryptography.exceptions import InvalidSignature

    wanted = envelope["signature"]["key_id"]
    key = public_keys.get(wanted)
    if key is None:
        held = ", ".join(sorted(public_keys)) or "none"
        return [Finding("key", False, f"signed with key {wanted}, which is not a key we hold "
                                      f"(held: {held}); pass the issuer's public key with --key")]
    if key_id(key) != wanted:
        return [Finding("key", False, f"key id {wanted} does not match the key held for it")]
    found = [Finding("key", True, f"key {wanted}")]
    try:
        key.verify(signature_bytes(envelope["signature"]["value"]),
                   signed_bytes(envelope["certificate"]))
    except InvalidSignature:
        return found + [Finding("signature", False, "the Ed25519 signature does not match the "
                                "certificate: it was changed after signing, or signed by "
                                "another key")]
    return found + [Finding("signature", True, "Ed25519 signature valid")]


def check_record(certificate: dict[str, Any], store: RecordStore) -> list[Finding]:
    """The store findings: the certificate is the one recorded, and the unit's evidence still
    has the digest the certificate pins."""
    try:
        recorded = store.certificates.get(certificate["id"])
    except RecordError as exc:
        return [Finding("record", False, str(exc))]
    if recorded.digest != digest(certificate):
        return [Finding("record", False, f"the store recorded certificate {recorded.id} with "
                                         "other contents (digest differs)")]
    found = [Finding("record", True, f"issued {recorded.issued_at.isoformat()} for unit "
                                     f"{recorded.unit_id} of run {recorded.run_id}")]
    try:
        unit = store.runs.load_unit(recorded.unit_id)
    except RecordError as exc:
        return found + [Finding("evidence-digest", False, str(exc))]
    pinned = certificate["verification"]["evidence_digest"]["value"]
    now = evidence_digest(unit, store.attachments.for_unit(unit.id))
    if now != pinned:
        return found + [Finding("evidence-digest", False,
                                f"unit {unit.id}'s recorded evidence now digests to {now[:16]}…, "
                                f"not {pinned[:16]}… as certified: the record changed")]
    return found + [Finding("evidence-digest", True, f"{len(unit.evidence)} evidence records "
                                                     "match the certified digest")]


def verify_bytes(data: bytes, public_keys: Mapping[str, Ed25519PublicKey],
                 store: RecordStore | None = None) -> VerifyReport:
    """Verify a certificate file's bytes (see the module docstring)."""
    try:
        envelope = parse_envelope(data)
    except Malformed as exc:
        return VerifyReport((Finding("format", False, str(exc)),), None)
    findings = [Finding("format", True, "a certificate envelope")]
    text = canonical(envelope)
    if data not in (text, text + b"\n"):
        findings.append(Finding("canonical-form", False, "the file is not byte for byte the "
                                "canonical form it was issued in (reformatted or edited)"))
    else:
        findings.append(Finding("canonical-form", True, "RFC 8785"))
    findings += check_signature(envelope, public_keys)
    if store is not None and all(f.ok for f in findings):
        findings += check_record(envelope["certificate"], store)
    return VerifyReport(tuple(findings), envelope["certificate"])
