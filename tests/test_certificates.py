"""Certificates built from a recorded run: who gets one, what it says, its signature checked
without rig, tampering of every kind refused, the key kept owner-only."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from certificates_support import (
    BENCH_TOML,
    MACS,
    SERIALS,
    independent_verify,
    recorded_run,
)

from rig.bench import BenchError, load_bench
from rig.certificates.canonical import NotPlain, canonical, plain
from rig.certificates.config import CertificateConfig
from rig.certificates.content import Issuer
from rig.certificates.issue import issue
from rig.certificates.keys import BenchKeys, KeyFileError, public_pem
from rig.certificates.signing import envelope_text, key_id
from rig.certificates.verify import verify_bytes
from rig.records import RecordStore
from rig.vocabulary import Destination

ISSUER = Issuer("Example Refurb Ltd", "bench-a",
                CertificateConfig("Example Refurb Ltd", "Bench Default", Destination.RECYCLING))


@pytest.fixture()
def issued(tmp_path: Path):
    """Run 1 recorded and certified: (store path, keys, outcome)."""
    db = tmp_path / "rig.sqlite"
    recorded_run(db)
    keys = BenchKeys(tmp_path / "keys")
    with RecordStore.open(db) as store:
        outcome = issue(store, 1, ISSUER, keys.signing_key())
    return db, keys, outcome


def _verify(data: bytes, keys: BenchKeys, db: Path | None = None):
    if db is None:
        return verify_bytes(data, keys.public_keys())
    with RecordStore.open(db) as store:
        return verify_bytes(data, keys.public_keys(), store)


def test_rfc8785_examples_canonicalise_as_the_rfc_prints_them():
    # RFC 8785 section 3.2.2 (values) and 3.2.3 (key order by UTF-16 code units)
    value = {"numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
             "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"/",
             "literals": [None, True, False]}
    assert canonical(value) == ('{"literals":[null,true,false],"numbers":[333333333.3333333,'
                                '1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\'
                                '\\"/"}').encode()
    keys = {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001F600": 5, "\u0080": 6, "\u00f6": 7}
    order = [k for k in json.loads(canonical(keys))]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001F600", "\ufb33"]


def test_certificates_hold_no_fractional_number():
    with pytest.raises(NotPlain, match=r"certificate\.a\[0\]: float"):
        plain({"a": [1.5]})
    with pytest.raises(NotPlain, match="beyond the exact integer range"):
        plain({"a": 2**60})


def test_only_passing_units_get_a_certificate_and_the_others_say_why(issued):
    db, _, outcome = issued
    assert [i.slot for i in outcome.issued] == ["1", "2"]
    assert [(r.slot, r.reason) for r in outcome.refused] == [
        ("3", "verdict not-default: inactive-sadp: SADP Activated=true")]
    with RecordStore.open(db) as store:
        recorded = store.certificates.for_run(1)
    assert {c.id for c in recorded} == {i.certificate_id for i in outcome.issued}
    assert {c.serial for c in recorded} == {SERIALS["1"], SERIALS["2"]}
    assert all(c.signed == i.text for c, i in zip(
        sorted(recorded, key=lambda c: c.unit_id), outcome.issued, strict=True))


def test_a_certificate_carries_the_appendix_g_fields_from_the_record(issued):
    _, _, outcome = issued
    full, plain_unit = (i.envelope["certificate"] for i in outcome.issued)
    assert full["issuer"] == {"organisation": "Example Refurb Ltd", "bench": "bench-a",
                              "host": full["issuer"]["host"]}
    assert full["operator"] == {"value": "A. Operator", "recorded_with_run": True}
    assert full["destination"] == {"value": "resale", "recorded_with_run": True}
    assert full["device"] == {"manufacturer": "Hikvision", "model": "DS-2CD2032-I",
                              "serial": SERIALS["1"], "mac": MACS["1"],
                              "firmware": "V5.7.1 build 2301",      # deviceInfo beats SADP
                              "sources": ["isapi-deviceInfo", "sadp-after", "sadp-before"]}
    sanitization = full["sanitization"]
    assert sanitization["method"] == "hard"
    assert sanitization["nist_sp_800_88_category"] == "Clear"
    assert "Clear at most" in sanitization["category_note"]
    assert sanitization["storage"]["outcome"] == "formatted"
    assert sanitization["cloud"]["outcome"] == "unbound"
    assert full["functional_grade"] == "fully-functional"
    assert [c["check"] for c in full["verification"]["functional_checks"]] == [
        "device-info", "storage", "cloud"]
    assert full["verification"]["checks"] == [
        {"name": "inactive-sadp", "result": "passed", "detail": "SADP Activated=false"}]
    assert full["verification"]["final_state"] == "factory"
    assert len(full["verification"]["evidence_digest"]["value"]) == 64
    assert full["tool"]["name"] == "rig" and full["run"]["slot"] == "1"
    # the unit without functional checks says so rather than claiming anything
    assert plain_unit["sanitization"]["storage"]["outcome"] == "not-checked"
    assert plain_unit["sanitization"]["cloud"]["outcome"] == "not-checked"
    assert plain_unit["functional_grade"] is None
    assert plain_unit["device"]["firmware"] == "V5.5.6build 180326"     # from SADP


def test_a_run_without_an_operator_takes_the_bench_default_and_says_so(tmp_path):
    db = tmp_path / "rig.sqlite"
    with RecordStore.open(db) as store:
        run = store.runs.start_run("bench-a", method="hard", argv=["rig"])
        unit = store.runs.start_unit(run, "1", method="web-basic")
        store.runs.finish_unit(unit, "factory-default", "ok", mac=MACS["1"])
        other = store.runs.start_unit(run, "2", method="auto")
        store.runs.finish_unit(other, "factory-default", "ok", mac=MACS["2"])
        store.runs.finish_run(run, "passed")
        outcome = issue(store, run, ISSUER, BenchKeys(tmp_path / "k").signing_key())
    assert [(r.slot, r.reason.split(" (")[0]) for r in outcome.refused] == [
        ("1", "method web-basic does not reset the whole configuration")]
    (one,) = outcome.issued
    assert one.envelope["certificate"]["operator"] == {"value": "Bench Default",
                                                       "recorded_with_run": False}
    assert one.envelope["certificate"]["destination"] == {"value": "recycling",
                                                          "recorded_with_run": False}


def test_the_signature_verifies_without_rig_and_with_openssl(issued, tmp_path):
    _, keys, outcome = issued
    pem = public_pem(keys.signing_key().public_key())
    for one in outcome.issued:
        assert independent_verify(one.text, pem)
        assert _verify(one.text.encode(), keys).valid
    # openssl, a second implementation entirely (Ed25519 needs -rawin: OpenSSL 3)
    openssl = __import__("shutil").which("openssl")
    if openssl is None:
        pytest.skip("no openssl")
    import base64
    import subprocess
    envelope = json.loads(outcome.issued[0].text)
    (tmp_path / "pub.pem").write_text(pem)
    (tmp_path / "msg").write_bytes(json.dumps(envelope["certificate"], sort_keys=True,
                                              separators=(",", ":"), ensure_ascii=False).encode())
    (tmp_path / "sig").write_bytes(base64.b64decode(envelope["signature"]["value"]))
    result = subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem",
                             "-rawin", "-in", "msg", "-sigfile", "sig"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    assert "Signature Verified Successfully" in result.stdout, result.stdout + result.stderr


def test_every_one_byte_change_is_refused(issued):
    _, keys, outcome = issued
    data = outcome.issued[0].text.encode()
    assert _verify(data, keys).valid
    for i in range(0, len(data), 5):
        changed = bytearray(data)
        changed[i] ^= 0x01
        report = _verify(bytes(changed), keys)
        assert not report.valid, (i, data[i - 10:i + 10])
        assert report.reason


def _edited(text: str, edit) -> bytes:
    """The envelope with ``edit`` applied, written back in canonical form (a careful forger)."""
    envelope = json.loads(text)
    edit(envelope)
    return envelope_text(envelope).encode()


def test_tampering_with_payload_signature_or_key_id_fails_with_a_reason(issued):
    _, keys, outcome = issued
    text = outcome.issued[0].text

    def payload(e):
        e["certificate"]["device"]["serial"] = SERIALS["3"]

    def signature(e):
        other = outcome.issued[1].envelope["signature"]["value"]
        e["signature"]["value"] = other

    def key(e):
        e["signature"]["key_id"] = "0" * 16

    cases = {payload: "signature: the Ed25519 signature does not match",
             signature: "signature: the Ed25519 signature does not match",
             key: "key: signed with key 0000000000000000, which is not a key we hold"}
    for edit, reason in cases.items():
        report = _verify(_edited(text, edit), keys)
        assert not report.valid and report.reason.startswith(reason), report.reason
    # a copy reformatted for reading still carries a good signature, but is not the document
    pretty = json.dumps(json.loads(text), indent=2).encode()
    report = _verify(pretty, keys)
    assert not report.valid and report.reason.startswith("canonical-form")
    assert [f.name for f in report.findings if f.ok] == ["format", "key", "signature"]


def test_with_the_store_the_evidence_digest_is_recomputed(issued):
    db, keys, outcome = issued
    data = outcome.issued[0].text.encode()
    report = _verify(data, keys, db)
    assert report.valid, report.reason
    assert [f.name for f in report.findings][-2:] == ["record", "evidence-digest"]
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE evidence SET data = json_set(data, '$.activated', 1) WHERE id = "
                     "(SELECT MAX(id) FROM evidence WHERE kind = 'sadp-after' AND unit_id = ?)",
                     (outcome.issued[0].unit_id,))
    conn.close()
    report = _verify(data, keys, db)
    assert not report.valid
    assert report.reason.startswith("evidence-digest: unit 1's recorded evidence now digests")


def test_rotation_keeps_old_certificates_verifiable(issued):
    _, keys, outcome = issued
    old = key_id(keys.signing_key().public_key())
    retired, new = keys.rotate()
    assert retired == old and new != old
    assert _verify(outcome.issued[0].text.encode(), keys).valid
    assert [e.retired_at is not None for e in keys.keyring()] == [True, False]
    assert key_id(keys.signing_key().public_key()) == new


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_others_can_read_is_refused(tmp_path, mode):
    keys = BenchKeys(tmp_path / "keys")
    keys.signing_key()
    assert keys.private_path.stat().st_mode & 0o777 == 0o600
    assert keys.directory.stat().st_mode & 0o777 == 0o700
    os.chmod(keys.private_path, mode)
    with pytest.raises(KeyFileError, match=f"mode {mode:o}.*refusing to sign"):
        keys.signing_key()


def test_the_bench_file_certificate_table_is_checked_and_round_trips(tmp_path):
    from rig.bench import dump

    path = tmp_path / "bench.toml"
    path.write_text(BENCH_TOML)
    bench = load_bench(path)
    assert bench.certificate == CertificateConfig("Example Refurb Ltd", "Bench Default",
                                                  Destination.RECYCLING)
    again = tmp_path / "again.toml"
    again.write_text(dump(bench))
    assert load_bench(again).certificate == bench.certificate
    path.write_text(BENCH_TOML.replace('destination = "recycling"', 'destination = "landfill"'))
    with pytest.raises(BenchError, match="certificate.destination: 'landfill' is not one of"):
        load_bench(path)
    path.write_text(BENCH_TOML.replace('operator =', 'operater ='))
    with pytest.raises(BenchError, match="certificate.operater: unknown key"):
        load_bench(path)


@pytest.mark.parametrize(("outcome", "details", "expected"), [
    ("passed", {"policy": "format", "cards": [{"id": "1"}], "formatted": ["1"]}, "formatted"),
    ("passed", {"policy": "format", "cards": [], "formatted": []}, "absent"),
    ("failed", {"policy": "flag", "cards": [{"id": "1"}], "formatted": []}, "card-present"),
    ("failed", {"policy": "format", "cards": [{"id": "1"}], "formatted": []}, "card-present"),
    ("skipped", {"policy": "ignore", "cards": [], "formatted": []}, "not-checked"),
    ("unknown", {"policy": "format", "cards": [], "formatted": []}, "unknown"),
])
def test_the_storage_outcome_follows_the_storage_check(outcome, details, expected):
    from rig.certificates.content import storage

    data = {"check": "storage", "outcome": outcome, "reason": "r", "key": False,
            "details": details}
    assert storage({"storage": data})["outcome"] == expected
    assert storage({})["outcome"] == "not-checked"


@pytest.mark.parametrize(("outcome", "details", "expected"), [
    ("passed", {"enabled": True, "registered": True, "bound": False}, "unbound"),
    ("failed", {"enabled": True, "registered": True, "bound": True}, "bound"),
    ("passed", {"enabled": False, "registered": None, "bound": None}, "off"),
    ("unknown", {"enabled": True, "registered": None, "bound": None}, "unknown"),
    ("skipped", {"enabled": None, "registered": None, "bound": None}, "not-checked"),
])
def test_the_cloud_outcome_follows_the_cloud_check(outcome, details, expected):
    from rig.certificates.content import cloud

    data = {"check": "cloud", "outcome": outcome, "reason": "r", "key": True, "details": details}
    assert cloud({"cloud": data})["outcome"] == expected
