"""The network-namespace bench: every virtual camera on 192.168.1.64, each in its own namespace,
a bridge between them, the controller in a namespace of its own.

Needs root and iproute2's ``ip``; skipped (with the reason) otherwise. No packet is ever sent
from the machine's own namespace except on loopback: every socket to a bench address is created
inside the controller's namespace (``in_netns``).
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from rig import cli
from rig.actuators.serial_relay import SerialRelayBoard
from rig.camera.digest import authorization, parse_challenge
from rig.camera.discovery import run_discovery
from rig.sim import netns
from rig.sim.netns import NetnsLab, in_netns
from rig.sim.netns_bench import NetnsBench, netns_spec

T = TypeVar("T")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2's `ip` is not installed"),
]


def root_ipv4() -> str:
    """Every IPv4 address of the machine's own namespace, one per line."""
    return subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True,
                          timeout=5, check=True).stdout


def ours() -> list[str]:
    return [n for n in netns.list_namespaces() if n.startswith(f"rig-{os.getpid()}-")]


# --------------------------------------------------------------------------- plumbing


def test_lab_builds_a_link_and_removes_everything() -> None:
    before = root_ipv4()
    with NetnsLab() as lab:
        a, b = lab.namespace("a"), lab.namespace("b")
        lab.veth(a, "eth0", b, "eth0", mac_a="44:47:cc:be:ee:01")
        lab.address(a, "eth0", "192.168.1.64/24")
        lab.address(b, "eth0", "192.168.1.2/24")
        lab.link(a, "eth0", True)
        lab.link(b, "eth0", True)
        lab.multicast_route(b)
        assert "224.0.0.0/4 dev eth0" in netns.ip(b, "route")
        assert "44:47:cc:be:ee:01" in netns.ip(a, "link", "show", "eth0")
        assert sorted(ours()) == sorted([a, b])
        with in_netns(a):
            server = socket.create_server(("192.168.1.64", 8080))
        with server, in_netns(b):
            with socket.create_connection(("192.168.1.64", 8080), timeout=2):
                pass
        assert "192.168.1." not in root_ipv4()
        assert root_ipv4() == before
    assert lab.closed and ours() == []
    lab.close()                                           # idempotent


def test_a_ctrl_c_while_the_lab_closes_still_deletes_every_namespace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    lab = NetnsLab()
    try:
        lab.namespace("a"), lab.namespace("b")
        delete, calls = netns.delete_namespace, []

        def interrupted_once(name: str) -> None:   # `ip netns del` killed by the Ctrl-C
            calls.append(name)
            if len(calls) == 1:
                raise KeyboardInterrupt
            delete(name)

        monkeypatch.setattr(netns, "delete_namespace", interrupted_once)
        with pytest.raises(KeyboardInterrupt):
            lab.close()
        assert [n for n in ours() if n.startswith(lab.prefix)] == []
    finally:
        monkeypatch.undo()
        for name in [n for n in ours() if n.startswith(lab.prefix)]:
            netns.delete_namespace(name)


def test_errors_quote_the_command_and_its_stderr() -> None:
    with NetnsLab() as lab:
        a = lab.namespace("a")
        with pytest.raises(netns.NetnsError, match=r"`ip -n rig-\S+ link set nosuch up` failed"
                                                   r".*nosuch"):
            lab.link(a, "nosuch", True)
    with pytest.raises(netns.NetnsError, match="no network namespace"):
        with in_netns("rig-no-such-namespace"):
            pass
    with pytest.raises(ValueError, match="1-15 characters"):
        NetnsLab.veth(lab, "x", "a-name-much-too-long", "y", "eth0")


def test_stale_namespaces_of_a_dead_process_are_removed() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=10)
    stale = f"rig-{child.pid}-1-cam1"
    alive = f"rig-{os.getpid()}-999-keep"
    netns.run(["ip", "netns", "add", stale])
    netns.run(["ip", "netns", "add", alive])
    try:
        assert not netns.pid_alive(child.pid)
        removed = netns.clean_stale()
        assert stale in removed and alive not in removed
        assert not netns.namespace_exists(stale) and netns.namespace_exists(alive)
    finally:
        for name in (stale, alive):
            netns.delete_namespace(name)


def test_not_root_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(netns.NotRootError, match=r"need root: run `sudo rig sim --netns"):
        netns.require_root()


# --------------------------------------------------------------------------- the bench

