"""Running the application with uvicorn: in the foreground (``rig serve``) or on a thread
(tests, and later ``rig demo --serve``), on a socket we bind ourselves so port 0 works."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

#: Seconds uvicorn waits for open event streams at shutdown before closing them: an SSE
#: stream never ends on its own.
GRACEFUL_S = 1.0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class Server(uvicorn.Server):
    """uvicorn's server that, when asked to stop, first ends the app's event streams (an app
    with ``close_streams()``), so a stop is prompt and clean rather than a timeout."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        close = getattr(self.config.app, "close_streams", None)
        if close is not None:
            await close()
        await super().shutdown(sockets)


def make_server(app: ASGIApp, log_level: str = "warning") -> Server:
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=GRACEFUL_S, proxy_headers=False)
    return Server(config)


class ThreadedServer:
    """uvicorn on a daemon thread, listening on ``host`` at an ephemeral port; ``url`` is where
    it answers once ``start()`` returned. Signal handlers stay the main thread's."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = bind(host, port)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.sock.getsockname()[1]}"
        self.server = make_server(app)
        self.thread = threading.Thread(target=self._run, name="rig-serve", daemon=True)

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
