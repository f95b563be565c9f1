"""The device side of SADP for the simulated camera: hear inquiry Probes, send ProbeMatch replies.

A real camera listens on 239.255.255.250:37020 and on its own address, and answers from its own
address and port 37020, by multicast or by unicast depending on the firmware
(docs/hikvision-protocols.md §1.1). This class does the socket work only; what to answer (or whether
to answer at all: powered off, booting, a Probe aimed at another MAC) is decided by the ``answer``
callable the camera passes in, and how to send it by ``styles``. Several responders share one host,
each on its own 127.0.1.N address (or in its own network namespace).
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

from rig.camera.discovery import open_group_socket, set_multicast_all_off
from rig.camera.sadp import GROUP, MAX_DATAGRAM, PORT, Probe, SadpError, parse_probe

log = logging.getLogger(__name__)

#: Probe Types a camera answers with a ProbeMatch (docs/hikvision-protocols.md §1.2).
INQUIRY_TYPES = frozenset({"inquiry", "inquiry_v32"})
#: Read whole datagrams so an oversized one is seen (and dropped) at its real size.
READ_SIZE = 65536
#: Bound on one receive or send, so stop() is never kept waiting by a stuck socket.
IO_TIMEOUT = 0.2

#: Other request Types a camera may act on (docs/hikvision-protocols.md §1.5), handed to the
#: ``command`` callable with the whole datagram.
COMMAND_TYPES = frozenset({"update", "lamp"})

Answer = Callable[[Probe, tuple[str, int]], bytes | None]
Command = Callable[[str, bytes], bytes | None]


class SadpResponder:
    """Answers SADP inquiries for one simulated camera, on one thread, until stop().

    ``answer(probe, sender)`` returns the ProbeMatch datagram or None for silence; ``styles()``
    returns the reply styles in force ("multicast", "unicast" or both). Both are called on the
    responder thread for every inquiry, so the camera can change its mind at any time.
    """

    def __init__(self, answer: Answer, styles: Callable[[], Sequence[str]], *,
                 bind_address: str, interface_address: str, port: int = PORT,
                 group: str = GROUP, command: Command | None = None) -> None:
        self.answer = answer
        #: ``command(types, datagram)``: the reply to an ``update`` or ``lamp``, or None.
        self.command = command
        self.styles = styles
        self.bind_address = bind_address
        self.interface_address = interface_address
        self.port = port
        self.group = group
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._wake: tuple[socket.socket, socket.socket] | None = None

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> SadpResponder:
        """Open the sockets and start answering. Raises OSError if the address is unusable."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("SADP responder already started")
            sockets: list[socket.socket] = []
            try:
                sockets.append(open_group_socket(self.interface_address, self.group, self.port))
                sockets[0].settimeout(IO_TIMEOUT)
                sockets.append(self._open_unicast_socket())
                wake = socket.socketpair()
            except BaseException:
                for sock in sockets:
                    sock.close()
                raise
            self._sockets, self._wake = sockets, wake
            self._stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._serve, args=(sockets, wake[0], self._stopping),
                name=f"sadp-responder-{self.bind_address}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the sockets; returns within a few milliseconds. Idempotent."""
        with self._lock:
            thread, sockets, wake = self._thread, self._sockets, self._wake
            self._thread, self._sockets, self._wake = None, [], None
            if thread is None:
                return
            self._stopping.set()
            assert wake is not None
            try:
                wake[1].send(b"x")
            except OSError:
                pass
            if thread is not threading.current_thread():  # stop() from inside answer() is allowed
                thread.join(timeout=0.4)
            if thread.is_alive() and thread is not threading.current_thread():
                log.warning("SADP responder %s: thread did not stop in time", self.bind_address)
            for sock in (*sockets, *wake):
                sock.close()

    def __enter__(self) -> SadpResponder:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _open_unicast_socket(self) -> socket.socket:
        """The camera's own (address, 37020): unicast probes in, every reply out.

        Replies leave from here so their source is the camera's address and port, as on a real
        unit. IP_MULTICAST_ALL is off so a wildcard bind would not hear the group twice.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            set_multicast_all_off(sock)
            sock.bind((self.bind_address, self.port))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            socket.inet_aton(self.interface_address))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            # Only read after select() says readable; the timeout bounds a send on a full buffer.
            sock.settimeout(IO_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        return sock

    def _serve(self, sockets: list[socket.socket], wake: socket.socket,
               stopping: threading.Event) -> None:
        reply_sock = sockets[1]
        watched = [*sockets, wake]
        while not stopping.is_set():
            try:
                readable, _, _ = select.select(watched, [], [])
            except (OSError, ValueError):  # a socket closed under us: we are being stopped
                return
            for sock in readable:
                if sock is wake or stopping.is_set():
                    return
                try:
                    data, sender = sock.recvfrom(READ_SIZE)
                except OSError as exc:
                    log.debug("SADP responder %s: receive error (%s)", self.bind_address, exc)
                    continue
                self._handle(data, sender, reply_sock)

    def _handle(self, data: bytes, sender: tuple[str, int], reply_sock: socket.socket) -> None:
        """One datagram: answer it if it is an inquiry the camera wants to answer; never raise."""
        if len(data) > MAX_DATAGRAM:
            log.debug("SADP responder %s: dropped %d-byte datagram from %s",
                      self.bind_address, len(data), sender)
            return
        try:
            probe = parse_probe(data)
        except SadpError:
            return  # ProbeMatch replies of other units, other protocols, garbage: not for us
        types = probe.types.strip().lower()
        is_command = types in COMMAND_TYPES and self.command is not None
        if types not in INQUIRY_TYPES and not is_command:
            log.debug("SADP responder %s: ignored Types %r", self.bind_address, probe.types)
            return
        try:
            if is_command:
                assert self.command is not None
                reply = self.command(types, data)
            else:
                reply = self.answer(probe, sender)
            styles = tuple(self.styles()) if reply is not None else ()
        except Exception:
            log.warning("SADP responder %s: answer callable failed", self.bind_address,
                        exc_info=True)
            return
        if reply is None:
            return
        for style in styles:
            if style == "multicast":
                target = (self.group, self.port)
            elif style == "unicast":
                target = (sender[0], sender[1])
            else:
                log.debug("SADP responder %s: unknown reply style %r", self.bind_address, style)
                continue
            try:
                reply_sock.sendto(reply, target)
            except OSError as exc:
                log.debug("SADP responder %s: reply to %s not sent (%s)", self.bind_address,
                          target, exc)
