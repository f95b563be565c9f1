"""Every unit on 192.168.1.64: eight virtual cameras in network namespaces, two of them left
un-reset (jammed button). Under each identity strategy the batch reports exactly those two as
not default; a naive check of "the camera at 192.168.1.64" gets the same bench wrong.

Needs root and iproute2 (skipped otherwise). The controller runs inside the bench's controller
namespace (``in_netns``: the runner's threads are started there and inherit it), so no packet
to 192.168.1.0/24 is ever sent from the machine's own namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from rig.camera.http_evidence import check_http
from rig.camera.isapi import IsapiClient
from rig.camera.profiles import ProfileSet
from rig.camera.sadp import normalize_mac
from rig.census import Census
from rig.records import RecordStore
from rig.runner import Runner, RunResult
from rig.sim.netns import in_netns
from rig.sim.netns_bench import NetnsBench, netns_spec
from rig.verify import judge
from rig.vocabulary import ExpectedState, Verdict
from rig.wiring import BenchHardware

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2's `ip` is not installed"),
]

PASSWORD = "Used-Unit-77"
SCALE = 100.0
JAMMED = {"2", "5"}
#: Legacy units are judged by their web login (SADP cannot show a changed password): the case
#: where crediting the wrong unit's HTTP answer passes a unit that was never reset.
MIXED = ("current", "legacy", "g5")
#: IPv6 link-local needs firmware with IPv6 on by default (the legacy profile has it off).
WITH_IPV6 = ("current", "g5")


def run_batch(sim: NetnsBench, store: RecordStore) -> RunResult:
    with in_netns(sim.controller_ns):
        hardware = BenchHardware(sim.bench)
        try:
            return Runner(sim.bench, store, hardware, method="hard", argv=["test"]).run()
        finally:
            hardware.close()


@pytest.mark.parametrize(("identity", "profiles"), [
    ("serialised", MIXED), ("vlan", MIXED), ("ipv6-link-local", WITH_IPV6)])
def test_each_strategy_fails_exactly_the_two_jammed_units(identity: str, profiles, tmp_path: Path):
    spec = netns_spec(8, profiles=profiles, jammed=sorted(JAMMED))
    with NetnsBench.start(spec, directory=tmp_path / "bench", identity=identity,
                          time_scale=SCALE, provision=PASSWORD) as sim, \
            RecordStore.open(tmp_path / "records.sqlite") as store:
        result = run_batch(sim, store)
        still_used = {name for name, camera in sim.cameras.items()
                      if camera.password_for("admin") == PASSWORD}
        record = store.runs.load_run(result.run_id)
    failed = {name for name, r in result.results.items() if not r.verdict.passed}
    assert failed == JAMMED, {n: r.verdict.reason for n, r in result.results.items()}
    assert still_used == JAMMED, "the simulator's own view: only the jammed kept the password"
    for name in JAMMED:
        assert result.results[name].verdict.verdict is Verdict.NOT_DEFAULT
    for unit in record.units:
        routes = [e.data for e in unit.evidence if e.kind == "http-route"]
        assert routes, f"slot {unit.slot}: no HTTP route recorded"
        assert routes[-1]["strategy"] == identity
        verdict = next(e.data for e in unit.evidence if e.kind == "verdict")
        attribution = next(c for c in verdict["checks"] if c["name"] == "http-attribution")
        assert attribution["passed"], (unit.slot, attribution)
        assert unit.mac == sim.cameras[unit.slot].mac
    if identity == "serialised":       # parked units came back on after the batch
        assert all(camera.powered for camera in sim.cameras.values())


def test_a_naive_check_of_the_shared_address_gets_the_bench_wrong(tmp_path: Path):
    """The same eight units, six reset and two not: asking "the camera at 192.168.1.64" gives
    one unit's answer for all eight. rig's own judgement refuses to credit that answer."""
    profiles = ProfileSet.load()
    spec = netns_spec(8, profiles=MIXED, jammed=sorted(JAMMED))
    with NetnsBench.start(spec, directory=tmp_path / "bench", identity="serialised",
                          time_scale=SCALE, provision=PASSWORD) as sim:
        for name, camera in sim.cameras.items():
            if name not in JAMMED and not camera.factory_reset("full"):
                camera.reboot()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            running = all([c.running for c in sim.cameras.values()])   # advances each unit
            truth = {name: camera.password_for("admin") != PASSWORD
                     for name, camera in sim.cameras.items()}
            if running and {n for n, reset in truth.items() if not reset} == JAMMED:
                break
            time.sleep(0.05)
        assert {n for n, reset in truth.items() if not reset} == JAMMED
        with in_netns(sim.controller_ns):
            with Census(interface="eth0", window=0.3, interval=0.5) as census:
                rounds = census.rounds_after(0.0, 2, 10.0)
                assert rounds is not None
                units = census.present()
            client = IsapiClient("192.168.1.64", 80, timeout=3.0)
            try:                      # ONE check, as a naive script would make per address
                answer = check_http(client, profiles, try_default=True)
            finally:
                client.close()
    assert len(units) == 8
    by_mac = {normalize_mac(c.mac): name for name, c in sim.cameras.items()}
    naive = {}
    rig = {}
    for mac, device in units.items():
        name = by_mac[mac]
        profile = profiles.get(spec[int(name) - 1].profile)
        naive[name] = judge(mac=mac, profile=profile, expect=ExpectedState.FULL, after=device,
                            http=answer).passed
        others = [d for m, d in units.items() if m != mac]
        rig[name] = judge(mac=mac, profile=profile, expect=ExpectedState.FULL, after=device,
                          http=answer, others=others)
    assert naive != truth, "the naive check should have been fooled"
    wrong = sorted(n for n in truth if naive[n] != truth[n])
    assert wrong, "at least one unit misjudged"
    # rig credits the answer only to the unit deviceInfo names (when a login worked), and to
    # nobody when the answer does not say: the other units' attribution fails, none is misjudged.
    source = by_mac.get(normalize_mac(answer.device_info.mac_address)) \
        if answer.device_info and answer.device_info.mac_address else None
    for name, verdict in rig.items():
        attributed = next(c for c in verdict.checks if c.name == "http-attribution").passed
        assert attributed == (name == source), (name, source, verdict.reason)
        if verdict.passed:
            assert truth[name], f"rig passed unit {name}, which was never reset"


def test_rig_discover_on_several_slot_vlans_says_where_each_unit_answered(tmp_path: Path,
                                                                          capsys):
    from rig import cli
    with NetnsBench.start(netns_spec(3), directory=tmp_path / "bench", identity="vlan",
                          time_scale=SCALE) as sim:
        interfaces = [sim.controller_interfaces[n] for n in ("1", "2", "3")]
        argv = ["discover", "--timeout", "0.5", "--json"]
        for name in interfaces:
            argv += ["-i", name]
        with in_netns(sim.controller_ns):
            code = cli.main(argv)
            out = capsys.readouterr().out
            assert cli.main(argv[:3] + argv[4:]) == 0            # the table
            table = capsys.readouterr().out
        macs = {n: normalize_mac(c.mac) for n, c in sim.cameras.items()}
    assert code == 0
    heard = json.loads(out)["heard_on"]
    assert {mac: heard[mac] for mac in macs.values()} == {
        macs[n]: [interfaces[int(n) - 1]] for n in ("1", "2", "3")}
    assert "HEARD ON" in table and interfaces[1] in table


@pytest.mark.parametrize(("method", "says"), [
    ("web-full", "web-full would leave every unit of this serialised bench on 192.168.1.64"),
    ("web-basic", "2 units answer on 192.168.1.64")])
def test_a_web_reset_refuses_an_address_other_units_share(method: str, says: str,
                                                          tmp_path: Path):
    """On a serialised bench two used units both sit on 192.168.1.64: a factoryReset sent there
    could reset the other one, and after it they could not be checked one at a time anyway,
    so none is sent and the slot says why."""
    from rig.camera.isapi_types import Credentials
    with NetnsBench.start(netns_spec(2), directory=tmp_path / "bench", identity="serialised",
                          time_scale=SCALE, provision=PASSWORD) as sim, \
            RecordStore.open(tmp_path / "records.sqlite") as store:
        with in_netns(sim.controller_ns):
            hardware = BenchHardware(sim.bench)
            try:
                result = Runner(sim.bench, store, hardware, method=method, argv=["test"],
                                credentials=Credentials("admin", PASSWORD)).run()
            finally:
                hardware.close()
        assert all(c.password_for("admin") == PASSWORD for c in sim.cameras.values())
    for r in result.results.values():
        assert r.verdict.verdict is Verdict.BENCH_FAULT
        assert says in r.verdict.reason and "hard method" in r.verdict.reason


def test_auto_on_a_serialised_bench_resets_by_button_one_at_a_time(tmp_path: Path):
    """The password works, but a web reset would leave both units on 192.168.1.64 together:
    auto takes the button instead, and the turns keep each unit alone for its check."""
    from rig.camera.isapi_types import Credentials
    with NetnsBench.start(netns_spec(2, profiles=("current", "legacy")),
                          directory=tmp_path / "bench", identity="serialised",
                          time_scale=SCALE, provision=PASSWORD) as sim, \
            RecordStore.open(tmp_path / "records.sqlite") as store:
        with in_netns(sim.controller_ns):
            hardware = BenchHardware(sim.bench)
            try:
                result = Runner(sim.bench, store, hardware, method="auto", argv=["test"],
                                credentials=Credentials("admin", PASSWORD)).run()
            finally:
                hardware.close()
    assert result.passed, {n: r.verdict.reason for n, r in result.results.items()}
    for r in result.results.values():
        assert any("hard reset one at a time" in n for n in r.notes), r.notes
