"""Network: the bench interface exists, is up, can do multicast and holds the bench address;
reverse-path filtering does not drop a VLAN bench's replies.

Why: SADP, the only way to tell reset units apart, is a multicast probe pinned to the bench
interface (or the bench address). An interface that is down, has no carrier or lacks the
MULTICAST flag makes every unit look missing; an address that moved makes the pinning fail; and
strict ``rp_filter`` drops the replies of every slot VLAN but one (rig.camera.netif).
"""

from __future__ import annotations

import errno
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from rig.camera.netif import PROC_CONF, InterfaceMissing, interface_index
from rig.doctor.findings import Finding, fail, ok, warn
from rig.identity import slot_interface
from rig.vocabulary import DoctorArea, IdentityStrategy

if TYPE_CHECKING:
    from rig.doctor.runner import DoctorContext

SYS_NET = Path("/sys/class/net")
IFF_UP, IFF_LOOPBACK, IFF_MULTICAST = 0x1, 0x8, 0x1000
_AREA = DoctorArea.NETWORK


def probe(ctx: DoctorContext) -> list[Finding]:
    net = ctx.bench.network
    names = [net.interface] if net.interface else []
    names += sorted({i for i in (slot_interface(ctx.bench, s) for s in ctx.bench.slots) if i})
    findings = [_interface(name) for name in names]
    if net.address:
        findings.append(_address(net.address, names))
    if not names and not net.address:
        findings.append(warn(_AREA, "bench network", "neither [network] interface nor address "
                             "is set: SADP probes every interface, and leaves the bench",
                             "name the bench interface in [network] interface"))
    if net.interface:
        findings.append(_rp_filter(ctx, names))
    return findings


def interface_flags(name: str) -> tuple[int, str]:
    """The interface's flags (IFF_*) and operstate from sysfs; InterfaceMissing if absent."""
    interface_index(name)
    try:
        flags = int((SYS_NET / name / "flags").read_text().strip(), 16)
        state = (SYS_NET / name / "operstate").read_text().strip()
    except (OSError, ValueError):
        raise InterfaceMissing(name) from None
    return flags, state


def _interface(name: str) -> Finding:
    try:
        flags, state = interface_flags(name)
    except InterfaceMissing:
        return fail(_AREA, name, "no such interface on this host",
                    "check `ip link` and [network] interface (a VLAN sub-interface is "
                    "created by systemd-networkd or `ip link add link …`)")
    if not flags & IFF_UP:
        return fail(_AREA, name, "administratively down", f"ip link set {name} up")
    if state in ("down", "lowerlayerdown", "notpresent"):
        return fail(_AREA, name, f"up but no link (operstate {state})",
                    "check the cable and the switch port")
    if not flags & (IFF_MULTICAST | IFF_LOOPBACK):
        return fail(_AREA, name, "multicast is off: SADP probes cannot leave",
                    f"ip link set {name} multicast on")
    return ok(_AREA, name, f"up (operstate {state}), multicast on; SADP is pinned here, "
                           "whatever the multicast route says")


def _address(address: str, names: list[str]) -> Finding:
    """The bench address is this host's (a bind proves it) and, where `ip` says, on the bench
    interface or one of its VLANs."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:
                raise
            where = names[0] if names else "IF"
            return fail(_AREA, address, "the bench address is not on this host",
                        f"ip addr add {address}/24 dev {where} (or fix [network] address)")
    holders = addresses_of(address)
    if names and holders is not None and not set(holders) & set(names):
        return warn(_AREA, address, f"held by {', '.join(holders)}, not by "
                    f"{', '.join(names)}", f"move it: ip addr add {address}/24 dev {names[0]}")
    return ok(_AREA, address, "held by this host" + (f" ({', '.join(holders)})"
                                                        if holders else ""))


def addresses_of(address: str) -> list[str] | None:
    """The interfaces that carry ``address`` (`ip -j addr`), or None when `ip` cannot say."""
    if not shutil.which("ip"):
        return None
    try:
        done = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True,
                              text=True, timeout=3.0, check=True)
        links = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return sorted({link.get("ifname", "?") for link in links
                   for info in link.get("addr_info", []) if info.get("local") == address})


def _rp_filter(ctx: DoctorContext, names: list[str]) -> Finding:
    """Effective rp_filter (the larger of ``all`` and the interface's own) on each interface."""
    values = {}
    for name in names:
        try:
            values[name] = max(int((PROC_CONF / conf / "rp_filter").read_text().strip())
                               for conf in ("all", name))
        except (OSError, ValueError):
            continue
    strict = sorted(n for n, v in values.items() if v == 1)
    shown = ", ".join(f"{n}={v}" for n, v in values.items()) or "unreadable"
    if strict and ctx.bench.network.identity is IdentityStrategy.VLAN:
        return fail(_AREA, "rp_filter", f"strict reverse-path filtering on "
                    f"{', '.join(strict)}: replies of every slot VLAN but one are dropped",
                    "sysctl -w net.ipv4.conf.all.rp_filter=2 and the same per interface")
    return ok(_AREA, "rp_filter", f"rp_filter {shown}")
