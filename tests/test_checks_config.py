"""The bench file's ``[checks]`` table: a valid one loads and writes back; each mistake names the
file and the key; per-model exceptions take checks out of a unit's selection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rig.bench import BenchError, dump, load_bench
from rig.checks.config import ChecksConfig, ModelRule
from rig.vocabulary import CheckName, StoragePolicy

BASE = """
[bench]
gpio_factory = "mock"

[[slots]]
name = "A1"
power = { kind = "gpio", pin = 17 }
"""

CHECKS = """
[checks]
run = ["device-info", "snapshot", "rtsp", "ir-cut", "storage", "firmware-baseline", "cloud"]
key = ["device-info", "snapshot"]
storage = "format"
snapshot_min_stddev = 4.5
timeout_s = 10
format_timeout_s = 60

[checks.firmware_min]
current = "V5.5.0"
g5 = "V5.7.3"

[[checks.model]]
match = "DS-2CD2020*"
skip = ["ir-cut"]

[[checks.model]]
match = "DS-2CD1*"
skip = ["storage", "cloud"]
"""


def bench_with(tmp_path: Path, checks: str):
    path = tmp_path / "bench.toml"
    path.write_text(checks + BASE, encoding="utf-8")
    return load_bench(path)


def test_a_full_checks_table_loads(tmp_path):
    config = bench_with(tmp_path, CHECKS).checks
    assert config.run == tuple(CheckName)
    assert config.key == (CheckName.DEVICE_INFO, CheckName.SNAPSHOT)
    assert config.storage is StoragePolicy.FORMAT
    assert (config.snapshot_min_stddev, config.timeout_s, config.format_timeout_s) == (4.5, 10,
                                                                                       60)
    assert dict(config.firmware_min) == {"current": "V5.5.0", "g5": "V5.7.3"}
    assert config.models[0] == ModelRule("DS-2CD2020*", (CheckName.IR_CUT,))
    assert str(config.minimum_for("g5")) == "V5.7.3" and config.minimum_for("legacy") is None


def test_no_table_means_no_checks(tmp_path):
    config = bench_with(tmp_path, "").checks
    assert config == ChecksConfig() and not config.enabled
    assert config.storage is StoragePolicy.FLAG


def test_the_checks_table_writes_back(tmp_path):
    bench = bench_with(tmp_path, CHECKS)
    again = tmp_path / "again.toml"
    again.write_text(dump(bench), encoding="utf-8")
    assert load_bench(again).checks == bench.checks
    assert "[checks]" not in dump(bench_with(tmp_path, ""))


def test_model_exceptions_take_checks_out_of_the_selection(tmp_path):
    config = bench_with(tmp_path, CHECKS).checks
    assert CheckName.IR_CUT not in config.selected("DS-2CD2020F-I")
    assert CheckName.IR_CUT not in config.selected("ds-2cd2020f-iw")     # any case
    assert config.selected("DS-2CD1023G0") == (CheckName.DEVICE_INFO, CheckName.SNAPSHOT,
                                               CheckName.RTSP, CheckName.IR_CUT,
                                               CheckName.FIRMWARE_BASELINE)
    assert config.selected(None) == tuple(CheckName)
    assert config.selected("DS-2CD2020F", only=[CheckName.IR_CUT, CheckName.RTSP]) == (
        CheckName.RTSP,)


@pytest.mark.parametrize(("table", "key", "words"), [
    ('[checks]\nrun = ["snapshot", "telepathy"]', "checks.run", "'telepathy' is not one of"),
    ('[checks]\nrun = "snapshot"', "checks.run", "is not a list"),
    ('[checks]\nrun = ["rtsp"]\nkey = ["snapshot"]', "checks.key", "not in checks.run"),
    ('[checks]\nrun = ["rtsp", "rtsp"]', "checks.run", "names a check twice"),
    ('[checks]\nstorage = "shred"', "checks.storage", "not one of: format, flag, ignore"),
    ("[checks]\nsnapshot_min_stddev = -1", "checks.snapshot_min_stddev", "out of range"),
    ("[checks]\nsnapshot_min_stddev = nan", "checks.snapshot_min_stddev", "not a number"),
    ('[checks]\ntimeout_s = "10"', "checks.timeout_s", "is not a number"),
    ("[checks]\nformat_timeout_s = 0", "checks.format_timeout_s", "out of range"),
    ("[checks]\nretries = 3", "checks.retries", "unknown key; allowed here"),
    ('[checks.firmware_min]\nancient = "V1.0"', "checks.firmware_min.ancient",
     "unknown firmware family; known: "),
    ('[checks.firmware_min]\ncurrent = "five"', "checks.firmware_min.current",
     "not a firmware version"),
    ("[checks.firmware_min]\ncurrent = 5.5", "checks.firmware_min.current",
     "is not a firmware version"),
    ('[[checks.model]]\nskip = ["ir-cut"]', "checks.model[0].match", "missing"),
    ('[[checks.model]]\nmatch = ""', "checks.model[0].match", "is empty"),
    ('[[checks.model]]\nmatch = "DS*"\nskip = ["x-ray"]', "checks.model[0].skip",
     "'x-ray' is not one of"),
    ('[[checks.model]]\nmatch = "DS*"\nonly = ["rtsp"]', "checks.model[0].only",
     "unknown key"),
])
def test_a_mistake_names_the_file_and_the_key(tmp_path, table, key, words):
    with pytest.raises(BenchError) as err:
        bench_with(tmp_path, table + "\n")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'bench.toml'}: {key}: "), message
    assert re.search(re.escape(words), message), message
