"""The solenoid cap and the safe-state guard, shared by every button and output driver."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from rig.actuators.base import ActuatorError, CappedButton, OutputGuard


class RecordingButton(CappedButton):
    """A CappedButton whose 'coil' is a list of what happened to it."""

    def __init__(self, **kwargs) -> None:
        super().__init__("test solenoid", **kwargs)
        self.log: list[str] = []
        self.on = False

    def _energise(self) -> None:
        self.on = True
        self.log.append("on")

    def _release(self) -> None:
        self.on = False
        self.log.append("off")


def test_press_longer_than_the_cap_is_refused_before_anything_moves():
    button = RecordingButton(max_on_seconds=1.0)
    with pytest.raises(ValueError, match="on-time cap"):
        button.press(1.5)
    with pytest.raises(ValueError):
        button.press(0)
    assert button.log == []


def test_watchdog_releases_a_hung_hold_at_its_limit():
    button = RecordingButton(max_on_seconds=5.0, cooldown_ratio=0)
    with button.hold(0.1):
        assert button.on
        time.sleep(0.4)                       # the caller hangs past the hold
        assert not button.on and button.watchdog_fired
    assert button.log == ["on", "off", "off"]


def test_exception_inside_a_hold_releases():
    button = RecordingButton(cooldown_ratio=0)
    with pytest.raises(RuntimeError), button.hold(5):
        assert button.on
        raise RuntimeError("step failed")
    assert not button.on and not button.energised


def test_cool_down_after_a_press():
    button = RecordingButton(cooldown_ratio=1.0)
    button.press(0.2)
    with pytest.raises(ActuatorError, match="cooling down"):
        button.press(0.1)
    assert 0.1 < button.cooldown_left() <= 0.3           # what a procedure waits out first
    time.sleep(0.25)
    assert button.cooldown_left() == 0
    button.press(0.05)


def test_energise_failure_still_releases():
    class Broken(RecordingButton):
        def _energise(self) -> None:
            raise OSError("line busy")

    button = Broken()
    with pytest.raises(OSError), button.hold(1):
        pass
    assert button.log == ["off"] and not button.energised


def test_guard_makes_outputs_safe_even_if_one_fails():
    guard = OutputGuard()
    calls: list[str] = []
    guard.register(lambda: calls.append("a"))
    guard.register(lambda: (_ for _ in ()).throw(OSError("board gone")))
    guard.register(lambda: calls.append("c"))
    assert guard.make_all_safe() == ["board gone"]
    assert calls == ["a", "c"]


SIGNAL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from rig.actuators.base import CappedButton, OutputGuard

    class FileButton(CappedButton):
        def _energise(self):
            open({state!r}, "w").write("on")
        def _release(self):
            open({state!r}, "w").write("off")

    button = FileButton("s", max_on_seconds=30)
    with OutputGuard() as guard:
        guard.register(button.release)
        with button.hold(30):
            print("held", flush=True)
            time.sleep(30)
""")


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signal_releases_the_solenoid(tmp_path, signame):
    import signal as sig
    from pathlib import Path

    state = tmp_path / "coil"
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", SIGNAL_SCRIPT.format(root=root,
                                                                        state=str(state))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert state.read_text() == "on"
        proc.send_signal(getattr(sig, signame))
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert state.read_text() == "off"
    assert proc.returncode != 0


def test_a_normal_press_is_not_reported_as_a_watchdog_release():
    button = RecordingButton(max_on_seconds=5.0, cooldown_ratio=0)
    for _ in range(5):
        button.press(0.05)
        assert not button.watchdog_fired
    assert button.log == ["on", "off"] * 5


def test_a_failed_release_keeps_the_coil_energised_and_the_watchdog_armed():
    """A board that fails to release (unplugged) must not be taken as released: the hold's
    exit raises, the button still counts as energised, and the watchdog tries again."""
    class Flaky(RecordingButton):
        failures = 1

        def _release(self) -> None:
            if self.failures:
                self.failures -= 1
                raise OSError("board gone")
            super()._release()

    button = Flaky(max_on_seconds=5.0, cooldown_ratio=0)
    with pytest.raises(OSError, match="board gone"), button.hold(0.2):
        pass
    assert button.on and button.energised
    deadline = time.monotonic() + 2
    while button.energised and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not button.on and not button.energised and button.watchdog_fired
