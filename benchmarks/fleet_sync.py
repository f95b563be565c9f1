"""The fleet sync's figures (``rig sync``, rig.fleet.pusher) against a real PostgreSQL:

1. **throughput**: a bench with a backlog of 10 000 units' records (runs of 48 units, each unit
   with its steps, evidence, an output, an attachment's metadata and a certificate; inserted
   and then updated, as a run does) pushed in one go: rows per second, log entries per second;
2. **lag**: while a batch is running (a writer finishing units at a steady rate, in its own
   connection to the bench's SQLite as ``rig run`` has), the time from a verdict's commit on
   the bench to its row in PostgreSQL carrying that verdict, with the worker's default poll;
3. **cost on the bench**: the sync worker's CPU time (user + system, this process only; the
   server's is not the bench's) per unit pushed.

PostgreSQL is $RIG_FLEET_URL when set (a fresh database: the script creates its own schema
there and pushes a new bench id each time), else a throwaway cluster started the tests' way
(tests/fleet_support.py: Debian's postgresql binaries, fsync off, so the figures are the sync's
and the network's, not a server's disk).

    python benchmarks/fleet_sync.py                    # 10 000 units, 20 s of lag stream
    python benchmarks/fleet_sync.py --units 2000 --stream-seconds 5 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]     # this checkout; fleet_support

import psycopg  # noqa: E402
from fleet_support import cluster  # noqa: E402

from rig.fleet.pusher import DEFAULT_BATCH, Pusher, SyncWorker  # noqa: E402
from rig.records import RecordStore  # noqa: E402

UNITS_PER_RUN = 48
STEPS_PER_UNIT = 6


def build_backlog(store: RecordStore, units: int) -> None:
    """``units`` finished units' records, written in large transactions (the triggers log them
    exactly as they log a run's small ones; only the bench's fsyncs are saved)."""
    now = store.db.now()
    for first in range(0, units, UNITS_PER_RUN):
        with store.db.write() as conn:
            run = conn.execute(
                "INSERT INTO runs (started_at, status, bench_name, method, rig_version, "
                "hostname, pid) VALUES (?, 'running', 'bench-bm', 'hard', 'bm', 'bm', 1)",
                (now,)).lastrowid
            for n in range(min(UNITS_PER_RUN, units - first)):
                _unit(conn, run, n, now)
            conn.execute("UPDATE runs SET status = 'passed', finished_at = ? WHERE id = ?",
                         (now, run))


def _unit(conn: Any, run: int, n: int, now: str) -> None:
    unit = conn.execute("INSERT INTO units (run_id, slot, method, state, started_at) "
                        "VALUES (?, ?, 'hard', 'running', ?)", (run, str(n), now)).lastrowid
    out = conn.execute("INSERT INTO outputs (run_id, slot, kind, target, since) VALUES "
                       "(?, ?, 'power-off', 'port', ?)", (run, str(n), now)).lastrowid
    for s in range(STEPS_PER_UNIT):
        step = conn.execute("INSERT INTO steps (unit_id, seq, name, started_at, outcome) "
                            "VALUES (?, ?, ?, ?, 'running')", (unit, s + 1, f"step {s}", now)
                            ).lastrowid
        conn.execute("INSERT INTO evidence (unit_id, step_id, kind, created_at, data) VALUES "
                     "(?, ?, 'sadp-after', ?, ?)",
                     (unit, step, now, json.dumps({"mac": "44:19:b6:00:00:01", "step": s})))
        conn.execute("UPDATE steps SET outcome = 'ok', finished_at = ? WHERE id = ?",
                     (now, step))
    conn.execute("UPDATE outputs SET cleared_at = ? WHERE id = ?", (now, out))
    conn.execute("INSERT INTO attachments (unit_id, name, content_type, sha256, created_at, "
                 "data) VALUES (?, 'snapshot.jpg', 'image/jpeg', 'ab', ?, x'ffd8')", (unit, now))
    conn.execute("INSERT INTO certificates VALUES (?, ?, ?, 'DS-1', 'k', 'd', 'e', ?, '{}')",
                 (f"c-{unit}", run, unit, now))
    conn.execute("UPDATE units SET state = 'done', verdict = 'factory-default', "
                 "finished_at = ?, fault = 'none', serial = 'DS-1' WHERE id = ?", (now, unit))


def throughput(db: Path, url: str, units: int, batch: int) -> dict[str, float]:
    """Push the whole backlog once; rows/s, log entries/s and CPU per unit."""
    with RecordStore(db) as store:
        started = time.perf_counter()
        build_backlog(store, units)
        built = time.perf_counter() - started
        entries = store.sync.head()
        pusher = Pusher(store, url, batch=batch)
        pusher.connect()                          # the schema made before the clock starts
        cpu0, wall0 = time.process_time(), time.perf_counter()
        rows = pusher.drain()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        pusher.close()
    return {"units": units, "log_entries": entries, "rows": rows, "seconds": wall,
            "rows_per_s": rows / wall, "entries_per_s": entries / wall,
            "cpu_ms_per_unit": 1000 * cpu / units, "backlog_build_s": built}


def lag(db: Path, url: str, seconds: float, rate: float, poll: float) -> dict[str, float]:
    """Verdict commit → PostgreSQL row, for units finished at ``rate`` per second."""
    with RecordStore(db) as store, RecordStore(db) as writer_store:
        worker = SyncWorker(Pusher(store, url), poll_s=poll, report=lambda line: None)
        pusher_thread = threading.Thread(target=worker.run, daemon=True)
        pusher_thread.start()
        committed: dict[int, float] = {}
        writer = threading.Thread(target=_stream, args=(writer_store, seconds, rate, committed))
        writer.start()
        seen = _watch(url, store.sync.bench_id(), committed, writer)
        worker.stop.set()
        pusher_thread.join(10)
    lags = sorted(seen[u] - committed[u] for u in committed if u in seen)
    return {"units": len(committed), "poll_s": poll, "median_s": statistics.median(lags),
            "p95_s": lags[int(0.95 * (len(lags) - 1))], "max_s": lags[-1],
            "missing": len(committed) - len(lags)}


def _stream(store: RecordStore, seconds: float, rate: float, committed: dict[int, float]
            ) -> None:
    """A running batch as the bench writes it: a unit's steps and evidence, then its verdict."""
    run = store.runs.start_run("bench-bm", method="hard", argv=["rig", "run"])
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        unit = store.runs.start_unit(run, str(n), method="hard")
        with store.runs.step(unit, "verify") as step:
            store.runs.add_evidence(unit, "sadp-after", {"n": n}, step_id=step)
        store.runs.finish_unit(unit, "factory-default", "inactive", mac="44:19:b6:00:00:01",
                               serial=f"DS-{n}")
        committed[unit] = time.time()
        time.sleep(1 / rate)
    store.runs.finish_run(run, "passed")


