"""Batches end to end on the simulated bench: every procedure, faults, identity, records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from process_support import guardians_of

from rig.camera.isapi_types import Credentials
from rig.cli import main
from rig.records import RecordStore
from rig.runner import Runner
from rig.sim.bench import SimBench, SimSlot
from rig.sim.camera import CameraState, SimFaults
from rig.vocabulary import RunStatus, Verdict
from rig.wiring import BenchHardware

SCALE = 100.0
PASSWORD = "Secret123!"
MIXED = [SimSlot("gpio", "current"), SimSlot("poe", "legacy"), SimSlot("relay", "g5"),
         SimSlot("gpio", "g5"), SimSlot("poe", "current"), SimSlot("relay", "legacy")]


@pytest.fixture
def store(tmp_path):
    with RecordStore.open(tmp_path / "records.sqlite") as s:
        yield s


def run(sim: SimBench, store: RecordStore, **kwargs):
    hardware = BenchHardware(sim.bench, pin_factory=sim.pin_factory)
    try:
        return Runner(sim.bench, store, hardware, argv=["test"], **kwargs).run()
    finally:
        hardware.close()


def verdicts(result) -> dict[str, Verdict]:
    return {name: r.verdict.verdict for name, r in result.results.items()}


def test_hard_reset_of_a_mixed_bench_fails_exactly_the_jammed_unit(tmp_path, store):
    spec = list(MIXED)
    spec[2] = SimSlot("relay", "g5", SimFaults(jammed_button=True))
    with SimBench.start(spec, directory=tmp_path, time_scale=SCALE, first=150,
                        provision=PASSWORD) as sim:
        result = run(sim, store, method="hard")
        assert verdicts(result) == {"1": Verdict.FACTORY_DEFAULT, "2": Verdict.FACTORY_DEFAULT,
                                    "3": Verdict.NOT_DEFAULT, "4": Verdict.FACTORY_DEFAULT,
                                    "5": Verdict.FACTORY_DEFAULT, "6": Verdict.FACTORY_DEFAULT}
        jammed = result.results["3"]
        assert jammed.verdict.check == "inactive-sadp" and jammed.mac == sim.cameras["3"].mac
        assert result.status is RunStatus.FAILED
        assert not sim.cameras["1"].activated and sim.cameras["3"].activated
        assert sim.cameras["2"].password_for("admin") == "12345"
    record = store.runs.load_run(result.run_id)
    assert record.run.status == "failed"
    steps = [s.name for s in next(u for u in record.units if u.slot == "1").steps]
    assert steps == ["power off", "settle", "press", "power on", "hold", "release",
                     "wait for boot", "verify"]
    kinds = {e.kind for u in record.units for e in u.evidence}
    assert {"sadp-before", "sadp-after", "http", "verdict"} <= kinds
    assert store.outputs.open() == []          # every output the run engaged is back at rest


def test_poe_cycle_is_a_reboot_not_a_reset(tmp_path, store):
    with SimBench.start([SimSlot("poe", "current"), SimSlot("relay", "legacy")],
                        directory=tmp_path, time_scale=SCALE, first=160,
                        provision=PASSWORD) as sim:
        result = run(sim, store, method="poe-cycle")
    assert verdicts(result) == {"1": Verdict.NOT_DEFAULT, "2": Verdict.NOT_DEFAULT}
    assert result.results["2"].verdict.check == "default-credentials"


def test_web_full_resets_every_family_over_isapi(tmp_path, store):
    with SimBench.start([SimSlot("poe", "current"), SimSlot("poe", "g5"),
                         SimSlot("relay", "legacy")], directory=tmp_path, time_scale=SCALE,
                        first=165, provision=PASSWORD) as sim:
        result = run(sim, store, method="web-full", credentials=Credentials("admin", PASSWORD))
        assert all(not c.activated for n, c in sim.cameras.items() if n != "3")
    assert set(verdicts(result).values()) == {Verdict.FACTORY_DEFAULT}, result.results
    steps = [s.name for s in store.runs.load_run(result.run_id).units[0].steps]
    assert "factoryReset full" in steps and "reboot" in steps   # current answers rebootRequired


def test_web_basic_keeps_network_and_users(tmp_path, store):
    with SimBench.start([SimSlot("poe", "current"), SimSlot("poe", "g5")],
                        directory=tmp_path, time_scale=SCALE, first=170,
                        provision=PASSWORD) as sim:
        result = run(sim, store, method="web-basic", credentials=Credentials("admin", PASSWORD))
        assert all(c.activated and c.settings.device_name == "IP CAMERA"
                   for c in sim.cameras.values())
    assert set(verdicts(result).values()) == {Verdict.FACTORY_DEFAULT}, result.results


def test_web_method_without_credentials_is_a_bench_fault(tmp_path, store):
    with SimBench.start([SimSlot("poe", "current")], directory=tmp_path, time_scale=SCALE,
                        first=172, provision=PASSWORD) as sim:
        result = run(sim, store, method="web-full")
    assert verdicts(result) == {"1": Verdict.BENCH_FAULT}
    assert "needs the admin password" in result.results["1"].verdict.reason


def test_a_slot_with_repeated_bench_faults_is_taken_out_of_service_and_skipped(tmp_path,
                                                                              store):
    with SimBench.start([SimSlot("poe", "current"), SimSlot("poe", "current")],
                        directory=tmp_path, time_scale=SCALE, first=174) as sim:
        for _ in range(3):                        # web-full without a password: bench faults
            result = run(sim, store, method="web-full", slots=["1"])
            assert verdicts(result) == {"1": Verdict.BENCH_FAULT}
        assert [s.slot for s in store.slots.out_of_service(sim.bench.name)] == ["1"]
        result = run(sim, store, method="poe-cycle")
    assert verdicts(result) == {"1": Verdict.OUT_OF_SERVICE, "2": Verdict.FACTORY_DEFAULT}
    steps = {u.slot: [s.name for s in u.steps] for u in store.runs.load_run(result.run_id).units}
    assert steps["1"] == [] and "power off" in steps["2"]     # slot 1's hands never moved


def test_auto_uses_the_web_when_the_password_works_and_the_button_when_not(tmp_path, store):
    with SimBench.start([SimSlot("poe", "current"), SimSlot("gpio", "g5")],
                        directory=tmp_path, time_scale=SCALE, first=174,
                        provision=PASSWORD) as sim:
        good = run(sim, store, method="auto", credentials=Credentials("admin", PASSWORD))
        assert set(verdicts(good).values()) == {Verdict.FACTORY_DEFAULT}
        names = [s.name for s in store.runs.load_run(good.run_id).units[0].steps]
        assert "factoryReset full" in names and "press" not in names
        for camera in sim.cameras.values():
            camera.provision(PASSWORD)
        bad = run(sim, store, method="auto", credentials=Credentials("admin", "Wrong-pass1"))
        assert set(verdicts(bad).values()) == {Verdict.FACTORY_DEFAULT}
        names = [s.name for s in store.runs.load_run(bad.run_id).units[0].steps]
        assert "press" in names and "factoryReset full" not in names
        assert not any(c.is_locked() for c in sim.cameras.values())


def test_a_unit_that_never_boots_is_unreachable(tmp_path, store):
    spec = [SimSlot("poe", "current"), SimSlot("poe", "current", SimFaults(never_boots=True))]
    with SimBench.start(spec, directory=tmp_path, time_scale=SCALE, first=177,
                        boot=False) as sim:
        assert sim.cameras["1"].wait_running(5)
        sim.cameras["2"].faults = SimFaults()              # it booted before the fault set in
        sim.cameras["2"].set_power(False)
        sim.cameras["2"].set_power(True, booted=True)
        sim.cameras["2"].faults = SimFaults(never_boots=True)
        result = run(sim, store, method="poe-cycle")
        assert sim.cameras["2"].state is CameraState.BOOTING
    assert verdicts(result) == {"1": Verdict.FACTORY_DEFAULT, "2": Verdict.UNREACHABLE}
    assert "never answered SADP" in result.results["2"].verdict.reason


def test_a_unit_whose_sadp_reply_never_comes_is_unreachable(tmp_path, store):
    spec = [SimSlot("poe", "g5"), SimSlot("poe", "g5", SimFaults(sadp_silent=True))]
    with SimBench.start(spec, directory=tmp_path, time_scale=SCALE, first=180) as sim:
        result = run(sim, store, method="hard")
    assert verdicts(result)["2"] is Verdict.UNREACHABLE
    assert verdicts(result)["1"] is Verdict.FACTORY_DEFAULT


def test_identity_is_learned_by_roll_call_when_the_bench_file_has_none(tmp_path, store):
    with SimBench.start([SimSlot("poe", "current"), SimSlot("relay", "g5"),
                         SimSlot("gpio", "legacy")], directory=tmp_path, time_scale=SCALE,
                        first=183, provision=PASSWORD, expected_identity=False) as sim:
        assert sim.bench.slots[0].mac is None
        result = run(sim, store, method="hard")
        assert {n: r.mac for n, r in result.results.items()} == {
            n: c.mac for n, c in sim.cameras.items()}
    assert set(verdicts(result).values()) == {Verdict.FACTORY_DEFAULT}
    assert all("roll call" in " ".join(r.notes) for r in result.results.values()), {
        n: r.notes for n, r in result.results.items()}
    stored = {u.slot: u.reason for u in store.runs.load_run(result.run_id).units}
    assert "identity learned by power-off roll call" in stored["3"]


def test_rig_run_cli_prints_verdicts_and_exits_by_result(tmp_path, capsys):
    # Relay slots: the CLI opens its own drivers, and a relay board on a pty (unlike mock GPIO
    # pins) can be driven from outside the simulator's objects.
    spec = [SimSlot("relay", "current"), SimSlot("relay", "g5", SimFaults(jammed_button=True))]
    db = str(tmp_path / "records.sqlite")
    with SimBench.start(spec, directory=tmp_path, time_scale=SCALE, first=186,
                        provision=PASSWORD) as sim:
        assert main(["run", str(sim.bench_path), "--method", "hard", "--db", db]) == 1
        out = capsys.readouterr().out
        assert "FACTORY-DEFAULT" in out and "NOT-DEFAULT" in out and "inactive-sadp" in out
        assert main(["run", str(sim.bench_path), "--slots", "1", "--method", "poe-cycle",
                     "--db", db, "--json"]) == 0          # already reset: a reboot keeps it so
        assert json.loads(capsys.readouterr().out)["units"][0]["verdict"] == "factory-default"
        assert main(["run", str(sim.bench_path), "--slots", "2", "--method", "poe-cycle",
                     "--db", db, "--json"]) == 1


def test_rig_run_refuses_a_wrong_bench_file(tmp_path, capsys):
    bad = tmp_path / "bench.toml"
    bad.write_text("[[slots]]\nname = 1\npower = { kind = 'gpio', pin = 99 }\n", "utf-8")
    assert main(["run", str(bad), "--db", str(tmp_path / "r.sqlite")]) == 2
    assert "slots[0].power.pin: 99 is out of range" in capsys.readouterr().err


def test_kill_9_mid_run_then_restart_recovers_and_leaves_nothing_energised(tmp_path):
    spec = [SimSlot("relay", "current"), SimSlot("relay", "g5")]
    db = str(tmp_path / "records.sqlite")
    with SimBench.start(spec, directory=tmp_path, time_scale=25.0, first=190,
                        provision=PASSWORD) as sim:
        board = sim.relay_board
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "run", str(sim.bench_path),
                                 "--method", "hard", "--db", db], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        try:
            seen = []
            for line in proc.stdout:
                seen.append(line)
                if "slot 1" in line and "hold" in line:
                    break
            assert any("hold" in line for line in seen), seen
            # Power lost, or both killed: the guardian first, else it would release the coil
            # (tests/test_guardian.py), then rig run. Only recovery is left to act.
            for guardian in guardians_of(proc.pid):
                os.kill(guardian, signal.SIGKILL)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            proc.kill()
        assert board.state(2) is True                       # the solenoid is left energised
        rerun = subprocess.run([sys.executable, "-m", "rig.cli", "run", str(sim.bench_path),
                                "--method", "poe-cycle", "--db", db, "--quiet"],
                               capture_output=True, text=True, timeout=120, env=env)
        assert "made safe" in rerun.stdout or "made safe" in rerun.stderr, rerun.stdout
        assert board.state(2) is False and board.state(4) is False   # released by recovery
    with RecordStore.open(db) as store:
        first = store.runs.load_run(1)
        assert first.run.status == "interrupted"
        unit = next(u for u in first.units if u.slot == "1")
        assert unit.verdict == "interrupted" and "hold" in unit.reason
        assert store.outputs.open() == []


def test_a_tight_poe_budget_lets_one_unit_boot_at_a_time(tmp_path, store):
    with SimBench.start([SimSlot("poe", "current"), SimSlot("poe", "g5")], directory=tmp_path,
                        time_scale=SCALE, first=194, provision=PASSWORD) as sim:
        text = sim.bench_path.read_text(encoding="utf-8")
        sim.bench_path.write_text(text.replace('[switches.sim]', '[switches.sim]\n'
                                               'power_budget_watts = 20'), encoding="utf-8")
        from rig.bench import load_bench
        bench = load_bench(sim.bench_path)
        assert bench.switches["sim"].boots_at_once == 1
        assert "exceeds its 20 W budget" in bench.warnings()[0]
        hardware = BenchHardware(bench, pin_factory=sim.pin_factory)
        try:
            result = Runner(bench, store, hardware, method="hard", argv=["test"]).run()
        finally:
            hardware.close()
    assert set(verdicts(result).values()) == {Verdict.FACTORY_DEFAULT}
    record = store.runs.load_run(result.run_id)
    units = record.units
    spans = sorted((next(s for s in u.steps if s.name == "power on").started_at,
                    next(s for s in u.steps if s.name == "wait for boot").finished_at)
                   for u in units)
    assert spans[1][0] >= spans[0][1]        # the second power-on waited for the first boot
    coils = sorted(e.since for e in record.outputs if e.kind == "solenoid-on")
    assert len(coils) == 2 and coils[1] >= spans[0][1], "its coil only went in after the wait"


def test_http_that_comes_up_after_sadp_is_waited_for_without_spending_logins(tmp_path, store,
                                                                            monkeypatch):
    from rig.sim import isapi_server

    original = isapi_server._Handler._dispatch
    calls = {"n": 0}

    def slow_web_server(handler, method):           # the first two requests find it not up
        calls["n"] += 1
        if calls["n"] <= 2:
            handler.close_connection = True
            return None
        return original(handler, method)

    with SimBench.start([SimSlot("poe", "legacy")], directory=tmp_path, time_scale=SCALE,
                        first=197, provision=PASSWORD) as sim:
        monkeypatch.setattr(isapi_server._Handler, "_dispatch", slow_web_server)
        result = run(sim, store, method="poe-cycle")
        assert not sim.cameras["1"].is_locked()
    assert verdicts(result) == {"1": Verdict.NOT_DEFAULT}        # admin/12345 was changed
    records = [e.data for u in store.runs.load_run(result.run_id).units
               for e in u.evidence if e.kind == "http"]
    assert [r["attempt"] for r in records] == [1, 2, 3]
    # facts at the top, the judge's reading of them beside, under "finding"
    assert [r["activate_error"]["failure"] if r["activate_error"] else None
            for r in records] == ["no-reply", "no-reply", None]
    assert [r["finding"]["state"] for r in records] == ["unreachable", "unreachable", "activated"]
    assert records[-1]["login"] == "admin/12345" and records[-1]["login_attempts"] == 1
    assert records[-1]["finding"]["verdict"].startswith("NOT DEFAULT: activated; admin/12345")


def test_rig_run_takes_the_bench_from_rig_bench_and_says_when_there_is_none(monkeypatch, capsys,
                                                                             tmp_path):
    from rig import cli
    monkeypatch.delenv("RIG_BENCH", raising=False)
    assert cli.main(["run", "--db", str(tmp_path / "r.sqlite")]) == 2
    assert "give a bench file (or set RIG_BENCH)" in capsys.readouterr().err
    monkeypatch.setenv("RIG_BENCH", str(tmp_path / "missing.toml"))
    assert cli.main(["run", "--db", str(tmp_path / "r.sqlite")]) == 2
    assert "missing.toml: no such bench file" in capsys.readouterr().err


def test_a_slot_whose_record_cannot_be_finished_fails_the_run(tmp_path, store, monkeypatch):
    """A worker that dies after its verdict (here: writing it) must not leave a PASSED run."""
    original = Runner._finish

    def flaky(self, unit_id, slot, *args, **kwargs):
        if slot == "2":
            raise OSError("disk full")
        return original(self, unit_id, slot, *args, **kwargs)

    monkeypatch.setattr(Runner, "_finish", flaky)
    with SimBench.start([SimSlot("poe", "current"), SimSlot("poe", "current")],
                        directory=tmp_path, time_scale=SCALE, first=201) as sim:
        result = run(sim, store, method="poe-cycle")
    assert result.status is RunStatus.FAILED
    assert set(result.results) == {"1"} and result.results["1"].verdict.passed


def test_a_press_cut_short_by_its_watchdog_is_a_bench_fault(tmp_path, store, monkeypatch):
    """Power-on that comes after the solenoid's watchdog released it: the unit may not have
    seen the button, which is the bench's doing, not the unit's."""
    import rig.procedures
    from rig.actuators.poe import PoePort
    monkeypatch.setattr(rig.procedures, "PRESS_SLACK_S", 0.0)
    slow_on = PoePort.on

    def late(self):
        time.sleep(0.6)                  # past the whole scaled press (0.32 s at scale 100)
        slow_on(self)

    monkeypatch.setattr(PoePort, "on", late)
    with SimBench.start([SimSlot("poe", "current", button="relay")], directory=tmp_path,
                        time_scale=SCALE, first=203, provision=PASSWORD) as sim:
        result = run(sim, store, method="hard")
        board = sim.relay_board
        assert board is not None and not any(board.states.values()), "every coil released"
        assert not sim.cameras["1"].button_pressed
    verdict = result.results["1"].verdict
    assert verdict.verdict is Verdict.BENCH_FAULT, verdict.reason
    assert "watchdog released the button before the" in verdict.reason


def test_web_reset_follows_the_advice_bench_password_env(tmp_path, monkeypatch, capsys):
    """The web methods' bench fault says "give --password-env or [defaults] password_env in the
    bench file": the bench file's way, end to end through ``rig run``."""
    import dataclasses

    from rig.bench import Secret, dump

    spec = [SimSlot("relay", "current"), SimSlot("relay", "g5")]     # the CLI drives a pty
    db = str(tmp_path / "records.sqlite")
    monkeypatch.delenv("RIG_TEST_WEB_PASSWORD", raising=False)
    with SimBench.start(spec, directory=tmp_path, time_scale=SCALE, first=206,
                        provision=PASSWORD) as sim:
        bench = dataclasses.replace(sim.bench, password=Secret(env="RIG_TEST_WEB_PASSWORD"))
        sim.bench_path.write_text(dump(bench), encoding="utf-8")
        assert main(["run", str(sim.bench_path), "--method", "web-basic", "--db", db]) == 2
        err = capsys.readouterr().err
        assert "environment variable RIG_TEST_WEB_PASSWORD is not set" in err, err
        assert "defaults.password_env" in err
        monkeypatch.setenv("RIG_TEST_WEB_PASSWORD", PASSWORD)
        assert main(["run", str(sim.bench_path), "--method", "web-basic", "--db", db,
                     "--json"]) == 0
        units = json.loads(capsys.readouterr().out)["units"]
        assert [u["verdict"] for u in units] == ["factory-default", "factory-default"]
        assert all(c.activated and c.settings.device_name == "IP CAMERA"
                   for c in sim.cameras.values())


def test_password_env_on_the_command_line_wins_over_the_bench_file(tmp_path, monkeypatch):
    import argparse
    import dataclasses

    from rig.bench import Secret
    from rig.commands.run import web_credentials

    with SimBench.start([SimSlot("poe", "current")], directory=tmp_path, time_scale=SCALE,
                        first=208, boot=False) as sim:
        bench = dataclasses.replace(sim.bench, password=Secret(env="RIG_TEST_BENCH_PW"))
    monkeypatch.delenv("RIG_TEST_BENCH_PW", raising=False)
    monkeypatch.setenv("RIG_TEST_FLAG_PW", "from-the-flag")
    args = argparse.Namespace(user="admin", password_env="RIG_TEST_FLAG_PW")
    assert web_credentials(args, bench) == Credentials("admin", "from-the-flag")
    monkeypatch.setenv("RIG_TEST_BENCH_PW", "from-the-bench")
    args.password_env = None
    assert web_credentials(args, bench) == Credentials("admin", "from-the-bench")
    assert web_credentials(args, dataclasses.replace(bench, password=None)) is None
