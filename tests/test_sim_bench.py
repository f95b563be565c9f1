"""The simulated bench as one object (rig.sim.bench.SimBench), driven by the real drivers.

Loopback only. Addresses: 127.0.1.40–79 for the benches started here (each test its own range,
so a bench one test leaves powered cannot answer for another), 127.0.1.80–99 for the
``rig sim bench`` process. MACs come from a block drawn per run, and discovery results are
filtered by them: other tests or processes may have simulated units on loopback too.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rig.bench import GpioOutput, PoeOutput, RelayOutput, load_bench
from rig.camera.discovery import discover
from rig.sim.bench import (
    EXTRA_SOLENOID_PINS,
    RELAY_PINS,
    SOLENOID_PINS,
    SimBench,
    SimSlot,
)
from rig.sim.camera import CameraState, SimFaults, VirtualCamera
from rig.wiring import BenchHardware, SlotHardware

REPO = Path(__file__).resolve().parent.parent
TIME_SCALE = 200.0
PASSWORD = "Secret123!"
#: Drawn per run (0x10..0xEF): keeps these MACs apart from other simulated units on the host.
MAC_BLOCK = 0x10 + secrets.randbelow(0xE0)

#: Two slots of each power kind, every firmware family on more than one kind.
MIXED = [SimSlot(power="gpio", profile="current"), SimSlot(power="gpio", profile="legacy"),
         SimSlot(power="poe", profile="legacy"), SimSlot(power="poe", profile="g5"),
         SimSlot(power="relay", profile="g5"), SimSlot(power="relay", profile="current")]


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def start(spec: list[SimSlot], directory: Path, first: int, **kwargs) -> SimBench:
    kwargs.setdefault("provision", PASSWORD)
    return SimBench.start(spec, directory=directory, time_scale=TIME_SCALE, base="127.0.1.",
                          first=first, mac_block=MAC_BLOCK, **kwargs)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimBench]:
    """A six-slot bench that no test drives: for reading the file and for discovery."""
    with start(MIXED, tmp_path_factory.mktemp("mixed"), first=40) as sim:
        yield sim


def is_factory_default(camera: VirtualCamera) -> bool:
    """Settings as a reset leaves them: no password (current, G5) or admin/12345 (legacy)."""
    return camera.settings == camera.factory_settings()


def hard_reset(hw: SlotHardware, camera: VirtualCamera) -> None:
    """What a hard-reset procedure does: power off, press, power on, hold, release, boot."""
    hold = camera.profile.hold_seconds[0] / TIME_SCALE * 1.5 + 0.02
    assert hw.button is not None
    hw.power.off()
    assert wait_until(lambda: camera.state is CameraState.OFF)
    with hw.button.hold(hold + 0.5):
        hw.power.on()
        time.sleep(hold)
    assert camera.wait_running(timeout=5)


# --- the bench and its file ---------------------------------------------------------------------

def test_the_bench_file_loads_and_describes_the_units(mixed: SimBench) -> None:
    bench = load_bench(mixed.bench_path)        # validates: outputs, profiles, unique units
    assert bench == mixed.bench
    assert bench.gpio_factory == "mock" and bench.time_scale == TIME_SCALE
    assert bench.network.address == "127.0.0.1" and bench.network.identity == "serialised"
    assert bench.solenoid_max_on_seconds >= 30 / TIME_SCALE + 1
    assert [slot.name for slot in bench.slots] == ["1", "2", "3", "4", "5", "6"]
    for slot, sim_slot in zip(bench.slots, MIXED, strict=True):
        camera = mixed.cameras[slot.name]
        assert slot.power.kind == sim_slot.power
        assert (slot.mac, slot.serial, slot.address, slot.profile) == (
            camera.mac, camera.serial, camera.address, camera.profile.name)
        assert slot.profile == sim_slot.profile
    assert [c.address for c in mixed.cameras.values()] == [f"127.0.1.{n}" for n in range(40, 46)]


def test_outputs_follow_the_pin_map_and_reach_the_simulated_parts(mixed: SimBench) -> None:
    bench = mixed.bench
    gpio = [s for s in bench.slots if isinstance(s.power, GpioOutput)]
    assert [(s.power.pin, s.power.active_high) for s in gpio] == [(4, False), (5, False)]
    gpio_buttons = [s.button.pin for s in bench.slots if isinstance(s.button, GpioOutput)]
    assert gpio_buttons == [17, 27, 22, 23] and all(s.button.active_high for s in bench.slots
                                                     if isinstance(s.button, GpioOutput))
    switch = bench.switches["sim"]
    assert mixed.switch is not None and (switch.host, switch.port) == mixed.switch.address
    assert switch.community.get() == "private" and switch.version == "2c"
    assert [s.power.port for s in bench.slots if isinstance(s.power, PoeOutput)] == [1, 2]
    board = bench.relay_boards["sim"]
    assert mixed.relay_board is not None and board.protocol == "numato"
    assert Path(board.port).parent == mixed.bench_path.parent
    assert Path(board.port).resolve() == Path(mixed.relay_board.path)
    relay = [(s.power.channel, s.button.channel) for s in bench.slots
             if isinstance(s.power, RelayOutput) and isinstance(s.button, RelayOutput)]
    assert relay == [(1, 2), (3, 4)] and board.channels == 4
    assert mixed.relay_board.frames == []       # the power-up frames are not the run's


def test_every_unit_starts_powered_running_and_provisioned(mixed: SimBench) -> None:
    for camera in mixed.cameras.values():
        assert camera.powered and camera.state is CameraState.RUNNING
        assert camera.password_for("admin") == PASSWORD and camera.activated
        assert camera.settings.ipv4 == camera.default_ipv4 == camera.address
        assert camera.http_port not in (0, 80)        # ephemeral, reported in SADP
    assert mixed.switch is not None and mixed.relay_board is not None
    assert [mixed.switch.state(p).delivering for p in (1, 2)] == [True, True]
    assert mixed.relay_board.states == {1: True, 2: False, 3: True, 4: False}


def test_discovery_finds_exactly_the_bench_units(mixed: SimBench) -> None:
    want = {slot.mac: slot for slot in mixed.bench.slots}
    found = [d for d in discover(timeout=1.5, bind="127.0.0.1") if d.mac in want]
    assert sorted(d.mac for d in found) == sorted(want)          # each exactly once
    for device in found:
        slot = want[device.mac]
        camera = mixed.cameras[slot.name]
        assert (device.serial, device.ipv4, device.http_port) == (
            slot.serial, slot.address, camera.http_port)


# --- through the real drivers ---------------------------------------------------------------

def test_each_slot_powers_only_its_own_camera(tmp_path: Path) -> None:
    with start(MIXED, tmp_path, first=46) as sim:
        cameras = sim.cameras
        with BenchHardware(sim.bench, pin_factory=sim.pin_factory) as hw:
            for name, camera in cameras.items():
                slot = hw.slot(name)
                if sim.slots[name].power == "gpio":
                    # GpioPower is built OFF: opening a GPIO slot powers its camera down.
                    assert camera.state is CameraState.OFF
                    slot.power.on()
                    assert camera.wait_running(timeout=5)
                assert all(c.running for c in cameras.values())
                slot.power.off()
                assert wait_until(lambda c=camera: c.state is CameraState.OFF), name
                assert all(c.powered for n, c in cameras.items() if n != name), name
                slot.power.on()
                assert camera.wait_running(timeout=5), name
                assert camera.activated and not is_factory_default(camera)   # a plain boot
        # Rest state: released GPIO relays float to off; PoE ports and serial relays stay on.
        assert {n: c.powered for n, c in cameras.items()} == {
            "1": False, "2": False, "3": True, "4": True, "5": True, "6": True}


def test_a_solenoid_held_around_power_on_factory_resets_each_unit(tmp_path: Path) -> None:
    with start(MIXED, tmp_path, first=52) as sim, \
            BenchHardware(sim.bench, pin_factory=sim.pin_factory) as hw:
        for name, camera in sim.cameras.items():
            assert camera.activated and not is_factory_default(camera)
            hard_reset(hw.slot(name), camera)
            assert is_factory_default(camera), name
            assert "factory reset by button" in [what for _, what in camera.events], name
            # current and G5 come back inactive; legacy with its factory admin/12345
            assert camera.activated is camera.profile.activated_from_factory, name
            assert camera.password_for("admin") == camera.profile.default_password, name


def test_a_jammed_button_does_not_reset(tmp_path: Path) -> None:
    spec = [SimSlot(power="relay", profile="g5", faults=SimFaults(jammed_button=True)),
            SimSlot(power="gpio", profile="current", faults=SimFaults(jammed_button=True)),
            SimSlot(power="poe", profile="current")]                 # the control: not jammed
    with start(spec, tmp_path, first=58) as sim, \
            BenchHardware(sim.bench, pin_factory=sim.pin_factory) as hw:
        for name, camera in sim.cameras.items():
            hard_reset(hw.slot(name), camera)
        jammed, healthy = [sim.cameras["1"], sim.cameras["2"]], sim.cameras["3"]
        for camera in jammed:
            events = [what for _, what in camera.events]
            assert "power on" in events and "button pressed" not in events
            assert camera.password_for("admin") == PASSWORD
        assert is_factory_default(healthy) and not healthy.activated
    assert "simulated fault: jammed_button" in sim.bench_path.read_text()


def test_without_expected_identity_the_bench_file_names_no_unit(tmp_path: Path) -> None:
    with start([SimSlot("poe", "legacy"), SimSlot("relay", "current")], tmp_path, first=62,
               expected_identity=False, boot=False) as sim:
        text = sim.bench_path.read_text()
        assert not re.search(r"^(mac|serial) =", text, re.MULTILINE)
        assert [(s.mac, s.serial) for s in sim.bench.slots] == [(None, None), (None, None)]
        assert [s.address for s in sim.bench.slots] == ["127.0.1.62", "127.0.1.63"]
        assert [s.profile for s in sim.bench.slots] == ["legacy", "current"]


# --- lifetime -----------------------------------------------------------------------------------

def udp_port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_stop_frees_everything_and_is_idempotent(tmp_path: Path) -> None:
    spec = [SimSlot("gpio"), SimSlot("poe"), SimSlot("relay")]
    sim = start(spec, tmp_path / "a", first=66)
    assert sim.switch is not None and sim.relay_board is not None
    link, (_, snmp_port) = sim.relay_board.link, sim.switch.address
    http = [(c.address, c.http_port) for c in sim.cameras.values()]
    sim.stop()
    sim.stop()
    assert link is not None and not link.exists() and not sim.switch.running
    assert udp_port_is_free(snmp_port)
    for address in http:
        with pytest.raises(OSError), socket.create_connection(address, timeout=0.5):
            pass
    with start(spec, tmp_path / "b", first=66) as again:     # the same addresses, at once
        assert again.wait_running(timeout=1)
    assert not again.relay_board.link.exists()


def test_a_start_that_fails_midway_stops_what_it_started(tmp_path: Path) -> None:
    spec = [SimSlot("gpio"), SimSlot("poe"), SimSlot("relay")]
    with pytest.raises(RuntimeError, match=r"slot\(s\) 1, 2, 3 not running"):
        # Real-time boot (45-75 s) against a 10 ms wait: fails after every part started.
        SimBench.start(spec, directory=tmp_path / "a", time_scale=1.0, first=70,
                       mac_block=MAC_BLOCK, boot_timeout=0.01)
    assert not (tmp_path / "a" / "relay-board").exists()
    with start(spec, tmp_path / "b", first=70, boot=False):   # addresses and SADP ports free
        pass


@pytest.mark.parametrize(("spec", "kwargs", "message"), [
    ([SimSlot("gpio")] * 12, {}, "not enough GPIO pins: 12 GPIO-powered slot"),
    ([SimSlot("poe")] * 18, {}, "at most 17 of them for solenoids"),
    ([SimSlot("relay")] * 5, {"relay_protocol": "lcus"}, "need 10 channels"),
    ([SimSlot("relay")], {"relay_protocol": "kmtronic"}, "at most 1"),
    ([SimSlot("gpio")], {"time_scale": 0.5}, "time_scale must be at least 1"),
    ([SimSlot("gpio")] * 3, {"first": 253}, "within 1..254"),
    ([SimSlot("gpio")], {"base": "10.0.0."}, "not a loopback address"),
    ([SimSlot("gpio", profile="nosuch")], {}, "unknown firmware profile 'nosuch'"),
    ([], {}, "at least one slot"),
])
def test_impossible_benches_are_refused_before_anything_starts(tmp_path, spec, kwargs, message):
    kwargs = {"directory": tmp_path / "bench", "first": 74, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        SimBench.start(spec, **kwargs)
    assert not (tmp_path / "bench").exists()


def test_a_bad_slot_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="SimSlot power 'usb'"):
        SimSlot(power="usb")


def test_gpio_pins_are_those_of_the_hardware_pin_map() -> None:
    pinmap = REPO / "hardware" / "pinmap.md"
    if not pinmap.exists():
        pytest.skip("hardware/pinmap.md not in this checkout")
    relays, solenoids = [], {}
    for row in re.finditer(r"^\| (\d+) \| \d+ \| ([^|]+)\|", pinmap.read_text(), re.MULTILINE):
        pin, role = int(row.group(1)), row.group(2)
        if role.startswith("camera relay"):
            relays.append(pin)
        elif (slot := re.match(r"solenoid, slot (\d+)", role)) is not None:
            solenoids[int(slot.group(1))] = pin
    assert relays and solenoids
    assert list(RELAY_PINS) == relays
    assert list(SOLENOID_PINS[:len(solenoids)]) == [solenoids[n] for n in sorted(solenoids)]
    spares = re.search(r"Spare pins, pulled down at boot\*\*: ([\d, ]*\d)", pinmap.read_text())
    assert spares is not None
    assert list(SOLENOID_PINS[len(solenoids):]) == [int(p) for p in spares.group(1).split(",")]
    assert not set(EXTRA_SOLENOID_PINS) & set(SOLENOID_PINS)


# --- rig sim bench ------------------------------------------------------------------------------

def test_rig_sim_bench_process_serves_until_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "sim", "bench", "--slots", "3", "--first", "80",
         "--time-scale", "500", "--jammed", "2", "--dir", str(tmp_path), "--json",
         "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        info = json.loads(proc.stdout.readline())
        assert json.loads(proc.stdout.readline()) == {"running": True}
        bench = load_bench(info["bench"])
        assert Path(info["bench"]).parent == tmp_path
        assert [(s["slot"], s["power_kind"], s["profile"], s["address"], s["faults"])
                for s in info["slots"]] == [
            ("1", "gpio", "current", "127.0.1.80", []),
            ("2", "poe", "legacy", "127.0.1.81", ["jammed_button"]),
            ("3", "relay", "g5", "127.0.1.82", [])]
        assert [s.mac for s in bench.slots] == [s["mac"] for s in info["slots"]]
        assert "rig power" in info["gpio_note"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "relay-board").exists()


def test_rig_sim_bench_prints_a_table_and_the_gpio_note(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rig.cli", "sim", "bench", "--slots", "2", "--first", "84",
         "--power", "gpio,poe", "--time-scale", "1000", "--dir", str(tmp_path),
         "--duration", "0"], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert f"bench file: {tmp_path / 'bench.toml'}" in proc.stdout
    lines = proc.stdout.splitlines()
    assert any(line.startswith("1    GPIO 4 (active-low)") and "127.0.1.84" in line
               for line in lines)
    assert any(line.startswith("2    switch sim port 1") for line in lines)
    assert "cannot drive them" in proc.stdout


def test_rig_sim_bench_refuses_an_unknown_slot_to_jam() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rig.cli", "sim", "bench", "--slots", "2", "--jammed", "5",
         "--duration", "0"], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert proc.returncode == 2
    assert "--jammed: no slot '5'; slots are 1..2" in proc.stderr
    assert "Traceback" not in proc.stderr
