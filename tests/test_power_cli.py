"""``rig power``, ``rig press`` and ``rig safe`` on bench files, through the real drivers."""

from __future__ import annotations

import json
import os

import pytest

from rig.cli import main
from rig.records import RecordStore


@pytest.fixture(autouse=True)
def record_store(tmp_path, monkeypatch):
    """Every command records into a store of this test's own."""
    path = tmp_path / "records.sqlite"
    monkeypatch.setenv("RIG_DB", str(path))
    return path

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


def test_power_through_a_serial_relay_board_reaches_the_camera(tmp_path, capsys):
    from rig.camera.profiles import ProfileSet
    from rig.sim.camera import CameraState, VirtualCamera
    from rig.sim.serial_board import SimulatedRelayBoard

    camera = VirtualCamera(ProfileSet.load().get("current"), mac="44:47:cc:0b:00:01",
                           serial="S1", address="127.0.1.1", time_scale=1000)
    link = tmp_path / "usb-relay"
    with SimulatedRelayBoard("numato", channels=4, link=link) as board:
        board.attach(1, camera.set_power)
        board.attach(2, camera.set_button)
        bench = tmp_path / "bench.toml"
        bench.write_text(f"""
[bench]
solenoid_max_on_seconds = 2
[relay_boards.r]
port = "{link}"
protocol = "numato"
channels = 4
[[slots]]
name = "7"
power = {{ kind = "relay", board = "r", channel = 1 }}
button = {{ kind = "relay", board = "r", channel = 2 }}
""", encoding="utf-8")
        assert main(["power", "7", "on", "--bench", str(bench)]) == 0
        assert capsys.readouterr().out.split()[:2] == ["7", "ON"]   # Numato reads back
        assert camera.wait_running(2) and camera.state is CameraState.RUNNING
        assert main(["press", "7", "--seconds", "0.05", "--bench", str(bench)]) == 0
        assert board.state(2) is False and board.state(1) is True   # released; power kept
        assert main(["power", "7", "off", "--bench", str(bench)]) == 0
        assert camera.state is CameraState.OFF
        assert main(["safe", str(bench)]) == 0
        assert board.states[1] is False and board.states[2] is False


def test_power_through_a_poe_switch_over_snmp_reaches_the_camera(tmp_path, capsys):
    from rig.camera.profiles import ProfileSet
    from rig.sim.camera import CameraState, VirtualCamera
    from rig.sim.switch import VirtualSwitch

    camera = VirtualCamera(ProfileSet.load().get("g5"), mac="44:47:cc:0b:00:02",
                           serial="S2", address="127.0.1.1", time_scale=1000)
    with VirtualSwitch(8, bind="127.0.0.1") as switch:
        switch.attach(3, camera)
        assert camera.wait_running(2)
        bench = tmp_path / "bench.toml"
        bench.write_text(f"""
[switches.sw]
host = "127.0.0.1"
port = {switch.udp_port}
community = "private"
timeout = 1.0
[[slots]]
name = "P3"
power = {{ kind = "poe", switch = "sw", port = 3 }}
""", encoding="utf-8")
        assert main(["power", "P3", "off", "--bench", str(bench)]) == 0
        assert capsys.readouterr().out.split()[:2] == ["P3", "OFF"]
        assert camera.state is CameraState.OFF          # an explicit off stays off
        assert main(["power", "P3", "status", "--bench", str(bench), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["slots"]["P3"]["drawing_power"] is False
        assert main(["safe", str(bench)]) == 0           # rest state: PoE ports on
        assert camera.wait_running(2)
    assert main(["power", "P3", "status", "--bench", str(bench)]) == 1   # switch gone
    assert "timeout" in capsys.readouterr().out
    assert main(["safe", str(bench)]) == 1          # cannot rest the port: said and recorded
    assert "slot P3" in capsys.readouterr().err
    with RecordStore.open(os.environ["RIG_DB"]) as store:
        [entry] = store.outputs.open()
        assert (entry.kind, entry.target) == ("left-engaged", "switch sw port 3")
        assert "could not rest" in entry.note


def test_manual_operations_are_recorded_with_the_outputs_they_leave(gpio_bench, record_store,
                                                                   capsys):
    assert main(["power", "2", "off", "--bench", gpio_bench]) == 0
    with RecordStore.open(record_store) as store:
        [entry] = store.outputs.open()
        assert (entry.slot, entry.kind, entry.target) == ("2", "power-off", "GPIO 27")
    assert main(["press", "1", "--seconds", "0.05", "--bench", gpio_bench]) == 0
    assert main(["power", "2", "on", "--bench", gpio_bench]) == 0
    with RecordStore.open(record_store) as store:
        assert store.outputs.open() == []
        runs = store.runs.history()
        assert [r.run.method for r in runs] == ["manual: power on", "manual: press 0.05 s",
                                                "manual: power off"]
        assert all(r.run.status == "passed" for r in runs)


def test_an_unusable_record_store_stops_the_command_before_any_output_moves(gpio_bench,
                                                                            tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    assert main(["power", "1", "on", "--bench", gpio_bench, "--db",
                 str(blocker / "records.sqlite")]) == 2
    assert "record store" in capsys.readouterr().err
