"""rig doctor's probes one by one, on small bench files: each fault named with its fix, a
crashing or hanging probe reported instead of raised, the exit codes, the usage errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from gpiozero import OutputDevice
from gpiozero.pins.mock import MockFactory

from rig.bench import load_bench
from rig.cli import main
from rig.doctor import DoctorContext, exit_code, run_doctor
from rig.doctor import clock as clock_probe
from rig.doctor import gpio as gpio_probe
from rig.doctor import network as network_probe
from rig.doctor import records as records_probe
from rig.doctor.clock import ClockReading
from rig.doctor.findings import Finding, ok, warn
from rig.doctor.output import as_table
from rig.doctor.switches import _cleartext_risk
from rig.records import RecordStore
from rig.vocabulary import DoctorArea, FindingLevel, OutputKind

BENCH = """
[bench]
name = "{name}"
gpio_factory = "mock"
[network]
address = "{address}"
[[slots]]
name = "1"
power = {{ kind = "gpio", pin = {power_pin}, active_high = {power_high} }}
button = {{ kind = "gpio", pin = {button_pin}, active_high = {button_high} }}
"""


def bench_file(tmp_path, name="doc", address="127.0.0.1", power_pin=22, power_high="false",
               button_pin=23, button_high="true"):
    path = tmp_path / f"{name}.toml"
    path.write_text(BENCH.format(name=name, address=address, power_pin=power_pin,
                                 power_high=power_high, button_pin=button_pin,
                                 button_high=button_high), encoding="utf-8")
    return path


def context(tmp_path, **kwargs) -> DoctorContext:
    factory = kwargs.pop("pin_factory", None) or MockFactory()
    return DoctorContext(bench=load_bench(bench_file(tmp_path, **kwargs)),
                         db_path=tmp_path / "rig.sqlite", pin_factory=factory)


def levels(findings: list[Finding]) -> dict[str, FindingLevel]:
    return {f.name: f.level for f in findings}


# --- the command -----------------------------------------------------------------------------

def test_a_bad_bench_file_is_a_usage_error_naming_file_and_key(tmp_path, capsys):
    assert main(["doctor", str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml: no such bench file" in capsys.readouterr().err
    path = bench_file(tmp_path, button_pin=40)
    assert main(["doctor", str(path)]) == 2
    err = capsys.readouterr().err
    assert "rig doctor: error:" in err and "pin" in err and str(path) in err


def test_registering_the_command_imports_nothing_heavy():
    code = ("import argparse, sys\n"
            "import rig.commands.doctor as d\n"
            "d.register(argparse.ArgumentParser().add_subparsers())\n"
            "print(sorted(m for m in ('pysnmp', 'gpiozero', 'serial', 'rig.doctor', "
            "'rig.bench') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True)
    assert done.stdout.strip() == "[]"


def test_warnings_alone_exit_0_and_say_so(tmp_path):
    bench = load_bench(bench_file(tmp_path))
    findings = [ok(DoctorArea.CLOCK, "c", "fine"), warn(DoctorArea.NETWORK, "n", "hm", "do x")]
    assert exit_code(findings) == 0
    table = as_table(bench, findings)
    assert "warnings only" in table and "fix: do x" in table


# --- the runner ------------------------------------------------------------------------------

def test_a_crashing_probe_is_a_fail_naming_the_error(tmp_path):
    def crash(ctx):
        raise RuntimeError("the probe fell over")

    findings = run_doctor(context(tmp_path), probes=[(DoctorArea.RELAY, crash)])
    assert [(f.area, f.level) for f in findings] == [(DoctorArea.RELAY, FindingLevel.FAIL)]
    assert "RuntimeError: the probe fell over" in findings[0].message


def test_a_hanging_probe_is_given_up_at_the_deadline(tmp_path):
    release = threading.Event()
    ctx = DoctorContext(bench=load_bench(bench_file(tmp_path)), db_path=tmp_path / "r.sqlite",
                        deadline=0.3)
    started = time.monotonic()
    try:
        findings = run_doctor(ctx, probes=[(DoctorArea.UNITS, lambda c: [release.wait(10)]),
                                           (DoctorArea.CLOCK, lambda c: [])])
    finally:
        release.set()
    assert time.monotonic() - started < 2
    assert levels(findings) == {"units": FindingLevel.FAIL}
    assert "did not finish within 0.3 s" in findings[0].message


# --- GPIO ------------------------------------------------------------------------------------

def test_a_solenoid_on_a_pin_that_boots_high_fails_a_relay_there_warns(tmp_path):
    findings = gpio_probe.probe(context(tmp_path, power_pin=6, power_high="true",
                                        button_pin=5))
    by_name = levels(findings)
    assert by_name["GPIO5 (slot 1 solenoid)"] is FindingLevel.FAIL
    assert by_name["GPIO6 (slot 1 power relay)"] is FindingLevel.WARN
    assert by_name["pin factory mock"] is FindingLevel.OK


def test_an_active_low_relay_on_a_boot_high_pin_is_fine_and_reserved_pins_fail(tmp_path):
    findings = gpio_probe.probe(context(tmp_path, power_pin=4, button_pin=14))
    by_name = levels(findings)
    assert by_name["GPIO4 (slot 1 power relay)"] is FindingLevel.OK
    assert by_name["GPIO14 (slot 1 solenoid)"] is FindingLevel.FAIL


def test_a_pin_held_by_another_device_is_named_and_not_touched(tmp_path):
    factory = MockFactory()
    holder = OutputDevice(23, pin_factory=factory, initial_value=True)
    try:
        findings = gpio_probe.probe(context(tmp_path, pin_factory=factory))
        (free,) = [f for f in findings if f.name == "pin factory mock"]
        assert free.level is FindingLevel.FAIL and "GPIO23" in free.message
        assert holder.value == 1, "the doctor changed a pin it does not own"
        assert factory.pin(22).function == "input", "the doctor claimed a free pin"
    finally:
        holder.close()


def test_kernel_line_info_is_read_as_the_kernel_writes_it():
    raw = gpio_probe.LINEINFO.pack(17, gpio_probe.FLAG_USED | gpio_probe.FLAG_OUT,
                                   b"GPIO17", b"lg")
    assert gpio_probe.parse_line_info(raw) == "lg, as output"
    assert gpio_probe.parse_line_info(gpio_probe.LINEINFO.pack(17, 0, b"", b"")) is None
    assert gpio_probe.LINEINFO.size == 72 and gpio_probe.CHIPINFO.size == 68
    assert gpio_probe.kernel_line_users([17], chips=[]) == {}


# --- records ---------------------------------------------------------------------------------

def dead_run(store: RecordStore, bench_name: str) -> int:
    run = store.runs.start_run(bench_name, method="hard")
    store.outputs.engaged(run, "1", OutputKind.SOLENOID_ON, "GPIO 23", "held")
    with sqlite3.connect(store.path) as conn:          # its process is gone (not this one)
        conn.execute("UPDATE runs SET process_start = 'gone' WHERE id = ?", (run,))
    return run


def test_a_dead_run_with_a_coil_on_fails_and_names_rig_safe_without_recovering(tmp_path):
    ctx = context(tmp_path)
    with RecordStore(ctx.db_path) as store:
        mine, theirs = dead_run(store, "doc"), dead_run(store, "bench-b")
    findings = records_probe.probe(ctx)
    by_name = {f.name: f for f in findings}
    assert by_name[f"run {mine}"].level is FindingLevel.FAIL
    assert f"rig safe {ctx.bench.path}" in by_name[f"run {mine}"].fix
    assert "GPIO 23" in by_name[f"run {mine}"].message
    assert "bench bench-b's file" in by_name[f"run {theirs}"].fix
    with RecordStore(ctx.db_path) as store:
        assert len(store.outputs.open()) == 2, "the doctor recovered: it must only report"
        assert len(store.runs.dead_runs()) == 2


def test_a_damaged_store_fails_its_integrity_check(tmp_path):
    ctx = context(tmp_path)
    ctx.db_path.write_bytes(b"SQLite format 3\0" + b"\xff" * 4096)
    by_name = levels(records_probe.probe(ctx))
    assert by_name["integrity"] is FindingLevel.FAIL


def test_a_missing_store_is_fine_where_it_can_be_created(tmp_path):
    findings = records_probe.probe(context(tmp_path))
    assert {f.level for f in findings} == {FindingLevel.OK}
    assert not (tmp_path / "rig.sqlite").exists(), "the doctor created the store"


# --- clock, network, switch ------------------------------------------------------------------

@pytest.mark.parametrize(("reading", "level"), [
    (ClockReading(True, "t"), FindingLevel.OK), (ClockReading(False, "t"), FindingLevel.WARN),
    (ClockReading(None, "t"), FindingLevel.WARN)])
def test_clock_sync_states(tmp_path, reading, level):
    ctx = DoctorContext(bench=load_bench(bench_file(tmp_path)), db_path=tmp_path / "r",
                        clock_source=lambda: reading)
    assert [f.level for f in clock_probe.probe(ctx)] == [level]
    assert [f.level for f in clock_probe.probe(ctx, now=86400.0)] == [FindingLevel.FAIL]


def test_an_address_this_host_does_not_hold_fails(tmp_path):
    findings = network_probe.probe(context(tmp_path, address="192.0.2.77"))
    assert levels(findings) == {"192.0.2.77": FindingLevel.FAIL}
    assert "ip addr add 192.0.2.77/24" in findings[0].fix


def test_a_missing_interface_fails(tmp_path):
    path = bench_file(tmp_path)
    path.write_text(path.read_text().replace("[network]\n", "[network]\n"
                                             "interface = \"rigdoc-none0\"\n"))
    ctx = DoctorContext(bench=load_bench(path), db_path=tmp_path / "r")
    assert levels(network_probe.probe(ctx))["rigdoc-none0"] is FindingLevel.FAIL


def test_a_well_known_v2c_community_warns_only_off_loopback(tmp_path):
    from rig.bench import Secret, SwitchConfig

    assert _cleartext_risk(SwitchConfig("s", "10.0.0.2", community=Secret("private")))
    assert not _cleartext_risk(SwitchConfig("s", "127.0.0.1", community=Secret("private")))
    assert not _cleartext_risk(SwitchConfig("s", "10.0.0.2", community=Secret(env="X")))
