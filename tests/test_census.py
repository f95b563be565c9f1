"""The SADP census: absence needs two rounds, presence one (UDP loses datagrams)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from rig.camera.discovery import RECV_BUFFER
from rig.camera.sadp import SadpDevice
from rig.census import Census


def device(mac: str) -> SadpDevice:
    return SadpDevice(uuid="13A888A9-F1B1-4020-AE9F-05607682D23B", mac=mac, serial=None,
                      model=None, device_type=None, ipv4="127.0.1.1", mask=None, gateway=None,
                      ipv6=None, dhcp=None, http_port=None, command_port=None, firmware=None,
                      dsp_version=None, activated=None, device_lock=None, boot_time=None)


class ScriptedProbe:
    """Each call returns the next scripted set of MACs (then the last one forever)."""

    def __init__(self, rounds: list[set[str]]) -> None:
        self.rounds = rounds
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, **kwargs):
        with self.lock:
            macs = self.rounds[min(self.calls, len(self.rounds) - 1)]
            self.calls += 1
        time.sleep(kwargs["timeout"])
        return SimpleNamespace(devices=tuple(device(m) for m in sorted(macs)))


A, B = "44:47:cc:00:00:0a", "44:47:cc:00:00:0b"


def test_one_lost_reply_is_not_a_unit_gone():
    probe = ScriptedProbe([{A, B}, {A}, {A, B}, {A, B}])
    with Census(bind="127.0.0.1", window=0.01, interval=0.02, probe=probe) as census:
        since = time.monotonic()
        assert not census.gone_after(B, since, timeout=0.3)
        assert B in census.present()          # the union of the last two rounds


def test_two_missing_rounds_are_a_unit_gone():
    probe = ScriptedProbe([{A, B}, {A}, {A}, {A}])
    with Census(bind="127.0.0.1", window=0.01, interval=0.02, probe=probe) as census:
        assert census.gone_after(B, time.monotonic() - 1, timeout=1.0)


def test_rounds_after_and_seen_after():
    probe = ScriptedProbe([{A}, {A}, {A, B}])
    with Census(bind="127.0.0.1", window=0.01, interval=0.02, probe=probe) as census:
        since = time.monotonic()
        rounds = census.rounds_after(since, 2, timeout=1.0)
        assert rounds is not None and len(rounds) == 2
        assert census.seen_after(B, since, timeout=1.0) == device(B)
        assert census.seen_after("44:47:cc:00:00:0c", since, timeout=0.1) is None


def test_cancel_interrupts_a_wait():
    import pytest

    from rig.census import Interrupted

    probe = ScriptedProbe([{A}])
    cancel = threading.Event()
    cancel.set()
    with Census(bind="127.0.0.1", window=0.01, interval=0.02, probe=probe) as census, \
            pytest.raises(Interrupted):
        census.seen_after(B, time.monotonic(), timeout=5, cancel=cancel)


def test_only_the_first_round_may_end_early_on_the_expected_units():
    """The batch waits on the first round before any output moves; later rounds always run
    their full window (a stranger on the bench must still be seen for attribution)."""
    seen: list[dict] = []
    probe = ScriptedProbe([{A, B}])

    def recording(**kwargs):
        seen.append(dict(kwargs))
        return probe(**kwargs)

    with Census(bind="127.0.0.1", window=0.01, interval=0.02, probe=recording,
                expect=[A, B]) as census:
        assert census.rounds_after(0.0, 3, 2.0) is not None
    assert seen[0]["expect"] == (A, B)
    assert all("expect" not in kwargs for kwargs in seen[1:])
    # ... but every round's receive buffer stays sized for the bench's burst.
    assert "receive_buffer" not in seen[0]
    assert all(kwargs["receive_buffer"] >= RECV_BUFFER for kwargs in seen[1:])
