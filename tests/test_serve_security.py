"""Who may see and act on the bench: loopback Host checking, the token on every page and API
call, cross-site refusal for actions, the owner-only token file, and the recorded clear."""

from __future__ import annotations

import os
import stat

import pytest
import requests

from rig.serve.security import Policy, TokenFileError, is_loopback, load_token
from tests.serve_support import served

TOKEN = "s3cret-token-for-tests"
ACTION = {"X-Rig-Request": "1"}


def out_of_service_bench(store) -> None:
    """A store whose bench 'b' has slot 1 out of service and slot 2 healthy."""
    run = store.runs.start_run("b", method="hard", argv=["test"])
    for slot in ("1", "2"):
        store.runs.plan_unit(run, slot, method="hard")
    store.runs.finish_run(run, "interrupted")
    store.slots.take_out("b", "1", by="tech", note="solenoid sticks")


@pytest.fixture
def token_server(tmp_path):
    with served(tmp_path / "r.sqlite", policy=Policy(token=TOKEN, loopback=False)) as (url, s):
        out_of_service_bench(s)
        yield url


@pytest.fixture
def loopback_server(tmp_path):
    with served(tmp_path / "r.sqlite") as (url, store):
        out_of_service_bench(store)
        yield url, store


@pytest.mark.parametrize("path", ["/", "/runs", "/runs/1", "/api/runs", "/api/slots",
                                  "/api/bench", "/api/events", "/api/openapi.json",
                                  "/static/bench.js", "/metrics"])
def test_every_page_and_api_call_needs_the_token(token_server, path):
    assert requests.get(token_server + path, timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert requests.get(token_server + path, headers=wrong, timeout=5).status_code == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    answer = requests.get(token_server + path, headers=right, timeout=5, stream=True)
    assert answer.status_code == 200
    answer.close()


def test_a_token_in_the_address_becomes_a_strict_httponly_cookie(token_server):
    session = requests.Session()
    answer = session.get(f"{token_server}/runs?token={TOKEN}&verdict=", timeout=5,
                         allow_redirects=False)
    assert answer.status_code == 303 and "token" not in answer.headers["Location"]
    cookie = answer.headers["Set-Cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert session.get(token_server + "/api/slots", timeout=5).status_code == 200
    assert requests.get(f"{token_server}/runs?token=wrong", timeout=5).status_code == 401


def test_loopback_refuses_a_foreign_host_name(loopback_server):
    url, _ = loopback_server
    assert requests.get(url + "/api/slots", timeout=5).status_code == 200
    rebound = requests.get(url + "/api/slots", headers={"Host": "attacker.example:80"},
                           timeout=5)
    assert rebound.status_code == 421


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 403),                                                      # a plain cross-site form
    ({**ACTION, "Origin": "http://attacker.example"}, 403),
    ({**ACTION, "Sec-Fetch-Site": "cross-site"}, 403),
    ({**ACTION, "Sec-Fetch-Site": "same-site"}, 403),
])
def test_cross_site_actions_are_refused_and_change_nothing(loopback_server, headers, status):
    url, store = loopback_server
    answer = requests.post(url + "/api/slots/1/clear", json={"by": "eve", "why": "x"},
                           headers=headers, timeout=5)
    assert answer.status_code == status
    assert store.slots.status("b", "1").out_of_service


def test_clearing_a_slot_is_recorded_with_who_and_why(loopback_server):
    url, store = loopback_server
    slots = {c["slot"]: c for c in requests.get(url + "/api/slots", timeout=5).json()["slots"]}
    assert slots["1"]["state"] == "out-of-service" and "solenoid sticks" in slots["1"][
        "health"]["reason"]
    origin = {**ACTION, "Origin": url, "Sec-Fetch-Site": "same-origin"}
    missing = requests.post(url + "/api/slots/1/clear", json={"by": "ann"}, headers=origin,
                            timeout=5)
    assert missing.status_code == 422                     # why is required
    assert requests.post(url + "/api/slots/9/clear", json={"by": "ann", "why": "x"},
                         headers=origin, timeout=5).status_code == 404
    answer = requests.post(url + "/api/slots/1/clear",
                           json={"by": "ann", "why": "new solenoid fitted"}, headers=origin,
                           timeout=5)
    assert answer.status_code == 200 and answer.json()["out_of_service"] is False
    event = store.slots.events("b", "1")[0]
    assert (event.event, event.actor, event.reason) == ("cleared", "ann (local)",
                                                        "new solenoid fitted")
    slots = {c["slot"]: c for c in requests.get(url + "/api/slots", timeout=5).json()["slots"]}
    assert slots["1"]["state"] == "idle"


def test_the_token_file_is_generated_owner_only_and_a_readable_one_is_refused(tmp_path,
                                                                            monkeypatch):
    monkeypatch.delenv("RIG_SERVE_TOKEN", raising=False)
    path = tmp_path / "cfg" / "serve-token"
    token = load_token(path)
    assert len(token) >= 40 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(path) == token                       # kept, not regenerated
    os.chmod(path, 0o644)
    with pytest.raises(TokenFileError, match="readable by others"):
        load_token(path)
    monkeypatch.setenv("RIG_SERVE_TOKEN", "from-env")
    assert load_token(path) == "from-env"


@pytest.mark.parametrize(("host", "loop"), [("127.0.0.1", True), ("127.9.9.9", True),
                                            ("::1", True), ("[::1]", True),
                                            ("localhost", True), ("0.0.0.0", False),
                                            ("192.168.1.5", False), ("bench.lan", False)])
def test_what_counts_as_loopback(host, loop):
    assert is_loopback(host) is loop


def test_listening_beyond_loopback_always_needs_a_token(tmp_path, monkeypatch):
    from rig.commands.serve import policy_for
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("RIG_SERVE_TOKEN", raising=False)
    assert policy_for("127.0.0.1") == Policy(token=None, loopback=True)
    wide = policy_for("0.0.0.0")
    assert wide.token and not wide.loopback
    assert (tmp_path / "rig" / "serve-token").read_text().strip() == wide.token
    monkeypatch.setenv("RIG_SERVE_TOKEN", "chosen")
    assert policy_for("::1") == Policy(token="chosen", loopback=True)


def test_scrub_masks_secret_text_but_keeps_facts():
    from rig.serve.queries import scrub
    data = {"password": "x", "admin_password": "y", "auth_key": "z", "community": "private",
            "passed": True, "is_default_password": True, "checks": [{"name": "a", "passed": False,
                                                                      "token": "t"}],
            "serial": "DS-1", "password_env": "RIG_PW"}
    assert scrub(data) == {"password": "***", "admin_password": "***", "auth_key": "***",
                           "community": "***", "passed": True, "is_default_password": True,
                           "checks": [{"name": "a", "passed": False, "token": "***"}],
                           "serial": "DS-1", "password_env": "RIG_PW"}
