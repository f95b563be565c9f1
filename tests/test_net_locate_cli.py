"""``rig net set`` and ``rig locate`` end to end: against ``rig sim camera`` in its own process
(lamp state read back from its --json event lines), and against in-process fleets. SADP is
pinned to 127.0.0.1; every address is in 127.0.0.0/8."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rig.cli import main
from rig.records import RecordStore
from rig.sim.fleet import CameraFleet

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Bench-Pass-42"
BIND = ["--bind", "127.0.0.1"]


@pytest.fixture
def sim_camera():
    """``rig sim camera`` with a current and a legacy unit, and a queue of its JSON lines."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "sim", "camera", "--count", "2", "--profiles",
         "current,legacy", "--base", "127.0.91.", "--first", "10", "--http-port", "0",
         "--time-scale", "200", "--json", "--duration", "120"],
        stdout=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[dict] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(json.loads(line))
    threading.Thread(target=pump, daemon=True).start()
    try:
        units = lines.get(timeout=30)["cameras"]
        yield units, lines
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def next_event(lines: queue.Queue, event: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        item = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        if item.get("event") == event:
            return item


def test_locate_on_and_off_is_visible_in_the_simulator_output(sim_camera, capsys):
    units, lines = sim_camera
    current = next(u for u in units if u["profile"] == "current")
    assert current["lamp"] is False
    assert main(["locate", current["mac"], *BIND, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "done"
    assert next_event(lines, "lamp") == {"event": "lamp", "mac": current["mac"], "lamp": True}
    assert main(["locate", current["serial"], "--off", *BIND]) == 0      # by serial
    assert "no longer blinking" in capsys.readouterr().out
    assert next_event(lines, "lamp")["lamp"] is False


def test_locate_unsupported_says_so(sim_camera, capsys):
    units, _ = sim_camera
    legacy = next(u for u in units if u["profile"] == "legacy")
    assert main(["locate", legacy["mac"], *BIND]) == 1
    assert "has no SADP lamp" in capsys.readouterr().out


def test_net_set_isapi_fallback_against_rig_sim_camera(sim_camera, capsys, tmp_path,
                                                        monkeypatch):
    units, lines = sim_camera
    legacy = next(u for u in units if u["profile"] == "legacy")     # admin/12345, no update
    monkeypatch.setenv("CAM_PW", "12345")
    status = main(["net", "set", "--mac", legacy["mac"], "--ip", "127.0.92.5", "--gateway",
                   "127.0.92.1", "--password-env", "CAM_PW", "--db",
                   str(tmp_path / "rig.sqlite"), "--confirm-timeout", "10", *BIND, "--json"])
    out = json.loads(capsys.readouterr().out)["results"][0]
    assert status == 0, out
    assert out["method"] == "isapi" and out["seen"]["ipv4"] == "127.0.92.5"
    assert "12345" not in json.dumps(out)


def test_net_set_refuses_an_inactive_unit_without_spending_an_attempt(sim_camera, capsys,
                                                                      tmp_path, monkeypatch):
    units, _ = sim_camera
    current = next(u for u in units if u["profile"] == "current")
    monkeypatch.setenv("CAM_PW", PASSWORD)
    db = tmp_path / "rig.sqlite"
    status = main(["net", "set", "--mac", current["mac"], "--ip", "127.0.93.5", "--gateway",
                   "127.0.93.1", "--password-env", "CAM_PW", "--db", str(db), *BIND])
    assert status == 1 and "not activated" in capsys.readouterr().out
    with RecordStore(db) as store:
        assert store.sadp_attempts.failures(current["mac"]) == 0


def test_net_set_pool_by_mac_with_wrong_then_right_password(capsys, tmp_path, monkeypatch):
    db = str(tmp_path / "rig.sqlite")
    with CameraFleet.start(2, profiles=("current",), base="127.0.94.", first=10,
                           http_port=0, time_scale=200.0, booted=True, mac_block=0x94) as sim:
        for camera in sim.cameras:
            camera.provision(PASSWORD)
        macs = [arg for c in sim.cameras for arg in ("--mac", c.mac)]
        command = ["net", "set", *macs, "--pool-start", "127.0.95.20", "--gateway",
                   "127.0.95.1", "--password-env", "CAM_PW", "--db", db,
                   "--confirm-timeout", "10", *BIND]
        monkeypatch.setenv("CAM_PW", "Not-The-Pass-1")
        assert main(command) == 1
        assert "refused the password; 1 failed attempt(s) counted" in capsys.readouterr().out
        monkeypatch.setenv("CAM_PW", PASSWORD)
        assert main(command) == 0
        assert [c.address for c in sim.cameras] == ["127.0.95.20", "127.0.95.21"]


@pytest.mark.parametrize("argv, message", [
    (["net", "set", "--mac", "44:47:cc:00:00:01", "--ip", "127.0.96.1", "--gateway",
      "127.0.96.254", *BIND], "--password-env"),
    (["net", "set", "--mac", "44:47:cc:00:00:01", "--ip", "127.0.96.1", "--gateway",
      "127.0.96.254", "--password-env", "RIG_TEST_UNSET_VAR", *BIND], "is not set"),
    (["net", "set", "--slot", "3", "--ip", "127.0.96.1", "--password-env", "X", *BIND],
     "bench file"),
])
def test_usage_errors_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("RIG_BENCH", raising=False)
    monkeypatch.delenv("RIG_TEST_UNSET_VAR", raising=False)
    assert main([*argv, "--db", str(tmp_path / "rig.sqlite")]) == 2
    assert message in capsys.readouterr().err


def test_locate_a_unit_not_on_the_bench_exits_3(capsys):
    assert main(["locate", "44:47:cc:9f:00:01", *BIND, "--timeout", "0.5"]) == 3


def test_slots_of_a_simulated_bench(tmp_path, capsys, monkeypatch):
    """By slot through the bench file: locate, the power-cycle alternative, and net set
    (the bench's units answer SADP through one hub; the web server follows a moved unit)."""
    from rig.sim.bench import SimBench
    from rig.sim.bench_plan import SimSlot
    monkeypatch.setenv("RIG_DB", str(tmp_path / "rig.sqlite"))
    monkeypatch.setenv("CAM_PW", PASSWORD)
    with SimBench.start([SimSlot("relay", "current"), SimSlot("relay", "legacy")],
                        directory=tmp_path / "bench", time_scale=200.0, base="127.0.97.",
                        first=10, provision=PASSWORD, mac_block=0x97) as sim:
        bench = ["--bench", str(sim.bench_path), *BIND]
        assert main(["locate", "1", *bench]) == 0 and sim.cameras["1"].lamp is True
        assert main(["locate", "2", *bench, "--cycle"]) == 1
        out = capsys.readouterr().out
        assert "has no SADP lamp" in out and f"rig power 2 cycle --bench {sim.bench_path}" in out
        assert any(what == "power off" for _, what in sim.cameras["2"].events)
        assert main(["net", "set", "--slot", "1", *bench, "--ip", "127.0.98.5", "--gateway",
                     "127.0.98.1", "--password-env", "CAM_PW", "--confirm-timeout", "10"]) == 0
        assert "now on 127.0.98.5" in capsys.readouterr().out
        assert sim.cameras["1"].address == "127.0.98.5"
