"""Local network interfaces by name: their index, and pinning a socket to one of them.

On a VLAN bench every ``eth0.<vid>`` sub-interface carries the same address (192.168.1.2/24),
so an address cannot say which slot a packet is for; the interface can. A socket pinned with
``SO_BINDTODEVICE`` sends only through that interface and receives only what arrived on it.

Linux allows an unprivileged process to set ``SO_BINDTODEVICE`` since 5.7 (on a socket not yet
pinned); older kernels require CAP_NET_RAW (``setcap cap_net_raw+ep`` on the interpreter, or
``AmbientCapabilities=CAP_NET_RAW`` in the systemd unit).

Strict reverse-path filtering (``rp_filter=1``) breaks that bench: a reply from 192.168.1.64
arriving on eth0.102 fails the check when the route to 192.168.1.64 goes out eth0.101, and is
dropped (measured in tests/test_identity_netns.py: discovery and HTTP on the second VLAN fail).
Use loose (2, the systemd default) or off (0); ``strict_rp_filter`` tells.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

PROC_CONF = Path("/proc/sys/net/ipv4/conf")

#: Linux <asm-generic/socket.h>; Python exposes it on Linux builds.
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


class InterfaceMissing(OSError):
    """No interface of that name (or index) exists on this host (in this network namespace)."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.ENODEV, f"no interface named {name!r} on this host")
        self.name = name

    def __str__(self) -> str:
        return str(self.strerror)


class BindRefused(PermissionError):
    """SO_BINDTODEVICE was refused: an old kernel (< 5.7) without CAP_NET_RAW."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.EPERM, f"pinning a socket to {name!r} was refused: Linux before "
                                      "5.7 needs CAP_NET_RAW for SO_BINDTODEVICE")
        self.name = name

    def __str__(self) -> str:
        return str(self.strerror)


def interface_index(name: str) -> int:
    """The index of interface ``name`` (a decimal string is taken as an index that must exist).

    Raises InterfaceMissing.
    """
    if name.isascii() and name.isdigit():
        index = int(name)
        try:
            socket.if_indextoname(index)
        except (OSError, OverflowError):
            raise InterfaceMissing(name) from None
        return index
    try:
        return socket.if_nametoindex(name)
    except (OSError, ValueError):
        raise InterfaceMissing(name) from None


def bind_to_device(sock: socket.socket, name: str) -> None:
    """Pin ``sock`` to interface ``name``. Raises InterfaceMissing or BindRefused."""
    if not name or len(name.encode()) >= 16:
        raise InterfaceMissing(name)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, name.encode() + b"\0")
    except PermissionError:
        raise BindRefused(name) from None
    except OSError as exc:
        if exc.errno == errno.ENODEV:
            raise InterfaceMissing(name) from None
        raise


def strict_rp_filter(name: str) -> bool:
    """Whether interface ``name`` drops replies by strict reverse-path filtering (the effective
    value is the larger of ``all`` and the interface's own). Read for the calling thread's
    network namespace. False when the setting cannot be read."""
    values = []
    for conf in ("all", name):
        try:
            values.append(int((PROC_CONF / conf / "rp_filter").read_text().strip()))
        except (OSError, ValueError):
            return False
    return max(values) == 1
