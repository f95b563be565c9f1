"""Property-based fuzzing of everything that reads a camera's HTTP and RTSP replies: rig.xmlsafe,
the ISAPI records (rig.camera.isapi_types), the client's reply handling end to end
(rig.camera.isapi over a canned HTTP server: status, headers, body), the functional checks'
readers (rig.checks.parsers), Digest challenges and the RTSP reply reader (rig.camera.rtsp over
a canned TCP server).

The property: a value, or the layer's own documented error (ValueError from the readers,
IsapiError from the client, RtspError from the RTSP session), never any other exception, and
within the deadline. Budget and long runs: fuzz_support.
"""

from __future__ import annotations

import json
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fuzz_support import FUZZ, any_json, mutated, value_or, xml_bytes
from hypothesis import example, given
from hypothesis import strategies as st

from rig import xmlsafe
from rig.camera.digest import DigestError, parse_challenge
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import IsapiError
from rig.camera.isapi_http import Reply, error_record
from rig.camera.isapi_types import (
    ActivateStatus,
    Credentials,
    DeviceInfo,
    Ipv4Settings,
    ResponseStatus,
    UserCheck,
    parse_json,
)
from rig.camera.rtsp import RtspError, RtspSession, video_codecs
from rig.camera.transport import Route
from rig.checks import parsers

ISAPI_NAMES = ("statusCode", "statusString", "subStatusCode", "requestURL", "Activated",
               "supportVersion", "statusValue", "isActivated", "isDefaultPassword",
               "isRiskPassword", "lockStatus", "unlockTime", "retryLoginTime", "deviceName",
               "deviceID", "model", "serialNumber", "macAddress", "firmwareVersion",
               "firmwareReleasedDate", "deviceType", "addressingType", "ipAddress",
               "subnetMask", "DefaultGateway", "ipVersion")
CHECK_NAMES = ("Video", "videoResolutionWidth", "videoResolutionHeight", "videoCodecType",
               "IrcutFilterType", "hddList", "hdd", "id", "hddType", "status", "capacity",
               "freeSpace", "formating", "formatting", "percent", "enabled", "registerStatus",
               "bindStatus", "AdminAccessProtocol", "protocol", "portNo")
ROOTS = ("ResponseStatus", "ActivateStatus", "userCheck", "DeviceInfo", "IPAddress",
         "StreamingChannel", "IrcutFilter", "storage", "formatStatus", "EZVIZ",
         "AdminAccessProtocolList")
BODIES = xml_bytes(ROOTS, ISAPI_NAMES + CHECK_NAMES, ("RTSP", "bind", "unbind", "notActivated"))
JSON_BODIES = st.one_of(
    any_json().map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"statusCode": st.integers() | st.text(max_size=6) | st.none(),
                           "subStatusCode": st.text(max_size=12)}).map(
        lambda v: json.dumps(v).encode()).flatmap(mutated),
    st.text("[]{}\"\\, :1", max_size=200).map(str.encode))

XML_READERS: dict[str, Callable[[ET.Element], Any]] = {
    "ResponseStatus": ResponseStatus.from_xml, "ActivateStatus": ActivateStatus.from_xml,
    "userCheck-200": lambda root: UserCheck.from_xml(root, 200),
    "userCheck-401": lambda root: UserCheck.from_xml(root, 401),
    "DeviceInfo": DeviceInfo.from_xml, "IPAddress": Ipv4Settings.from_xml,
    "stream_config": parsers.stream_config, "ircut_mode": parsers.ircut_mode,
    "cards": parsers.cards, "format_status": parsers.format_status,
    "cloud_state": parsers.cloud_state, "rtsp_port": parsers.rtsp_port,
}


@FUZZ
@given(BODIES)
@example(b"<DeviceInfo>" + b"<a>" * 1100 + b"</a>" * 1100 + b"</DeviceInfo>")
def test_every_reader_returns_its_record_or_a_value_error(body: bytes) -> None:
    root = value_or(xmlsafe.XmlError, lambda: xmlsafe.parse(body, what="reply"))
    if root is None:
        return
    for read in XML_READERS.values():
        record = value_or(ValueError, lambda read=read: read(root))
        if hasattr(record, "to_json"):
            json.dumps(record.to_json())
    for card in value_or(ValueError, lambda: parsers.cards(root)) or ():
        assert card.id.isdigit() and card.id.isascii(), card


@FUZZ
@given(JSON_BODIES)
def test_a_json_body_is_a_value_or_a_value_error(body: bytes) -> None:
    data = value_or((ValueError, UnicodeDecodeError), lambda: parse_json(body))
    if isinstance(data, dict):
        value_or(ValueError, lambda: ResponseStatus.from_json(data))


@FUZZ
@given(st.integers(100, 599), BODIES | JSON_BODIES)
def test_an_error_body_is_read_or_ignored(status: int, body: bytes) -> None:
    """error_record says what a refusal's body says, or nothing: it never raises."""
    error_record(Reply(status=status, body=body))


CHALLENGES = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(('Digest', ' realm="x"', ' nonce="n"', ', qop="auth"',
                              ', qop="auth-int"', ", algorithm=SHA-256", ", algorithm=MD4",
                              ', opaque="o"', ", stale=TRUE", ",", '"', "=", " ", "\\")),
             max_size=12).map("".join))


