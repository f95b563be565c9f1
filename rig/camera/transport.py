"""HTTP to one camera through a route rig chooses: address, IPv6 zone id and interface.

Two of the bench's identity strategies need what requests/urllib3 do not do by themselves:

* ``ipv6-link-local``: ``fe80::…%eth0``. The zone id must reach the socket address (scope id),
  not the name resolver, and it must stay out of the Host header (RFC 6874).
* ``vlan``: every ``eth0.<vid>`` carries 192.168.1.2/24 and every unit is 192.168.1.64; only
  the interface tells slots apart, so the connection is pinned with SO_BINDTODEVICE.

So rig opens the connection socket itself (``open_connection``) and hands it to urllib3 through
a connection class, pool and requests adapter of its own (``RouteAdapter``). Everything above
the socket is requests/urllib3 as before: no retries (the adapter's Retry is total=0), the
caller's timeouts, streamed bodies. Interface and permission problems come out as
``InterfaceMissing`` / ``BindRefused`` (OSError subclasses) inside the usual urllib3 errors.

A socket timeout bounds each recv, not a request: a peer that drips one byte per second keeps
every recv short and the request alive for ever. So a caller can bound a whole exchange with a
``Deadline`` (``with deadline.active(): ...``): every connection opened under it connects within
what is left of it, and when it runs out a watchdog shuts the connection down (a duplicate of the
socket, so it works under TLS too), which ends any recv at once.
"""

from __future__ import annotations

import contextvars
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.retry import Retry

from rig.camera.linklocal import authority, is_link_local, split_zone
from rig.camera.netif import BindRefused, InterfaceMissing, bind_to_device, interface_index

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Route:
    """Where one camera is: ``host`` (no brackets, no zone), ``port``, the IPv6 ``zone`` id of a
    link-local host, and the ``interface`` the connection is pinned to (SO_BINDTODEVICE)."""

    host: str
    port: int
    zone: str | None = None
    interface: str | None = None

    @classmethod
    def parse(cls, host: str, port: int, interface: str | None = None) -> Route:
        """A route from a host as a user writes it (``fe80::1%eth0``, ``[::1]``, a name).

        A link-local host needs a zone: its own, else ``interface``. A zone and a different
        interface contradict each other and are refused (ValueError).
        """
        bare, zone = split_zone(host)
        if not bare:
            raise ValueError("camera host is empty")
        if interface is not None and not interface.strip():
            raise ValueError("interface name is empty")
        if zone is not None and interface is not None and zone != interface:
            raise ValueError(f"host {host!r} is scoped to {zone!r} but the interface is "
                             f"{interface!r}")
        if zone is None and interface is not None and is_link_local(bare):
            zone = interface
        if zone is None and is_link_local(bare):
            raise ValueError(f"link-local address {bare} needs a zone id ({bare}%eth0) or an "
                             "interface: it exists once per link")
        return cls(bare, port, zone, interface)

    def describe(self) -> str:
        """``[fe80::4647:ccff:fe00:a%eth0]:80`` or ``192.168.1.64:80 via eth0.101``."""
        text = authority(self.host, self.port, zone=self.zone)
        if self.interface and self.interface != self.zone:
            text += f" via {self.interface}"
        return text

    def url_authority(self) -> str:
        """The authority for a URL (zone id escaped as %25)."""
        return authority(self.host, self.port, zone=self.zone, url=True)

    def host_header(self, scheme: str) -> str:
        """The Host header: no zone id, no port when it is the scheme's default."""
        return authority(self.host, self.port, default_port=DEFAULT_PORTS.get(scheme))


