"""``rig serve`` as a process: it prints where it listens, answers, and stops cleanly on
SIGTERM; a bad --listen is a usage error."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
import requests

from rig.cli import main


def test_rig_serve_answers_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "RIG_SERVE_TOKEN": ""}
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "serve", "--db",
                             str(tmp_path / "r.sqlite"), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, line
        answer = requests.get(url.group(0) + "/api/bench", timeout=5)
        assert answer.status_code == 200 and answer.json()["slots"] == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("listen", ["8765", "127.0.0.1:http", ":80", "127.0.0.1:70000"])
def test_a_bad_listen_address_is_a_usage_error(listen, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--listen", listen])
    assert exit_.value.code == 2 and "ADDR:PORT" in capsys.readouterr().err


def test_the_systemd_unit_serves_the_same_records_on_loopback():
    from tests.test_hardware import HW, unit_entries, values
    serve = unit_entries(HW / "systemd" / "rig-serve.service")["Service"]
    run = unit_entries(HW / "systemd" / "rig.service")["Service"]
    db = [v for v in values(run, "Environment") if v.startswith("RIG_DB=")]
    assert db and db[0] in values(serve, "Environment")
    assert values(serve, "User") == ["rig"] and values(serve, "NoNewPrivileges") == ["yes"]
    (start,) = values(serve, "ExecStart")
    argv = start.split()
    assert argv[0].endswith("/rig") and argv[1] == "serve"
    listen = argv[argv.index("--listen") + 1]
    assert listen.startswith("127.0.0.1:")


def test_rig_demo_serve_shows_the_eight_slots_live_and_slot_7_failing(tmp_path):
    """The issue's first promise: `rig demo --serve` shows the demo bench live, slot 7 red."""
    from tests.serve_support import EventReader
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "RIG_SERVE_TOKEN": ""}
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "demo", "--dir", str(tmp_path),
                             "--time-scale", "60", "--first", "230", "--quiet",
                             "--serve", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = iter(proc.stdout.readline, "")
        url = next(m.group(0) for line in lines
                   if (m := re.search(r"dashboard: (http://127\.0\.0\.1:\d+)", line)))
        url = url.removeprefix("dashboard: ")
        reader = EventReader(url)
        reader.start()
        assert any("demo OK" in line for line in lines)
        final = requests.get(url + "/api/slots", timeout=5).json()
        reader.close()
        assert final["bench"] == "demo" and len(final["slots"]) == 8
        last = {c["slot"]: c["last"]["verdict"] for c in final["slots"]}
        assert last.pop("7") == "not-default" and set(last.values()) == {"factory-default"}
        running = {c["slot"] for _, doc in reader.events for c in doc["slots"]
                   if c["state"] == "running"}
        assert running == {str(i) for i in range(1, 9)}      # every slot seen at work, live
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