PASSWORD = "Bench-2024!x"
INFO = "/ISAPI/System/deviceInfo"


class _Connection(http.client.HTTPConnection):
    """http.client on a plain socket, optionally pinned to an interface (SO_BINDTODEVICE);
    the host may be a scoped IPv6 address (``fe80::…%eth0``)."""

    def __init__(self, host: str, device: str | None = None) -> None:
        super().__init__(host, 80, timeout=2.0)
        self.device = device

    def connect(self) -> None:
        family, kind, _, _, address = socket.getaddrinfo(self.host, self.port,
                                                         type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind)
        if self.device:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.device.encode())
        sock.settimeout(self.timeout)
        try:
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _get(host: str, device: str | None, headers: dict[str, str]) -> http.client.HTTPResponse:
    conn = _Connection(host, device)
    conn.request("GET", INFO, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def device_mac(host: str, device: str | None = None) -> str:
    """deviceInfo's macAddress from whoever answers on ``host``:80 (one Digest round)."""
    challenge = parse_challenge(_get(host, device, {}).getheader("WWW-Authenticate", ""))
    conn = _Connection(host, device)
    conn.request("GET", INFO, headers={
        "Authorization": authorization(challenge, "GET", INFO, "admin", PASSWORD)})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert response.status == 200, body
    match = re.search(r"<macAddress>([^<]+)</macAddress>", body)
    assert match, body
    return match.group(1)


def eui64_link_local(mac: str) -> str:
    """fe80:: + the modified EUI-64 of ``mac`` (RFC 4291 appendix A): what the kernel forms."""
    octets = bytes.fromhex(mac.replace(":", ""))
    ident = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + ident))


def heard(sim: NetnsBench, window: float = 0.4, expect: tuple[str, ...] = ()) -> set[str]:
    with in_netns(sim.controller_ns):
        return {d.mac for d in run_discovery(window, interface="eth0", expect=expect).devices}


def neighbour_of_64(sim: NetnsBench) -> str | None:
    match = re.search(r"192\.168\.1\.64 dev eth0 lladdr (\S+)",
                      netns.ip(sim.controller_ns, "neigh", "show", "192.168.1.64"))
    return match.group(1) if match else None


@pytest.fixture(scope="module")
def flat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsBench]:
    """Three used units (current: IPv6 on, legacy: off, g5: on), all on 192.168.1.64."""
    sim = NetnsBench.start(netns_spec(3, profiles=("current", "legacy", "g5")),
                           directory=tmp_path_factory.mktemp("flat"), time_scale=100,
                           provision=PASSWORD)
    try:
        yield sim
    finally:
        sim.stop()
    assert not any(n in netns.list_namespaces() for n in (sim.controller_ns, sim.lan_ns))


def test_every_unit_on_192_168_1_64_and_the_root_namespace_untouched(flat: NetnsBench) -> None:
    assert "192.168.1." not in root_ipv4()
    assert "10.254.0." not in root_ipv4()
    for slot, ns in flat.camera_ns.items():
        eth0 = netns.ip(ns, "addr", "show", "eth0")
        assert "inet 192.168.1.64/24" in eth0 and flat.cameras[slot].mac in eth0
    text = flat.bench_path.read_text()
    assert 'interface = "eth0"' in text and 'address = "192.168.1.2"' in text
    assert 'host = "10.254.0.250"' in text and "port = 161" in text
    assert all(s.address is None for s in flat.bench.slots)   # units on the profile default
    bench = flat.bench
    assert [s.power.port for s in bench.slots] == [1, 2, 3]
    assert [s.mac for s in bench.slots] == [c.mac for c in flat.cameras.values()]


def test_sadp_from_the_controller_hears_every_unit(flat: NetnsBench) -> None:
    macs = tuple(c.mac for c in flat.cameras.values())
    with in_netns(flat.controller_ns):
        found = run_discovery(2.0, interface="eth0", expect=macs).devices
    assert {d.mac for d in found} == set(macs)
    assert {d.ipv4 for d in found} == {"192.168.1.64"}
    assert all(d.activated in (True, None) for d in found)   # used units (legacy: no flag)


def test_a_plain_get_to_192_168_1_64_reaches_exactly_one_unit(flat: NetnsBench) -> None:
    with in_netns(flat.controller_ns):
        answered = {device_mac("192.168.1.64") for _ in range(3)}
    # The naive problem: one address, three units; ARP picked one and TCP talks to it alone.
    assert len(answered) == 1
    assert answered <= {c.mac for c in flat.cameras.values()}
    assert neighbour_of_64(flat) in answered