def open_connection(route: Route, timeout: float | None,
                    socket_options: Any = ()) -> socket.socket:
    """A connected TCP socket to ``route``: getaddrinfo of the scoped address, SO_BINDTODEVICE
    when the route names an interface. Raises OSError (InterfaceMissing, BindRefused,
    socket.gaierror, TimeoutError, ConnectionRefusedError, ...)."""
    if route.zone is not None:
        interface_index(route.zone)          # a clear "no interface named ..." first
    if route.interface is not None:
        interface_index(route.interface)
    lookup = f"{route.host}%{route.zone}" if route.zone else route.host
    infos = socket.getaddrinfo(lookup, route.port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if route.interface is not None:
                bind_to_device(sock, route.interface)
            for level, option, value in socket_options or ():
                sock.setsockopt(level, option, value)
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except (InterfaceMissing, BindRefused):
            sock.close()
            raise                             # the next address would have the same problem
        except OSError as exc:
            sock.close()
            last = exc
    raise last if last is not None else OSError(f"{lookup}: no address to connect to")


class Deadline:
    """The time a whole exchange may take (connect, headers, body, over one or more requests).

    Why not socket timeouts: they bound one recv each, and a dripping peer never lets one run
    out. ``active()`` makes the connections opened inside it (by RouteAdapter) watched: when
    the deadline passes, their sockets are shut down, so a blocked recv returns at once.
    ``release()`` ends the watch of one request's connections, ``finish()`` the whole watch
    (the caller must call it). Thread-safe.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self._end = time.monotonic() + self.seconds
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self._fired = False
        self._finished = False

    def remaining(self) -> float:
        """Seconds left, never below 0."""
        return max(self._end - time.monotonic(), 0.0)

    @property
    def expired(self) -> bool:
        return self._fired or self.remaining() <= 0

    def bound(self, timeout: float | None) -> float:
        """``timeout`` shortened to what is left; TimeoutError when nothing is."""
        left = self.remaining()
        if left <= 0:
            raise TimeoutError(f"no time left of the {self.seconds:g} s deadline")
        return left if timeout is None else min(timeout, left)

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down when the deadline passes (at once if it has)."""
        twin = sock.dup()                 # ours to shut down and close: no fd reuse race
        with self._lock:
            if self._finished:
                twin.close()
                return
            self._watched.append(twin)
            if self._timer is None:
                self._timer = threading.Timer(self.remaining(), self._fire)
                self._timer.daemon = True
                self._timer.start()
            fire_now = self.remaining() <= 0
        if fire_now:
            self._fire()

    def release(self) -> None:
        """Forget the sockets watched so far (their request is over); the deadline goes on."""
        with self._lock:
            watched, self._watched = self._watched, []
        for twin in watched:
            twin.close()

    def finish(self) -> None:
        """Stop watching: cancel the watchdog and close the duplicates."""
        with self._lock:
            self._finished = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.release()

    def _fire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._fired = True
            for twin in self._watched:
                try:
                    twin.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass                  # already closed by the peer: nothing to wake

    @contextmanager
    def active(self) -> Iterator[Deadline]:
        """Connections opened (through RouteAdapter) inside this block obey the deadline."""
        token = _CURRENT_DEADLINE.set(self)
        try:
            yield self
        finally:
            _CURRENT_DEADLINE.reset(token)


_CURRENT_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "rig_deadline", default=None)


class _RouteConnectionMixin:
    """urllib3 connection whose socket comes from open_connection."""

    def __init__(self, *args: Any, rig_route: Route, **kwargs: Any) -> None:
        self._rig_route = rig_route
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        timeout = conn.timeout if isinstance(conn.timeout, int | float) else None
        where = self._rig_route.describe()
        deadline = _CURRENT_DEADLINE.get()
        try:
            if deadline is not None:
                timeout = deadline.bound(timeout)
            sock = open_connection(self._rig_route, timeout, conn.socket_options)
            if deadline is not None:
                try:
                    deadline.watch(sock)
                except OSError:
                    sock.close()
                    raise
            return sock
        except socket.gaierror as exc:
            raise NameResolutionError(self._rig_route.host, conn, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(conn, f"connection to {where} timed out (connect "
                                            f"timeout={timeout})") from exc
        except OSError as exc:
            raise NewConnectionError(conn, f"cannot connect to {where}: {exc}") from exc


class _RouteHTTPConnection(_RouteConnectionMixin, HTTPConnection):
    pass


class _RouteHTTPSConnection(_RouteConnectionMixin, HTTPSConnection):
    pass


class _RouteHTTPPool(HTTPConnectionPool):
    ConnectionCls = _RouteHTTPConnection


class _RouteHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _RouteHTTPSConnection


def no_retry() -> Retry:
    """urllib3 never re-sends anything: a repeated login could cost a lockout."""
    return Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0,
                 raise_on_redirect=False, raise_on_status=False)


class RouteAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter that sends every request to ``route``, whatever the URL's host says.

    Mount it on a session of its own (the URL still carries the host for readability and logs).
    Never retries.
    """

    def __init__(self, route: Route) -> None:
        self.route = route
        self._pools: dict[str, HTTPConnectionPool] = {}
        self._pools_lock = threading.Lock()
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=no_retry())

    def _pool(self, url: str) -> HTTPConnectionPool:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise requests.exceptions.InvalidURL(f"unsupported scheme {scheme!r}")
        with self._pools_lock:
            pool = self._pools.get(scheme)
            if pool is None:
                cls = _RouteHTTPSPool if scheme == "https" else _RouteHTTPPool
                pool = cls(self.route.host, self.route.port, maxsize=1, block=False,
                           retries=no_retry(), rig_route=self.route)
                self._pools[scheme] = pool
            return pool

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: Any,
                                        proxies: Any = None, cert: Any = None,
                                        ) -> HTTPConnectionPool:
        return self._pool(request.url or "")

    def get_connection(self, url: str, proxies: Any = None) -> HTTPConnectionPool:
        return self._pool(url)

    def close(self) -> None:
        super().close()
        with self._pools_lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def route_session(route: Route) -> requests.Session:
    """A session that sends only to ``route``, never retries, never reads the environment (proxy,
    ``.netrc``) and never adds auth."""
    session = requests.Session()
    session.trust_env = False
    adapter = RouteAdapter(route)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
