"""One way for the simulator's servers (ISAPI, RTSP, the SADP hub and crowd) to run on a
thread and stop."""

from __future__ import annotations

import socket
import socketserver
import threading

#: How often serve_forever looks for a shutdown request (seconds): a unit's server stops fast.
POLL_S = 0.05


class ServesInThread(socketserver.BaseServer):
    """Mixin for a socketserver: ``serve_in_thread()`` starts it on a daemon thread named
    ``<thread_prefix>-<address>``, ``close()`` stops it and closes its socket."""

    thread_prefix = "server"
    _thread: threading.Thread | None = None

    def serve_in_thread(self, name: str) -> None:
        self._thread = threading.Thread(target=self.serve_forever,
                                        kwargs={"poll_interval": POLL_S},
                                        name=f"{self.thread_prefix}-{name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=2)
        self.server_close()


def wake_and_join(stopping: threading.Event,
                  wake: tuple[socket.socket, socket.socket] | None,
                  thread: threading.Thread | None, timeout: float) -> bool:
    """Stop a select() loop that watches ``wake[0]``: set ``stopping``, send one byte on
    ``wake[1]``, join ``thread``. Returns False when the thread is still alive after
    ``timeout``. The caller closes its sockets (and the wake pair) afterwards."""
    stopping.set()
    if wake is not None:
        try:
            wake[1].send(b"x")
        except OSError:
            pass
    if thread is None:
        return True
    thread.join(timeout=timeout)
    return not thread.is_alive()
