"""Network namespaces for the simulated bench: the plumbing, and nothing else.

A real bench is one switch with every freshly reset camera on 192.168.1.64. A host can only show
that with one network namespace per camera: each its own IP stack, so each can hold the same
address, joined by veth cables to a bridge that lives in a namespace of its own. This module makes
and removes those pieces with the ``ip`` command (iproute2) and ``sysctl``, each call a
subprocess with a bounded timeout whose failure raises ``NetnsError`` quoting the command and its
stderr. It needs root (``require_root``).

Rules it keeps:

- Nothing is ever configured in the machine's own namespace. Every ``ip`` call names a namespace
  (``ip -n NS ...``), and veth pairs are created with both ends already in their namespaces, so
  no bench address (192.168.1.0/24 or any other) and no interface appears in the root namespace,
  not even for a moment.
- Everything one ``NetnsLab`` creates is named ``rig-<pid>-<lab>-<role>`` (``<pid>`` the owning
  process, ``<lab>`` a counter within it) and is removed by ``close()``. Deleting a namespace
  deletes its interfaces and the veth peers elsewhere. ``clean_stale()`` removes namespaces of
  that scheme whose process is gone (a ``kill -9`` of an earlier run); ``NetnsLab`` calls it when
  it is created.
- Interface names are at most 15 characters (IFNAMSIZ); namespace names may be longer.

``in_netns(name)`` moves the *calling thread* (only it: Linux namespaces are per thread) into a
namespace and back. Sockets created inside stay in that namespace for their whole life, whichever
thread later uses them; threads started inside inherit the namespace and keep it; a subprocess
started inside runs in it. This is how one simulator process serves many cameras, each in its
own namespace: build a camera's servers inside ``in_netns(camera_ns)``.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import os
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

#: setns(2) nstype for a network namespace (<linux/sched.h>).
CLONE_NEWNET = 0x40000000
#: Where ``ip netns add`` pins named namespaces.
NETNS_DIR = Path("/run/netns")
#: Every namespace a lab creates starts with this; the owning PID follows.
PREFIX = "rig-"
#: Bound on one ``ip``/``sysctl`` call (seconds). They take milliseconds; a hang is a bug.
COMMAND_TIMEOUT = 10.0
#: Linux IFNAMSIZ - 1.
MAX_IFNAME = 15
#: The multicast route each namespace gets: IP_ADD_MEMBERSHIP on INADDR_ANY needs it.
MULTICAST_NET = "224.0.0.0/4"

NOT_ROOT = "network namespaces need root: run `sudo rig sim --netns …`"

_STALE = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_labs = itertools.count(1)
_labs_lock = threading.Lock()


class NetnsError(RuntimeError):
    """A namespace operation failed; the message quotes the command and what it printed."""


class NotRootError(NetnsError):
    """Not running as root, so no namespace can be made."""


def require_root() -> None:
    """Raise NotRootError (one clear line) unless root; NetnsError if ``ip`` is missing."""
    if os.geteuid() != 0:
        raise NotRootError(NOT_ROOT)
    if shutil.which("ip") is None:
        raise NetnsError("the `ip` command (iproute2) is not installed: "
                         "apt-get install iproute2")


def run(argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT,
        input_text: str | None = None) -> str:
    """Run one command; its stdout. NetnsError on a non-zero exit or a timeout, quoting both the
    command and its stderr."""
    command = shlex.join(argv)
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              input=input_text, check=False)
    except subprocess.TimeoutExpired:
        raise NetnsError(f"`{command}` did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise NetnsError(f"`{command}` could not be started: {exc}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or "no output"
        raise NetnsError(f"`{command}` failed (exit {done.returncode}): {detail}")
    return done.stdout


def ip(netns: str, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
    """``ip -n NETNS ARGS...``: always inside a namespace, never in the machine's own."""
    if not netns:
        raise ValueError("every ip command here names a namespace (never the root one)")
    return run(["ip", "-n", netns, *args], timeout=timeout)


def exec_argv(netns: str, command: Sequence[str]) -> list[str]:
    """The argv that runs ``command`` inside ``netns``: ``ip netns exec NETNS COMMAND...``."""
    return ["ip", "netns", "exec", netns, *command]


def sysctl(netns: str, settings: Mapping[str, str | int], *,
           timeout: float = COMMAND_TIMEOUT) -> None:
    """Set sysctls inside ``netns`` in one ``ip netns exec NETNS sysctl -q -w`` call. Keys use
    dots or slashes; an interface name with a dot (``eth0.101``) needs the slash form
    (``net/ipv4/conf/eth0.101/arp_notify``)."""
    if settings:
        run(exec_argv(netns, ["sysctl", "-q", "-w",
                              *(f"{key}={value}" for key, value in settings.items())]),
            timeout=timeout)


