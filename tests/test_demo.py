"""``rig demo`` end to end, in strongly compressed time."""

from __future__ import annotations

from html.parser import HTMLParser

from rig.cli import main
from rig.records import RecordStore


def test_demo_resets_the_bench_and_catches_the_jammed_button(tmp_path, capsys):
    assert main(["demo", "--dir", str(tmp_path), "--time-scale", "100", "--first", "120",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "demo OK: 7 units back at factory defaults" in out
    assert "slot 7's jammed button was caught" in out
    report = tmp_path / "report-run-1.html"
    assert f"HTML report: {report}" in out
    HTMLParser().feed(report.read_text(encoding="utf-8"))
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        record = store.runs.load_run(1)
        verdicts = {u.slot: u.verdict for u in record.units}
        assert verdicts.pop("7") == "not-default"
        assert set(verdicts.values()) == {"factory-default"}
        assert store.outputs.open() == []


def test_provisioned_demo_leaves_each_good_unit_activated_on_its_pool_address(tmp_path, capsys):
    assert main(["demo", "--dir", str(tmp_path), "--time-scale", "100", "--first", "60",
                 "--final-state", "provisioned", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "demo OK: 7 units left provisioned, each on its own address from the pool" in out
    report = (tmp_path / "report-run-1.html").read_text(encoding="utf-8")
    assert "activate" in report and "confirm hand-over" in report and "network" in report
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        units = {u.slot: u for u in store.runs.load_run(1).units}
        assert units.pop("7").verdict == "not-default"
        assert {u.verdict for u in units.values()} == {"provisioned"}
        assert {u.final_state for u in units.values()} == {"provisioned"}
        taken = {slot: next(e.data for e in u.evidence if e.kind == "network")
                 for slot, u in units.items()}
        assert {slot: n["seen"]["ipv4"] for slot, n in taken.items()} == {
            slot: f"127.0.2.{59 + int(slot)}" for slot in units}
        assert all(n["http_status"] for n in taken.values())
