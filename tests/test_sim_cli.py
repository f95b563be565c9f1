"""``rig sim camera`` as a real process: it serves until SIGTERM and stops cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from rig.camera.discovery import discover


def test_sim_camera_process_serves_until_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "sim", "camera", "--count", "3", "--first", "240",
         "--http-port", "0", "--json", "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        units = json.loads(proc.stdout.readline())["cameras"]
        assert [u["address"] for u in units] == ["127.0.1.240", "127.0.1.241", "127.0.1.242"]
        assert [u["profile"] for u in units] == ["current", "legacy", "g5"]
        found = {d.mac: d for d in discover(timeout=2.0, bind="127.0.0.1")}
        for unit in units:
            assert found[unit["mac"]].serial == unit["serial"]
            assert found[unit["mac"]].http_port == unit["http_port"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()
    assert not any(d.ipv4 and d.ipv4.startswith("127.0.1.24")
                   for d in discover(timeout=0.5, bind="127.0.0.1"))


def test_sim_camera_rejects_an_unknown_profile():
    proc = subprocess.run(
        [sys.executable, "-m", "rig.cli", "sim", "camera", "--profiles", "nosuch", "--duration",
         "0"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "unknown firmware profile 'nosuch'" in proc.stderr
    assert "Traceback" not in proc.stderr
