"""A webhook receiver on loopback for the notification tests: a real HTTP server (http.server in
a thread) that can be down (nothing listening: connection refused), answer 503 for its first
requests, or answer slowly; it keeps a ledger of the event ids it acknowledged with a 2xx."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    """A loopback port nothing listens on (yet): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """Start with ``up()``, stop with ``down()``; ``ledger``: the ids answered 2xx, in order."""

    def __init__(self, port: int | None = None, *, fail_first: int = 0, delay_s: float = 0.0,
                 secret: bytes | None = None) -> None:
        self.port = port or free_port()
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.secret = secret
        self.ledger: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []     # headers of every request, answered or not
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.handle(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.lock:
            self.requests.append(dict(handler.headers))
            refuse = len(self.requests) <= self.fail_first
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            refuse = refuse or handler.headers.get("X-Rig-Signature") != expected
        if not refuse:
            with self.lock:
                self.ledger.append(handler.headers["Idempotency-Key"])
                self.bodies.append(json.loads(body))
        handler.send_response(503 if refuse else 200)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> Receiver:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
