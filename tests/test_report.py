"""Reports of a recorded run: CSV rows per unit, the JSON record, and a self-contained HTML page
with a timeline per unit — and no device string ever becomes markup or a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from rig.records import RecordStore
from rig.report import CSV_COLUMNS, format_duration, render, render_csv, render_html, render_json
from rig.vocabulary import Fault, OutputKind, RunStatus, StepOutcome, Verdict

HOSTILE = "<script>alert(1)</script>"


class StepClock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=2)
        return self.now


@pytest.fixture
def record(tmp_path):
    """A closed run with three units: passed, failed (hostile strings), unfinished."""
    with RecordStore(tmp_path / "rig.sqlite", clock=StepClock()) as store:
        run = store.runs.start_run("bench-a", method="hard", argv=["rig", "run", "a.toml"])
        good = store.runs.start_unit(run, "1", method="hard", profile="current")
        for name in ("power off", "press reset button", "power on", "wait for boot"):
            with store.runs.step(good, name, detail="GPIO 17"):
                pass
        store.runs.add_evidence(good, "sadp-after",
                                {"mac": "aa:bb:cc:00:00:01", "activated": False})
        store.runs.finish_unit(good, Verdict.FACTORY_DEFAULT, "inactive after reset",
                               mac="aa:bb:cc:00:00:01", serial="DS-1")
        bad = store.runs.start_unit(run, "2", method="hard", profile="legacy")
        step = store.runs.start_step(bad, HOSTILE, detail='"><img src=x onerror=alert(2)>')
        store.runs.finish_step(step, StepOutcome.FAILED)
        store.runs.add_evidence(bad, "http", {"model": HOSTILE, "body": "</pre><b>x</b>"},
                                step_id=step)
        store.runs.finish_unit(bad, Verdict.NOT_DEFAULT, f"serial {HOSTILE} is still activated",
                               Fault.UNIT, check="activation", mac="aa:bb:cc:00:00:02",
                               serial="=HYPERLINK(\"http://evil\")")
        out = store.outputs.engaged(run, "2", OutputKind.SOLENOID_ON, "GPIO 22")
        store.outputs.cleared(out)
        store.outputs.engaged(run, "3", OutputKind.POWER_OFF, "switch main port 3")
        slow = store.runs.start_unit(run, "3", method="hard")
        store.runs.start_step(slow, "hold")
        store.runs.finish_run(run, RunStatus.FAILED)
        yield store.runs.load_run(run)


def test_csv_has_one_parseable_row_per_unit(record):
    rows = list(csv.DictReader(io.StringIO(render_csv(record))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["slot"] for r in rows] == ["1", "2", "3"]
    assert [r["verdict"] for r in rows] == ["factory-default", "not-default", "interrupted"]
    good, bad, _ = rows
    assert good["run"] == str(record.run.id) and good["mac"] == "aa:bb:cc:00:00:01"
    assert float(good["duration_s"]) == pytest.approx(record.units[0].duration_s)
    assert good["started"] == record.units[0].started_at.isoformat()
    assert bad["check"] == "activation" and bad["fault"] == "unit"
    assert HOSTILE in bad["reason"]                           # data kept as it was…
    assert bad["serial"] == "'=HYPERLINK(\"http://evil\")"    # …but never a live formula


def test_json_is_the_whole_record(record):
    doc = json.loads(render_json(record))
    assert doc["format"] == "rig-run" and doc["format_version"] == 1
    assert doc["run"]["id"] == record.run.id and doc["run"]["status"] == "failed"
    assert doc["counts"] == {"factory-default": 1, "not-default": 1, "interrupted": 1}
    assert [len(u["steps"]) for u in doc["units"]] == [4, 1, 1]
    assert doc["units"][1]["evidence"][0]["data"]["model"] == HOSTILE
    assert doc["units"][0]["steps"][0]["outcome"] == "ok"
    assert datetime.fromisoformat(doc["units"][0]["started_at"]) == record.units[0].started_at
    assert [o["cleared_at"] is None for o in doc["outputs"]] == [False, True]
    assert json.loads(render(record, "json")) == doc


class Page(HTMLParser):
    """What a browser would build: tags with attributes, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)

    def with_class(self, css: str) -> list[dict[str, str]]:
        return [a for _, a in self.tags if css in a.get("class", "").split()]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def test_html_is_one_self_contained_page_with_every_unit(record):
    text = render_html(record)
    page = parse(text)
    tags = {t for t, _ in page.tags}
    assert "script" not in tags and "img" not in tags and "link" not in tags
    assert not re.search(r"(src|href)=\"(https?:)?//", text)     # nothing fetched
    assert "<style>" in text
    assert len(page.with_class("unit")) == 3
    assert len(page.with_class("unit-row")) == 3
    assert {a["id"] for a in page.with_class("unit")} == {f"unit-{u.id}" for u in record.units}
    joined = "".join(page.text)
    for unit in record.units:
        assert f"Slot {unit.slot}" in joined
    assert "bench-a" in joined and "STILL ENGAGED" in joined
    assert len(page.with_class("evidence")) == 2


