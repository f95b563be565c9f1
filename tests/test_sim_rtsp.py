"""The virtual camera's RTSP listener over raw TCP on loopback: OPTIONS, DESCRIBE with Digest,
SDP, refusals, malformed requests and a unit that moves.

The client here is a few lines of socket code with its own MD5 arithmetic (RFC 2069: the RTSP
method and URI in HA2), not rig.camera.digest (which the server uses) nor the controller's RTSP
client: a shared misreading would pass both.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import socket
import time

import pytest

from rig.camera.profiles import ProfileSet
from rig.sim.bench import _BenchHost
from rig.sim.camera import SimFaults, VirtualCamera
from rig.sim.media import MediaConfig
from rig.sim.rtsp_server import RtspServer

PROFILES = ProfileSet.load()
PASSWORD = "Secret123!"
_addresses = itertools.count(10)


def new_camera(*faults: str, codec: str = "H.264", activated: bool = True) -> VirtualCamera:
    n = next(_addresses)
    cam = VirtualCamera(PROFILES.get("current"), mac=f"44:47:cc:78:00:{n:02x}",
                        serial=f"DS-2CD2320D-I20240115AAWRE000078{n:02d}",
                        address=f"127.0.78.{n}", http_port=0, rtsp_port=0, time_scale=1000.0,
                        faults=SimFaults.from_names(faults),
                        media=MediaConfig(width=640, height=360, codec=codec))
    cam.set_power(True, booted=True)
    if activated:
        cam.provision(PASSWORD)
    return cam


@pytest.fixture
def serve():
    """Factory: an RTSP server for a camera, closed after the test."""
    servers: list[RtspServer] = []

    def start(cam: VirtualCamera) -> VirtualCamera:
        server = RtspServer(cam)
        servers.append(server)
        server.serve_in_thread()
        return cam

    yield start
    for server in servers:
        server.close()


class Client:
    """One RTSP connection; ``ask`` sends a request and reads one whole reply."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=3)
        self.file = self.sock.makefile("rb")

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def reply(self) -> tuple[int, dict[str, str], str]:
        status_line = self.file.readline().decode()
        if not status_line:
            raise ConnectionError("closed without an answer")
        headers: dict[str, str] = {}
        for line in iter(lambda: self.file.readline().decode().rstrip("\r\n"), ""):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.file.read(int(headers.get("content-length", "0"))).decode()
        version, code, _ = status_line.split(" ", 2)
        assert version == "RTSP/1.0"
        return int(code), headers, body

    def ask(self, method: str, uri: str, cseq: int, **headers: str
            ) -> tuple[int, dict[str, str], str]:
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {cseq}"]
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def url(cam: VirtualCamera, path: str = "/Streaming/Channels/101") -> str:
    return f"rtsp://{cam.address}:{cam.rtsp_port}{path}"


def digest_header(challenge: str, method: str, uri: str, user: str, password: str) -> str:
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    ha1 = hashlib.md5(f"{user}:{params['realm']}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{ha1}:{params['nonce']}:{ha2}".encode()).hexdigest()
    return (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
            f'uri="{uri}", response="{response}"')


def describe(cam: VirtualCamera, password: str = PASSWORD, path: str = "/Streaming/Channels/101",
             digest_uri: str | None = None) -> tuple[int, dict[str, str], str]:
    """DESCRIBE: the 401 first, then one answer with a login computed for ``digest_uri``."""
    client = Client(cam.address, cam.rtsp_port)
    try:
        uri = url(cam, path)
        code, headers, _ = client.ask("DESCRIBE", uri, 1, Accept="application/sdp")
        assert code == 401 and headers["www-authenticate"].startswith("Digest ")
        auth = digest_header(headers["www-authenticate"], "DESCRIBE", digest_uri or uri,
                             "admin", password)
        return client.ask("DESCRIBE", uri, 2, Accept="application/sdp", Authorization=auth)
    finally:
        client.close()


def test_options_needs_no_login_and_echoes_cseq(serve):
    cam = serve(new_camera())
    client = Client(cam.address, cam.rtsp_port)
    code, headers, _ = client.ask("OPTIONS", url(cam), 7)
    assert code == 200 and headers["cseq"] == "7" and "DESCRIBE" in headers["public"]
    assert client.ask("OPTIONS", "*", 8)[1]["cseq"] == "8"      # same connection, next CSeq
    client.close()


def test_describe_asks_for_digest_then_answers_sdp_with_a_video_track(serve):
    cam = serve(new_camera())
    code, headers, body = describe(cam)
    assert code == 200 and headers["cseq"] == "2"
    assert headers["content-type"] == "application/sdp"
    assert "m=video 0 RTP/AVP 96" in body and "a=rtpmap:96 H264/90000" in body


