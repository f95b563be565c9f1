"""rig doctor on simulated benches: all ok on a demo-like bench; exactly the injected faults
(wrong SNMP key, unplugged relay board, missing unit) named as fail; each SNMPv3 refusal named
for what it is; JSON for scripts; never a secret in the output; nothing switched."""

from __future__ import annotations

import argparse
import io
import json
import secrets

import pytest

from rig.commands.doctor import doctor
from rig.doctor.clock import ClockReading
from rig.records import RecordStore
from rig.sim.bench import SimBench, SimSlot
from rig.sim.bench_plan import SNMP_V3_ENV
from rig.sim.camera import SimFaults
from rig.sim.switch import V3User
from rig.vocabulary import PowerKind

BASE = "127.0.58."
MAC_BLOCK = 0x10 + secrets.randbelow(0xE0)
V3 = V3User("rig", "doctor-auth-key-1", "doctor-priv-key-1")
AUTH_ENV, PRIV_ENV = SNMP_V3_ENV
_GPIO, _POE, _RELAY = PowerKind.GPIO, PowerKind.POE, PowerKind.RELAY
#: The demo's shape (rig/commands/demo.py), plus a relay-powered slot: every kind of part.
DEMO_LIKE = ((_GPIO, "current"), (_POE, "legacy"), (_GPIO, "g5"), (_POE, "current"),
             (_RELAY, "current"))


def synchronised() -> ClockReading:
    return ClockReading(True, "test clock")


def run_doctor(sim: SimBench, tmp_path, *, as_json: bool = False) -> tuple[int, str]:
    """The command in-process with the simulator's pin factory, as BenchHardware takes it."""
    args = argparse.Namespace(bench=str(sim.bench_path), json=as_json,
                              db=str(tmp_path / "rig.sqlite"), sadp_timeout=1.5)
    out = io.StringIO()
    code = doctor(args, pin_factory=sim.pin_factory, clock_source=synchronised, out=out)
    return code, out.getvalue()


def start(tmp_path, first: int, spec, **kwargs) -> SimBench:
    return SimBench.start([SimSlot(p, prof, f) for p, prof, f in spec], directory=tmp_path,
                          time_scale=50, base=BASE, first=first, mac_block=MAC_BLOCK,
                          snmp_v3=V3, **kwargs)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    spec = [(p, prof, SimFaults()) for p, prof in DEMO_LIKE]
    with start(tmp_path_factory.mktemp("doctor-demo"), 10, spec) as sim:
        yield sim


@pytest.fixture
def keys(demo, monkeypatch):
    for name, value in demo.environment().items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def failing(findings: list[dict]) -> list[str]:
    return sorted(f["name"] for f in findings if f["level"] == "fail")


def test_demo_like_bench_is_all_ok_and_nothing_moves(demo, keys, tmp_path):
    RecordStore(tmp_path / "rig.sqlite").close()      # an existing, empty store
    switch_sets = demo.switch.stats.set_pdus
    frames = len(demo.relay_board.frames)
    code, text = run_doctor(demo, tmp_path)
    assert code == 0, text
    assert text.rstrip().endswith("all ok"), text
    assert "WARN" not in text and "FAIL" not in text, text
    for area in ("network", "records", "switch", "relay", "gpio", "units", "clock"):
        assert f"\n{area}\n" in text, f"no {area} section:\n{text}"
    assert demo.switch.stats.set_pdus == switch_sets, "doctor sent an SNMP SET"
    sent = demo.relay_board.frames[frames:]
    assert sent and all(f.startswith(b"relay read ") for f in sent), sent
    assert all(c.powered for c in demo.cameras.values())


def test_json_shape(demo, keys, tmp_path):
    code, text = run_doctor(demo, tmp_path, as_json=True)
    document = json.loads(text)
    assert code == 0
    assert set(document) == {"bench", "path", "level", "counts", "findings"}
    assert document["level"] == "ok"
    assert set(document["counts"]) == {"ok", "warn", "fail"}
    assert document["counts"]["ok"] == len(document["findings"])
    for finding in document["findings"]:
        assert set(finding) == {"area", "name", "level", "message", "fix"}
    assert {f["area"] for f in document["findings"]} == {
        "network", "records", "switch", "relay", "gpio", "units", "clock"}


@pytest.mark.parametrize(("env", "value", "words"), [
    ("user", None, "unknown SNMPv3 user (usmStatsUnknownUserNames)"),
    (AUTH_ENV, "not-the-auth-key", "wrong auth key (usmStatsWrongDigests)"),
    (PRIV_ENV, "not-the-priv-key", "wrong privacy key (usmStatsDecryptionErrors)"),
])
def test_each_snmpv3_refusal_is_named(demo, keys, tmp_path, env, value, words):
    bench_path = demo.bench_path
    if env == "user":
        text = bench_path.read_text()
        bench_path = tmp_path / "bench.toml"
        bench_path.write_text(text.replace('user = "rig"', 'user = "nobody"'))
    else:
        keys.setenv(env, value)
    args = argparse.Namespace(bench=str(bench_path), json=True, db=str(tmp_path / "r.sqlite"),
                              sadp_timeout=1.0)
    out = io.StringIO()
    assert doctor(args, pin_factory=demo.pin_factory, clock_source=synchronised, out=out) == 1
    findings = json.loads(out.getvalue())["findings"]
    assert failing(findings) == ["switch sim"]
    (switch,) = [f for f in findings if f["name"] == "switch sim"]
    assert words in switch["message"], switch
    others = [m for _, m in USM_WORDS if m not in words]
    assert not any(m in switch["message"] for m in others)
    for secret in (V3.auth_key, V3.priv_key, "not-the-auth-key", "not-the-priv-key"):
        assert secret not in out.getvalue()


USM_WORDS = [("user", "unknown SNMPv3 user"), ("auth", "wrong auth key"),
             ("priv", "wrong privacy key")]


def test_wrong_key_unplugged_board_and_missing_unit_are_exactly_the_fails(tmp_path,
                                                                          monkeypatch):
    spec = [(_GPIO, "current", SimFaults(sadp_silent=True)),
            (_POE, "g5", SimFaults()), (_RELAY, "legacy", SimFaults())]
    with start(tmp_path, 30, spec) as sim:
        monkeypatch.setenv(AUTH_ENV, "a-key-the-switch-never-had")
        monkeypatch.setenv(PRIV_ENV, V3.priv_key)
        sim.relay_board.unplug()
        code, text = run_doctor(sim, tmp_path, as_json=True)
        unit_one = sim.slots["1"]
        mac = sim.cameras["1"].mac
    assert code == 1
    findings = json.loads(text)["findings"]
    assert failing(findings) == ["relay board sim", "slot 1", "switch sim"], text
    by_name = {f["name"]: f for f in findings}
    assert "wrong auth key" in by_name["switch sim"]["message"]
    assert "RIG_SIM_SNMP_AUTH_KEY" in by_name["switch sim"]["fix"]
    assert "missing" in by_name["relay board sim"]["message"]
    assert mac in by_name["slot 1"]["message"] and "did not answer SADP" in \
        by_name["slot 1"]["message"]
    assert unit_one.faults.sadp_silent
    assert all(f["fix"] for f in findings if f["level"] != "ok")
    assert "a-key-the-switch-never-had" not in text and V3.priv_key not in text