def test_power_off_takes_the_link_down_and_power_on_announces_the_unit(flat: NetnsBench) -> None:
    with in_netns(flat.controller_ns):
        owner = device_mac("192.168.1.64")               # the controller's ARP entry: owner
    slot = next(s for s, c in flat.cameras.items() if c.mac != owner)
    camera, ns = flat.cameras[slot], flat.camera_ns[slot]
    port = flat.bench.slot(slot).power.port
    others = {c.mac for s, c in flat.cameras.items() if s != slot}
    set_port(flat, port, False)
    assert flat.wait_links(5)
    assert not camera.powered
    assert "state DOWN" in netns.ip(ns, "link", "show", "eth0")
    assert heard(flat) == others
    set_port(flat, port, True)
    assert camera.wait_running(5) and flat.wait_links(5)
    assert "state UP" in netns.ip(ns, "link", "show", "eth0")
    # Its gratuitous ARP moved the controller's entry for 192.168.1.64 to it.
    deadline = time.monotonic() + 2.0
    while neighbour_of_64(flat) != camera.mac and time.monotonic() < deadline:
        time.sleep(0.02)
    assert neighbour_of_64(flat) == camera.mac
    assert heard(flat, 2.0, expect=tuple(others | {camera.mac})) == others | {camera.mac}


def set_port(sim: NetnsBench, port: int, on: bool) -> None:
    """PoE port on/off over SNMP from the controller namespace (net-snmp), else at the switch's
    console."""
    assert sim.switch is not None
    if shutil.which("snmpset"):
        oid = sim.switch.oids(port)["pethPsePortAdminEnable"]
        netns.run(sim.exec_argv(["snmpset", "-v2c", "-c", "private", "-t", "2", "-r", "1",
                                 "10.254.0.250", oid, "i", "1" if on else "2"]))
    else:
        sim.switch.set_enabled(port, on)
    assert sim.switch.state(port).enabled is on


def test_ipv6_link_local_reaches_exactly_that_unit(flat: NetnsBench) -> None:
    for slot, camera in flat.cameras.items():
        address = f"{eui64_link_local(camera.mac)}%eth0"
        if camera.profile.ipv6:
            assert "scope link" in netns.ip(flat.camera_ns[slot], "-6", "addr", "show", "eth0")
            with in_netns(flat.controller_ns):
                assert device_mac(address) == camera.mac
        else:
            assert netns.ip(flat.camera_ns[slot], "-6", "addr", "show", "eth0").strip() == ""


def test_vlan_mode_isolates_each_unit(tmp_path: Path) -> None:
    with NetnsBench.start(2, directory=tmp_path, identity="vlan", time_scale=100,
                          provision=PASSWORD) as sim:
        assert sim.controller_interfaces == {"1": "eth0.101", "2": "eth0.102"}
        assert [s.vlan for s in sim.bench.slots] == [101, 102]
        assert sim.bench.network.identity == "vlan"
        assert "192.168.1.2/24" not in netns.ip(sim.controller_ns, "addr", "show", "eth0")
        with in_netns(sim.controller_ns):
            for slot, device in sim.controller_interfaces.items():
                assert device_mac("192.168.1.64", device) == sim.cameras[slot].mac
        assert heard(sim, 0.3) == set()            # nothing of theirs on the untagged segment


def test_a_second_ctrl_c_while_stopping_still_removes_every_namespace(tmp_path: Path) -> None:
    sim = NetnsBench.start(2, directory=tmp_path, time_scale=100, boot=False)
    try:
        assert sim.lab is not None and sim._links is not None
        prefix = sim.lab.prefix
        assert [n for n in netns.list_namespaces() if n.startswith(prefix)]
        stop_links = sim._links.stop
        ran: list[str] = []

        def interrupted_join() -> None:            # Ctrl-C while the link worker joins
            stop_links()
            raise KeyboardInterrupt

        sim._undo[sim._undo.index(stop_links)] = interrupted_join
        sim._undo.insert(0, lambda: ran.append("last step"))
        with pytest.raises(KeyboardInterrupt):
            sim.stop()
        assert ran == ["last step"]                # the steps after the interrupt still ran
        assert sim.lab.closed
        assert [n for n in netns.list_namespaces() if n.startswith(prefix)] == []
    finally:
        if sim.lab is not None:
            sim.lab.close()


