"""The checks against a web server that is not a well-behaved camera: garbage bodies, wrong
documents, a silent endpoint. Whatever it answers, no check passes on what it cannot read,
nothing raises out of run_checks, and a silent endpoint costs its check's time, not more."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rig.camera.isapi import IsapiClient
from rig.camera.isapi_types import Credentials
from rig.checks import CheckTarget, run_checks
from rig.checks.config import ChecksConfig
from rig.recorder import Recorder
from rig.records import RecordStore
from rig.vocabulary import CheckName, Grade

USER_CHECK = (b'<userCheck><statusValue>200</statusValue><statusString>OK</statusString>'
              b"</userCheck>")
DEVICE_INFO = (b"<DeviceInfo><model>DS-2CD2320D-I</model><serialNumber>X1</serialNumber>"
               b"<firmwareVersion>V5.5.0</firmwareVersion><macAddress>44:47:cc:95:00:01"
               b"</macAddress></DeviceInfo>")


def handler(bodies: dict[str, bytes], slow: set[str]):
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            path = self.path.split("?")[0]
            if path in slow:
                time.sleep(1.5)
            body = bodies.get(path, b"<html>hello</html>")
            try:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass                  # the client gave up on a slow answer: as it should

        do_GET = do_PUT = _answer

        def log_message(self, *args) -> None:
            pass
    return Handler


@pytest.fixture
def serve():
    servers: list[ThreadingHTTPServer] = []

    def start(bodies: dict[str, bytes], slow: set[str] = frozenset()) -> int:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler(bodies, set(slow)))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def run(tmp_path, port: int, plan: ChecksConfig):
    with RecordStore.open(tmp_path / "r.sqlite") as store:
        run_id = store.runs.start_run("b", method="manual: qa")
        unit_id = store.runs.start_unit(run_id, "S", method="manual: qa")
        with IsapiClient("127.0.0.1", port, timeout=1.0) as client:
            return run_checks(client, Recorder(store, run_id, unit_id, "S"), CheckTarget(),
                              plan, Credentials("admin", "Any-pass123"), time_scale=1000.0)


def test_garbage_everywhere_is_never_a_pass(tmp_path, serve):
    port = serve({"/ISAPI/Security/userCheck": USER_CHECK,
                  "/ISAPI/System/deviceInfo": b"\x00\xffnot xml",
                  "/ISAPI/Security/adminAccesses": b"<AdminAccessProtocolList><Admin"})
    plan = ChecksConfig(run=tuple(CheckName), timeout_s=2.0, format_timeout_s=1.0,
                        firmware_min={"current": "V5.5.0"})
    result = run(tmp_path, port, plan)
    outcomes = {str(r.name): str(r.outcome) for r in result.results}
    assert "passed" not in outcomes.values(), outcomes
    assert outcomes["snapshot"] == "failed"             # an HTML page is not a JPEG
    assert outcomes["device-info"] == outcomes["cloud"] == outcomes["ir-cut"] == "unknown"
    assert result.grade is Grade.NOT_FUNCTIONAL


def test_wrong_documents_are_unknown_with_the_reason(tmp_path, serve):
    status = b"<ResponseStatus><statusCode>1</statusCode></ResponseStatus>"
    port = serve({"/ISAPI/Security/userCheck": USER_CHECK, "/ISAPI/System/deviceInfo":
                  DEVICE_INFO, "/ISAPI/System/Network/EZVIZ": status,
                  "/ISAPI/ContentMgmt/Storage": status})
    plan = ChecksConfig(run=(CheckName.DEVICE_INFO, CheckName.CLOUD, CheckName.STORAGE))
    result = run(tmp_path, port, plan)
    by_name = {str(r.name): r for r in result.results}
    assert str(by_name["device-info"].outcome) == "passed"     # no SADP reply to compare
    for name in ("cloud", "storage"):
        assert str(by_name[name].outcome) == "unknown"
        assert "<ResponseStatus>" in by_name[name].reason


def test_a_silent_endpoint_costs_its_check_no_more(tmp_path, serve):
    port = serve({"/ISAPI/Security/userCheck": USER_CHECK, "/ISAPI/System/deviceInfo":
                  DEVICE_INFO}, slow={"/ISAPI/System/Network/EZVIZ"})
    started = time.monotonic()
    result = run(tmp_path, port, ChecksConfig(run=(CheckName.CLOUD,), timeout_s=1.0))
    assert str(result.results[0].outcome) == "unknown"
    assert "timed out" in result.results[0].reason
    assert time.monotonic() - started < 2.5
