"""The network-namespace bench: every virtual camera on 192.168.1.64, each in its own namespace,
a bridge between them, the controller in a namespace of its own.

Needs root and iproute2's ``ip``; skipped (with the reason) otherwise. No packet is ever sent
from the machine's own namespace except on loopback: every socket to a bench address is created
inside the controller's namespace (``in_netns``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from rig.sim import netns
from rig.sim.netns import NetnsLab, in_netns

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
