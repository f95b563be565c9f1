"""rig's pytest plugin, used as a QA team would: a pytest run of its own (a subprocess) against
a simulated bench, with two faulty units among eight. Their tests fail with the reason; the
others pass; every outcome is recorded beside the unit's reset in rig's records."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from rig.records import RecordStore
from rig.sim.bench import SimBench, SimSlot
from rig.sim.camera import SimFaults

ROOT = Path(__file__).resolve().parent.parent
PASSWORD_ENV = "RIG_TEST_QA_PASSWORD"

QA_TESTS = '''
def test_the_unit_answers_as_itself(rig_unit):
    with rig_unit.isapi() as camera:
        info = camera.device_info(rig_unit.credentials)
    assert info.mac_address == rig_unit.mac
    assert rig_unit.serial and info.serial_number in rig_unit.serial


def test_the_unit_is_activated(rig_unit):
    assert rig_unit.sadp["activated"] in (True, None)   # legacy firmware has no activation
    assert rig_unit.host and rig_unit.host.startswith("127.0.7.")
'''


def _plugin_args() -> list[str]:
    """``-p rig.pytest_plugin`` unless the installed package's entry point loads it already."""
    names = {e.name for e in importlib.metadata.entry_points(group="pytest11")}
    return [] if "rig" in names else ["-p", "rig.pytest_plugin"]


def test_a_qa_run_passes_for_good_units_and_fails_for_the_faulty_ones(tmp_path: Path) -> None:
    spec = [SimSlot("poe", ("current", "legacy", "g5")[i % 3], button="relay") for i in range(8)]
    spec[2] = SimSlot("poe", "current", SimFaults(jammed_button=True), button="relay")
    spec[5] = SimSlot("poe", "g5", SimFaults(refuse_network=True), button="relay")
    with SimBench.start(spec, directory=tmp_path / "bench", time_scale=100, first=100,
                        provision="Used-Unit-77", name="qa") as sim:
        with sim.bench_path.open("a", encoding="utf-8") as bench_file:
            bench_file.write('\n[handover]\npool_start = "127.0.7.101"\n')
        (tmp_path / "test_qa.py").write_text(QA_TESTS, encoding="utf-8")
        env = {**os.environ, PASSWORD_ENV: "Qa-Bench-2026", "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *_plugin_args(),
             "--rig-bench", str(sim.bench_path), "--rig-db", str(tmp_path / "rig.sqlite"),
             "--rig-password-env", PASSWORD_ENV, "--junitxml", str(tmp_path / "qa.xml"),
             "test_qa.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes = {}
    for case in ET.parse(tmp_path / "qa.xml").getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[case.get("name")] = "failed" if failed else "passed"
    for slot in range(1, 9):
        want = "failed" if slot in (3, 6) else "passed"
        for test in ("test_the_unit_answers_as_itself", "test_the_unit_is_activated"):
            assert outcomes[f"{test}[slot-{slot}]"] == want, (slot, test, done.stdout)
    assert "slot 3: the unit was not reset and handed over: not-default" in done.stdout
    assert "slot 6: the unit was not reset and handed over: handover-failed" in done.stdout
    with RecordStore.open(tmp_path / "rig.sqlite") as store:
        units = {u.slot: u for u in store.runs.load_run(1).units}
    results = {slot: [e.data for e in u.evidence if e.kind == "test-result"]
               for slot, u in units.items()}
    assert all(len(r) == 2 for r in results.values()), results
    assert {r["outcome"] for r in results["1"]} == {"passed"}
    assert {r["outcome"] for r in results["3"]} == {"failed"}
    assert "Qa-Bench-2026" not in str(results)


def test_without_a_bench_the_plugin_does_nothing_and_rig_unit_tests_skip(tmp_path: Path) -> None:
    (tmp_path / "test_qa.py").write_text(QA_TESTS, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *_plugin_args(), "test_qa.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and "2 skipped" in done.stdout, done.stdout + done.stderr


def test_a_wrong_bench_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "bench.toml").write_text("[bench]\nname = 3\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *_plugin_args(), "--rig-bench", "bench.toml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 4 and "--rig-bench:" in done.stderr, done.stdout + done.stderr