def test_challenge_names_realm_and_nonce(serve):
    cam = serve(new_camera())
    client = Client(cam.address, cam.rtsp_port)
    _, headers, _ = client.ask("DESCRIBE", url(cam), 1)
    client.close()
    assert re.search(r'realm="[^"]+"', headers["www-authenticate"])
    assert re.search(r'nonce="[0-9a-f]+"', headers["www-authenticate"])


def test_h265_stream_is_described_as_h265(serve):
    cam = serve(new_camera(codec="H.265"))
    assert "a=rtpmap:96 H265/90000" in describe(cam)[2]


def test_wrong_password_is_refused_and_counted(serve):
    cam = serve(new_camera())
    code, headers, body = describe(cam, password="Wrong-pass1")
    assert code == 401 and "www-authenticate" in headers and "m=video" not in body
    assert cam.failed_logins() == 1


def test_digest_for_another_uri_is_refused(serve):
    cam = serve(new_camera())
    assert describe(cam, digest_uri=url(cam, "/Streaming/Channels/102"))[0] == 401


def test_inactive_unit_has_no_password_to_match(serve):
    cam = serve(new_camera(activated=False))
    assert describe(cam, password="")[0] == 401


def test_a_nonce_the_unit_never_issued_is_refused(serve):
    cam = serve(new_camera())
    client = Client(cam.address, cam.rtsp_port)
    realm = f"IP Camera({cam.serial[-9:]})"
    forged = digest_header(f'realm="{realm}", nonce="00ff"', "DESCRIBE", url(cam), "admin",
                           PASSWORD)
    assert client.ask("DESCRIBE", url(cam), 1, Authorization=forged)[0] == 401
    client.close()


def test_unknown_path_is_404_after_login(serve):
    cam = serve(new_camera())
    assert describe(cam, path="/Streaming/Channels/999")[0] == 404


def test_methods_it_does_not_stream_are_not_implemented(serve):
    cam = serve(new_camera())
    client = Client(cam.address, cam.rtsp_port)
    assert client.ask("PLAY", url(cam), 1)[0] == 501
    assert client.ask("DESCRIBE", url(cam), 2)[0] == 401     # the connection still serves
    client.close()


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"OPTIONS rtsp://x/ RTSP/1.0\r\n\r\n",                       # no CSeq
    b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\nno colon here\r\n\r\n",
    b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\nContent-Length: -5\r\n\r\n",
    b"OPTIONS " + b"a" * 5000 + b" RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    b"\xff\xfe\x00\x01 \x80\x81 \x90\r\n\r\n",
])
def test_malformed_requests_get_400_and_the_server_lives_on(serve, raw):
    cam = serve(new_camera())
    client = Client(cam.address, cam.rtsp_port)
    client.send(raw)
    assert client.reply()[0] == 400
    client.close()
    again = Client(cam.address, cam.rtsp_port)
    assert again.ask("OPTIONS", url(cam), 1)[0] == 200
    again.close()


def test_other_rtsp_versions_are_refused(serve):
    cam = serve(new_camera())
    client = Client(cam.address, cam.rtsp_port)
    assert client.ask("OPTIONS", url(cam), 1)[0] == 200
    client.send(f"OPTIONS {url(cam)} RTSP/2.0\r\nCSeq: 2\r\n\r\n".encode())
    assert client.reply()[0] == 505
    client.close()


def test_refused_fault_keeps_the_port_but_refuses_connections(serve):
    cam = serve(new_camera("rtsp-refused"))
    assert cam.rtsp_port > 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((cam.address, cam.rtsp_port), timeout=2)


def test_a_unit_that_is_off_does_not_answer(serve):
    cam = serve(new_camera())
    cam.set_power(False)
    client = Client(cam.address, cam.rtsp_port)
    client.send(f"OPTIONS {url(cam)} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
    with pytest.raises(ConnectionError):
        client.reply()
    client.close()


def connect_when_up(host: str, port: int, timeout: float) -> Client:
    """A connection once ``host:port`` listens (a move reopens the servers a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client(host, port)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_rtsp_follows_the_unit_to_its_new_address():
    cam = new_camera()
    host = _BenchHost(cam, sadp_interface="127.0.0.1", follow_address=True).start()
    try:
        old, port = cam.address, cam.rtsp_port
        new = f"127.0.79.{next(_addresses)}"
        cam.update_settings(ipv4=new)
        client = connect_when_up(new, port, timeout=3)
        assert client.ask("OPTIONS", url(cam), 1)[0] == 200
        client.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((old, port), timeout=2)
    finally:
        host.stop()