def test_html_timeline_has_a_bar_per_step_placed_in_time(record):
    page = parse(render_html(record))
    bars = page.with_class("step-bar")
    assert len(bars) == sum(len(u.steps) for u in record.units) == 6
    places = []
    for bar in bars:
        left, width = map(float, re.fullmatch(r"left:([\d.]+)%;width:([\d.]+)%",
                                              bar["style"]).groups())
        assert 0 <= left <= 100 and 0 <= width <= 100 - left + 1e-6
        places.append(left)
    assert places[:4] == sorted(places[:4]) and places[0] < places[3]   # steps in time order
    assert "o-ok" in bars[0]["class"] and "o-failed" in bars[4]["class"]
    assert "o-interrupted" in bars[5]["class"]
    assert bars[0]["title"].startswith("power off: ok") and "GPIO 17" in bars[0]["title"]


def test_html_escapes_every_hostile_string(record):
    text = render_html(record)
    assert HOSTILE not in text and "<img" not in text and "</pre><b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = parse(text)
    joined = "".join(page.text)
    assert HOSTILE in joined                                  # shown to people, as text
    assert any(HOSTILE in a.get("title", "") for _, a in page.tags)  # hover, as an attribute
    assert "</pre><b>x</b>" in joined


def test_html_of_a_run_that_never_closed(tmp_path):
    with RecordStore(tmp_path / "rig.sqlite", clock=StepClock()) as store:
        run = store.runs.start_run("bench-a", method="auto")
        unit = store.runs.start_unit(run, "1", method="auto")
        store.runs.start_step(unit, "power off")
        page = parse(render_html(store.runs.load_run(run)))
    bar = page.with_class("step-bar")[0]
    assert "o-running" in bar["class"] and "still open" in bar["title"]
    assert "not closed" in "".join(page.text)


def test_html_of_an_empty_run(tmp_path):
    with RecordStore(tmp_path / "rig.sqlite", clock=StepClock()) as store:
        run = store.runs.start_run("bench-a", method="auto")
        store.runs.finish_run(run, RunStatus.ABORTED)
        text = render_html(store.runs.load_run(run))
    assert "No units in this run." in text and "step-bar" not in text.split("</style>")[1]


def test_unknown_format_is_refused(record):
    with pytest.raises(ValueError, match="csv, json, html"):
        render(record, "pdf")


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (0.42, "0.42 s"), (12.34, "12.3 s"),
                                               (185, "3 min 05 s"), (3720, "1 h 02 min")])
def test_durations_read_at_a_glance(seconds, text):
    assert format_duration(seconds) == text


def test_a_snapshot_thumbnail_is_embedded_only_when_it_is_a_jpeg():
    import base64

    from rig.report_checks import thumbnail_src
    jpeg = b"\xff\xd8\xff\xe0" + b"x" * 20
    good = {"thumbnail_jpeg_b64": base64.b64encode(jpeg).decode()}
    assert thumbnail_src(good) == "data:image/jpeg;base64," + good["thumbnail_jpeg_b64"]
    for hostile in ('"><script>alert(1)</script>', base64.b64encode(b"<svg onload=x>").decode(),
                    None, 7, "A" * 300_000):
        assert thumbnail_src({"thumbnail_jpeg_b64": hostile}) is None
