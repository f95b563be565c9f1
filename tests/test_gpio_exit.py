"""GPIO outputs end in their safe state however the controller process ends.

Each case runs a real interpreter with a MockFactory, an OutputGuard, a held solenoid and a
powered active-low relay, then ends it: SIGTERM (``systemctl stop``), SIGINT (Ctrl-C), normal
end of the script, an unhandled exception. The child writes both pins' level histories at exit
(an atexit hook registered before the guard, so it runs after the guard's). gpiozero's own exit
cleanup only handles devices of the global ``Device.pin_factory``, which the rig never sets, so
without the guard the outputs stay on: the last case shows that, so these tests can fail.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import atexit, json, sys, time
    sys.path.insert(0, {root!r})
    from rig.actuators.base import OutputGuard
    from rig.actuators.gpio import GpioPower, GpioSolenoid, make_pin_factory

    mode, out = sys.argv[1], sys.argv[2]
    factory = make_pin_factory("mock")

    def dump():
        with open(out, "w") as f:
            json.dump({{n: [bool(s.state) for s in factory.pin(n).states] for n in (17, 27)}}, f)

    atexit.register(dump)                     # runs after the guard's atexit hook (LIFO)
    guard = OutputGuard()
    if mode != "no-guard":
        guard.install()
    factory.pin(17)                           # create the relay pin first: full history
    power = GpioPower(17, active_high=False, factory=factory, guard=guard)
    solenoid = GpioSolenoid(27, factory=factory, max_on_seconds=30, guard=guard)
    hold = solenoid.hold(30)
    hold.__enter__()                          # no with-block: only the guard can release it
    power.on()
    print("held", flush=True)
    if mode == "signal":
        time.sleep(30)
    elif mode == "raise":
        raise RuntimeError("procedure step crashed")
""")


def run_child(tmp_path: Path, mode: str, signum: int | None = None
              ) -> tuple[int, dict[str, list[bool]], str]:
    out = tmp_path / "pins.json"
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT)), mode,
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        if signum is not None:
            proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, json.loads(out.read_text()), stderr


# Relay (GPIO17, active-low): unclaimed input, HIGH (off) as claimed, LOW (on), HIGH (safe).
# Solenoid (GPIO27, active-high): LOW, HIGH (held), LOW (released).
SAFE = {"17": [False, True, False, True], "27": [False, True, False]}


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_puts_the_outputs_in_their_safe_state(tmp_path, signame):
    code, pins, stderr = run_child(tmp_path, "signal", getattr(signal, signame))
    assert pins == SAFE, stderr
    assert code != 0
    if signame == "SIGTERM":
        assert code == 128 + signal.SIGTERM


def test_normal_interpreter_exit_puts_the_outputs_in_their_safe_state(tmp_path):
    code, pins, stderr = run_child(tmp_path, "exit")
    assert (code, pins) == (0, SAFE), stderr


def test_an_unhandled_exception_puts_the_outputs_in_their_safe_state(tmp_path):
    code, pins, stderr = run_child(tmp_path, "raise")
    assert pins == SAFE, stderr
    assert code == 1 and "procedure step crashed" in stderr


def test_without_the_guard_the_outputs_stay_on_at_exit(tmp_path):
    """The control case: gpiozero's exit cleanup does not touch a per-device factory."""
    code, pins, stderr = run_child(tmp_path, "no-guard")
    assert code == 0, stderr
    assert pins == {"17": [False, True, False], "27": [False, True]}
