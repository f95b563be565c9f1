"""Each pytest-xdist worker gets a network namespace of its own (when run as root).

Why: the simulated benches speak SADP over loopback multicast (239.255.255.250:37020 on
127.0.0.1, docs/hikvision-protocols.md §1). Two workers sharing the machine's loopback would
hear each other's units: a census that counts every answer, or a roll call that takes the one
unit it hears, would see the other worker's bench. In a namespace of its own a worker has a
loopback of its own, and the tests stay on this machine as the rules ask (127.0.0.0/8 and
namespaces the test made). As root the worker unshares its network namespace; otherwise it
unshares a user namespace with it (unprivileged user namespaces, as most distributions allow),
in which it stays an ordinary user to the tests (root-only tests still skip). Where neither
works the run stops with a clear message: run the suite without ``-n``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct

import pytest

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP = 0x1


def _unshare(flags: int) -> int:
    """unshare(2) through ctypes (Python 3.11 has no os.unshare); 0 or the errno."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return 0 if libc.unshare(flags) == 0 else ctypes.get_errno()


def _loopback_up() -> None:
    """``ip link set lo up`` without exec'ing ``ip`` (in a user namespace an exec'd program
    would lose the capabilities the worker holds there): SIOCSIFFLAGS on ``lo``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _own_network_namespace() -> None:
    """Move this worker (and every thread and process it starts later) into a new network
    namespace whose loopback is up. Called before any test runs: threads started earlier
    (pytest-xdist's I/O thread) stay where they were, which is what they need."""
    flags = CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET
    error = _unshare(flags)
    if error:
        raise pytest.UsageError(
            f"pytest-xdist worker: cannot get a network namespace of its own "
            f"({os.strerror(error)}): the workers' simulated benches would hear each other "
            "over loopback multicast. Run the suite without -n (or as root).")
    _loopback_up()


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return
    _own_network_namespace()
