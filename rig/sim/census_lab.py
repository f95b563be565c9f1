"""A census bench of thousands of units, in network namespaces of its own: ``CensusLab``.

Why namespaces: a burst of 5 000 replies on the machine's own loopback would reach every SADP
test and tool running on it (and theirs would reach us). Here the controller and the crowd each
get a namespace, joined by one veth cable, so the burst never leaves them. Root only
(rig.sim.netns); everything is removed by ``close()``, or by the next lab's ``clean_stale`` after
a ``kill -9``.

The layout: the controller's namespace (``eth0``, CONTROLLER_ADDRESS in CROWD_NET) and the
crowd's (``eth0`` holding every unit's address, the ``SadpCrowd`` answering for all of them).
Run the controller's side inside ``in_netns(lab.controller_ns)``. With ``process=True`` the
crowd runs in a child process (``python -m rig.sim.sadp_crowd`` inside its namespace), as the
units of a real bench are other machines: it then shares no GIL with the controller.
"""

from __future__ import annotations

import ipaddress
import os
import selectors
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import rig
from rig.sim.netns import NetnsError, NetnsLab, exec_argv, in_netns, run
from rig.sim.sadp_crowd import CrowdUnit, SadpCrowd, crowd_units

#: The crowd's network: room for 65 000 units and the controller.
CROWD_NET = ipaddress.IPv4Network("10.64.0.0/16")
CONTROLLER_ADDRESS = "10.64.255.254"
#: Bound on adding every unit's address in one ``ip -batch`` (seconds).
ADDRESS_TIMEOUT = 60.0
#: Bound on a child crowd building its units and saying it is ready (seconds).
READY_TIMEOUT = 60.0


class CensusLab:
    """``count`` SADP units in one namespace, a controller namespace beside it; ``close()``
    (or the context manager) removes both."""

    def __init__(self, count: int, *, profiles: Sequence[str] = ("current",),
                 mac_block: int = 0x30, process: bool = False,
                 ignores_mac: bool = False) -> None:
        self.units: list[CrowdUnit] = crowd_units(count, network=str(CROWD_NET),
                                                  profiles=profiles, mac_block=mac_block)
        self.profiles, self.mac_block, self.process = tuple(profiles), mac_block, process
        self.ignores_mac = ignores_mac
        self.lab: NetnsLab | None = None
        self.crowd: SadpCrowd | None = None
        self.child: subprocess.Popen[str] | None = None
        self.controller_ns = ""
        self.crowd_ns = ""

    @property
    def macs(self) -> list[str]:
        return [unit.mac for unit in self.units]

    def start(self) -> CensusLab:
        """Build both namespaces and start the crowd; on any failure, remove what was made."""
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        lab = self.lab = NetnsLab()
        ctl = self.controller_ns = lab.namespace("census-ctl")
        crowd = self.crowd_ns = lab.namespace("census-units")
        for ns in (ctl, crowd):
            lab.sysctl(ns, {"net.ipv6.conf.all.disable_ipv6": 1,
                            "net.ipv6.conf.default.disable_ipv6": 1,
                            "net.ipv4.conf.all.rp_filter": 0,
                            "net.ipv4.conf.default.rp_filter": 0})
        lab.veth(ctl, "eth0", crowd, "eth0")
        lab.address(ctl, "eth0", f"{CONTROLLER_ADDRESS}/{CROWD_NET.prefixlen}")
        _add_addresses(crowd, "eth0", [u.address for u in self.units], CROWD_NET.prefixlen)
        for ns in (ctl, crowd):
            lab.link(ns, "eth0", True)
            lab.multicast_route(ns)
        if self.process:
            self._start_child()
        else:
            with in_netns(crowd):
                self.crowd = SadpCrowd(self.units, self.units[0].address,
                                       ignores_mac=self.ignores_mac).start()

    def _start_child(self) -> None:
        """The crowd as ``python -m rig.sim.sadp_crowd`` in its namespace; returns once it
        said ``ready``. Its stdin is our pipe: closing it (or our death) stops it."""
        root = str(Path(rig.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        argv = [sys.executable, "-m", "rig.sim.sadp_crowd", "--count", str(len(self.units)),
                "--network", str(CROWD_NET), "--profiles", ",".join(self.profiles),
                "--mac-block", str(self.mac_block),
                "--interface-address", self.units[0].address,
                *(["--ignores-mac"] if self.ignores_mac else [])]
        child = self.child = subprocess.Popen(exec_argv(self.crowd_ns, argv), text=True,
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              env=env)
        assert child.stdout is not None
        try:
            line = _read_line(child.stdout, READY_TIMEOUT)
        except TimeoutError:
            raise NetnsError(f"the crowd process did not start within {READY_TIMEOUT:g} s")\
                from None
        if line.strip() != "ready":
            raise NetnsError(f"the crowd process failed to start (said {line.strip()!r})")

    def close(self) -> None:
        """Stop the crowd and delete both namespaces. Idempotent."""
        crowd, self.crowd = self.crowd, None
        if crowd is not None:
            crowd.stop()
        child, self.child = self.child, None
        if child is not None:
            _stop_child(child)
        lab, self.lab = self.lab, None
        if lab is not None:
            lab.close()

    def __enter__(self) -> CensusLab:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _add_addresses(netns: str, ifname: str, addresses: Sequence[str], prefixlen: int) -> None:
    """Every unit's address on ``ifname``, in one ``ip -batch`` (one process, not thousands).
    The first is the interface's primary address; the others are secondaries of the same
    subnet, which is what lets each unit's replies leave from its own address."""
    lines = "".join(f"addr add {address}/{prefixlen} dev {ifname}\n" for address in addresses)
    run(["ip", "-n", netns, "-batch", "-"], input_text=lines, timeout=ADDRESS_TIMEOUT)


def _read_line(stream: IO[str], timeout: float) -> str:
    """One line from a child's stdout within ``timeout`` seconds (TimeoutError otherwise)."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError
    return stream.readline()


def _stop_child(child: subprocess.Popen[str]) -> None:
    """Close the child's stdin (it stops on end-of-file); kill it if it does not."""
    if child.stdin is not None:
        child.stdin.close()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=5)
    if child.stdout is not None:
        child.stdout.close()
