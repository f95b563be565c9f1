"""``rig sim relay``: registers under ``rig sim``, serves a board on a pty until SIGTERM."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from rig.actuators.serial_relay import SerialRelayBoard
from rig.commands import sim_relay


def test_register_adds_relay_to_the_sim_subcommands():
    parser = argparse.ArgumentParser(prog="rig sim")
    sub = parser.add_subparsers(dest="sim_command", required=True)
    sim_relay.register(sub)
    args = parser.parse_args(["relay", "--protocol", "numato", "--channels", "8", "--link",
                              "/tmp/x", "--duration", "1"])
    assert (args.protocol, args.channels, args.link, args.duration) == ("numato", 8, "/tmp/x",
                                                                        1.0)
    assert args.func is sim_relay.run_relay


def test_sim_relay_process_serves_a_board_until_sigterm(tmp_path: Path):
    link = tmp_path / "serial" / "by-id" / "usb-Numato_Lab_sim-if00"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig.commands.sim_relay", "--protocol", "numato", "--channels",
         "2", "--link", str(link), "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        assert banner.startswith("numato relay board, 2 channel(s), on /dev/pts/")
        assert f"(link {link})" in banner and link.is_symlink()
        with SerialRelayBoard(str(link), protocol="numato", channels=2, timeout=1.0) as board:
            board.set(2, True)
            assert proc.stdout.readline() == "channel 2 on\n"
            assert board.read(2) is True and board.read(1) is False
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()
    assert not link.exists()


def test_sim_relay_rejects_a_channel_count_the_protocol_cannot_address():
    proc = subprocess.run([sys.executable, "-m", "rig.commands.sim_relay", "--protocol", "numato",
                           "--channels", "40", "--duration", "0"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "a simulated numato board has 1..32 channels, not 40" in proc.stderr
    assert "Traceback" not in proc.stderr
