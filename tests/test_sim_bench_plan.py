"""Planning a simulated bench (rig.sim.bench_plan): outputs, pins, boards, addresses and the
Bench written down. Pure: these tests open no socket."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from rig.bench import NetworkConfig, dump, load_bench
from rig.camera.profiles import ProfileSet
from rig.sim.bench_plan import (
    RELAY_PINS,
    SOLENOID_PINS,
    SimSlot,
    bench_of,
    board_config,
    loopback_addresses,
    plan_slots,
    slot_notes,
    switch_config,
)
from rig.sim.camera import SimFaults
from rig.vocabulary import IdentityStrategy, PowerKind

PROFILES = ProfileSet.load()


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("planning opened a socket")
    monkeypatch.setattr(socket, "socket", refuse)


def plan(spec, **kwargs):
    options = dict(profiles=PROFILES, base="127.0.1.", first=40, relay_protocol="numato",
                   relay_channels=None, mac_block=0xBE)
    options.update(kwargs)
    return plan_slots(spec, **options)


def test_a_sim_slot_holds_power_kinds_and_picks_its_button():
    assert SimSlot("poe").button is PowerKind.GPIO and SimSlot("poe").power is PowerKind.POE
    assert SimSlot("relay").button is PowerKind.RELAY
    assert SimSlot(power="poe", button="relay").relay_channels == 1
    with pytest.raises(ValueError, match="SimSlot power 'mains' is not one of: gpio, relay, poe"):
        SimSlot("mains")
    with pytest.raises(ValueError, match="SimSlot button 'poe' is not one of: gpio, relay"):
        SimSlot("gpio", button="poe")


def test_gpio_slots_are_wired_like_the_pin_map():
    plans, boards = plan([SimSlot("gpio")] * 4)
    assert boards == []
    assert [p.power.pin for p in plans] == list(RELAY_PINS)
    assert [p.button.pin for p in plans] == list(SOLENOID_PINS[:4])
    assert [p.address for p in plans] == ["127.0.1.40", "127.0.1.41", "127.0.1.42", "127.0.1.43"]
    assert len({p.mac for p in plans}) == 4
    assert plans[0].serial.startswith("DS-2CD2320D-I")       # the [sim] sample model


def test_relay_slots_share_one_board_until_it_is_full():
    plans, boards = plan([SimSlot("relay"), SimSlot("poe", button="relay")])
    assert [(b.name, b.link, b.channels) for b in boards] == [("sim", "relay-board", 3)]
    assert (plans[0].power.channel, plans[0].button.channel, plans[1].button.channel) == (1, 2, 3)
    assert plans[1].power.port == 1
    plans, boards = plan([SimSlot("poe", button="relay")] * 24, relay_channels=8, first=1,
                         base="127.0.2.")
    assert [(b.name, b.link, b.channels) for b in boards] == [
        ("sim1", "relay-board-1", 8), ("sim2", "relay-board-2", 8), ("sim3", "relay-board-3", 8)]
    assert [(p.button.board, p.button.channel) for p in plans[7:9]] == [("sim1", 8), ("sim2", 1)]


@pytest.mark.parametrize(("spec", "kwargs", "message"), [
    ([SimSlot("gpio")] * 30, {}, "not enough GPIO pins"),
    ([SimSlot("relay")], {"relay_channels": 0}, "relay_channels must be 1..32"),
    ([SimSlot("relay")], {"relay_protocol": "lcus", "relay_channels": 9},
     "relay_channels must be 1..8"),
    ([SimSlot("gpio")], {"base": "10.0.0."}, "not a loopback address"),
    ([SimSlot("gpio")] * 3, {"first": 253}, "the last octet must stay within 1..254"),
    ([SimSlot("gpio", "g9")], {}, "unknown firmware profile 'g9'"),
])
def test_a_bench_that_cannot_be_built_is_refused_before_anything_opens(spec, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan(spec, **kwargs)


def test_loopback_addresses_count_from_first():
    assert loopback_addresses("127.0.3.", 9, 2) == ["127.0.3.9", "127.0.3.10"]
    with pytest.raises(ValueError, match="at least one slot"):
        loopback_addresses("127.0.3.", 9, 0)


def written(bench, tmp_path: Path):
    path = tmp_path / "bench.toml"
    path.write_text(dump(bench, slot_notes={"2": "simulated fault: jammed_button"}),
                    encoding="utf-8")
    return path


def test_the_planned_bench_is_written_and_read_back_unchanged(tmp_path):
    spec = [SimSlot("gpio", "legacy"), SimSlot("poe", "g5", SimFaults(jammed_button=True)),
            SimSlot("relay", "current")]
    plans, boards = plan(spec)
    bench = bench_of(plans, path=tmp_path / "bench.toml", name="planned", time_scale=100.0,
                     network=NetworkConfig(address="127.0.0.1"),
                     switch=switch_config("127.0.0.1", 16100),
                     boards={b.name: board_config(b.name, tmp_path / b.link, "numato",
                                                  b.channels) for b in boards},
                     expected_identity=True, own_addresses=True)
    assert slot_notes(plans) == {"2": "simulated fault: jammed_button"}
    assert [s.profile.name for s in bench.slots] == ["legacy", "g5", "current"]
    assert bench.solenoid_max_on_seconds == 2.0 and bench.max_solenoids_on == 3
    path = written(bench, tmp_path)
    assert "# simulated fault: jammed_button" in path.read_text(encoding="utf-8")
    assert "community" not in path.read_text(encoding="utf-8")   # "private" is the default
    assert load_bench(path, PROFILES) == bench


def test_a_vlan_bench_without_identity_is_written_and_read_back_unchanged(tmp_path):
    plans, boards = plan([SimSlot("poe", button="relay")] * 2,
                         addresses=["192.168.1.64", "192.168.1.64"])
    bench = bench_of(plans, path=tmp_path / "bench.toml", name="vlan", time_scale=1.0,
                     network=NetworkConfig(interface="eth0", address="192.168.1.2",
                                           identity=IdentityStrategy.VLAN),
                     switch=switch_config("10.254.0.250", 161),
                     boards={b.name: board_config(b.name, tmp_path / b.link, "numato",
                                                  b.channels) for b in boards},
                     expected_identity=False, own_addresses=False, vlans={"1": 101, "2": 102})
    assert [(s.mac, s.address, s.vlan) for s in bench.slots] == [(None, None, 101),
                                                                 (None, None, 102)]
    loaded = load_bench(written(bench, tmp_path), PROFILES)
    assert loaded == bench and dataclasses.replace(loaded, name="x") != bench
