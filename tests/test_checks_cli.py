"""``rig qa`` against simulated cameras on loopback: the checks on one unit by address or by
bench slot, printed as a table or JSON, recorded as a manual run with the unit's grade; the
password only from the environment, never shown."""

from __future__ import annotations

import json

import pytest

from rig.cli import main
from rig.records import RecordStore
from rig.sim.camera import SimFaults
from rig.sim.fleet import CameraFleet
from rig.sim.media import MediaConfig
from rig.vocabulary import Grade, RunStatus, Verdict

PASSWORD = "Qa-pass1234"
SMALL = MediaConfig(width=160, height=90)


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RIG_DB", str(tmp_path / "records.sqlite"))
    monkeypatch.setenv("RIG_QA_PW", PASSWORD)
    monkeypatch.delenv("RIG_BENCH", raising=False)


def qa(capsys, *argv: str) -> tuple[int, dict | str, str]:
    code = main(["qa", "--timeout", "2", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "--json" in argv and out else out), err


def fleet(count: int, first: int, faults=None) -> CameraFleet:
    started = CameraFleet.start(count, first=first, base="127.0.93.", http_port=0, rtsp_port=0,
                                media={i: SMALL for i in range(count)}, time_scale=1000.0,
                                booted=True, faults=faults)
    for cam in started.cameras:
        cam.provision(PASSWORD)
    return started


def test_qa_on_a_good_unit_prints_json_records_the_grade_and_exits_0(tmp_path, capsys):
    with fleet(1, 10) as units:
        cam = units.cameras[0]
        code, out, err = qa(capsys, f"{cam.address}:{cam.http_port}", "--password-env",
                            "RIG_QA_PW", "--json")
    assert code == 0, (out, err)
    assert out["grade"] == "fully-functional"
    assert {c["check"] for c in out["checks"]} == {"device-info", "snapshot", "rtsp", "ir-cut",
                                                   "storage", "firmware-baseline", "cloud"}
    assert PASSWORD not in json.dumps(out) and PASSWORD not in err
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        [summary] = store.runs.history()
        record = store.runs.load_run(summary.run.id)
    assert record.run.status is RunStatus.PASSED and record.run.method == "manual: qa"
    [unit] = record.units
    assert (unit.verdict, unit.grade) == (Verdict.SKIPPED, Grade.FULLY_FUNCTIONAL)
    assert sum(e.kind == "check" for e in unit.evidence) == 7


def test_qa_on_a_dead_sensor_prints_the_table_and_exits_1(capsys):
    with fleet(1, 20, faults={0: SimFaults(dead_sensor=True)}) as units:
        cam = units.cameras[0]
        code, out, _ = qa(capsys, f"{cam.address}:{cam.http_port}", "--password-env",
                          "RIG_QA_PW", "--check", "snapshot", "--check", "device-info")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["CHECK", "OUTCOME", "KEY", "REASON"]
    assert any(line.startswith("snapshot") and "FAILED" in line and "near-uniform" in line
               for line in lines)
    assert "not-functional" in lines[-1]


def test_qa_by_slot_finds_the_unit_by_sadp_and_runs_the_benchs_checks(tmp_path, capsys):
    with fleet(1, 30) as units:
        cam = units.cameras[0]
        bench = tmp_path / "bench.toml"
        bench.write_text(f"""
[bench]
gpio_factory = "mock"
[network]
http_port = {cam.http_port}
[defaults]
password_env = "RIG_QA_PW"
[checks]
run = ["device-info", "cloud"]
key = ["device-info"]
[[slots]]
name = "S1"
power = {{ kind = "gpio", pin = 17 }}
mac = "{cam.mac}"
address = "{cam.address}"
""", encoding="utf-8")
        code, out, err = qa(capsys, "S1", "--bench", str(bench), "--bind", "127.0.0.1",
                            "--json")
    assert code == 0, (out, err)
    assert [c["check"] for c in out["checks"]] == ["device-info", "cloud"]
    assert out["checks"][0]["key"] is True
    assert "matches the SADP reply" in out["checks"][0]["reason"]


def test_the_password_must_come_from_a_set_variable(capsys, monkeypatch):
    monkeypatch.delenv("RIG_QA_PW")
    code, _, err = qa(capsys, "127.0.93.99", "--password-env", "RIG_QA_PW")
    assert code == 2 and "RIG_QA_PW is not set" in err
    code, _, err = qa(capsys, "127.0.93.99")
    assert code == 2 and "--password-env" in err


def test_an_unknown_check_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["qa", "127.0.93.99", "--check", "telepathy"])
    assert exit_.value.code == 2
