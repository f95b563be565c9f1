"""Discovery against a bench's worth of simulated cameras (rig.sim.fleet), on loopback only.

Sixteen units on 127.0.1.170–185 (other test modules use 127.0.1.10+, .60, .100–149, .200–254),
three firmware families, one unit provisioned by hand: discovery must find every one exactly once
with its own MAC, serial and activation state (unknown for legacy firmware, whose ProbeMatch has no
<Activated>), through the API and through ``rig discover``.
Other SADP traffic on the host may add units; assertions look at this fleet's MACs only, and the
web servers take ephemeral ports so that a second run on the same host cannot collide.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from rig import cli
from rig.camera.discovery import discover
from rig.sim.camera import VirtualCamera
from rig.sim.fleet import CameraFleet

COUNT = 16
FIRST = 170
#: The fleet's MAC block, drawn per run: keeps its MACs apart from fleets that other test modules
#: (or this module, in another process on a shared machine) start. 0xF0, the default, is avoided.
MAC_BLOCK = 0x10 + secrets.randbelow(0xE0)


@pytest.fixture(scope="module")
def fleet() -> Iterator[CameraFleet]:
    with CameraFleet.start(count=COUNT, profiles=("current", "legacy", "g5"), base="127.0.1.",
                           first=FIRST, http_port=0, time_scale=1000.0, powered=True,
                           sadp_interface="127.0.0.1", mac_block=MAC_BLOCK) as fleet:
        assert fleet.wait_running(timeout=5)
        # A used unit among factory-fresh ones, so activation is not just the profile default.
        fleet.cameras[0].provision("Secret123!")
        yield fleet


def sadp_activated(cam: VirtualCamera) -> bool | None:
    """What SADP can say about activation: legacy firmware has no <Activated> element at all."""
    return None if "Activated" in cam.behaviour.sadp_omit else cam.activated


def expected(fleet: CameraFleet) -> dict[str, tuple[str, bool | None, str]]:
    return {cam.mac: (cam.serial, sadp_activated(cam), cam.address) for cam in fleet.cameras}


def test_fleet_is_a_mix_of_activated_fresh_and_unknown_units(fleet: CameraFleet) -> None:
    states = [state for _, state, _ in expected(fleet).values()]
    assert len(states) == COUNT
    assert fleet.cameras[0].activated and states[0] is True  # provisioned "current" unit
    assert states.count(False) >= 5 and states.count(None) >= 5


def test_discover_finds_all_sixteen_units(fleet: CameraFleet) -> None:
    want = expected(fleet)
    devices = [device for device in discover(timeout=2, bind="127.0.0.1") if device.mac in want]
    assert len(devices) == COUNT
    got = {device.mac: (device.serial, device.activated, device.source) for device in devices}
    assert got == want
    assert [device.ipv4 for device in devices] == sorted(
        (cam.address for cam in fleet.cameras), key=lambda a: int(a.rsplit(".", 1)[1]))


def test_rig_discover_json_finds_all_sixteen_units(fleet: CameraFleet, capsys) -> None:
    want = expected(fleet)
    code = cli.main(["discover", "--bind", "127.0.0.1", "--timeout", "2", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    got = {d["mac"]: (d["serial"], d["activated"], d["source"]) for d in doc["devices"]
           if d["mac"] in want}
    assert got == want
    assert len([d for d in doc["devices"] if d["mac"] in want]) == COUNT
