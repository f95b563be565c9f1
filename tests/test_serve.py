"""``rig serve`` against a simulated batch: the live feed (latency, every slot from a step to its
verdict), the JSON API with its filters, and that a camera password never reaches a client."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
import requests

from rig.camera.isapi_types import Credentials
from rig.sim.bench import SimBench, SimSlot
from rig.sim.camera import SimFaults
from rig.vocabulary import Verdict
from tests.serve_support import BASE, MAC_BLOCK, EventReader, run_batch, served

PASSWORD = "Serve-pass9!"
SCALE = 30.0


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """One hard-reset batch of two slots (slot 2's button jammed) watched live by a client of
    the event stream; the server stays up for the API tests."""
    directory = tmp_path_factory.mktemp("serve")
    db = directory / "records.sqlite"
    spec = [SimSlot("gpio", "current"), SimSlot("poe", "current", SimFaults(jammed_button=True))]
    with SimBench.start(spec, directory=directory, time_scale=SCALE, base=BASE, first=20,
                        provision=PASSWORD, mac_block=MAC_BLOCK) as sim:
        with served(db, bench=sim.bench, secrets=(PASSWORD,)) as (url, store):
            reader = EventReader(url)
            reader.start()
            assert reader.first.wait(5), "no first bench document"
            result = run_batch(sim, db, method="hard")
            time.sleep(0.5)
            reader.close()
            yield {"url": url, "events": reader.events, "result": result, "sim": sim,
                   "store": store}


def step_latencies(events) -> dict[int, float]:
    """Seconds from each step's recorded start to the first document that showed it."""
    seen: dict[int, float] = {}
    for arrived, doc in events:
        for card in doc["slots"]:
            step = card["step"]
            if step and step["id"] not in seen:
                started = datetime.fromisoformat(step["started_at"])
                seen[step["id"]] = (arrived - started).total_seconds()
    return seen


def test_the_feed_shows_recorded_steps_within_a_second_then_the_verdicts(batch):
    events = batch["events"]
    first = events[0][1]
    assert [c["slot"] for c in first["slots"]] == ["1", "2"]
    assert {c["state"] for c in first["slots"]} == {"idle"}
    latencies = step_latencies(events)
    assert len(latencies) >= 8, latencies          # most of both units' steps were seen live
    assert max(latencies.values()) < 1.0, latencies
    print(f"live latency: max {max(latencies.values()):.3f} s over {len(latencies)} steps")
    running = {(c["slot"], c["step"]["name"]) for _, doc in events for c in doc["slots"]
               if c["state"] == "running" and c["step"]}
    assert {("1", "hold"), ("2", "hold"), ("1", "wait for boot"), ("2", "wait for boot")} <= running
    final = {c["slot"]: c for c in events[-1][1]["slots"]}
    assert {s: c["state"] for s, c in final.items()} == {"1": "idle", "2": "idle"}
    assert final["1"]["last"]["verdict"] == Verdict.FACTORY_DEFAULT
    assert final["2"]["last"]["verdict"] == Verdict.NOT_DEFAULT
    assert final["2"]["last"]["check"] == "inactive-sadp"
    camera = batch["sim"].cameras["2"]
    assert final["2"]["unit"]["mac"] == camera.mac
    assert final["2"]["unit"]["model"] and final["2"]["unit"]["serial"]


def test_the_api_serves_runs_units_steps_evidence_and_slots(batch):
    url, run_id = batch["url"], batch["result"].run_id
    runs = requests.get(url + "/api/runs", timeout=5).json()
    assert [r["id"] for r in runs] == [run_id] and runs[0]["status"] == "failed"
    assert runs[0]["counts"] == {"factory-default": 1, "not-default": 1}
    record = requests.get(f"{url}/api/runs/{run_id}", timeout=5).json()
    assert record["format"] == "rig-run" and len(record["units"]) == 2
    unit = record["units"][0]
    assert [s["name"] for s in unit["steps"]][:3] == ["power off", "settle", "press"]
    assert {"sadp-after", "verdict"} <= {e["kind"] for e in unit["evidence"]}
    assert "***" not in json.dumps(record)          # no fact was masked as a secret
    one = requests.get(f"{url}/api/units/{unit['id']}", timeout=5).json()
    assert one["id"] == unit["id"] and one["steps"] == unit["steps"]
    slots = requests.get(url + "/api/slots", timeout=5).json()
    assert slots["bench"] == batch["sim"].bench.name and len(slots["slots"]) == 2
    events = requests.get(url + "/api/slots/1/events", timeout=5).json()
    assert events[0]["event"] == "ok"
    assert requests.get(url + "/api/runs/999", timeout=5).status_code == 404
    assert requests.get(url + "/api/units/999", timeout=5).status_code == 404
    schema = requests.get(url + "/api/openapi.json", timeout=5).json()
    assert {"/api/runs", "/api/runs/{run_id}", "/api/units/{unit_id}", "/api/slots",
            "/api/slots/{slot}/clear", "/api/events", "/api/bench"} <= set(schema["paths"])


@pytest.mark.parametrize(("query", "found"), [
    ("verdict=not-default", True), ("verdict=unreachable", False), ("slot=2", True),
    ("slot=9", False), ("serial=SERIAL", True), ("serial=nope", False), ("serial=%25", False),
])
def test_history_filters_by_verdict_slot_and_serial(batch, query, found):
    url, run_id = batch["url"], batch["result"].run_id
    if query == "serial=SERIAL":
        query = "serial=" + batch["sim"].cameras["2"].mac[-5:]
    ids = [r["id"] for r in requests.get(f"{url}/api/runs?{query}", timeout=5).json()]
    assert ids == ([run_id] if found else [])
    page = requests.get(f"{url}/runs?{query}", timeout=5)
    assert page.status_code == 200
    assert (f'href="/runs/{run_id}"' in page.text) is found


def test_pages_show_the_bench_and_the_run_report(batch):
    url, run_id = batch["url"], batch["result"].run_id
    bench = requests.get(url + "/", timeout=5)
    assert bench.status_code == 200 and "script-src 'self'" in bench.headers[
        "Content-Security-Policy"]
    assert '<script src="/static/bench.js">' in bench.text
    report = requests.get(f"{url}/runs/{run_id}", timeout=5)
    assert report.status_code == 200 and "timeline" in report.text
    assert "inactive-sadp" in report.text and 'href="/runs"' in report.text
    assert requests.get(url + "/static/nope.js", timeout=5).status_code == 404


def test_no_answer_holds_the_camera_password(batch, tmp_path):
    """A web reset logs in with the password: nothing the server sends may contain it, and
    a record that did hold it is refused rather than shown."""
    db = tmp_path / "records.sqlite"
    with SimBench.start([SimSlot("poe", "current")], directory=tmp_path, time_scale=100,
                        base=BASE, first=30, provision=PASSWORD, mac_block=MAC_BLOCK) as sim:
        result = run_batch(sim, db, method="web-full",
                           credentials=Credentials("admin", PASSWORD))
        assert result.results["1"].verdict.verdict is Verdict.FACTORY_DEFAULT
        with served(db, bench=sim.bench, secrets=(PASSWORD,)) as (url, store):
            unit_id = store.runs.load_run(result.run_id).units[0].id
            paths = ["/", "/runs", f"/runs/{result.run_id}", "/api/runs", "/api/bench",
                     f"/api/runs/{result.run_id}", f"/api/units/{unit_id}", "/api/slots"]
            for path in paths:
                answer = requests.get(url + path, timeout=5)
                assert answer.status_code == 200, path
                assert PASSWORD not in answer.text, path
            store.runs.add_evidence(unit_id, "note", {"said": f"login {PASSWORD}",
                                                      "password": PASSWORD})
            assert requests.get(f"{url}/api/runs/{result.run_id}", timeout=5).status_code == 500
            assert requests.get(f"{url}/runs/{result.run_id}", timeout=5).status_code == 500


def test_metrics_parse_with_prometheus_own_parser(batch):
    from prometheus_client.parser import text_string_to_metric_families
    answer = requests.get(batch["url"] + "/metrics", timeout=5)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    units = {(s.labels["verdict"], s.labels["method"], s.labels["profile"]): s.value
             for s in families["rig_units"].samples if s.name == "rig_units_total"}
    assert units == {("factory-default", "hard", "current"): 1.0,
                     ("not-default", "hard", "current"): 1.0}
    assert families["rig_units"].type == "counter"
    runs = {s.labels["status"]: s.value for s in families["rig_runs"].samples
            if s.name == "rig_runs_total"}
    assert runs == {"failed": 1.0}
    hist = families["rig_step_duration_seconds"]
    assert hist.type == "histogram"
    count = {s.labels["step"]: s.value for s in hist.samples
             if s.name == "rig_step_duration_seconds_count"}
    assert count["press"] == 2.0 and count["verify"] == 2.0
    inf = {s.labels["step"]: s.value for s in hist.samples
           if s.name == "rig_step_duration_seconds_bucket" and s.labels["le"] == "+Inf"}
    assert inf == count
    assert families["rig_solenoids_energised"].samples[0].value == 0.0
    finished = batch["store"].runs.load_run(batch["result"].run_id).run.finished_at
    last = families["rig_last_run_completed_timestamp_seconds"].samples[0].value
    assert abs(last - finished.timestamp()) < 0.01


def test_the_grafana_dashboard_only_asks_for_metrics_the_server_exposes(batch):
    import re
    from pathlib import Path

    from prometheus_client.parser import text_string_to_metric_families
    text = requests.get(batch["url"] + "/metrics", timeout=5).text
    exposed = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    dashboard = json.loads((Path(__file__).parents[1] / "hardware" / "grafana" /
                            "rig-bench.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    asked = {name for e in exprs for name in re.findall(r"\brig_[a-z_]+", e)}
    assert len(asked) >= 6 and asked <= exposed, asked - exposed
