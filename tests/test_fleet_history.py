"""The fleet read back: two benches record batches while the PostgreSQL server is stopped and
started again in between, their sync workers ride it out, and afterwards ``rig history --db
postgresql://…`` shows every run of both benches exactly once, as each bench's SQLite has it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import psycopg
import pytest
from fleet_support import PASSWORD, Cluster, assert_in_sync, cluster, fill, quick

from rig import cli
from rig.commands.history import as_json
from rig.fleet.pusher import Pusher, SyncWorker
from rig.records import RecordStore


@pytest.fixture(scope="session")
def pg() -> Cluster:
    return cluster()


def no_password(url: str) -> str:
    return url.replace(f":{PASSWORD}@", "@")


def wait_until(what, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def history_json(capsys, *argv: str) -> list[dict]:
    assert cli.main(["history", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_two_benches_through_a_server_restart_show_every_run_exactly_once(
        pg: Cluster, tmp_path: Path, monkeypatch, capsys) -> None:
    url = pg.new_database()
    stores = {name: quick(RecordStore(tmp_path / f"{name}.sqlite"))
              for name in ("bench-a", "bench-b")}
    workers = [SyncWorker(Pusher(store, url, batch=30), poll_s=0.05, first_backoff_s=0.05,
                          max_backoff_s=0.3, report=lambda line: None)
               for store in stores.values()]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        for name, store in stores.items():
            fill(store, name, runs=2, units=4)              # batch 1, server up
        pg.stop("immediate")
        for name, store in stores.items():
            fill(store, name, runs=2, units=3)              # batch 2, server down
        pg.start()
        for name, store in stores.items():
            fill(store, name, runs=1, units=2)              # batch 3, server back
        wait_until(lambda: all(w.pusher.backlog() == 0 and w.failures == 0 for w in workers))
    finally:
        for worker in workers:
            worker.stop.set()
        for thread in threads:
            thread.join(10)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)      # libpq's, as ~/.pgpass would be
    fleet = history_json(capsys, "--db", no_password(url), "--limit", "100")
    for store in stores.values():
        assert_in_sync(store, url)
        bench_id = store.sync.bench_id()
        mine = [{k: v for k, v in r.items() if k != "bench_id"} for r in fleet
                if r["bench_id"] == bench_id]
        local = [as_json(s) for s in store.runs.history(limit=100)]
        assert sorted(mine, key=lambda r: r["id"]) == sorted(local, key=lambda r: r["id"])
        assert len(mine) == 5
        store.close()
    assert len(fleet) == 10
    assert len({(r["bench_id"], r["id"]) for r in fleet}) == 10


def test_the_fleet_table_has_a_bench_id_column_and_a_bench_filter(
        pg: Cluster, tmp_path: Path, monkeypatch, capsys) -> None:
    url = pg.new_database()
    ids = {}
    for name in ("north", "south"):
        with quick(RecordStore(tmp_path / f"{name}.sqlite")) as store:
            fill(store, name, runs=2, units=2)
            Pusher(store, url).drain()
            ids[name] = store.sync.bench_id()
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert cli.main(["history", "--db", no_password(url)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("BENCH ID") and len(table) == 5
    assert sum(ids["north"][:8] in line for line in table) == 2
    only = history_json(capsys, "--db", no_password(url), "--bench", "south")
    assert {r["bench_id"] for r in only} == {ids["south"]} and len(only) == 2
    by_id = history_json(capsys, "--db", no_password(url), "--bench", ids["north"][:8])
    assert {r["bench"] for r in by_id} == {"north"}


def test_history_refuses_a_password_in_the_url_and_a_database_without_fleet_records(
        pg: Cluster, monkeypatch, capsys) -> None:
    url = pg.new_database()
    assert cli.main(["history", "--db", url]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and PASSWORD not in err
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert cli.main(["history", "--db", no_password(url)]) == 2
    assert "no fleet records" in capsys.readouterr().err
    with psycopg.connect(url) as conn:                      # nothing was created by reading
        assert conn.execute("SELECT to_regclass('rig.runs')").fetchone()[0] is None


def test_a_real_simulated_run_reaches_the_fleet_after_the_server_comes_back(
        pg: Cluster, tmp_path: Path, monkeypatch, capsys) -> None:
    url = pg.new_database()
    # 0, or 1 when a loaded machine upset the simulated timing (test_demo's business): either
    # way a real run is recorded, and what is checked here is that the fleet gets it exactly
    assert cli.main(["demo", "--dir", str(tmp_path), "--time-scale", "100", "--first", "120",
                     "--quiet"]) in (0, 1)
    db = str(tmp_path / "records.sqlite")
    certs = tmp_path / "certs"
    assert cli.main(["certificate", "1", "--db", db, "--format", "json", "--out", str(certs)]
                    ) in (0, 1)                             # slot 7 gets none
    assert cli.main(["certificate", "key", "--export", "--db", db]) == 0
    (tmp_path / "bench.pem").write_text(capsys.readouterr().out)
    monkeypatch.setenv("RIG_FLEET_URL", url)
    capsys.readouterr()
    pg.stop("fast")
    try:
        assert cli.main(["sync", "--once", "--db", db]) == 1     # nothing lost: it waits
        assert PASSWORD not in capsys.readouterr().err
    finally:
        pg.start()
    assert cli.main(["sync", "--once", "--db", db]) == 0
    assert "pushed" in capsys.readouterr().out
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    fleet = history_json(capsys, "--db", no_password(url))
    with RecordStore(db) as store:
        assert_in_sync(store, url)
        assert [{k: v for k, v in r.items() if k != "bench_id"} for r in fleet] == \
            [as_json(s) for s in store.runs.history()]
    assert fleet[0]["units"] == 8
    bench = fleet[0]["bench_id"][:8]
    for fmt, parse in (("csv", str), ("json", json.loads)):
        assert cli.main(["report", "1", "--db", db, "--format", fmt, "-o", "-"]) == 0
        local = parse(capsys.readouterr().out)
        assert cli.main(["report", "last", "--db", no_password(url), "--bench", bench,
                         "--format", fmt, "-o", "-"]) == 0
        assert parse(capsys.readouterr().out) == local      # the same run, from the fleet
    assert cli.main(["report", "1", "--db", no_password(url), "--format", "csv"]) == 2
    assert "--bench" in capsys.readouterr().err
    certificate = sorted(certs.glob("*.json"))[0]
    assert cli.main(["certificate", "verify", str(certificate), "--db", no_password(url),
                     "--key", str(tmp_path / "bench.pem")]) == 0
    out = capsys.readouterr().out
    assert "evidence records match the certified digest" in out and "VALID" in out
    with psycopg.connect(url) as conn:                      # the fleet's copy tampered with
        conn.execute("""UPDATE rig.evidence SET data = '{"forged": true}'""")
    assert cli.main(["certificate", "verify", str(certificate), "--db", no_password(url),
                     "--key", str(tmp_path / "bench.pem")]) == 1
    assert "the record changed" in capsys.readouterr().out
