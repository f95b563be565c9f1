"""SADP for every unit of a simulated bench from one listener (``SadpHub``): why one, and not
a responder per unit, is in the class docstring.
"""

from __future__ import annotations

import logging
import re
import selectors
import socket
import threading
from collections.abc import Sequence

from rig.camera.discovery import open_group_socket
from rig.camera.sadp import GROUP, PORT
from rig.sim.camera import VirtualCamera
from rig.sim.sadp_responder import READ_SIZE, SadpResponder
from rig.sim.serving import wake_and_join

log = logging.getLogger(__name__)

#: A datagram whose root element is <ProbeMatch>: another unit's reply, never an inquiry.
_PROBE_MATCH = re.compile(rb"\A\s*(?:<\?xml[^>]*\?>\s*)?<ProbeMatch[\s/>]")


#: The hub's receive buffer (the kernel caps it at net.core.rmem_max).
HUB_RECV_BUFFER = 4 << 20


class SadpHub:
    """SADP for every unit of the bench: ONE socket on the multicast group, one unicast socket
    per unit, one thread.

    A real camera listens on the group itself, and so does a ``CameraHost``'s responder. But the
    replies go to the group too, so with N units on one host every reply reaches every unit:
    N*N datagrams a census round, each woken for, read and parsed only to be refused. At 30 units
    and the runner's fastest cadence (a 50 ms window every 80 ms, time scale >= 25) that load
    made most rounds miss most units, and units "never answered SADP after the reset"; at 48 units
    and a 0.4 s cadence it cost over one CPU in the controller's process, starving its threads of
    the GIL (a 10-statement SQLite read took 250 ms, the PoE driver's SNMP engine timed out
    opening). Here the group is heard once: other units' ProbeMatches are dropped by a byte
    match before any parse, and a Probe is handed to every unit. What each unit answers, from its
    own address and port 37020, by its own reply styles, is decided by the same
    ``SadpResponder`` code as before (one per unit, never started: its sockets are ours).
    """

    def __init__(self, cameras: Sequence[VirtualCamera], interface_address: str) -> None:
        self._responders = [SadpResponder(camera.probe_match,
                                          lambda camera=camera: camera.sadp_reply_styles,
                                          bind_address=camera.address,
                                          interface_address=interface_address,
                                          command=camera.sadp_command)
                            for camera in cameras]
        self._interface = interface_address
        self._sockets: list[socket.socket] = []
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> SadpHub:
        """Open every socket (OSError if an address or port is taken) and start answering."""
        try:
            group = open_group_socket(self._interface, GROUP, PORT)
            # One socket hears what a whole bench's NICs would hear: a batch's probes and
            # commands arrive in bursts that overflow the default ~200 KB buffer (a dropped
            # SADP update then looks like a unit that never answered).
            group.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, HUB_RECV_BUFFER)
            self._sockets.append(group)
            for responder in self._responders:
                self._sockets.append(responder._open_unicast_socket())
            self._wake = socket.socketpair()
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._serve, name="sim-bench-sadp", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._wake is not None
        group, unicast, wake = self._sockets[0], self._sockets[1:], self._wake[0]
        owner = {sock: responder for sock, responder in zip(unicast, self._responders,
                                                             strict=True)}
        # epoll, not select(): a test process with a few large benches passes fd 1024.
        with selectors.DefaultSelector() as selector:
            for sock in (*self._sockets, wake):
                selector.register(sock, selectors.EVENT_READ)
            while not self._stopping.is_set():
                try:
                    events = selector.select()
                except (OSError, ValueError):  # a socket closed under us: we are being stopped
                    return
                for key, _ in events:
                    sock = key.fileobj
                    if sock is wake or self._stopping.is_set():
                        return
                    assert isinstance(sock, socket.socket)
                    self._receive(sock, group, unicast, owner)

    def _receive(self, sock: socket.socket, group: socket.socket, unicast: list[socket.socket],
                 owner: dict[socket.socket, SadpResponder]) -> None:
        """One datagram: a Probe on the group goes to every unit, one on a unit's own address
        to that unit; another unit's ProbeMatch on the group goes nowhere."""
        try:
            data, sender = sock.recvfrom(READ_SIZE)
        except OSError as exc:
            log.debug("simulated bench SADP: receive error (%s)", exc)
            return
        if sock is not group:
            owner[sock]._handle(data, sender, sock)
        elif not _PROBE_MATCH.match(data):
            for unit_sock, responder in zip(unicast, self._responders, strict=True):
                responder._handle(data, sender, unit_sock)

    def stop(self) -> None:
        """Stop answering and close every socket. Idempotent."""
        wake, self._wake = self._wake, None
        thread, self._thread = self._thread, None
        if not wake_and_join(self._stopping, wake, thread, timeout=2):
            log.warning("simulated bench SADP: thread did not stop in time")
        sockets, self._sockets = self._sockets, []
        for sock in (*sockets, *(wake or ())):
            sock.close()
