"""rig sync against a real PostgreSQL server the tests start themselves (tests/fleet_support):
two benches into one database, a server stopped mid-sync, a worker killed with SIGKILL, a bench
offline for a whole batch; each time every row is there exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fleet_support import (
    PASSWORD,
    Cluster,
    assert_in_sync,
    cluster,
    fill,
    fleet_counts,
    free_port,
    local_counts,
    quick,
)

from rig import cli
from rig.fleet import pg_schema
from rig.fleet.pusher import Pusher, SyncWorker
from rig.records import RecordStore
from rig.vocabulary import SyncedTable

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg() -> Cluster:
    return cluster()


@pytest.fixture
def fleet_url(pg: Cluster) -> str:
    return pg.new_database()


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Callable[[str], RecordStore]]:
    stores: list[RecordStore] = []

    def make(name: str) -> RecordStore:
        stores.append(quick(RecordStore(tmp_path / f"{name}.sqlite")))
        return stores[-1]
    yield make
    for store in stores:
        store.close()


def wait_until(what: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_every_insert_and_update_of_a_record_is_logged_in_its_transaction(bench) -> None:
    store = bench("a")
    run = store.runs.start_run("a", method="hard", argv=["rig"])
    unit = store.runs.start_unit(run, "1", method="hard")
    store.runs.finish_unit(unit, "unreachable", "no answer")
    log = store.db.read("SELECT tbl, row_id FROM sync_log ORDER BY seq")
    assert [tuple(r) for r in log][:3] == [("runs", run), ("units", unit), ("units", unit)]
    assert store.sync.bench_id() == RecordStore(store.path).sync.bench_id()   # made once


def test_every_synced_table_has_its_two_sync_triggers_in_the_current_schema(bench) -> None:
    """A later migration that rebuilds a synced table drops its triggers with it: this fails
    until that migration re-creates them (db.MIGRATIONS 9 says so)."""
    store = bench("a")
    triggers = {r[0] for r in store.db.read("SELECT name FROM sqlite_master WHERE "
                                            "type = 'trigger' AND name LIKE 'sync_%'")}
    assert triggers == {f"sync_{t}_{e}" for t in SyncedTable for e in ("insert", "update")}


def test_two_benches_sync_into_one_database_and_never_collide(bench, fleet_url) -> None:
    a, b = bench("a"), bench("b")
    fill(a, "bench-a", runs=2)
    fill(b, "bench-b", runs=3)
    for store in (a, b):
        pusher = Pusher(store, fleet_url, batch=37)
        assert pusher.drain() > 0 and pusher.backlog() == 0
        pusher.close()
    assert_in_sync(a, fleet_url)
    assert_in_sync(b, fleet_url)
    with psycopg.connect(fleet_url) as conn:
        rows = conn.execute("SELECT b.bench_name, r.id FROM rig.runs r JOIN rig.benches b "
                            "USING (bench_id) ORDER BY 1, 2").fetchall()
    assert rows == [("bench-a", 1), ("bench-a", 2),
                    ("bench-b", 1), ("bench-b", 2), ("bench-b", 3)]


def test_a_replay_after_a_crash_between_the_two_commits_adds_nothing(bench, fleet_url) -> None:
    store = bench("a")
    fill(store, "bench-a", runs=2)
    Pusher(store, fleet_url).drain()
    # the crash: PostgreSQL committed, the bench's cursor never moved
    with store.db.write() as conn:
        conn.execute("UPDATE sync_targets SET pushed_to = 0")
    fill(store, "bench-a", runs=1)
    pusher = Pusher(store, fleet_url, batch=50)
    assert pusher.drain() > local_counts(store)["runs"]      # the whole log again
    assert_in_sync(store, fleet_url)


def test_an_emptied_fleet_database_is_filled_again(bench, fleet_url) -> None:
    store = bench("a")
    fill(store, "bench-a", runs=1)
    Pusher(store, fleet_url).drain()
    with psycopg.connect(fleet_url) as conn:   # restored from an old dump, or from nothing
        conn.execute("TRUNCATE rig.benches, rig.runs, rig.units, rig.steps, rig.evidence")
    assert Pusher(store, fleet_url).drain() > 0
    assert_in_sync(store, fleet_url)


def test_the_server_stopped_mid_sync_loses_and_duplicates_nothing(bench, pg, fleet_url
                                                                  ) -> None:
    store = bench("a")
    fill(store, "bench-a", runs=6, units=6)
    lines: list[str] = []
    worker = SyncWorker(Pusher(store, fleet_url, batch=40), poll_s=0.05, first_backoff_s=0.05,
                        max_backoff_s=0.2, report=lines.append)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: worker.pushed > 0)
        pg.stop("immediate")
        fill(store, "bench-a", runs=1)                    # the bench goes on recording
        wait_until(lambda: worker.failures >= 2)
        pg.start()
        wait_until(lambda: worker.failures == 0 and worker.pusher.backlog() == 0)
    finally:
        worker.stop.set()
        thread.join(10)
        if not _running(pg):
            pg.start()
    assert any("failed" in line for line in lines) and any("resumed" in line for line in lines)
    assert not any(PASSWORD in line for line in lines)
    assert_in_sync(store, fleet_url)


def _running(pg: Cluster) -> bool:
    try:
        psycopg.connect(pg.url(), connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


def test_a_worker_killed_with_sigkill_mid_batch_resumes_where_it_stopped(bench, fleet_url,
                                                                         tmp_path) -> None:
    store = bench("a")
    fill(store, "bench-a", runs=12, units=8)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RIG_FLEET_URL": fleet_url}
    command = [sys.executable, "-m", "rig.cli", "sync", "--db", store.path, "--batch", "25"]
    worker = subprocess.Popen([*command, "--poll", "0.05"], env=env, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: _pushed_some(fleet_url, store))
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        worker.stderr.close()
    assert store.sync.head() > max((t.pushed_to for t in store.sync.targets()), default=0)
    done = subprocess.run([*command, "--once"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert_in_sync(store, fleet_url)


def _pushed_some(url: str, store: RecordStore) -> bool:
    try:
        return fleet_counts(url, store.sync.bench_id())["steps"][0] > 0
    except psycopg.errors.UndefinedTable:            # the worker has not made the schema yet
        return False


def test_a_bench_offline_for_a_whole_batch_catches_up(bench, pg, fleet_url) -> None:
    a, b = bench("a"), bench("b")
    fill(a, "bench-a", runs=1)
    Pusher(a, fleet_url).drain()
    unreachable = f"postgresql://rig:{PASSWORD}@127.0.0.1:{free_port()}/nowhere"
    offline = SyncWorker(Pusher(b, unreachable, connect_timeout=1), first_backoff_s=0.5,
                         max_backoff_s=4, report=lambda line: None)
    fill(b, "bench-b", runs=3)                 # its whole batch, recorded with no server
    waits = [offline.step() for _ in range(6)]
    assert waits == [0.5, 1, 2, 4, 4, 4]       # doubling, bounded
    fill(a, "bench-a", runs=1)                 # meanwhile the other bench syncs as usual
    Pusher(a, fleet_url).drain()
    Pusher(b, fleet_url).drain()               # back on the network
    assert_in_sync(a, fleet_url)
    assert_in_sync(b, fleet_url)


def test_rig_sync_once_reads_the_url_from_the_environment_and_masks_it(
        bench, fleet_url, monkeypatch, capsys) -> None:
    store = bench("a")
    fill(store, "bench-a", runs=1)
    monkeypatch.setenv("FLEET", fleet_url)
    assert cli.main(["sync", "--once", "--db", store.path, "--to-env", "FLEET"]) == 0
    out = capsys.readouterr().out
    assert "pushed" in out and "rig:***@127.0.0.1" in out and PASSWORD not in out
    assert_in_sync(store, fleet_url)
    assert cli.main(["sync", "--once", "--db", store.path, "--to", fleet_url]) == 2
    err = capsys.readouterr().err
    assert "password on the command line is refused" in err and PASSWORD not in err
    monkeypatch.delenv("RIG_FLEET_URL", raising=False)
    assert cli.main(["sync", "--once", "--db", store.path]) == 2


def test_the_fleet_schema_migrates_once_and_refuses_a_newer_one(fleet_url) -> None:
    with psycopg.connect(fleet_url, autocommit=True) as conn:
        assert pg_schema.migrate(conn, "test") == pg_schema.SCHEMA_VERSION
        assert pg_schema.migrate(conn, "test") == pg_schema.SCHEMA_VERSION
        conn.execute("INSERT INTO rig.schema_version (version, rig_version) VALUES (99, 'x')")
        with pytest.raises(RuntimeError, match="newer rig"):
            pg_schema.migrate(conn, "test")


def test_the_log_is_pruned_once_pushed_and_a_new_server_still_gets_everything(
        bench, pg, fleet_url, capsys) -> None:
    store = bench("a")
    fill(store, "bench-a", runs=2)
    Pusher(store, fleet_url).drain()
    assert store.db.read("SELECT COUNT(*) FROM sync_log")[0][0] == 0     # all pushed: pruned
    second = pg.new_database()                  # a second fleet server, after the pruning
    assert Pusher(store, second, batch=40).drain() > 0
    assert_in_sync(store, second)
    fill(store, "bench-a", runs=1)
    Pusher(store, fleet_url).drain()            # the second one has not pushed these yet:
    assert store.db.read("SELECT COUNT(*) FROM sync_log")[0][0] > 0     # kept for it
    assert cli.main(["sync", "--status", "--db", store.path]) == 0
    status = capsys.readouterr().out
    assert status.count("rig@127.0.0.1") == 2 and PASSWORD not in status
    gone = next(t.target for t in store.sync.targets() if t.target.endswith(second[-12:]))
    assert cli.main(["sync", "--forget", gone, "--db", store.path]) == 0
    Pusher(store, fleet_url).drain()
    assert store.db.read("SELECT COUNT(*) FROM sync_log")[0][0] == 0
    assert_in_sync(store, fleet_url)
