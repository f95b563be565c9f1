"""Starting and stopping a batch through the API: a real ``rig run`` child on a simulated relay
bench, seen live, refused while busy, stopped cleanly (SIGTERM, as Ctrl-C) mid-run."""

from __future__ import annotations

import time

import requests

from rig.sim.bench import SimBench, SimSlot
from tests.serve_support import BASE, MAC_BLOCK, served

ACTION = {"X-Rig-Request": "1"}


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_start_refuse_while_busy_then_stop_cleanly(tmp_path):
    db = tmp_path / "records.sqlite"
    spec = [SimSlot("relay", "current"), SimSlot("relay", "g5")]
    with SimBench.start(spec, directory=tmp_path, time_scale=30.0, base=BASE, first=50,
                        mac_block=MAC_BLOCK, provision="Control-pass1") as sim:
        with served(db, bench=sim.bench) as (url, store):
            bad = requests.post(url + "/api/runs", json={"by": "ann", "slots": ["9"]},
                                headers=ACTION, timeout=30)
            assert bad.status_code == 400 and "9" in bad.json()["detail"]
            started = requests.post(url + "/api/runs", json={"by": "ann", "method": "hard"},
                                    headers=ACTION, timeout=30)
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            wait_until(lambda: any(c["state"] == "running" and c["step"] and
                                   c["step"]["name"] == "hold" for c in requests.get(
                                       url + "/api/slots", timeout=5).json()["slots"]),
                       what="a slot holding its button")
            busy = requests.post(url + "/api/runs", json={"by": "bob"}, headers=ACTION,
                                 timeout=30)
            assert busy.status_code == 409 and f"run {run_id}" in busy.json()["detail"]
            stopped = requests.post(url + "/api/runs/stop", json={"by": "ann"},
                                    headers=ACTION, timeout=30)
            assert stopped.status_code == 202 and stopped.json()["run_id"] == run_id
            record = wait_until(lambda: (r := requests.get(
                f"{url}/api/runs/{run_id}", timeout=5).json())["run"]["status"] != "running"
                and r, what="the run to end")
            assert record["run"]["status"] == "interrupted"
            assert {u["verdict"] for u in record["units"]} == {"interrupted"}
            wait_until(lambda: store.outputs.open(run_id) == [], 15,
                       "every output back at rest")          # as rig run's exit does them
            board = sim.relay_board
            assert not any(board.state(ch) for ch in (2, 4))  # both solenoids released
            again = requests.post(url + "/api/runs/stop", json={"by": "ann"}, headers=ACTION,
                                  timeout=30)
            assert again.status_code == 404


def test_without_a_bench_file_nothing_can_be_started(tmp_path):
    with served(tmp_path / "r.sqlite") as (url, _store):
        answer = requests.post(url + "/api/runs", json={"by": "ann"}, headers=ACTION,
                               timeout=10)
        assert answer.status_code == 409 and "--bench" in answer.json()["detail"]
        assert requests.post(url + "/api/runs", json={"by": "ann"},
                             timeout=10).status_code == 403          # no action header
        wrong = requests.post(url + "/api/runs", json={"by": "ann", "method": "kick"},
                              headers=ACTION, timeout=10)
        assert wrong.status_code == 422
