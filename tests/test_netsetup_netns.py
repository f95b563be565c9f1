"""Network setup by MAC on the namespace bench, where every unit answers on 192.168.1.64 (as on
a real bench): SADP update addressed by MAC gives each unit its own pool address, the camera's
namespace takes that address, and a census from the controller's namespace proves it.
Root only (network namespaces); nothing is configured in the machine's own namespace."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.camera.discovery import run_discovery
from rig.netsetup import SadpPlace, address_pool, set_networks
from rig.sim import netns
from rig.sim.netns import in_netns
from rig.sim.netns_bench import NetnsBench, netns_spec
from rig.vocabulary import NetOutcome

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2's `ip` is not installed"),
]

PASSWORD = "Bench-Pass-42"


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[NetnsBench]:
    sim = NetnsBench.start(netns_spec(4, profiles=("current", "g5")), directory=tmp_path,
                           time_scale=100, provision=PASSWORD)
    try:
        yield sim
    finally:
        sim.stop()


def test_a_pool_by_mac_while_every_unit_sits_on_192_168_1_64(bench: NetnsBench) -> None:
    cameras = sorted(bench.cameras.values(), key=lambda c: c.mac)
    assert {c.settings.ipv4 for c in cameras} == {"192.168.1.64"}
    plans = address_pool("192.168.1.100", 4, "255.255.255.0", "192.168.1.1")
    with in_netns(bench.controller_ns):
        results = set_networks([(c.mac, p) for c, p in zip(cameras, plans, strict=True)],
                               PASSWORD, profiles={c.mac: c.profile for c in cameras},
                               place=SadpPlace(interface="eth0"), confirm_timeout=20)
        assert [r.outcome for r in results] == [NetOutcome.CONFIRMED] * 4, \
            [r.message for r in results]
        seen = {d.mac: d.ipv4 for d in run_discovery(1.0, interface="eth0").devices}
    assert seen == {c.mac: p.address for c, p in zip(cameras, plans, strict=True)}
    for camera, plan in zip(cameras, plans, strict=True):
        shown = netns.ip(bench.camera_ns[next(n for n, c in bench.cameras.items()
                                              if c is camera)], "-4", "addr", "show", "eth0")
        assert f"{plan.address}/24" in shown and "192.168.1.64" not in shown
