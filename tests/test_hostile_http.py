"""Issue 16.3: every ISAPI call ends within its timeout as a whole, whatever the peer does.

A socket timeout bounds one recv, so a server that drips its reply a byte at a time used to keep
``rig verify`` 30-40 s past a 2 s timeout. Each test runs a hostile HTTP server on 127.0.0.1
(threads, real sockets) that stops misbehaving after DRIP_LIMIT seconds, so a client without a
total deadline fails the time check instead of hanging the suite.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import ConnectionFailed, MalformedReply
from rig.camera.isapi_types import Credentials
from rig.camera.transport import Deadline
from rig.cli import main

DRIP_LIMIT = 8.0          # seconds a hostile server keeps at it (a bound for the old code)
MARGIN = 0.6              # what a call may take past its timeout (thread wake-ups, CI load)
CHALLENGE = (b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="r", nonce="n1", '
             b'qop="auth"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')

Behaviour = Callable[[socket.socket, threading.Event, bytes], None]


def _drip(conn: socket.socket, stop: threading.Event, data: bytes, pause: float) -> None:
    """Send ``data`` one byte per ``pause`` s until stopped, the peer leaves or DRIP_LIMIT."""
    ends = time.monotonic() + DRIP_LIMIT
    for i in range(len(data)):
        if stop.is_set() or time.monotonic() > ends:
            return
        conn.sendall(data[i:i + 1])
        time.sleep(pause)


def drip_headers(conn: socket.socket, stop: threading.Event, head: bytes) -> None:
    _drip(conn, stop, b"HTTP/1.1 200 OK\r\nX-Drip: " + b"a" * 10_000, 0.2)


def drip_body(conn: socket.socket, stop: threading.Event, head: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 5000"
                 b"\r\n\r\n")
    _drip(conn, stop, b"<ActivateStatus>" + b" " * 5000, 0.2)


def drip_body_unsized(conn: socket.socket, stop: threading.Event, head: bytes) -> None:
    """No Content-Length: the body ends when the connection does. Cut off by the watchdog, it
    must still read as a timeout, never as a short but complete reply."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\r\n")
    _drip(conn, stop, b"<ActivateStatus><Activated>false</Activated>" + b" " * 5000, 0.2)


def silent(conn: socket.socket, stop: threading.Event, head: bytes) -> None:
    stop.wait(DRIP_LIMIT)


def endless_body(conn: socket.socket, stop: threading.Event, head: bytes) -> None:
    """An endless body, fast: the size cap ends it."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\r\n<a>")
    ends = time.monotonic() + DRIP_LIMIT
    while not stop.is_set() and time.monotonic() < ends:
        conn.sendall(b"x" * 4096)


def endless_body_slow(conn: socket.socket, stop: threading.Event, head: bytes) -> None:
    """An endless body at 20 kB/s: under the size cap for longer than any timeout here."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\r\n<a>")
    ends = time.monotonic() + DRIP_LIMIT
    while not stop.is_set() and time.monotonic() < ends:
        conn.sendall(b"x" * 1000)
        time.sleep(0.05)


def challenge_then_drip(conn: socket.socket, stop: threading.Event, head: bytes) -> None:
    """The unsigned probe gets a Digest challenge at once; the signed request a dripped reply."""
    if b"Authorization:" in head:
        drip_headers(conn, stop, head)
    else:
        conn.sendall(CHALLENGE)


