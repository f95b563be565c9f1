"""A small RTSP/1.0 client (RFC 2326): OPTIONS and DESCRIBE with Digest, enough to prove that a
camera serves its main stream (firmware_notes/topics/checks.md, "rtsp").

Why our own and not a media library: the check needs one exchange, not a player, and it must
obey the bench's rules: one TCP connection through the unit's identity route
(rig.camera.transport: zone id, SO_BINDTODEVICE), one total deadline for the whole exchange
(a dripping peer is cut off by the Deadline watchdog), bounded reads (headers and body capped),
and at most one signed request (a 401 to it is a failed login, never retried). A reply that is
not RTSP comes out as RtspError with a sentence, never a traceback. Basic authentication is
never sent: it would put the password on the wire in clear.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, replace

from rig import __version__
from rig.camera.digest import Challenge, DigestError, authorization, parse_challenge
from rig.camera.isapi_types import Credentials
from rig.camera.transport import Deadline, Route, open_connection

#: Largest header block accepted: a camera's RTSP headers are a few hundred bytes.
MAX_HEADER = 16 * 1024
#: Largest body accepted: an SDP is under 2 kB.
MAX_BODY = 64 * 1024
_STATUS = re.compile(r"RTSP/1\.0 (\d{3})(?: (.*))?")
_RTPMAP = re.compile(r"a=rtpmap:(\d+) ([A-Za-z0-9.+-]+)/")


class RtspError(Exception):
    """An RTSP exchange without a usable answer. ``kind``: "refused", "timeout", "reset",
    "unreachable", "malformed", "login" (the signed request was refused: a failed login),
    "auth" (no Digest offered) or "other"."""

    def __init__(self, message: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


@dataclass(frozen=True)
class RtspReply:
    """One RTSP reply: status, headers (names lower-cased, in order) and body."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]


def video_codecs(sdp: bytes) -> tuple[str, ...]:
    """The encodings of the SDP's video tracks (``H264``, ``H265``): the rtpmap of every payload
    type an ``m=video`` line lists. Empty when there is no video track."""
    codecs: list[str] = []
    in_video = False
    wanted: set[str] = set()
    for raw in sdp.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            in_video = bool(parts) and parts[0] == "video"
            wanted = set(parts[3:]) if in_video else set()
            continue
        match = _RTPMAP.match(line)
        if in_video and match and match.group(1) in wanted:
            codecs.append(match.group(2).upper())
    return tuple(codecs)


