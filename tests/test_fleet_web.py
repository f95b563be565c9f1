"""``rig serve --db postgresql://…``: the fleet page (each bench and the lag of its sync), a
bench's slots as last synced and its runs, a run's report; and ``rig serve --sync-env`` pushing
from inside the bench's own server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from fleet_support import PASSWORD, Cluster, assert_in_sync, cluster, fill, quick

from rig import cli
from rig.fleet.pusher import BackgroundSync, Pusher
from rig.fleet.web import FleetSource, create_fleet_app
from rig.records import RecordStore
from rig.serve.security import Policy
from rig.serve.server import ThreadedServer


@pytest.fixture(scope="session")
def pg() -> Cluster:
    return cluster()


def test_the_fleet_page_shows_each_bench_its_lag_its_slots_and_its_runs(
        pg: Cluster, tmp_path: Path) -> None:
    url = pg.new_database()
    ids = {}
    for name in ("north", "south"):
        with quick(RecordStore(tmp_path / f"{name}.sqlite")) as store:
            fill(store, name, runs=2, units=3)
            Pusher(store, url).drain()
            ids[name] = store.sync.bench_id()
    source = FleetSource(url)
    with ThreadedServer(create_fleet_app(source, Policy(token=None, loopback=True))) as server:
        fleet = requests.get(f"{server.url}/api/fleet", timeout=10).json()
        assert [(b["bench"], b["runs"], b["units"], b["entries_behind"]) for b in fleet] == \
            [("north", 2, 6, 0), ("south", 2, 6, 0)]
        assert all(0 <= b["seconds_since_contact"] < 60 for b in fleet)
        front = requests.get(server.url + "/", timeout=10)
        assert front.status_code == 200 and "north" in front.text and "south" in front.text
        assert "Content-Security-Policy" in front.headers
        bench = requests.get(f"{server.url}/benches/{ids['north']}", timeout=10).text
        assert "Slots, as last synced" in bench and "bench-fault" in bench
        assert f"/benches/{ids['north']}/runs/2" in bench
        report = requests.get(f"{server.url}/benches/{ids['north']}/runs/2", timeout=10)
        assert report.status_code == 200 and "factory-default" in report.text
        assert requests.get(f"{server.url}/benches/{ids['south']}/runs/9",
                            timeout=10).status_code == 404
        assert requests.get(f"{server.url}/benches/nope", timeout=10).status_code == 404
    source.close()


def test_the_fleet_page_wants_a_token_off_loopback(pg: Cluster) -> None:
    source = FleetSource(pg.new_database())
    policy = Policy(token="t0ken-for-the-fleet", loopback=False)
    with ThreadedServer(create_fleet_app(source, policy)) as server:
        assert requests.get(f"{server.url}/api/fleet", timeout=10).status_code == 401
        ok = requests.get(f"{server.url}/api/fleet", timeout=10,
                          headers={"Authorization": "Bearer t0ken-for-the-fleet"})
        assert ok.status_code == 503 and "rig sync creates it" in ok.text   # no schema yet
    source.close()


def test_rig_serve_refuses_a_fleet_url_with_a_password(pg: Cluster, capsys) -> None:
    assert cli.main(["serve", "--db", pg.new_database(), "--listen", "127.0.0.1:0"]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and PASSWORD not in err


def test_the_sync_inside_rig_serve_pushes_while_the_bench_records(pg: Cluster,
                                                                  tmp_path: Path) -> None:
    url = pg.new_database()
    db = tmp_path / "bench.sqlite"
    with quick(RecordStore(db)) as store:
        fill(store, "bench-a", runs=1)
        syncer = BackgroundSync(str(db), url, report=lambda line: None)
        syncer.worker.poll_s = 0.05
        syncer.start()
        try:
            fill(store, "bench-a", runs=1)
            deadline = time.monotonic() + 20
            while syncer.worker.pusher.backlog() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            syncer.close()
        assert_in_sync(store, url)
