"""rig's RTSP client (rig.camera.rtsp) against hostile and broken servers on loopback: every bad
reply is an RtspError with a kind and a sentence, never a traceback or a hang; Digest is sent
with the RTSP method and URI, once; Basic is never sent."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest

from rig.camera import digest
from rig.camera.isapi_types import Credentials
from rig.camera.rtsp import MAX_HEADER, RtspError, RtspSession
from rig.camera.transport import Route

CREDS = Credentials("admin", "Rtsp-pass12")
PATH = "/Streaming/Channels/101"
SDP = b"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"


class Server:
    """One loopback TCP listener; ``serve(conn, requests)`` answers each connection."""

    def __init__(self, serve: Callable[[socket.socket, list[str]], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self._serve = serve
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            try:
                self._serve(conn, self.requests)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


def read_request(conn: socket.socket) -> str:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return ""
        data += chunk
    return data.decode()


def cseq(request: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in request.split("\r\n")
                if line.lower().startswith("cseq"))


@pytest.fixture
def server():
    made: list[Server] = []

    def make(serve) -> Server:
        made.append(Server(serve))
        return made[-1]

    yield make
    for s in made:
        s.close()


def describe(port: int, timeout: float = 2.0):
    with RtspSession(Route("127.0.0.1", port), timeout=timeout) as session:
        return session.describe(PATH, CREDS)


def answering(*replies: Callable[[str], bytes]):
    """A server that answers each request in turn with ``reply(request)``."""
    def serve(conn: socket.socket, seen: list[str]) -> None:
        for reply in replies:
            request = read_request(conn)
            if not request:
                return
            seen.append(request)
            conn.sendall(reply(request))
        time.sleep(0.2)
    return serve


def ok(request: str) -> bytes:
    return f"RTSP/1.0 200 OK\r\nCSeq: {cseq(request)}\r\nPublic: DESCRIBE\r\n\r\n".encode()


def challenge(request: str) -> bytes:
    return (f"RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq(request)}\r\nWWW-Authenticate: Digest "
            'realm="IP Camera(12345)", nonce="abc123"\r\n\r\n').encode()


def sdp(request: str) -> bytes:
    return (f"RTSP/1.0 200 OK\r\nCSeq: {cseq(request)}\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(SDP)}\r\n\r\n").encode() + SDP


def test_digest_is_sent_once_with_the_rtsp_method_and_uri(server):
    srv = server(answering(ok, challenge, sdp))
    reply = describe(srv.port)
    assert reply.status == 200 and reply.body == SDP
    options, first, signed = srv.requests
    assert options.startswith("OPTIONS rtsp://127.0.0.1:") and "Authorization" not in first
    uri = f"rtsp://127.0.0.1:{srv.port}{PATH}"
    auth = next(line for line in signed.split("\r\n") if line.startswith("Authorization"))
    sent = digest.parse_authorization(auth.split(":", 1)[1].strip())
    assert sent.uri == uri
    assert sent.matches(digest.Challenge("IP Camera(12345)", "abc123", qop=None), "DESCRIBE",
                        CREDS.password)
    assert CREDS.password not in signed


def test_a_refused_signed_request_is_a_failed_login_not_retried(server):
    srv = server(answering(ok, challenge, challenge, sdp))
    with pytest.raises(RtspError) as err:
        describe(srv.port)
    assert err.value.kind == "login" and len(srv.requests) == 3


def test_basic_only_is_never_answered_with_a_password(server):
    def basic(request: str) -> bytes:
        return (f"RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq(request)}\r\n"
                'WWW-Authenticate: Basic realm="cam"\r\n\r\n').encode()
    srv = server(answering(ok, basic))
    with pytest.raises(RtspError, match="only Basic") as err:
        describe(srv.port)
    assert err.value.kind == "auth" and len(srv.requests) == 2


@pytest.mark.parametrize(("reply", "words"), [
    (lambda r: b"HTTP/1.1 200 OK\r\n\r\n", "not an RTSP status line"),
    (lambda r: b"RTSP/1.0 200 OK\r\nCSeq: 999\r\n\r\n", "does not echo"),
    (lambda r: b"RTSP/1.0 200 OK\r\n\r\n", "does not echo"),
    (lambda r: f"RTSP/1.0 200 OK\r\nCSeq: {cseq(r)}\r\nno colon here\r\n\r\n".encode(),
     "not a header line"),
    (lambda r: f"RTSP/1.0 200 OK\r\nCSeq: {cseq(r)}\r\nContent-Length: 99999999\r\n\r\n"
     .encode(), "larger than"),
    (lambda r: f"RTSP/1.0 200 OK\r\nCSeq: {cseq(r)}\r\nContent-Length: -1\r\n\r\n".encode(),
     "not a number"),
    (lambda r: b"\xff\xfe\x00\x00\r\n\r\n", "not text"),
    (lambda r: b"RTSP/1.0 200 OK\r\nX: " + b"a" * (MAX_HEADER + 10), "no end of headers"),
])
def test_malformed_replies_are_clear_errors(server, reply, words):
    srv = server(answering(reply))
    with pytest.raises(RtspError, match=words) as err:
        describe(srv.port)
    assert err.value.kind == "malformed"


def test_a_reply_cut_short_is_a_reset(server):
    srv = server(answering(lambda r: f"RTSP/1.0 200 OK\r\nCSeq: {cseq(r)}\r\n"
                                     "Content-Length: 50\r\n\r\nshort".encode()))
    with pytest.raises(RtspError, match="closed by the camera") as err:
        describe(srv.port)
    assert err.value.kind == "reset"


def test_a_dripping_server_is_cut_off_at_the_deadline(server):
    def drip(conn: socket.socket, seen: list[str]) -> None:
        read_request(conn)
        for byte in b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nX: " + b"y" * 200:
            conn.sendall(bytes([byte]))
            time.sleep(0.05)
    srv = server(drip)
    started = time.monotonic()
    with pytest.raises(RtspError, match="timed out") as err:
        describe(srv.port, timeout=0.5)
    assert err.value.kind == "timeout" and time.monotonic() - started < 1.5


def test_nothing_listening_is_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(RtspError, match="connection refused") as err:
        describe(port)
    assert err.value.kind == "refused"
