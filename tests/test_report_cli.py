"""``rig history`` and ``rig report`` through the real CLI entry point, on a store in tmp_path."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from rig.cli import main
from rig.records import RecordStore
from rig.vocabulary import FinalState, RunStatus, Verdict


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "rig.sqlite"
    with RecordStore(path) as store:
        first = store.runs.start_run("bench-a", method="hard")
        for slot, verdict in (("1", Verdict.FACTORY_DEFAULT), ("2", Verdict.NOT_DEFAULT),
                              ("3", Verdict.BENCH_FAULT)):
            unit = store.runs.start_unit(first, slot, method="hard")
            with store.runs.step(unit, "power off"):
                pass
            store.runs.finish_unit(unit, verdict, f"slot {slot} verdict")
        store.runs.finish_run(first, RunStatus.FAILED)
        second = store.runs.start_run("bench-b", method="poe-cycle")
        store.runs.finish_unit(store.runs.start_unit(second, "1", method="poe-cycle"),
                               Verdict.FACTORY_DEFAULT, "inactive",
                               final_state=FinalState.FACTORY)
        for slot in ("2", "3"):
            store.runs.finish_unit(store.runs.start_unit(second, slot, method="poe-cycle"),
                                   Verdict.PROVISIONED, "activated and proven",
                                   final_state=FinalState.PROVISIONED)
        store.runs.finish_run(second, RunStatus.PASSED)
    return path


def rig(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_table_lists_runs_newest_first_with_counts(db, capsys):
    code, out, _ = rig(capsys, "history", "--db", str(db))
    assert code == 0
    head, second, first = out.splitlines()
    assert head.split()[:2] == ["RUN", "STARTED"] and "PASS" in head and "NOT-DEF" in head
    assert second.split()[0] == "2" and "bench-b" in second and "passed" in second
    assert "LEFT" in head and second.endswith("1 factory, 2 provisioned")
    cells = first.split()
    assert cells[0] == "1" and "failed" in cells and "bench-a" in cells
    assert cells[-7:] == ["3", "1", "1", "0", "1", "0", "-"]  # units, pass, not-def, … left


def test_history_json_filters_by_bench_and_limit(db, capsys):
    code, out, _ = rig(capsys, "history", "--db", str(db), "--json", "--bench", "bench-a")
    assert code == 0
    runs = json.loads(out)
    assert [r["id"] for r in runs] == [1]
    assert runs[0]["counts"] == {"factory-default": 1, "not-default": 1, "bench-fault": 1}
    assert runs[0]["status"] == "failed" and runs[0]["orphaned"] is False
    assert runs[0]["final_states"] == {}
    _, out, _ = rig(capsys, "history", "--db", str(db), "--json", "--limit", "1")
    assert [r["id"] for r in json.loads(out)] == [2]
    assert json.loads(out)[0]["final_states"] == {"factory": 1, "provisioned": 2}


def test_history_marks_a_run_whose_process_is_gone(tmp_path, capsys):
    db = tmp_path / "rig.sqlite"
    with RecordStore(db) as store:
        store.runs.start_run("bench-a", method="hard", pid=2 ** 22 + 12345)   # beyond pid_max
    code, out, _ = rig(capsys, "history", "--db", str(db))
    assert code == 0 and "running (orphaned)" in out


def test_history_of_a_missing_store_says_so(tmp_path, capsys):
    missing = tmp_path / "nothing.sqlite"
    code, out, err = rig(capsys, "history", "--db", str(missing))
    assert code == 2 and "no record store" in err and str(missing) in err
    assert not missing.exists()


def test_history_of_an_empty_store(tmp_path, capsys):
    RecordStore(tmp_path / "rig.sqlite").close()
    code, out, _ = rig(capsys, "history", "--db", str(tmp_path / "rig.sqlite"))
    assert code == 0 and "no runs recorded" in out


def test_history_uses_rig_db_from_the_environment(db, capsys, monkeypatch):
    monkeypatch.setenv("RIG_DB", str(db))
    code, out, _ = rig(capsys, "history", "--json")
    assert code == 0 and len(json.loads(out)) == 2


def test_report_csv_and_json_go_to_stdout(db, capsys):
    code, out, _ = rig(capsys, "report", "1", "--db", str(db), "--format", "csv")
    assert code == 0
    assert [r["verdict"] for r in csv.DictReader(io.StringIO(out))] == [
        "factory-default", "not-default", "bench-fault"]
    code, out, _ = rig(capsys, "report", "last", "--db", str(db), "--format", "json")
    assert code == 0 and json.loads(out)["run"]["id"] == 2


def test_report_html_is_written_to_the_current_directory(db, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = rig(capsys, "report", "1", "--db", str(db), "--format", "html")
    assert code == 0 and out.strip() == "rig-report-1.html"
    text = (tmp_path / "rig-report-1.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.count('class="step-bar') == 3
    assert not list(tmp_path.glob(".*.tmp"))


def test_report_to_a_named_file(db, capsys, tmp_path):
    target = tmp_path / "out" / "run1.csv"
    target.parent.mkdir()
    code, out, _ = rig(capsys, "report", "1", "--db", str(db), "-f", "csv", "-o", str(target))
    assert code == 0 and out.strip() == str(target)
    assert len(list(csv.reader(target.read_text().splitlines()))) == 4


def test_report_of_an_unknown_run_exits_2(db, capsys):
    code, out, err = rig(capsys, "report", "99", "--db", str(db), "--format", "json")
    assert code == 2 and out == ""
    assert "no run 99" in err and "latest run: 2" in err


def test_report_last_of_an_empty_store_exits_2(tmp_path, capsys):
    RecordStore(tmp_path / "rig.sqlite").close()
    code, _, err = rig(capsys, "report", "last", "--db", str(tmp_path / "rig.sqlite"))
    assert code == 2 and "no runs recorded" in err


def test_report_refuses_a_run_that_is_not_a_number(db, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "first", "--db", str(db)])
    assert exc.value.code == 2 and "is not a run id" in capsys.readouterr().err


def test_report_of_a_missing_store_exits_2(tmp_path, capsys):
    code, _, err = rig(capsys, "report", "1", "--db", str(tmp_path / "none.sqlite"))
    assert code == 2 and "no record store" in err


@pytest.mark.parametrize("command", ["history", "report"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "--db" in capsys.readouterr().out
