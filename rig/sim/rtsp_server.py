"""The virtual camera's RTSP listener: OPTIONS and DESCRIBE (RFC 2326) with Digest auth.

Enough of a Hikvision unit's RTSP server for the functional checks
(firmware_notes/topics/checks.md "rtsp"): OPTIONS answers without a login, DESCRIBE of the
main stream (``/Streaming/Channels/101``) asks for Digest (RFC 2069 style, no qop, the RTSP
method and the request URI in HA2, as the units send it) and answers SDP with one video track
in the stream's codec. No media is streamed: SETUP, PLAY and the rest are 501.

Like the web server it answers only while the unit runs (otherwise the connection is dropped
unanswered), counts failed logins toward the unit's illegal-login lock, and moves with the unit
(rig.sim.fleet.CameraHost opens and closes it beside the web server). With the ``rtsp_refused``
fault the port is bound but never listens, so a connection is refused and nobody else takes the
port the unit reports.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import urlsplit

from rig.camera import digest
from rig.sim.camera import VirtualCamera
from rig.sim.serving import ServesInThread

log = logging.getLogger(__name__)

#: Longest request or header line accepted; longer is a 400 (real servers cap them too).
MAX_LINE = 4096
MAX_HEADERS = 64
MAX_BODY = 64 * 1024
#: Idle seconds before a connection is closed.
IDLE_TIMEOUT_S = 10.0
NONCE_TTL_S = 300.0
#: Paths of the main stream (lower case, no trailing slash): the ISAPI-style name the checks use,
#: channel "1" that units accept for it, and the older firmware's path.
MAIN_STREAM_PATHS = frozenset({"/streaming/channels/101", "/streaming/channels/1",
                               "/h264/ch1/main/av_stream"})
PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            501: "Not Implemented", 505: "RTSP Version Not Supported"}
_RTPMAP = {"H.264": "H264/90000", "H.265": "H265/90000"}


class BadRequest(Exception):
    """A request that cannot be read; the server answers 400 and closes."""


@dataclass
class Request:
    method: str
    uri: str
    version: str
    headers: dict[str, str]     # lower-case names


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def encode(self, cseq: str | None) -> bytes:
        lines = [f"RTSP/1.0 {self.status} {_REASONS.get(self.status, 'Error')}"]
        if cseq is not None:
            lines.append(f"CSeq: {cseq}")
        lines.append(f"Date: {formatdate(usegmt=True)}")
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


def read_request(rfile: object) -> Request | None:
    """One request from ``rfile`` (a binary file with readline/read); None at end of stream.
    Raises BadRequest for anything that is not an RTSP request line and headers."""
    line = _line(rfile)
    while line == "":           # stray CRLF between requests is allowed (RFC 2326, section 15.1)
        line = _line(rfile)
    if line is None:
        return None
    parts = line.split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("RTSP/"):
        raise BadRequest(f"not an RTSP request line: {line[:80]!r}")
    headers: dict[str, str] = {}
    while True:
        header = _line(rfile)
        if header is None:
            raise BadRequest("connection closed inside the headers")
        if header == "":
            break
        name, colon, value = header.partition(":")
        if not colon or not name.strip() or len(headers) >= MAX_HEADERS:
            raise BadRequest(f"bad header line: {header[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY:
        raise BadRequest(f"bad Content-Length {length[:20]!r}")
    rfile.read(int(length))     # type: ignore[attr-defined]
    return Request(parts[0].upper(), parts[1], parts[2], headers)


def _line(rfile: object) -> str | None:
    raw = rfile.readline(MAX_LINE + 1)      # type: ignore[attr-defined]
    if not raw:
        return None
    if len(raw) > MAX_LINE:
        raise BadRequest("line too long")
    return raw.decode("latin-1").rstrip("\r\n")


def sdp(camera: VirtualCamera, base: str) -> bytes:
    """The session description of the main stream: one video track in its codec."""
    config = camera.media.config
    session = int(time.time())
    lines = ["v=0", f"o=- {session} {session} IN IP4 {camera.address}",
             "s=Media Presentation", "e=NONE", "b=AS:5050", "t=0 0", f"a=control:{base}",
             "m=video 0 RTP/AVP 96", "c=IN IP4 0.0.0.0", "b=AS:5000", "a=recvonly",
             f"a=x-dimensions:{config.width},{config.height}", f"a=control:{base}trackID=1",
             f"a=rtpmap:96 {_RTPMAP[config.codec]}", "a=Media_header:MEDIAINFO=494D4B48;",
             "a=appversion:1.0"]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


class RtspServer(ServesInThread, socketserver.ThreadingTCPServer):
    """RTSP for one virtual camera. ``serve_in_thread()`` starts it, ``close()`` ends it and
    every connection it holds."""

    daemon_threads = True
    thread_prefix = "rtsp"

    def __init__(self, camera: VirtualCamera, address: str | None = None,
                 port: int | None = None) -> None:
        """Listen on ``address`` (default: the camera's address) and ``port`` (default: the
        camera's ``rtsp_port``; 0 picks one and records it there)."""
        self.camera = camera
        #: The rtsp_refused fault: bind (keep the port) but never listen.
        self.refusing = camera.faults.rtsp_refused
        self.allow_reuse_address = not self.refusing
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        super().__init__((address or camera.address,
                          camera.rtsp_port if port is None else port), _Handler)
        camera.rtsp_port = self.server_address[1]

    def server_activate(self) -> None:
        if not self.refusing:
            super().server_activate()

    @property
    def realm(self) -> str:
        return f"IP Camera({self.camera.serial[-9:]})"

    def new_challenge(self, stale: bool = False) -> digest.Challenge:
        nonce, now = os.urandom(16).hex(), time.monotonic()
        with self._lock:
            self._nonces = {n: t for n, t in self._nonces.items() if now - t < NONCE_TTL_S}
            self._nonces[nonce] = now
        return digest.Challenge(realm=self.realm, nonce=nonce, qop=None, stale=stale)

    def challenge_for(self, nonce: str) -> digest.Challenge | None:
        """The challenge a nonce was issued with, or None when it is unknown or expired."""
        with self._lock:
            issued = self._nonces.get(nonce)
        if issued is None or time.monotonic() - issued >= NONCE_TTL_S:
            return None
        return digest.Challenge(realm=self.realm, nonce=nonce, qop=None)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def serve_in_thread(self) -> None:  # type: ignore[override]
        if self.refusing:
            return
        super().serve_in_thread(self.camera.address)

    def close(self) -> None:
        super().close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(socketserver.StreamRequestHandler):
    """One connection: requests answered in order until the client closes or goes idle."""

    server: RtspServer
    timeout = IDLE_TIMEOUT_S

    def handle(self) -> None:
        self.server.track(self.connection, True)
        try:
            while self._one():
                pass
        except OSError as exc:       # timeout, reset: the connection ends
            log.debug("rtsp %s: %s", self.client_address[0], exc)
        finally:
            self.server.track(self.connection, False)

    def _one(self) -> bool:
        """Answer one request; False when the connection should end."""
        try:
            request = read_request(self.rfile)
        except BadRequest as exc:
            log.debug("rtsp %s: %s", self.client_address[0], exc)
            self.wfile.write(Response(400).encode(None))
            return False
        if request is None or not self.server.camera.running:
            return False             # closed, or the unit is off or booting: no answer
        cseq = request.headers.get("cseq")
        if cseq is None or not cseq.strip().isdigit():
            self.wfile.write(Response(400).encode(None))
            return False
        self.wfile.write(answer(self.server, request, self.client_address[0]).encode(cseq))
        return True


def answer(server: RtspServer, request: Request, client: str) -> Response:
    """The reply to one well-formed request."""
    if request.version != "RTSP/1.0":
        return Response(505)
    if request.method == "OPTIONS":
        return Response(200, {"Public": PUBLIC})
    if request.method != "DESCRIBE":
        return Response(501)
    refused = _authorize(server, request, client)
    if refused is not None:
        return refused
    url = urlsplit(request.uri)
    if url.scheme.lower() != "rtsp" or url.path.rstrip("/").lower() not in MAIN_STREAM_PATHS:
        return Response(404)
    base = request.uri.split("?", 1)[0].rstrip("/") + "/"
    return Response(200, {"Content-Type": "application/sdp", "Content-Base": base},
                    sdp(server.camera, base))


def _authorize(server: RtspServer, request: Request, client: str) -> Response | None:
    """None when the request carries a good Digest login; otherwise the 401 to send. A wrong
    password counts toward the unit's illegal-login lock, as on the web server."""
    header = request.headers.get("authorization")
    if not header:
        return _unauthorized(server)
    try:
        creds = digest.parse_authorization(header)
    except digest.DigestError:
        return _unauthorized(server)
    challenge = server.challenge_for(creds.nonce)
    if challenge is None or creds.realm != challenge.realm:
        return _unauthorized(server, stale=True)
    cam = server.camera
    password = cam.password_for(creds.username)
    good = (password is not None and creds.uri == request.uri
            and creds.matches(challenge, request.method, password))
    if not cam.check_login(client, creds.username, password if good else None).ok:
        return _unauthorized(server)
    return None


def _unauthorized(server: RtspServer, stale: bool = False) -> Response:
    return Response(401, {"WWW-Authenticate": server.new_challenge(stale=stale).header()})
