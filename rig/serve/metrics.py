"""``/metrics`` in the Prometheus text format, through ``prometheus_client``.

Every value is read from the record store at scrape time (a custom collector), not counted in
this process: the records are the truth, a run from a terminal counts the same as any, and a
restart of ``rig serve`` loses nothing. The counters are totals over the whole store, so they only
grow (as Prometheus counters must) unless the store is replaced.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from rig.records import RecordStore
from rig.vocabulary import BenchFaultKind, DeliveryState, OutputKind

#: Step duration buckets, seconds: a press is under a second, a boot a minute or two.
STEP_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0)
_SECONDS = "(julianday(finished_at) - julianday(started_at)) * 86400.0"


class RecordCollector:
    """A prometheus_client collector over one record store."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        with self.store.db.snapshot() as conn:
            units = conn.execute("SELECT verdict, method, COALESCE(profile, ''), COUNT(*) "
                                 "FROM units WHERE verdict IS NOT NULL GROUP BY 1, 2, 3"
                                 ).fetchall()
            runs = conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY 1").fetchall()
            out = conn.execute("SELECT bench_name, SUM(out_of_service) FROM slot_health "
                               "GROUP BY 1").fetchall()
            coils = conn.execute("SELECT COUNT(*) FROM outputs WHERE cleared_at IS NULL AND "
                                 "kind = ?", (OutputKind.SOLENOID_ON.value,)).fetchone()[0]
            last = conn.execute("SELECT MAX(julianday(finished_at)) FROM runs WHERE "
                                "finished_at IS NOT NULL").fetchone()[0]
            steps = _step_buckets(conn)
            faults = conn.execute("SELECT COALESCE(check_name, 'bench'), COUNT(*) FROM units "
                                  "WHERE fault = 'bench' AND verdict != 'out-of-service' "
                                  "GROUP BY 1").fetchall()
            owed = conn.execute("SELECT state, COUNT(*) FROM outbox_deliveries GROUP BY 1"
                                ).fetchall()
        yield _family(CounterMetricFamily("rig_units", "Units that got a verdict, by verdict, "
                                          "reset method and firmware profile.",
                                          labels=["verdict", "method", "profile"]),
                      (((r[0], r[1], r[2]), r[3]) for r in units))
        yield _family(CounterMetricFamily("rig_runs", "Runs recorded, by status (running "
                                          "included).", labels=["status"]),
                      (((r[0],), r[1]) for r in runs))
        yield _family(GaugeMetricFamily("rig_slots_out_of_service", "Slots out of service "
                                        "until an operator clears them.", labels=["bench"]),
                      (((r[0],), r[1] or 0) for r in out))
        yield GaugeMetricFamily("rig_solenoids_energised", "Reset solenoids energised now "
                                "(open in the outputs ledger).", value=coils)
        yield GaugeMetricFamily("rig_last_run_completed_timestamp_seconds",
                                "When the last run finished, Unix time (0: never).",
                                value=0.0 if last is None else (last - 2440587.5) * 86400.0)
        yield steps
        yield _family(CounterMetricFamily(
            "rig_bench_faults", "Units whose verdict blamed the bench, by what failed (snmp: "
            "the PoE switch, serial: a relay board, gpio, actuator, setup, internal; bench: "
            "recorded before kinds were).", labels=["kind"]),
            (((kind,), n) for kind, n in _zeros(BenchFaultKind, faults).items()))
        yield _family(GaugeMetricFamily(
            "rig_notifications", "Webhook deliveries by state (pending and sending: owed).",
            labels=["state"]), (((s,), n) for s, n in _zeros(DeliveryState, owed).items()))


def _zeros(words: type[BenchFaultKind] | type[DeliveryState], rows: Iterable[sqlite3.Row]
           ) -> dict[str, float]:
    """Counts by label with every known word present, at 0 when none: a series that exists
    from the start makes ``increase()`` see its first event (Prometheus' advice)."""
    counts = {str(word): 0.0 for word in words}
    counts.update({str(r[0]): float(r[1]) for r in rows})
    return counts


def _family(metric: CounterMetricFamily | GaugeMetricFamily,
            rows: Iterable[tuple[tuple[str, ...], float]]) -> Metric:
    for labels, value in rows:
        metric.add_metric(list(labels), value)
    return metric


def _step_buckets(conn: sqlite3.Connection) -> HistogramMetricFamily:
    """Finished steps' durations per step name, as cumulative buckets summed in SQL."""
    columns = ", ".join(f"SUM({_SECONDS} <= {b})" for b in STEP_BUCKETS)
    rows = conn.execute(f"SELECT name, COUNT(*), SUM({_SECONDS}), {columns} FROM steps "
                        "WHERE finished_at IS NOT NULL GROUP BY name ORDER BY name").fetchall()
    family = HistogramMetricFamily("rig_step_duration_seconds", "How long each finished step "
                                   "took, by step name.", labels=["step"])
    for row in rows:
        count, total = row[1], row[2] or 0.0
        buckets = [(repr(b), row[3 + i]) for i, b in enumerate(STEP_BUCKETS)]
        family.add_metric([row[0]], buckets + [("+Inf", count)], total)
    return family


def render(store: RecordStore) -> bytes:
    """The exposition text for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RecordCollector(store))
    return generate_latest(registry)
