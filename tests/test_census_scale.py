"""A SADP census at scale: thousands of units answering one probe in the same burst are all
found, a loss is counted and recovered, and ``rig discover --expect N`` returns once N answered.

The units are a ``SadpCrowd`` (rig.sim.sadp_crowd): every reply is the unit's own ProbeMatch,
sent from the unit's own address. It runs in network namespaces of its own (rig.sim.census_lab),
never on the machine's loopback, where a burst of thousands of datagrams would reach every other
SADP test on the host. Root only, like tests/test_netsetup_netns.py: CI runs as root, so these
run there. The buffer sizing that needs no namespace is checked with a stand-in socket below.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator

import pytest

from rig import cli
from rig.camera import discovery
from rig.camera.discovery import DiscoveryResult, run_discovery, size_receive_buffer
from rig.sim.census_lab import CensusLab
from rig.sim.netns import in_netns

#: The namespace tests: root and iproute2 (as in tests/test_netsetup_netns.py).
root_only = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                               reason="network namespaces need root and iproute2's `ip`")

UNITS = 2000
#: A receive queue that holds a few dozen replies: a 2 000-unit burst must overflow it.
TOO_SMALL = 64 * 1024


@pytest.fixture(scope="module")
def lab() -> Iterator[CensusLab]:
    # The crowd in a process of its own, as a bench's units are other machines: its burst
    # then comes at its own pace, not at the pace the controller's GIL allows.
    with CensusLab(UNITS, profiles=("current", "legacy", "g5"), process=True) as census_lab:
        yield census_lab


def census(lab: CensusLab, timeout: float = 10.0, **options: object) -> DiscoveryResult:
    with in_netns(lab.controller_ns):
        return run_discovery(timeout, interface="eth0", **options)  # type: ignore[arg-type]


@root_only
def test_a_burst_of_2000_units_is_found_whole_each_from_its_own_address(
        lab: CensusLab) -> None:
    result = census(lab, expect=lab.macs)
    assert len(result.devices) == UNITS
    assert result.drops == 0 and result.drop_hint is None
    assert result.reprobes == 0                  # nothing was missing, nothing re-probed
    assert result.receive_buffer >= UNITS * discovery.REPLY_QUEUE_COST
    want = {u.mac: (u.serial, u.address) for u in lab.units}
    assert {d.mac: (d.serial, d.ipv4) for d in result.devices} == want
    assert all(d.source == d.ipv4 for d in result.devices)   # each reply from its unit
    assert result.elapsed < 5.0                  # ended once all answered, not at 10 s


@root_only
def test_a_buffer_too_small_drops_replies_counts_them_and_reprobes_recover_every_unit(
        lab: CensusLab, caplog: pytest.LogCaptureFixture) -> None:
    result = census(lab, expect=lab.macs, receive_buffer=TOO_SMALL)
    assert "addressed to other MACs" not in caplog.text   # g5 answering twice is no sign
    assert result.receive_buffer == TOO_SMALL
    assert result.drops and result.drops > 0
    assert result.drop_hint is not None and "--expect" in result.drop_hint
    assert "net.core.rmem_max" in result.drop_hint
    assert result.reprobes >= result.drops // 2      # the missed units were asked again
    assert {d.mac for d in result.devices} == set(lab.macs)
    assert result.to_json()["drops"] == result.drops


@root_only
def test_without_the_units_macs_a_loss_is_reported_not_hidden(lab: CensusLab) -> None:
    result = census(lab, 1.0, expect_count=UNITS, receive_buffer=TOO_SMALL)
    assert result.drops and result.drops > 0
    assert len(result.devices) < UNITS               # nothing to re-probe by: the loss shows
    assert result.reprobes <= discovery.MAX_PROBES - 1   # only the plain inquiry, again


@root_only
def test_rig_discover_expect_n_returns_as_soon_as_n_units_answered(
        lab: CensusLab, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    with in_netns(lab.controller_ns):
        code = cli.main(["discover", "-i", "eth0", "--expect", str(UNITS), "--timeout", "30",
                         "--json"])
    elapsed = time.monotonic() - started
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert len(doc["devices"]) == UNITS
    assert doc["drops"] == 0 and doc["reprobes"] == 0 and doc["drop_hint"] is None
    assert elapsed < 10.0                            # not the 30 s window


@root_only
def test_rig_discover_expect_more_than_answer_exits_1_after_the_window(
        lab: CensusLab, capsys: pytest.CaptureFixture[str]) -> None:
    with in_netns(lab.controller_ns):
        code = cli.main(["discover", "-i", "eth0", "--expect", str(UNITS + 1),
                         "--timeout", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{UNITS} unit(s) found" in out


@root_only
def test_units_that_ignore_the_mac_are_not_flooded_with_addressed_reprobes() -> None:
    with CensusLab(UNITS, profiles=("current", "legacy", "g5"), process=True,
                   ignores_mac=True) as ignoring:
        result = census(ignoring, 2.0, expect=ignoring.macs, receive_buffer=TOO_SMALL)
    batch = max(discovery.MIN_REPROBE_BATCH, TOO_SMALL // discovery.REPLY_QUEUE_COST)
    # One addressed batch shows the units answer for others; then a plain inquiry per pass.
    assert result.drops and result.drops > 0
    assert batch <= result.reprobes <= batch + discovery.MAX_PROBES


class _FakeSocket:
    """Records socket options; refuses SO_RCVBUFFORCE like a process without CAP_NET_ADMIN."""

    def __init__(self) -> None:
        self.rcvbuf = 0

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if option == discovery.SO_RCVBUFFORCE:
            raise PermissionError(1, "Operation not permitted")
        assert option == socket.SO_RCVBUF
        self.rcvbuf = 2 * value

    def getsockopt(self, level: int, option: int) -> int:
        return self.rcvbuf


def test_unprivileged_the_buffer_is_asked_up_to_rmem_max_and_the_grant_read_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "rmem_max", lambda: 4 << 20)
    sock = _FakeSocket()
    assert size_receive_buffer(sock, 20 << 20) == 8 << 20    # capped at the limit (x2 kernel)
    assert size_receive_buffer(sock, 1 << 20) == 1 << 20     # under it: as asked


def test_the_hint_says_what_to_raise_when_the_kernel_capped_the_buffer() -> None:
    capped = DiscoveryResult(devices=(), skipped=(), interfaces=(), probe_uuid="u", timeout=1,
                             elapsed=1, probes_sent=1, drops=12, receive_buffer=4 << 20,
                             receive_buffer_wanted=20 << 20)
    assert capped.drop_hint is not None
    assert f"sysctl -w net.core.rmem_max={20 << 20}" in capped.drop_hint
    assert "CAP_NET_ADMIN" in capped.drop_hint
