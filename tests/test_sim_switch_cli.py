"""``rig sim switch`` as a real process: it prints how to reach it, serves SNMP until SIGTERM and
stops cleanly. The parser comes from rig.commands.sim_switch.register(), the hook ``rig sim``
calls, mounted here on a bare parser so the test does not depend on how the CLI is wired."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from rig.actuators.base import PowerState
from rig.actuators.poe import PoeSwitch

HARNESS = """
import argparse, sys
from rig.commands.sim_switch import register
parser = argparse.ArgumentParser(prog="rig sim")
register(parser.add_subparsers(dest="sim_command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def sim_switch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", HARNESS, "switch", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sim_switch_process_serves_until_sigterm():
    proc = sim_switch("--ports", "4", "--port", "0", "--mib", "both", "--json",
                      "--duration", "60")
    try:
        info = json.loads(proc.stdout.readline())["switch"]
        assert info["address"] == "127.0.0.1" and info["ports"] == 4
        assert info["communities"] == {"ro": "public", "rw": "private"}
        assert info["port1_oids"]["pethPsePortAdminEnable"] == "1.3.6.1.2.1.105.1.1.1.3.1.1"
        assert info["port1_oids"]["cpeExtPsePortEnable"] == "1.3.6.1.4.1.9.9.402.1.2.1.1.1.1"
        v3 = info["v3"]
        with PoeSwitch(info["address"], info["port"], version="3", user=v3["user"],
                       auth_key=v3["auth_key"], priv_key=v3["priv_key"], timeout=1.0) as poe:
            poe.set_port(2, False)
            assert poe.read_ports([2])[2].state is PowerState.OFF
            assert poe.walk_ports() == [(1, 1), (1, 2), (1, 3), (1, 4)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()


def test_sim_switch_text_output_shows_port_1_and_a_command_to_try():
    proc = sim_switch("--port", "0", "--mib", "cisco", "--no-v3", "--duration", "0")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "read-only public, read-write private" in out
    assert "SNMPv3: off" in out
    assert "cpeExtPsePortEnable              1.3.6.1.4.1.9.9.402.1.2.1.1.1.1" in out
    assert "snmpset -v2c -c private -On 127.0.0.1:" in out
    assert "1.3.6.1.4.1.9.9.402.1.2.1.1.1.1 i 4" in out


def test_sim_switch_rejects_bad_settings_without_a_traceback():
    for args, message in ((("--mib", "hp"), "unknown MIB view(s) ['hp']"),
                          (("--v3-priv-key", "short"), "at least 8 characters"),
                          (("--ports", "0"), "ports must be 1..512")):
        proc = sim_switch("--port", "0", "--duration", "0", *args)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 2, err
        assert message in err
        assert "Traceback" not in err
