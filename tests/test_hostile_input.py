"""Issue 16.5: hostile input ends in a clear error and a non-zero exit code, never a traceback.

Replies nested ~1 100 deep (XML, or JSON in an error body), user names and passwords that cannot
be sent as a Digest login, bench files with deeply nested arrays or nan/inf numbers, and a
password on ``rig verify``'s command line. Replies come from a canned HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rig import xmlsafe
from rig.bench import BenchError, load_bench
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import IsapiError, MalformedReply
from rig.camera.isapi_types import Credentials, parse_json
from rig.cli import main

DEEP = 1100
DEEP_XML = b"<DeviceInfo>" + b"<a>" * DEEP + b"</a>" * DEEP + b"</DeviceInfo>"
DEEP_JSON = b'{"statusCode": 4, "x": ' + b"[" * DEEP + b"]" * DEEP + b"}"
BENCH = Path(__file__).resolve().parent.parent / "hardware" / "benches" / "dc-gpio-4.toml"


@contextmanager
def canned(status: int, body: bytes, content_type: str = "application/xml",
           ) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server answering every request with ``status`` and ``body``; yields its
    HOST:PORT and the request lines it saw."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:            # noqa: N802 - http.server's name
            seen.append(f"{self.command} {self.path} auth={'Authorization' in self.headers}")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_PUT = do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def client_for(where: str) -> IsapiClient:
    host, port = where.split(":")
    return IsapiClient(host, int(port), timeout=3)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# --- replies nested ~1 100 deep -----------------------------------------------------------------

def test_xml_nested_too_deep_is_refused_naming_the_depth():
    with pytest.raises(xmlsafe.XmlError, match="nested deeper than 64 levels"):
        xmlsafe.parse(DEEP_XML, max_bytes=1 << 20, what="reply")
    shallow = b"<a>" * 64 + b"</a>" * 64
    assert xmlsafe.local_name(xmlsafe.parse(shallow).tag) == "a"


def test_xml_depth_check_keeps_the_defences():
    with pytest.raises(xmlsafe.XmlError, match="unsafe"):
        xmlsafe.parse(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')
    with pytest.raises(xmlsafe.XmlError, match="malformed"):
        xmlsafe.parse(b"<a><b></a>")
    root = xmlsafe.parse(b"<r xmlns='urn:x'><k>v</k><l><m>w</m></l></r>")
    assert xmlsafe.find_text(root, "m") == "w" and xmlsafe.children_text(root)["k"] == "v"


def test_deep_xml_reply_is_a_malformed_reply():
    with canned(200, DEEP_XML) as (where, _), client_for(where) as client:
        with pytest.raises(MalformedReply, match="nested deeper than 64 levels"):
            client.activate_status()


@pytest.mark.parametrize("body", [
    DEEP_JSON, b"[" * 100_000, b'{"a": "' + b"[" * 5000 + b'"}',
    b'\\"' * 50_000])
def test_json_depth_is_checked_without_recursion(body):
    try:
        parse_json(body)
    except ValueError:
        pass                                  # refused, or not JSON: both are ValueError


def test_json_strings_do_not_count_as_nesting():
    assert parse_json(b'{"a": "[[[[\\" {{{{", "b": [[1]]}') == {"a": '[[[[" {{{{', "b": [[1]]}
    with pytest.raises(ValueError, match="nested deeper than 64 levels"):
        parse_json(DEEP_JSON)


def test_deep_json_error_body_is_an_http_error():
    with canned(500, DEEP_JSON, "application/json") as (where, _), client_for(where) as client:
        with pytest.raises(IsapiError, match="HTTP 500"):
            client.activate_status()


def test_deep_json_success_body_is_a_malformed_reply():
    with canned(200, DEEP_JSON, "application/json") as (where, _), client_for(where) as client:
        with pytest.raises(MalformedReply, match="nested deeper"):
            client.activate("Secret123!", variant="v3")


@pytest.mark.parametrize(("status", "body"), [(200, DEEP_XML), (500, DEEP_JSON),
                                              (401, DEEP_JSON)])
def test_rig_verify_on_deep_replies_exits_3_cleanly(capsys, status, body):
    with canned(status, body) as (where, _):
        code, out, _ = cli(capsys, "verify", where, "--no-default-login")
    assert code == 3 and out.splitlines()[1].startswith(("ERROR", "UNREACHABLE", "UNKNOWN"))


# --- user names and passwords that cannot be sent -----------------------------------------------

@pytest.mark.parametrize(("user", "password"), [
    ("adm\r\nin", "x"), ("ädmin", "x"), ("用户", "x"), ("ad\"min", "x"), ("ad\\min", "x"),
    ("", "x"), ("admin", "pw\r\nX-Evil: 1"), ("admin", "pw\x00"), ("admin", "\udcff")])
def test_unsendable_credentials_are_refused_without_the_password(user, password):
    with pytest.raises(ValueError) as caught:
        Credentials(user, password)
    assert password not in str(caught.value) or not password


def test_rig_verify_refuses_an_unsendable_user_before_any_request(capsys, monkeypatch):
    monkeypatch.setenv("RIG_TEST_PW", "Secret123!")
    with canned(401, b"") as (where, seen):
        for user in ("adm\r\nin", "ädmin"):
            code, out, err = cli(capsys, "verify", where, "--user", user,
                                 "--password-env", "RIG_TEST_PW")
            assert code == 2 and out == "" and "printable ASCII" in err
            assert "Secret123!" not in err
    assert seen == []


def test_rig_verify_refuses_a_password_with_control_characters(capsys, monkeypatch):
    monkeypatch.setenv("RIG_TEST_PW", "Secret\r\n123!")
    code, out, err = cli(capsys, "verify", "127.0.1.149", "--password-env", "RIG_TEST_PW")
    assert code == 2 and "control characters" in err and "Secret" not in err


def test_rig_run_refuses_an_unsendable_user(capsys, monkeypatch):
    monkeypatch.setenv("RIG_TEST_PW", "Secret123!")
    code, _, err = cli(capsys, "run", str(BENCH), "--user", "a\nb", "--password-env",
                       "RIG_TEST_PW", "--db", "/nonexistent/never-opened.sqlite")
    assert code == 2 and "printable ASCII" in err and "Secret123!" not in err


# --- bench files --------------------------------------------------------------------------------

def bench_with(tmp_path: Path, line: str) -> Path:
    """The example bench with ``line`` set in its [bench] table (replacing the key's own)."""
    key = line.partition(" = ")[0]
    lines = [k for k in BENCH.read_text(encoding="utf-8").splitlines()
             if k.partition(" = ")[0].strip() != key]
    text = "\n".join(lines).replace("[bench]\n", f"[bench]\n{line}\n", 1) + "\n"
    path = tmp_path / "bench.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("line", ["time_scale = nan", "settle_seconds = nan",
                                  "settle_seconds = inf", "solenoid_max_on_seconds = -inf",
                                  "power_on_spacing_seconds = +nan"])
def test_nan_and_inf_are_refused_naming_the_key(tmp_path, capsys, line):
    key, _, value = line.partition(" = ")
    path = bench_with(tmp_path, line)
    with pytest.raises(BenchError, match=rf"bench\.{key}: .*is not a number"):
        load_bench(path)
    code, _, err = cli(capsys, "check", str(path))
    assert code != 0 and f"bench.{key}" in err


def test_deeply_nested_arrays_are_a_bench_error(tmp_path, capsys):
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(BenchError, match="nested too deeply"):
        load_bench(path)
    for argv in (["check", str(path)], ["run", str(path)]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and str(path) in err and "nested too deeply" in err


def test_a_nested_value_in_a_message_is_cut_short(tmp_path):
    path = bench_with(tmp_path, "name = " + "[" * 300 + "]" * 300)
    with pytest.raises(BenchError) as caught:
        load_bench(path)
    assert "bench.name" in str(caught.value) and len(str(caught.value)) < 300