class RtspSession:
    """One connection to a camera's RTSP server, for one exchange; use as a context manager.

    ``timeout`` bounds the whole session (connect, every request and reply)."""

    def __init__(self, route: Route, *, timeout: float) -> None:
        self.route = route
        self.timeout = timeout
        self._deadline = Deadline(timeout)
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._cseq = 0
        self.signed_requests = 0

    def url(self, path: str) -> str:
        """The request URI for ``path`` (zone id escaped, RFC 6874)."""
        return f"rtsp://{self.route.url_authority()}{path}"

    def __enter__(self) -> RtspSession:
        try:
            self._sock = open_connection(self.route, self._deadline.bound(self.timeout))
        except OSError as exc:
            raise self._failed("connecting", exc) from None
        self._deadline.watch(self._sock)
        return self

    def __exit__(self, *exc: object) -> None:
        self._deadline.finish()
        if self._sock is not None:
            self._sock.close()

    def describe(self, path: str, creds: Credentials) -> RtspReply:
        """OPTIONS, then DESCRIBE (Accept: application/sdp); on a 401 with a Digest challenge,
        DESCRIBE once more, signed. Returns the last reply (the caller judges its status);
        RtspError(kind="login") when the signed DESCRIBE is refused."""
        uri = self.url(path)
        self.request("OPTIONS", uri)
        reply = self.request("DESCRIBE", uri, {"Accept": "application/sdp"})
        if reply.status != 401:
            return reply
        challenge = self._challenge(reply)
        sign = authorization(challenge, "DESCRIBE", uri, creds.user, creds.password)
        self.signed_requests += 1
        signed = self.request("DESCRIBE", uri, {"Accept": "application/sdp",
                                                "Authorization": sign})
        if signed.status == 401:
            raise RtspError(f"{self.where('DESCRIBE')}: login as {creds.user!r} refused "
                            "(RTSP 401 to the signed request)", kind="login", status=401)
        return signed

    def request(self, method: str, uri: str, headers: dict[str, str] | None = None
                ) -> RtspReply:
        """Send one request and read its reply (its CSeq must echo ours)."""
        assert self._sock is not None, "use RtspSession as a context manager"
        self._cseq += 1
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self._cseq}",
                 f"User-Agent: rig/{__version__}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        try:
            self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
            reply = self._read_reply(method)
        except OSError as exc:
            raise self._failed(method, exc) from None
        cseq = reply.header("cseq")
        if cseq is None or cseq.strip() != str(self._cseq):
            raise self._malformed(method, f"reply CSeq {cseq!r} does not echo {self._cseq}")
        return reply

    def where(self, method: str) -> str:
        return f"rtsp {self.route.describe()} {method}"

    def _challenge(self, reply: RtspReply) -> Challenge:
        offered = reply.all("www-authenticate")
        problem = "no WWW-Authenticate header"
        for value in offered:
            try:
                return parse_challenge(value)
            except DigestError as exc:
                problem = str(exc)
        if any(v.strip().lower().startswith("basic") for v in offered):
            problem = "only Basic authentication offered (rig never sends a password in clear)"
        raise RtspError(f"{self.where('DESCRIBE')}: RTSP 401: {problem}", kind="auth",
                        status=401)

    def _read_reply(self, method: str) -> RtspReply:
        head = self._read_until(b"\r\n\r\n", MAX_HEADER, method)
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            raise self._malformed(method, "reply headers are not text") from None
        first, *rest = text.split("\r\n")
        match = _STATUS.fullmatch(first.strip())
        if not match:
            raise self._malformed(method, f"not an RTSP status line: {first[:60]!r}")
        headers = []
        for line in rest:
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise self._malformed(method, f"not a header line: {line[:60]!r}")
            headers.append((name.strip().lower(), value.strip()))
        reply = RtspReply(int(match.group(1)), (match.group(2) or "").strip(), tuple(headers),
                          b"")
        return replace(reply, body=self._read_body(reply, method))

    def _read_body(self, reply: RtspReply, method: str) -> bytes:
        length_text = reply.header("content-length")
        if length_text is None:
            return b""
        # ASCII digits only: str.isdigit() also accepts "²" (int() then raises ValueError)
        # and "٣" (which int() reads as 3); neither is an RTSP Content-Length.
        length_text = length_text.strip()
        if not (length_text.isascii() and length_text.isdigit()):
            raise self._malformed(method, f"Content-Length {length_text[:20]!r} is not a number")
        length = int(length_text)
        if length > MAX_BODY:
            raise self._malformed(method, f"body of {length} bytes is larger than the "
                                          f"{MAX_BODY}-byte limit")
        while len(self._buffer) < length:
            self._recv(method)
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return body

    def _read_until(self, marker: bytes, limit: int, method: str) -> bytes:
        while marker not in self._buffer:
            if len(self._buffer) > limit:
                raise self._malformed(method, f"no end of headers within {limit} bytes")
            self._recv(method)
        head, _, self._buffer = self._buffer.partition(marker)
        if len(head) > limit:
            raise self._malformed(method, f"no end of headers within {limit} bytes")
        return head

    def _recv(self, method: str) -> None:
        assert self._sock is not None
        self._sock.settimeout(self._deadline.bound(self.timeout))
        chunk = self._sock.recv(4096)
        if not chunk:
            if self._deadline.expired:
                raise TimeoutError("deadline")
            raise RtspError(f"{self.where(method)}: connection closed by the camera "
                            "mid-reply", kind="reset")
        self._buffer += chunk

    def _malformed(self, method: str, detail: str) -> RtspError:
        return RtspError(f"{self.where(method)}: {detail}", kind="malformed")

    def _failed(self, method: str, exc: OSError) -> RtspError:
        if isinstance(exc, TimeoutError) or self._deadline.expired:
            return RtspError(f"{self.where(method)}: timed out: no complete reply within "
                             f"{self.timeout:g} s", kind="timeout")
        if isinstance(exc, ConnectionRefusedError):
            return RtspError(f"{self.where(method)}: connection refused (nothing listens on "
                             "that port)", kind="refused")
        if isinstance(exc, ConnectionResetError | BrokenPipeError):
            return RtspError(f"{self.where(method)}: connection reset by the camera",
                             kind="reset")
        return RtspError(f"{self.where(method)}: {type(exc).__name__}: {exc}", kind="other")


def rtsp_route(http_route: Route, port: int) -> Route:
    """The RTSP route of a unit: the same host, zone and interface as its HTTP route."""
    return replace(http_route, port=port)
