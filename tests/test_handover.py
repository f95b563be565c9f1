"""The hand-over stage on the simulated bench: units proven reset are left provisioned
(activated with the bench's password, proven by SADP and a login) or reset again after."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from rig.bench import BenchError, HandoverConfig, Secret
from rig.records import RecordStore
from rig.report import render
from rig.runner import Runner
from rig.sim.bench import SimBench, SimSlot
from rig.sim.camera import SimFaults
from rig.vocabulary import FinalState, RunStatus, Verdict
from rig.wiring import BenchHardware

SCALE = 100.0
NEW_PASSWORD = "Bench-pass9"


@pytest.fixture
def store(tmp_path):
    with RecordStore.open(tmp_path / "records.sqlite") as s:
        yield s


def run(sim: SimBench, store: RecordStore, final: FinalState, monkeypatch, **kwargs):
    monkeypatch.setenv("RIG_HANDOVER_PW", NEW_PASSWORD)
    bench = dataclasses.replace(sim.bench, handover=HandoverConfig(
        final_state=final, password=Secret(env="RIG_HANDOVER_PW")))
    hardware = BenchHardware(bench, pin_factory=sim.pin_factory)
    try:
        return Runner(bench, store, hardware, argv=["test"], method="hard", **kwargs).run()
    finally:
        hardware.close()


def test_provisioned_units_are_activated_and_proven_by_sadp_and_a_login(tmp_path, store,
                                                                        monkeypatch):
    with SimBench.start([SimSlot("poe", "current"), SimSlot("gpio", "g5"),
                         SimSlot("relay", "legacy"), SimSlot("poe", "current",
                                                             SimFaults(jammed_button=True))],
                        directory=tmp_path, time_scale=SCALE, first=120,
                        provision="Old-pass11") as sim:
        result = run(sim, store, FinalState.PROVISIONED, monkeypatch)
        cameras = sim.cameras
        assert all(cameras[n].password_for("admin") == NEW_PASSWORD for n in ("1", "2", "3"))
        assert cameras["4"].password_for("admin") == "Old-pass11"    # never reset: untouched
    verdicts = {n: r.verdict.verdict for n, r in result.results.items()}
    assert verdicts == {"1": Verdict.PROVISIONED, "2": Verdict.PROVISIONED,
                        "3": Verdict.PROVISIONED, "4": Verdict.NOT_DEFAULT}
    assert result.status is RunStatus.FAILED
    record = store.runs.load_run(result.run_id)
    units = {u.slot: u for u in record.units}
    assert {n: u.final_state for n, u in units.items()} == {
        "1": FinalState.PROVISIONED, "2": FinalState.PROVISIONED, "3": FinalState.PROVISIONED,
        "4": None}
    steps = [s.name for s in units["1"].steps]
    assert steps[-3:] == ["verify", "activate", "confirm hand-over"]
    proof = next(e.data for e in units["1"].evidence if e.kind == "handover")
    assert proof["sadp"]["activated"] is True and proof["login"]["ok"] is True
    assert NEW_PASSWORD not in str([e.data for u in record.units for e in u.evidence])
    rows = list(csv.DictReader(io.StringIO(render(record, "csv"))))
    assert [r["final_state"] for r in rows] == ["provisioned"] * 3 + [""]
    assert "<td>provisioned</td>" in render(record, "html")
    checks = [c.name for c in result.results["3"].verdict.checks]     # legacy: no Activated
    assert "activated-sadp" not in checks and "new-password-login" in checks
    assert "activated-sadp" in [c.name for c in result.results["1"].verdict.checks]


def test_factory_after_checks_activates_then_resets_again(tmp_path, store, monkeypatch):
    with SimBench.start([SimSlot("poe", "current"), SimSlot("gpio", "legacy")],
                        directory=tmp_path, time_scale=SCALE, first=130) as sim:
        result = run(sim, store, FinalState.FACTORY_AFTER_CHECKS, monkeypatch)
        assert not sim.cameras["1"].activated
        assert sim.cameras["2"].password_for("admin") == "12345"
    assert {r.verdict.verdict for r in result.results.values()} == {Verdict.FACTORY_DEFAULT}
    assert {r.final_state for r in result.results.values()} == {
        FinalState.FACTORY_AFTER_CHECKS}
    unit = next(u for u in store.runs.load_run(result.run_id).units if u.slot == "1")
    names = [s.name for s in unit.steps]
    assert names.count("press") == 2 and names.count("verify") == 2
    assert names.index("activate") < names.index("confirm hand-over") < len(names) - 1


def test_a_weak_or_missing_handover_password_stops_the_run_before_anything_moves(
        tmp_path, store, monkeypatch):
    with SimBench.start([SimSlot("poe", "current")], directory=tmp_path, time_scale=SCALE,
                        first=134) as sim:
        monkeypatch.setenv("RIG_HANDOVER_PW", "short")
        bench = dataclasses.replace(sim.bench, handover=HandoverConfig(
            final_state=FinalState.PROVISIONED, password=Secret(env="RIG_HANDOVER_PW")))
        with pytest.raises(BenchError, match="RIG_HANDOVER_PW must be 8 to 16") as caught:
            Runner(bench, store, BenchHardware(bench, pin_factory=sim.pin_factory))
        assert "short" not in str(caught.value)
        monkeypatch.delenv("RIG_HANDOVER_PW")
        with pytest.raises(BenchError, match="RIG_HANDOVER_PW is not set"):
            Runner(bench, store, BenchHardware(bench, pin_factory=sim.pin_factory))
    assert store.runs.history() == []


def test_kill_9_during_the_hand_over_leaves_the_unit_recorded_in_its_step(tmp_path,
                                                                           monkeypatch):
    import os
    import signal
    import subprocess
    import sys

    db = str(tmp_path / "records.sqlite")
    with SimBench.start([SimSlot("poe", "current"), SimSlot("poe", "g5")], directory=tmp_path,
                        time_scale=50.0, first=136) as sim:
        text = sim.bench_path.read_text(encoding="utf-8")
        sim.bench_path.write_text(text + '\n[handover]\nfinal_state = "provisioned"\n'
                                  'password_env = "RIG_HANDOVER_PW"\n', encoding="utf-8")
        env = dict(os.environ, PYTHONUNBUFFERED="1", RIG_HANDOVER_PW=NEW_PASSWORD)
        proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "run", str(sim.bench_path),
                                 "--method", "hard", "--db", db], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        try:
            seen = []
            for line in proc.stdout:
                seen.append(line)
                if "activate" in line:
                    break
            assert any("activate" in line for line in seen), seen
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            proc.kill()
        rerun = subprocess.run([sys.executable, "-m", "rig.cli", "run", str(sim.bench_path),
                                "--method", "poe-cycle", "--db", db, "--quiet"],
                               capture_output=True, text=True, timeout=120, env=env)
        assert "interrupted" in rerun.stdout + rerun.stderr, rerun.stdout + rerun.stderr
    with RecordStore.open(db) as store:
        first = store.runs.load_run(1)
        assert first.run.status is RunStatus.INTERRUPTED
        cut = [u for u in first.units if u.verdict is Verdict.INTERRUPTED]
        assert cut and all(u.final_state is None for u in cut)
        assert any("activate" in u.reason or "confirm hand-over" in u.reason for u in cut), [
            u.reason for u in first.units]
        assert store.outputs.open() == []


def test_provisioned_units_get_their_pool_address_by_mac(tmp_path, store, monkeypatch):
    monkeypatch.setenv("RIG_HANDOVER_PW", NEW_PASSWORD)
    with SimBench.start([SimSlot("poe", "current"), SimSlot("gpio", "g5"),
                         SimSlot("relay", "legacy")], directory=tmp_path, time_scale=SCALE,
                        first=140) as sim:
        bench = dataclasses.replace(sim.bench, handover=HandoverConfig(
            final_state=FinalState.PROVISIONED, password=Secret(env="RIG_HANDOVER_PW"),
            pool_start="127.0.5.10", gateway="127.0.5.1"))
        hardware = BenchHardware(bench, pin_factory=sim.pin_factory)
        try:
            result = Runner(bench, store, hardware, argv=["test"], method="hard").run()
        finally:
            hardware.close()
        addresses = {n: c.settings.ipv4 for n, c in sim.cameras.items()}
    assert {n: r.verdict.verdict for n, r in result.results.items()} == {
        n: Verdict.PROVISIONED for n in ("1", "2", "3")}, result.results
    assert addresses == {"1": "127.0.5.10", "2": "127.0.5.11", "3": "127.0.5.12"}
    units = store.runs.load_run(result.run_id).units
    network = {u.slot: next(e.data for e in u.evidence if e.kind == "network") for u in units}
    assert all(n["ok"] and n["outcome"] == "confirmed" for n in network.values())
    assert network["3"]["method"] == "isapi" and network["1"]["method"] == "sadp-update"
    assert NEW_PASSWORD not in str(network)
    assert all("network" in [c.name for c in r.verdict.checks] for r in result.results.values())


def test_a_unit_that_refuses_its_new_address_fails_the_hand_over_with_the_reason(
        tmp_path, store, monkeypatch):
    monkeypatch.setenv("RIG_HANDOVER_PW", NEW_PASSWORD)
    with SimBench.start([SimSlot("poe", "current"),
                         SimSlot("gpio", "current", SimFaults(refuse_network=True))],
                        directory=tmp_path, time_scale=SCALE, first=150) as sim:
        bench = dataclasses.replace(sim.bench, handover=HandoverConfig(
            final_state=FinalState.PROVISIONED, password=Secret(env="RIG_HANDOVER_PW"),
            pool_start="127.0.5.30"))
        hardware = BenchHardware(bench, pin_factory=sim.pin_factory)
        try:
            result = Runner(bench, store, hardware, argv=["test"], method="hard").run()
        finally:
            hardware.close()
        addresses = {n: c.settings.ipv4 for n, c in sim.cameras.items()}
        kept = sim.cameras["2"].address
    verdicts = {n: r.verdict for n, r in result.results.items()}
    assert verdicts["1"].verdict is Verdict.PROVISIONED
    assert verdicts["2"].verdict is Verdict.HANDOVER_FAILED, verdicts["2"]
    assert verdicts["2"].check == "network" and "127.0.5.31" in verdicts["2"].reason
    assert addresses["1"] == "127.0.5.30" and addresses["2"] == kept   # nothing half-applied
    unit = next(u for u in store.runs.load_run(result.run_id).units if u.slot == "2")
    assert unit.final_state is None
    step = next(s for s in unit.steps if s.name == "network")
    assert step.outcome.value == "failed" and step.detail
    network = next(e.data for e in unit.evidence if e.kind == "network")
    assert not network["ok"] and NEW_PASSWORD not in str(network)
