"""``rig power``, ``rig press`` and ``rig safe`` on bench files, through the real drivers."""

from __future__ import annotations

import json

import pytest

from rig.cli import main

GPIO_BENCH = """
[bench]
name = "gpio bench"
gpio_factory = "mock"
solenoid_max_on_seconds = 2
settle_seconds = 0.05

[[slots]]
name = "1"
power = { kind = "gpio", pin = 17, active_high = false }
button = { kind = "gpio", pin = 22 }

[[slots]]
name = "2"
power = { kind = "gpio", pin = 27 }
"""


@pytest.fixture
def gpio_bench(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text(GPIO_BENCH, encoding="utf-8")
    return str(path)


def test_power_on_reads_back_and_reports_the_gpio_rest_rule(gpio_bench, capsys):
    assert main(["power", "1", "on", "--bench", gpio_bench, "--json"]) == 0
    captured = capsys.readouterr()
    slot = json.loads(captured.out)["slots"]["1"]
    assert slot["state"] == "on" and slot["output"] == "GPIO 17 (active-low)"
    assert "returns to its rest state" in captured.err


def test_power_status_of_all_slots(gpio_bench, capsys):
    assert main(["power", "all", "status", "--bench", gpio_bench]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out] == [["1", "OFF"], ["2", "OFF"]]


def test_power_cycle(gpio_bench, capsys):
    assert main(["power", "2", "cycle", "--bench", gpio_bench, "--off-seconds", "0.01"]) == 0
    assert capsys.readouterr().out.split()[:2] == ["2", "ON"]


def test_unknown_slot_and_missing_bench_are_clear_errors(gpio_bench, capsys, monkeypatch):
    assert main(["power", "9", "on", "--bench", gpio_bench]) == 2
    assert "no slot named '9'; slots: 1, 2" in capsys.readouterr().err
    monkeypatch.delenv("RIG_BENCH", raising=False)
    assert main(["power", "1", "on"]) == 2
    assert "give --bench FILE or set RIG_BENCH" in capsys.readouterr().err


def test_press_within_the_cap(gpio_bench, capsys):
    assert main(["press", "1", "--seconds", "0.05", "--bench", gpio_bench]) == 0
    assert "pressed 0.05 s (GPIO 22), released" in capsys.readouterr().out


def test_press_beyond_the_cap_is_refused(gpio_bench, capsys):
    assert main(["press", "1", "--seconds", "5", "--bench", gpio_bench]) == 2
    assert "outside (0, 2] s, the solenoid's on-time cap" in capsys.readouterr().err


def test_press_on_a_slot_without_a_button(gpio_bench, capsys):
    assert main(["press", "2", "--seconds", "0.1", "--bench", gpio_bench]) == 2
    assert "slot 2 has no button solenoid" in capsys.readouterr().err


def test_safe_rests_every_output(gpio_bench, capsys):
    assert main(["safe", gpio_bench]) == 0
    assert "2 slot(s) at rest" in capsys.readouterr().out