@FUZZ
@given(CHALLENGES)
def test_a_challenge_is_read_or_a_digest_error(header: str) -> None:
    value_or(DigestError, lambda: parse_challenge(header))


# --- the ISAPI client end to end: a canned HTTP server -----------------------------------------

HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40)
HEADER_VALUES = HEADER_TEXT | CHALLENGES.filter(lambda s: s.isascii() and s.isprintable())


class Canned(BaseHTTPRequestHandler):
    """Answers every request with the server's ``reply``: (status, headers, body)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status, headers, body = self.server.reply        # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


CLIENT_CALLS: dict[str, Callable[[IsapiClient, Credentials], Any]] = {
    "activate_status": lambda c, _: c.activate_status(),
    "user_check": IsapiClient.user_check, "device_info": IsapiClient.device_info,
    "network": IsapiClient.network, "reboot": IsapiClient.reboot,
}


@FUZZ
@given(st.sampled_from((200, 200, 401, 403, 404, 500, 302)),
       st.lists(st.tuples(st.sampled_from(("WWW-Authenticate", "Content-Type", "X-Any")),
                          HEADER_VALUES), max_size=3),
       BODIES | JSON_BODIES, st.sampled_from(sorted(CLIENT_CALLS)))
def test_the_client_returns_its_record_or_an_isapi_error(
        http_server: ThreadingHTTPServer, status: int, headers: list[tuple[str, str]],
        body: bytes, call: str) -> None:
    http_server.reply = (status, headers, body)           # type: ignore[attr-defined]
    host, port = http_server.server_address[:2]
    with IsapiClient(host, port, timeout=2.0) as client:
        value_or(IsapiError, lambda: CLIENT_CALLS[call](client, Credentials("admin", "pw")))


# --- RTSP: a canned TCP server --------------------------------------------------------------------

class RtspCanned:
    """A TCP server that answers each request on a connection with ``reply`` (``{cseq}``
    replaced by the request's CSeq), and closes the connection once the client is quiet."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.reply = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        buffer = b""
        while True:
            try:
                chunk = conn.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                cseq = next((line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                             if line.lower().startswith(b"cseq:")), b"0")
                try:
                    conn.sendall(self.reply.replace(b"{cseq}", cseq))
                except OSError:
                    return


@pytest.fixture(scope="module")
def rtsp_server() -> Iterator[RtspCanned]:
    server = RtspCanned()
    yield server
    server.sock.close()


SDP = (b"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 0 RTP/AVP 0\r\n"
       b"a=rtpmap:0 PCMU/8000\r\n")
RTSP_REPLIES = (b"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n",
                b"RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Digest "
                b'realm="r", nonce="n"\r\n\r\n',
                b"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\n"
                b"Content-Length: %d\r\n\r\n" % len(SDP) + SDP)


#: Numbers as a peer may write them: str.isdigit() accepts "²" (int() refuses it) and "٣".
NUMBERS = st.sampled_from(("0", "3", "200", "401", "65536", "99999999999999999999", "-1", "²",
                           "٣", "1²", " 12 ", "", "0x10", "1e3")) | st.integers().map(str)


@st.composite
def rtsp_replies(draw: st.DrawFn) -> bytes:
    """A reply built field by field: status line, CSeq (usually echoing), Content-Length,
    a challenge, a body."""
    body = draw(st.sampled_from((SDP, b"")) | st.binary(max_size=64))
    headers = [("CSeq", draw(st.just("{cseq}") | NUMBERS))]
    if draw(st.booleans()):
        headers.append(("Content-Length", draw(st.just(str(len(body))) | NUMBERS)))
    if draw(st.booleans()):
        headers.append(("WWW-Authenticate", draw(CHALLENGES)))
    headers += draw(st.lists(st.tuples(HEADER_TEXT, HEADER_TEXT), max_size=2))
    draw(st.randoms()).shuffle(headers)
    head = [f"RTSP/1.0 {draw(NUMBERS)} {draw(HEADER_TEXT)}"] + [f"{k}: {v}" for k, v in headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


@FUZZ
@given(rtsp_replies() | st.sampled_from(RTSP_REPLIES).flatmap(mutated) | st.binary(max_size=100))
@example(b"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Length: \xc2\xb2\r\n\r\n")
@example(b"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Length: \xd9\xa3\r\n\r\nabc")
def test_an_rtsp_reply_is_read_or_an_rtsp_error(rtsp_server: RtspCanned, reply: bytes) -> None:
    rtsp_server.reply = reply
    route = Route("127.0.0.1", rtsp_server.sock.getsockname()[1])
    with RtspSession(route, timeout=1.0) as session:
        answer = value_or(RtspError, lambda: session.describe(
            "/Streaming/channels/101", Credentials("admin", "pw")))
    if answer is not None:                # a body is read as long as an ASCII number says
        length = answer.header("content-length")
        assert length is None or (length.isascii() and len(answer.body) == int(length))
        video_codecs(answer.body)


@FUZZ
@given(st.sampled_from((SDP,)).flatmap(mutated) | st.binary(max_size=200))
def test_any_sdp_gives_its_video_codecs(sdp: bytes) -> None:
    assert all(isinstance(c, str) for c in video_codecs(sdp))
