"""Batch hand-over on the namespace bench: eight units all on 192.168.1.64 (as on a real bench),
each reached over its own VLAN (the bench's identity strategy, never "whoever answers"), are
activated with the bench's password and given their own address from the pool by MAC; a census
from the controller's namespace proves each MAC on its pool address. Root only."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from rig.bench import HandoverConfig, Secret
from rig.camera.discovery import run_discovery
from rig.records import RecordStore
from rig.runner import Runner
from rig.sim.netns import in_netns
from rig.sim.netns_bench import NetnsBench, netns_spec
from rig.vocabulary import FinalState, Verdict
from rig.wiring import BenchHardware

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2's `ip` is not installed"),
]

USED_PASSWORD = "Used-Unit-77"
BENCH_PASSWORD = "Hand-Over-2026"


def test_eight_units_on_64_are_activated_and_each_gets_its_pool_address(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIG_TEST_HANDOVER_PW", BENCH_PASSWORD)
    spec = netns_spec(8, profiles=("current", "legacy", "g5"))
    with NetnsBench.start(spec, directory=tmp_path / "bench", identity="vlan",
                          time_scale=100, provision=USED_PASSWORD) as sim, \
            RecordStore.open(tmp_path / "records.sqlite") as store:
        bench = dataclasses.replace(sim.bench, handover=HandoverConfig(
            final_state=FinalState.PROVISIONED, password=Secret(env="RIG_TEST_HANDOVER_PW"),
            pool_start="192.168.1.101", gateway="192.168.1.1"))
        vlans = sim.controller_interfaces
        with in_netns(sim.controller_ns):
            hardware = BenchHardware(bench)
            try:
                result = Runner(bench, store, hardware, method="hard", argv=["test"]).run()
            finally:
                hardware.close()
            census = run_discovery(2.0, interfaces=list(vlans.values()),
                                   expect=[c.mac for c in sim.cameras.values()])
        passwords = {n: c.password_for("admin") for n, c in sim.cameras.items()}
        units = store.runs.load_run(result.run_id).units
    assert {n: r.verdict.verdict for n, r in result.results.items()} == {
        n: Verdict.PROVISIONED for n in sim.cameras}, {
        n: r.verdict.reason for n, r in result.results.items()}
    assert set(passwords.values()) == {BENCH_PASSWORD}
    expected = {sim.cameras[n].mac: f"192.168.1.{100 + int(n)}" for n in sim.cameras}
    assert {d.mac: d.ipv4 for d in census.devices} == expected
    activating = {c.mac for c in sim.cameras.values() if not c.profile.activated_from_factory}
    assert len(activating) == 5 and all(          # legacy firmware has no activation to show
        d.activated for d in census.devices if d.mac in activating)
    assert all(census.interface_of[sim.cameras[n].mac] == vlan for n, vlan in vlans.items())
    for unit in units:
        route = [e.data for e in unit.evidence if e.kind == "http-route"][-1]
        assert route["strategy"] == "vlan"
        assert [s.name for s in unit.steps][-3:] == ["activate", "confirm hand-over", "network"]
        assert unit.final_state is FinalState.PROVISIONED
