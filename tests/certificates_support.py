"""Shared by the certificate tests: a recorded run built directly in a RecordStore (fast: no
simulated bench), with one passing unit that ran the functional checks, one plain passing unit
and one that failed; and an independent Ed25519 check that uses none of rig's certificate
code."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from records_support import FakeClock

from rig.records import RecordStore
from rig.vocabulary import Fault, FinalState, Grade, Verdict

SERIALS = {"1": "DS-2CD2032-I20240115AAWRE0001", "2": "DS-2CD2386G2-IU20240115AAWRE0002",
           "3": "DS-2CD2320D-I20240115AAWRE0003"}
MACS = {"1": "44:47:cc:00:00:01", "2": "44:47:cc:00:00:02", "3": "44:47:cc:00:00:03"}
MODELS = {"1": "DS-2CD2032-I", "2": "DS-2CD2386G2-IU", "3": "DS-2CD2320D-I"}
BENCH_TOML = """\
[bench]
name = "bench-a"

[certificate]
organisation = "Example Refurb Ltd"
operator = "Bench Default"
destination = "recycling"

[[slots]]
name = "1"
power = { kind = "gpio", pin = 17 }
button = { kind = "gpio", pin = 27 }
"""


def sadp(slot: str, activated: bool) -> dict[str, Any]:
    return {"mac": MACS[slot], "serial": SERIALS[slot], "model": MODELS[slot],
            "firmware": "V5.5.6build 180326", "activated": activated, "http_port": 80,
            "ipv4": "192.168.1.64", "raw": {"Uptime": 2**60}}   # a huge int: digest still works


def check(name: str, outcome: str, details: dict[str, Any], key: bool = True) -> dict[str, Any]:
    return {"check": name, "outcome": outcome, "reason": f"{name} {outcome}", "key": key,
            "details": details}


def _unit(store: RecordStore, run: int, slot: str, *, passed: bool, checks: bool) -> int:
    unit = store.runs.start_unit(run, slot, method="hard", profile="current",
                                 expected_mac=MACS[slot])
    store.runs.add_evidence(unit, "sadp-before", sadp(slot, True))
    with store.runs.step(unit, "verify") as step:
        store.runs.add_evidence(unit, "sadp-after", sadp(slot, not passed), step)
        if checks:
            store.runs.add_evidence(unit, "check", check("device-info", "passed", {
                "model": MODELS[slot], "serial": SERIALS[slot], "firmware": "V5.7.1 build 2301",
                "mac": MACS[slot]}), step)
            evidence = store.runs.add_evidence(unit, "check", check("storage", "passed", {
                "policy": "format", "cards": [{"id": 1, "capacity_mb": 30000}],
                "formatted": [1]}), step)
            store.runs.add_evidence(unit, "check", check("cloud", "passed", {
                "enabled": False, "registered": False, "bound": False}), step)
            store.attachments.add(unit, "snapshot.jpg", "image/jpeg", b"\xff\xd8jpeg",
                                  evidence_id=evidence)
        checks_seen = [{"name": "inactive-sadp", "passed": passed,
                        "detail": f"SADP Activated={'false' if passed else 'true'}"}]
        store.runs.add_evidence(unit, "verdict", {"verdict": "x", "checks": checks_seen}, step)
    if passed:
        store.runs.finish_unit(unit, Verdict.FACTORY_DEFAULT, "inactive-sadp: all passed",
                               Fault.NONE, mac=MACS[slot], serial=SERIALS[slot],
                               final_state=FinalState.FACTORY,
                               grade=Grade.FULLY_FUNCTIONAL if checks else None)
    else:
        store.runs.finish_unit(unit, Verdict.NOT_DEFAULT, "inactive-sadp: SADP Activated=true",
                               check="inactive-sadp", mac=MACS[slot], serial=SERIALS[slot])
    return unit


def recorded_run(db: Path, bench: Path | None = None) -> int:
    """Run 1: slot 1 passed with functional checks, slot 2 passed, slot 3 did not."""
    with RecordStore.open(db, clock=FakeClock()) as store:
        run = store.runs.start_run("bench-a", method="hard", bench_path=bench, argv=["rig"],
                                   operator="A. Operator", destination="resale")
        _unit(store, run, "1", passed=True, checks=True)
        _unit(store, run, "2", passed=True, checks=False)
        _unit(store, run, "3", passed=False, checks=False)
        store.runs.finish_run(run, "failed")
        return run


def independent_verify(envelope_text: str, public_pem: str) -> bool:
    """Ed25519 over the certificate, without rig: the raw 32-byte key cut from the PEM's DER by
    hand, the signed bytes by the standard library's sorted compact JSON."""
    body = "".join(line for line in public_pem.splitlines() if "-----" not in line)
    raw_key = base64.b64decode(body)[-32:]          # SubjectPublicKeyInfo ends with the key
    envelope = json.loads(envelope_text)
    message = json.dumps(envelope["certificate"], sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False).encode("utf-8")
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(
            base64.b64decode(envelope["signature"]["value"]), message)
    except Exception:
        return False
    return True