class HostileServer:
    """Accepts on 127.0.0.1, reads each request's head, then runs ``behaviour``."""

    def __init__(self, behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> None:
        self.behaviour, self.tls = behaviour, tls
        self.requests: list[bytes] = []
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self.handle, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def handle(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.requests.append(head)
            self.behaviour(conn, self.stop, head)
        except (OSError, ssl.SSLError):
            pass                                             # the client left: that is the point
        finally:
            conn.close()


@contextmanager
def hostile(behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> Iterator[HostileServer]:
    server = HostileServer(behaviour, tls)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        thread.join(2)
        for worker in server.threads:
            worker.join(2)
        server.listener.close()


def timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        call()
    except Exception as exc:         # noqa: BLE001 - the test looks at what came out
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


@pytest.mark.parametrize("behaviour", [drip_headers, drip_body, drip_body_unsized, silent,
                                       endless_body_slow], ids=lambda b: b.__name__)
def test_client_call_ends_within_its_timeout(behaviour):
    with hostile(behaviour) as server, IsapiClient("127.0.0.1", server.port,
                                                   timeout=1.0) as client:
        error, took = timed(client.activate_status)
    assert isinstance(error, ConnectionFailed), error
    assert error.kind == "timeout" and "no complete reply within 1 s" in str(error)
    assert took < 1.0 + MARGIN, f"{behaviour.__name__}: {took:.2f} s"
    assert len(server.requests) == 1                 # nothing re-sent


def test_endless_fast_body_is_cut_by_the_size_cap():
    with hostile(endless_body) as server, IsapiClient("127.0.0.1", server.port,
                                                      timeout=2.0) as client:
        error, took = timed(client.activate_status)
    assert isinstance(error, MalformedReply) and "byte limit" in str(error)
    assert took < 2.0 + MARGIN


def test_signed_request_dripped_spends_one_login_and_ends_in_time():
    """The whole call (probe + signed request) has one deadline; the login is never re-sent."""
    with hostile(challenge_then_drip) as server, IsapiClient("127.0.0.1", server.port,
                                                             timeout=1.0) as client:
        error, took = timed(lambda: client.device_info(Credentials("admin", "x")))
        assert isinstance(error, ConnectionFailed) and error.kind == "timeout"
        assert took < 1.0 + MARGIN
        assert client.auth_requests == 1
    assert [b"Authorization:" in r for r in server.requests] == [False, True]


def test_probe_dripped_spends_no_login():
    with hostile(drip_headers) as server, IsapiClient("127.0.0.1", server.port,
                                                      timeout=1.0) as client:
        error, took = timed(lambda: client.user_check(Credentials("admin", "x")))
        assert isinstance(error, ConnectionFailed) and took < 1.0 + MARGIN
        assert client.auth_requests == 0
    assert len(server.requests) == 1


def _tls_context(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def test_deadline_holds_under_tls(tmp_path):
    """TLS reads bypass any per-socket trick; the watchdog shuts the connection down anyway."""
    with hostile(drip_headers, tls=_tls_context(tmp_path)) as server, \
            IsapiClient("127.0.0.1", server.port, timeout=1.0, scheme="https",
                        verify=str(tmp_path / "cert.pem")) as client:
        error, took = timed(client.activate_status)
    assert isinstance(error, ConnectionFailed) and error.kind == "timeout", error
    assert took < 1.0 + MARGIN


@pytest.mark.parametrize("behaviour", [drip_headers, drip_body, silent, endless_body_slow],
                         ids=lambda b: b.__name__)
def test_rig_verify_is_unreachable_within_its_timeout(behaviour, capsys):
    with hostile(behaviour) as server:
        started = time.monotonic()
        code = main(["verify", f"127.0.0.1:{server.port}", "--timeout", "2"])
        took = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == 3 and "no complete reply within 2 s" in out and "Traceback" not in err
    assert took < 2.0 + MARGIN, f"{behaviour.__name__}: {took:.2f} s"


def test_rig_verify_command_line_drip(tmp_path):
    """The real entry point, as a process: exit 3 within the timeout (plus start-up)."""
    with hostile(drip_headers) as server:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "rig.cli", "verify",
                               f"127.0.0.1:{server.port}", "--timeout", "2"],
                              capture_output=True, text=True, timeout=30,
                              cwd=Path(__file__).resolve().parent.parent)
        took = time.monotonic() - started
    assert done.returncode == 3 and "UNREACHABLE" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr
    assert took < 2.0 + 2.0, f"{took:.2f} s"        # interpreter start-up included


def test_deadline_bounds_and_watchdog():
    deadline = Deadline(0.2)
    assert 0 < deadline.bound(5) <= 0.2 and deadline.bound(0.05) == 0.05
    left, right = socket.socketpair()
    try:
        deadline.watch(left)
        started = time.monotonic()
        assert left.recv(1) == b""                   # woken by the shutdown, not by data
        assert 0.1 < time.monotonic() - started < 0.2 + MARGIN and deadline.expired
        with pytest.raises(TimeoutError):
            deadline.bound(1)
    finally:
        deadline.finish()
        left.close()
        right.close()
