"""One way for a simulated unit's servers (ISAPI, RTSP) to run on a thread and stop."""

from __future__ import annotations

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