def _watch(url: str, bench_id: str, committed: dict[int, float], writer: threading.Thread
           ) -> dict[int, float]:
    """When each unit's verdict appeared in PostgreSQL (polled every 5 ms)."""
    seen: dict[int, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = None
        while deadline is None or time.monotonic() < deadline:
            if not writer.is_alive() and deadline is None:
                deadline = time.monotonic() + 10
            if deadline and len(seen) == len(committed):
                break
            now = time.time()
            for (unit,) in conn.execute("SELECT id FROM rig.units WHERE bench_id = %s AND "
                                        "verdict IS NOT NULL", (bench_id,)):
                seen.setdefault(unit, now)
            time.sleep(0.005)
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--stream-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=10.0, help="verdicts per second")
    parser.add_argument("--poll", type=float, default=1.0, help="the worker's poll (rig sync's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    url = os.environ.get("RIG_FLEET_URL") or cluster().new_database()
    with tempfile.TemporaryDirectory(prefix="rig-fleet-bm-") as tmp:
        figures = {"throughput": throughput(Path(tmp) / "backlog.sqlite", url, args.units,
                                            args.batch),
                   "lag": lag(Path(tmp) / "stream.sqlite", url, args.stream_seconds, args.rate,
                              args.poll)}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        _print(figures)
    return 0 if figures["lag"]["missing"] == 0 else 1


def _print(figures: dict[str, dict[str, float]]) -> None:
    t, lg = figures["throughput"], figures["lag"]
    print(f"backlog: {t['units']} units = {t['log_entries']} log entries, {t['rows']} rows "
          f"pushed in {t['seconds']:.2f} s")
    print(f"  throughput: {t['rows_per_s']:,.0f} rows/s ({t['entries_per_s']:,.0f} log "
          f"entries/s); sync worker CPU {t['cpu_ms_per_unit']:.2f} ms per unit")
    print(f"lag, verdict committed on the bench -> its row in PostgreSQL ({lg['units']} units, "
          f"poll {lg['poll_s']:g} s): median {lg['median_s']:.3f} s, p95 {lg['p95_s']:.3f} s, "
          f"max {lg['max_s']:.3f} s, missing {lg['missing']}")


if __name__ == "__main__":
    sys.exit(main())