def test_a_jammed_unit_stays_activated_on_192_168_1_64(tmp_path: Path) -> None:
    with NetnsBench.start(netns_spec(2, jammed=[2]), directory=tmp_path, time_scale=100,
                          provision=PASSWORD) as sim:
        board, switch = sim.relay_board, sim.switch
        assert board is not None and switch is not None
        hold = max(c.scaled(c.profile.hold_seconds[1]) for c in sim.cameras.values())
        with SerialRelayBoard(str(board.link), protocol=board.protocol, channels=board.channels,
                              timeout=1.0, name="test solenoids") as solenoids:
            for port in (1, 2):
                switch.set_enabled(port, False)
            for channel in (1, 2):                 # slot N's solenoid: channel N
                solenoids.set(channel, True)
            for port in (1, 2):
                switch.set_enabled(port, True)
            time.sleep(hold + 0.05)
            for channel in (1, 2):
                solenoids.set(channel, False)
        assert sim.wait_running(5) and sim.wait_links(5)
        found = {d.mac: d for d in run_in(sim, lambda: run_discovery(
            2.0, interface="eth0", expect=[c.mac for c in sim.cameras.values()]).devices)}
        assert found[sim.cameras["1"].mac].activated is False      # reset: inactive
        jammed = found[sim.cameras["2"].mac]
        assert jammed.activated is True and jammed.ipv4 == "192.168.1.64"


def run_in(sim: NetnsBench, call: Callable[[], T]) -> T:
    with in_netns(sim.controller_ns):
        return call()


# --------------------------------------------------------------------------- the command


def rig_cli(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "rig.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)  # type: ignore[call-overload]


def left_by(pid: int) -> list[str]:
    return [n for n in netns.list_namespaces() if n.startswith(f"rig-{pid}-")]


def test_cli_runs_a_command_in_the_controller_namespace_and_removes_everything() -> None:
    proc = rig_cli("sim", "--netns", "--count", "2", "--time-scale", "100", "--", "true")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "controller namespace: rig-" in err and "bench file:" in err
    assert left_by(proc.pid) == []
    proc = rig_cli("sim", "--netns", "--count", "1", "--time-scale", "100", "--",
                   "sh", "-c", 'ip -4 -o addr show eth0; test -f "$RIG_BENCH"; exit 3')
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert "192.168.1.2/24" in out and "10.254.0.2/24" in out
    assert left_by(proc.pid) == []


def test_cli_serves_until_sigterm_and_a_killed_run_is_cleaned_next_time() -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = rig_cli("sim", "--netns", "--count", "1", "--time-scale", "100")
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(2)]
            assert lines[1].startswith("controller namespace: rig-"), lines
            assert left_by(proc.pid)
            proc.send_signal(sig)
            code = proc.wait(timeout=15)
        finally:
            proc.kill()
            proc.wait()
        if sig == signal.SIGTERM:
            assert code == 0 and left_by(proc.pid) == []
        else:
            assert left_by(proc.pid)                       # kill -9: nothing could clean up
            netns.clean_stale()
            assert left_by(proc.pid) == []


def test_cli_sigterm_during_the_build_exits_143_without_running_the_command(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    built: list[NetnsBench] = []
    real_start = NetnsBench.start

    def start_then_sigterm(*args: object, **kwargs: object) -> NetnsBench:
        os.kill(os.getpid(), signal.SIGTERM)       # arrives while the bench is being built
        sim = real_start(*args, **kwargs)          # type: ignore[arg-type]
        built.append(sim)
        return sim

    monkeypatch.setattr(NetnsBench, "start", start_then_sigterm)
    marker = tmp_path / "ran"
    previous = signal.getsignal(signal.SIGTERM)
    code = cli.main(["sim", "--netns", "--count", "1", "--time-scale", "100", "--dir",
                     str(tmp_path / "bench"), "--", "touch", str(marker)])
    assert code == 128 + signal.SIGTERM
    assert not marker.exists()                     # the command never ran
    assert "SIGTERM" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == previous
    (sim,) = built
    assert sim.stopped and sim.lab is not None and sim.lab.closed
    assert [n for n in ours() if n.startswith(sim.lab.prefix)] == []


def test_cli_not_root_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert cli.main(["sim", "--netns", "--count", "2", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("rig sim --netns: network namespaces need root: run "
                           "`sudo rig sim --netns …`")
