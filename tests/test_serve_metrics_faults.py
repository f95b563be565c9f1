"""Bench faults by kind: a bench fault says which part failed (the driver error it came from:
SNMP, serial, GPIO; or the bench's setup), the verdict's check records it, and ``/metrics``
counts them by kind, every kind present from the start; webhook deliveries by state."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from records_support import new_run

from rig.actuators.base import ActuatorError
from rig.actuators.gpio import GpioError
from rig.actuators.serial_link import SerialError
from rig.actuators.snmp import SnmpTimeout
from rig.faults import BenchFault
from rig.records import RecordStore
from rig.serve.metrics import render
from rig.vocabulary import BenchFaultKind, RunStatus, Verdict


def raised_from(cause: BaseException | None) -> BenchFault:
    try:
        try:
            if cause is not None:
                raise cause
            raise BenchFault("slot 3 has no reset-button solenoid")
        except ActuatorError as exc:
            raise BenchFault(str(exc)) from exc
    except BenchFault as fault:
        return fault


def test_a_bench_fault_names_the_part_that_failed():
    assert raised_from(SnmpTimeout("switch main", "no answer")).kind is BenchFaultKind.SNMP
    assert raised_from(SerialError("relay board", "gone")).kind is BenchFaultKind.SERIAL
    assert raised_from(GpioError("gpio 17", "busy")).kind is BenchFaultKind.GPIO
    assert raised_from(ActuatorError("coil 2", "stuck")).kind is BenchFaultKind.ACTUATOR
    assert raised_from(None).kind is BenchFaultKind.SETUP
    assert BenchFault("x", BenchFaultKind.INTERNAL).kind is BenchFaultKind.INTERNAL


def test_metrics_count_bench_faults_by_kind_and_deliveries_by_state(tmp_path):
    with RecordStore(tmp_path / "rig.sqlite") as store:
        store.outbox.register("t", "bench-a")
        run = new_run(store)
        for slot, kind in (("1", "snmp"), ("2", "snmp"), ("3", "serial")):
            unit = store.runs.start_unit(run, slot, method="hard")
            store.runs.finish_unit(unit, Verdict.BENCH_FAULT, "failed", check=kind)
        store.runs.finish_run(run, RunStatus.FAILED)
        store.outbox.enqueue("t", ["run-finished"])
        families = {f.name: f for f in text_string_to_metric_families(render(store).decode())}
    faults = {s.labels["kind"]: s.value for s in families["rig_bench_faults"].samples
              if s.name == "rig_bench_faults_total"}
    assert faults == {"snmp": 2.0, "serial": 1.0, "gpio": 0.0, "actuator": 0.0, "setup": 0.0,
                      "internal": 0.0}
    owed = {s.labels["state"]: s.value for s in families["rig_notifications"].samples}
    assert owed == {"pending": 1.0, "sending": 0.0, "delivered": 0.0}