def list_namespaces() -> list[str]:
    """Names of the named namespaces (``ip netns list``), without their ids."""
    out = run(["ip", "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def delete_namespace(name: str) -> None:
    """``ip netns del NAME``; a namespace already gone is not an error."""
    try:
        run(["ip", "netns", "del", name])
    except NetnsError:
        if namespace_exists(name):
            raise


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (signal 0; EPERM means it does)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(prefix: str = PREFIX) -> list[str]:
    """Delete namespaces named ``<prefix><pid>-...`` whose PID is no longer alive (an earlier
    run killed before it could clean up). Namespaces of live processes, this one's included,
    are left alone. Returns the names deleted."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)-")
    removed = []
    for name in list_namespaces():
        match = pattern.match(name)
        if match and not pid_alive(int(match.group(1))):
            delete_namespace(name)
            removed.append(name)
    if removed:
        log.info("removed %d stale namespace(s) of dead runs: %s", len(removed),
                 ", ".join(removed))
    return removed


# --- moving a thread --------------------------------------------------------------------------

_libc: ctypes.CDLL | None = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns(CLONE_NEWNET): {os.strerror(code)}")


@contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the body with the calling thread in network namespace ``name``, then move it back.

    Only this thread moves (Python 3.11 has no os.setns: this is setns(2) through ctypes).
    Sockets created in the body belong to ``name`` for good; threads started in the body stay
    in ``name`` after the body ends; subprocesses started in it run in it. Files under /sys and
    /proc/net keep showing the namespace they were mounted for: ask ``ip -n`` instead.
    Raises NetnsError if the namespace does not exist.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NetnsError(f"no network namespace {name!r}") from None
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            try:
                _setns(own)
            except OSError as exc:   # the thread is stranded: never carry on as if it were home
                raise NetnsError(f"could not move this thread back from {name!r}: {exc}") from exc
    finally:
        os.close(own)


# --- a lab: everything one owner made ---------------------------------------------------------


def check_ifname(name: str) -> str:
    if not _IFNAME.match(name):
        raise ValueError(f"interface name {name!r}: 1-{MAX_IFNAME} characters of letters, "
                         f"digits, '_', '.' and '-'")
    return name


class NetnsLab:
    """Namespaces and links owned by one process; ``close()`` removes them all (idempotent).

    ``namespace(role)`` creates ``rig-<pid>-<n>-<role>`` with ``lo`` up. Interfaces are created
    inside namespaces only. Creating a lab checks for root and removes stale namespaces of dead
    runs first (``clean_stale``). Use it as a context manager, or call ``close()`` in a
    ``finally``: a process killed with SIGKILL leaves its namespaces to the next run's
    ``clean_stale``.
    """

    def __init__(self, *, clean: bool = True) -> None:
        require_root()
        if clean:
            clean_stale()
        with _labs_lock:
            number = next(_labs)
        self.prefix = f"{PREFIX}{os.getpid()}-{number}-"
        self.namespaces: list[str] = []
        self._closed = False
        self._lock = threading.Lock()

    # --- namespaces -------------------------------------------------------------------------

    def name(self, role: str) -> str:
        """The namespace name for ``role`` in this lab (whether or not it exists yet)."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", role):
            raise ValueError(f"namespace role {role!r}: letters, digits, '_', '.', '-' only")
        return self.prefix + role

    def namespace(self, role: str) -> str:
        """Create namespace ``role`` with ``lo`` up; returns its full name. The namespace is
        owned (removed by close()) from the moment it exists."""
        if self._closed:
            raise NetnsError("this lab is closed")
        name = self.name(role)
        run(["ip", "netns", "add", name])
        with self._lock:
            self.namespaces.append(name)
        ip(name, "link", "set", "lo", "up")
        return name

    # --- links ------------------------------------------------------------------------------

    def veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str, *,
             mac_a: str | None = None, mac_b: str | None = None) -> None:
        """A veth cable with end ``name_a`` in ``ns_a`` and ``name_b`` in ``ns_b``, created in
        place (neither end ever exists in the root namespace). Both ends start down."""
        check_ifname(name_a)
        check_ifname(name_b)
        args = ["link", "add", name_a]
        if mac_a:
            args += ["address", mac_a]
        args += ["type", "veth", "peer", "name", name_b]
        if mac_b:
            args += ["address", mac_b]
        args += ["netns", ns_b]
        ip(ns_a, *args)

    def bridge(self, netns: str, name: str = "br0", *, vlan_filtering: bool = False,
               multicast_snooping: bool = False) -> str:
        """A bridge, up, no STP. Multicast snooping is off by default: SADP goes to every port,
        as on the unmanaged switches of a bench. ``vlan_filtering`` needs a kernel with
        CONFIG_BRIDGE_VLAN_FILTERING (see ``kernel_has_vlans``)."""
        ip(netns, "link", "add", check_ifname(name), "type", "bridge",
           "mcast_snooping", "1" if multicast_snooping else "0",
           *(["vlan_filtering", "1"] if vlan_filtering else []))
        ip(netns, "link", "set", name, "up")
        return name

    def attach(self, netns: str, ifname: str, bridge: str) -> None:
        """Make ``ifname`` a port of ``bridge`` and bring it up."""
        ip(netns, "link", "set", ifname, "master", bridge, "up")

    def bridge_vlan(self, netns: str, ifname: str, vid: int, *, pvid: bool = False,
                    untagged: bool = False, remove: bool = False) -> None:
        """``bridge vlan add|del dev IFNAME vid VID [pvid] [untagged]`` on a filtering bridge's
        port."""
        args = ["bridge", "-n", netns, "vlan", "del" if remove else "add", "dev", ifname,
                "vid", str(vid)]
        if not remove:
            args += (["pvid"] if pvid else []) + (["untagged"] if untagged else [])
        run(args)

    def vlan(self, netns: str, parent: str, vid: int, name: str | None = None) -> str:
        """An 802.1Q sub-interface ``parent.vid`` (or ``name``) of ``parent``; returns its name.
        Needs CONFIG_VLAN_8021Q."""
        if not 1 <= vid <= 4094:
            raise ValueError(f"VLAN id must be 1..4094, not {vid}")
        name = check_ifname(name or f"{parent}.{vid}")
        ip(netns, "link", "add", "link", parent, "name", name, "type", "vlan", "id", str(vid))
        return name

    def address(self, netns: str, ifname: str, cidr: str) -> None:
        """Add ``cidr`` (e.g. ``192.168.1.64/24``) to ``ifname`` inside ``netns``."""
        ip(netns, "addr", "add", cidr, "dev", ifname)

    def set_mac(self, netns: str, ifname: str, mac: str) -> None:
        ip(netns, "link", "set", ifname, "address", mac)

    def link(self, netns: str, ifname: str, up: bool) -> None:
        """Link up or down (admin state; a veth's peer sees carrier follow it)."""
        ip(netns, "link", "set", ifname, "up" if up else "down")

    def route(self, netns: str, destination: str, ifname: str, *,
              metric: int | None = None) -> None:
        """``ip route replace DESTINATION dev IFNAME [metric M]``: idempotent. Routes through a
        link are dropped when it goes down, so add them again after it comes up."""
        ip(netns, "route", "replace", destination, "dev", ifname,
           *(["metric", str(metric)] if metric is not None else []))

    def multicast_route(self, netns: str, ifname: str = "eth0", *,
                        metric: int | None = None) -> None:
        """The ``224.0.0.0/4 dev IFNAME`` route (needed for IP_ADD_MEMBERSHIP on INADDR_ANY)."""
        self.route(netns, MULTICAST_NET, ifname, metric=metric)

    def sysctl(self, netns: str, settings: Mapping[str, str | int]) -> None:
        sysctl(netns, settings)

    # --- removing ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Delete every namespace of this lab (their interfaces go with them). Idempotent; a
        failure on one namespace is logged and the others are still deleted. An interrupt
        (Ctrl-C) while deleting one does not keep the others: it is raised again after them."""
        with self._lock:
            self._closed = True
            names, self.namespaces = self.namespaces, []
        interrupt: BaseException | None = None
        for name in reversed(names):
            try:
                delete_namespace(name)
            except NetnsError:
                log.exception("could not delete namespace %s", name)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, once all are gone
                interrupt = interrupt or exc
                try:
                    delete_namespace(name)       # the interrupted `ip netns del`, once more
                except Exception:  # noqa: BLE001
                    log.exception("could not delete namespace %s", name)
        if interrupt is not None:
            raise interrupt

    def __enter__(self) -> NetnsLab:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


#: Lab is the short name.
Lab = NetnsLab

_vlan_support: bool | None = None


def kernel_has_vlans() -> bool:
    """Whether this kernel has 802.1Q sub-interfaces and VLAN-filtering bridges (probed once,
    in a scratch namespace). Some kernels (minimal VM images) have neither."""
    global _vlan_support
    if _vlan_support is None:
        with NetnsLab(clean=False) as lab:
            ns = lab.namespace("vlan-probe")
            try:
                lab.bridge(ns, "br0", vlan_filtering=True)
                lab.veth(ns, "v0", ns, "v1")
                lab.vlan(ns, "v0", 2)
                _vlan_support = True
            except NetnsError as exc:
                log.debug("no VLAN support: %s", exc)
                _vlan_support = False
    return _vlan_support
