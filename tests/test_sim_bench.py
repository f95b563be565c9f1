"""The simulated bench as one object (rig.sim.bench.SimBench), driven by the real drivers.

Loopback only. Addresses: 127.0.1.40–79 for the benches started here (each test its own range,
so a bench one test leaves powered cannot answer for another), 127.0.1.80–99 for the
``rig sim bench`` process; the benches with relay buttons use a /24 no other test module
uses: 127.0.2.1–24 (the 24-slot PoE bench), .30–32, .40–44 and .101–148 (48 slots). MACs
come from a block drawn per run, and discovery results are filtered by them: other tests or
processes may have simulated units on loopback too.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rig.bench import GpioOutput, PoeOutput, RelayOutput, dump, load_bench
from rig.camera.discovery import discover, open_group_socket
from rig.camera.sadp import PORT, SadpError, build_probe, parse_probe_match
from rig.records import RecordStore
from rig.runner import Runner
from rig.sim.bench import (
    EXTRA_SOLENOID_PINS,
    RELAY_PINS,
    SOLENOID_PINS,
    SimBench,
    SimSlot,
)
from rig.sim.camera import CameraState, SimFaults, VirtualCamera
from rig.vocabulary import RunStatus, Verdict
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
    kwargs.setdefault("base", "127.0.1.")
    return SimBench.start(spec, directory=directory, time_scale=TIME_SCALE, first=first,
                          mac_block=MAC_BLOCK, **kwargs)


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
    again = mixed.directory / "dumped.toml"     # rig.bench.dump wrote it; it writes it back
    again.write_text(dump(bench), encoding="utf-8")
    assert dataclasses.replace(load_bench(again), path=bench.path) == bench
    assert bench.gpio_factory == "mock" and bench.time_scale == TIME_SCALE
    assert bench.network.address == "127.0.0.1" and bench.network.identity == "serialised"
    assert bench.solenoid_max_on_seconds >= 30 / TIME_SCALE + 1
    assert [slot.name for slot in bench.slots] == ["1", "2", "3", "4", "5", "6"]
    for slot, sim_slot in zip(bench.slots, MIXED, strict=True):
        camera = mixed.cameras[slot.name]
        assert slot.power.kind == sim_slot.power
        assert (slot.mac, slot.serial, slot.address, slot.profile) == (
            camera.mac, camera.serial, camera.address, camera.profile)
        assert slot.profile.name == sim_slot.profile
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


def test_a_probe_to_one_unit_is_answered_by_that_unit_alone(mixed: SimBench) -> None:
    """One listener serves the bench's multicast group; a Probe sent to a unit's own address
    must still reach that unit only, and be answered from its address and port 37020."""
    uuid, probe = build_probe()
    replies: list[tuple[str, tuple[str, int]]] = []
    with open_group_socket("127.0.0.1") as group, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ours:
        ours.bind(("127.0.0.1", 0))
        for name in ("1", "5"):       # current answers by multicast, g5 by unicast and multicast
            ours.sendto(probe, (mixed.cameras[name].address, PORT))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            readable, _, _ = select.select([group, ours], [], [], 0.05)
            for sock in readable:
                data, source = sock.recvfrom(65536)
                try:
                    device = parse_probe_match(data, source=source[0])
                except SadpError:
                    continue
                if device.uuid.upper() == uuid:
                    replies.append((device.mac, source))
    bench = {c.mac: c for c in mixed.cameras.values()}
    answered = sorted({(mac, source) for mac, source in replies if mac in bench})
    assert answered == sorted((mixed.cameras[n].mac, (mixed.cameras[n].address, PORT))
                              for n in ("1", "5"))


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
        assert [s.profile.name for s in sim.bench.slots] == ["legacy", "current"]


def test_any_power_goes_with_any_button(tmp_path: Path) -> None:
    """GPIO power with a relay button, relay power with a GPIO button, PoE with a relay button:
    the outputs land where the bench file says, and each press resets its own unit."""
    spec = [SimSlot("gpio", "current", button="relay"), SimSlot("relay", "legacy", button="gpio"),
            SimSlot("poe", "g5", button="relay")]
    with start(spec, tmp_path, first=30, base="127.0.2.") as sim:
        slots = {s.name: s for s in sim.bench.slots}
        assert (slots["1"].power, slots["1"].button) == (
            GpioOutput(pin=4, active_high=False), RelayOutput(board="sim", channel=1))
        assert (slots["2"].power, slots["2"].button) == (
            RelayOutput(board="sim", channel=2), GpioOutput(pin=17))
        assert (slots["3"].power, slots["3"].button) == (
            PoeOutput(switch="sim", port=1), RelayOutput(board="sim", channel=3))
        assert sim.relay_board is not None and sim.relay_board.channels == 3
        assert [row["button_kind"] for row in sim.describe()] == ["relay", "gpio", "relay"]
        with BenchHardware(sim.bench, pin_factory=sim.pin_factory) as hw:
            for name, camera in sim.cameras.items():
                hw.slot(name)                    # a GPIO relay opens off: power up again first
                if not camera.powered:
                    hw.slot(name).power.on()
                    assert camera.wait_running(timeout=5)
                hard_reset(hw.slot(name), camera)
                assert is_factory_default(camera), name
                assert "factory reset by button" in [what for _, what in camera.events], name


def test_relay_boards_are_added_as_the_channels_require(tmp_path: Path) -> None:
    # Five relay-powered slots need ten channels: an 8-channel LCUS board takes four slots
    # (a slot never straddles two boards), a second board the fifth.
    with start([SimSlot("relay")] * 5, tmp_path / "lcus", first=40, base="127.0.2.",
               relay_protocol="lcus", boot=False) as sim:
        assert list(sim.relay_boards) == ["sim1", "sim2"] and sim.relay_board is sim.relay_boards[
            "sim1"]
        assert {n: b.channels for n, b in sim.bench.relay_boards.items()} == {"sim1": 8, "sim2": 2}
        assert [(s.power.board, s.power.channel, s.button.channel) for s in sim.bench.slots
                if isinstance(s.power, RelayOutput) and isinstance(s.button, RelayOutput)] == [
            ("sim1", 1, 2), ("sim1", 3, 4), ("sim1", 5, 6), ("sim1", 7, 8), ("sim2", 1, 2)]
        links = {n: Path(c.port) for n, c in sim.bench.relay_boards.items()}
        assert {n: link.name for n, link in links.items()} == {
            "sim1": "relay-board-1", "sim2": "relay-board-2"}
        assert all(link.resolve() == Path(sim.relay_boards[n].path) for n, link in links.items())
        assert all(c.powered for c in sim.cameras.values())     # powered through each board
    assert not any(link.exists() for link in links.values())
    # Boards as bought: every one declares the channels it has, used or not.
    with start([SimSlot("poe", button="relay")] * 3, tmp_path / "numato", first=40,
               base="127.0.2.", relay_channels=16, boot=False) as sim:
        assert {n: b.channels for n, b in sim.bench.relay_boards.items()} == {"sim": 16}


def test_a_24_slot_poe_bench_with_relay_buttons_resets_every_unit(tmp_path: Path) -> None:
    """The real 24-slot bench (hardware/benches/poe-serial-24.toml) simulated: PoE power, the
    solenoids on three 8-channel relay boards, no GPIO; one hard-reset batch resets all."""
    spec = [SimSlot("poe", ("current", "legacy", "g5")[i % 3], button="relay")
            for i in range(24)]
    with SimBench.start(spec, directory=tmp_path / "bench", time_scale=100.0, base="127.0.2.",
                        first=1, provision=PASSWORD, relay_channels=8,
                        mac_block=MAC_BLOCK) as sim:
        bench = sim.bench
        assert load_bench(sim.bench_path) == bench
        assert not [s for s in bench.slots if isinstance(s.power, GpioOutput)
                    or isinstance(s.button, GpioOutput)]
        assert sim.pin_factory.pins == {}                 # not one pin was even created
        assert sim.switch is not None and sim.switch.port_numbers == list(range(1, 25))
        layout = [(s.power.port, s.button.board, s.button.channel) for s in bench.slots
                  if isinstance(s.power, PoeOutput) and isinstance(s.button, RelayOutput)]
        assert layout == [(n, f"sim{(n - 1) // 8 + 1}", (n - 1) % 8 + 1) for n in range(1, 25)]
        real = REPO / "hardware" / "benches" / "poe-serial-24.toml"
        if real.exists():           # wired like the real bench: port N, board solK channel M
            slots = tomllib.loads(real.read_text(encoding="utf-8"))["slots"]
            assert [(t["power"]["port"], t["button"]["board"].replace("sol", "sim"),
                     t["button"]["channel"]) for t in slots] == layout
        assert [b.channels for b in bench.relay_boards.values()] == [8, 8, 8]

        with RecordStore.open(tmp_path / "records.sqlite") as store:
            hardware = BenchHardware(bench, pin_factory=sim.pin_factory)
            try:
                result = Runner(bench, store, hardware, method="hard", argv=["test"]).run()
            finally:
                hardware.close()
            assert result.status is RunStatus.PASSED, {
                n: r.verdict.reason for n, r in result.results.items() if not r.verdict.passed}
            assert {r.verdict.verdict for r in result.results.values()} == {
                Verdict.FACTORY_DEFAULT}
            assert len(result.results) == 24 and store.outputs.open() == []
        for name, camera in sim.cameras.items():
            assert is_factory_default(camera), name
            events = [what for _, what in camera.events]
            assert "factory reset by button" in events, name
        for board in sim.relay_boards.values():          # every solenoid pressed and released
            assert board.states == {ch: False for ch in range(1, 9)}
            assert set(board.frames) == {f"relay {op} {wire}\r".encode()
                                         for wire in range(8) for op in ("on", "off")}


def test_a_48_slot_bench_starts_answers_and_stops_cleanly(tmp_path: Path) -> None:
    spec = [SimSlot("poe", ("current", "legacy", "g5")[i % 3], button="relay")
            for i in range(48)]
    began = time.monotonic()
    sim = SimBench.start(spec, directory=tmp_path / "a", time_scale=1000.0, base="127.0.2.",
                         first=101, provision=PASSWORD, mac_block=MAC_BLOCK)
    try:
        started_in = time.monotonic() - began
        assert all(c.running for c in sim.cameras.values())
        assert [c.address for c in sim.cameras.values()] == [
            f"127.0.2.{n}" for n in range(101, 149)]
        assert {n: b.channels for n, b in sim.bench.relay_boards.items()} == {
            "sim1": 32, "sim2": 16}                       # numato's 32 channels, then the rest
        assert sim.switch is not None and len(sim.switch.port_numbers) == 48
        want = {c.mac for c in sim.cameras.values()}
        found = {d.mac for d in discover(timeout=1.5, bind="127.0.0.1") if d.mac in want}
        assert found == want
    finally:
        stopping = time.monotonic()
        sim.stop()
        stopped_in = time.monotonic() - stopping
    assert started_in < 15 and stopped_in < 3, (started_in, stopped_in)
    assert sim.switch is not None and not sim.switch.running
    assert udp_port_is_free(sim.switch.address[1])
    assert not any(b.link is not None and b.link.exists() for b in sim.relay_boards.values())
    for camera in list(sim.cameras.values())[::7]:
        with pytest.raises(OSError), socket.create_connection(
                (camera.address, camera.http_port), timeout=0.5):
            pass
    with SimBench.start(spec, directory=tmp_path / "b", time_scale=1000.0, base="127.0.2.",
                        first=101, mac_block=MAC_BLOCK, boot=False):
        pass                                             # every address and SADP port free


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
    ([SimSlot("poe")] * 18, {}, "Put buttons on relay boards (button='relay'"),
    ([SimSlot("gpio", button="relay")] * 23, {}, "23 GPIO-powered slot(s)"),   # 22 pins
    # A slot's power and button go to one board: more boards do not help a 1-channel one.
    ([SimSlot("relay")], {"relay_protocol": "kmtronic"}, "at most 1"),
    ([SimSlot("relay")], {"relay_channels": 1}, "slot 1 needs 2 channels"),
    ([SimSlot("relay")] * 5, {"relay_protocol": "lcus", "relay_channels": 9},
     "relay_channels must be 1..8"),
    ([SimSlot("poe", button="relay")], {"relay_channels": 0}, "relay_channels must be 1..32"),
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
    with pytest.raises(ValueError, match="SimSlot button 'usb'"):
        SimSlot(power="poe", button="usb")


def test_the_button_defaults_to_what_the_small_benches_use() -> None:
    assert [SimSlot(kind).button for kind in ("gpio", "poe", "relay")] == [
        "gpio", "gpio", "relay"]
    assert SimSlot("poe") == SimSlot("poe", button="gpio")      # resolved, so equal
    assert SimSlot("relay", "g5", SimFaults(jammed_button=True)).button == "relay"  # positional
    assert [SimSlot("poe", button="relay").relay_channels, SimSlot("relay").relay_channels,
            SimSlot("relay", button="gpio").relay_channels, SimSlot("gpio").relay_channels] == [
        1, 2, 1, 0]


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
