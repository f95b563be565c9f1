"""The bench's shared limits: the power-on schedule (spacing, longest boot first, the lead)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rig.census import Interrupted
from rig.limits import PowerOnSchedule

BENCHES = Path(__file__).parent.parent / "hardware" / "benches"


def reserve_all(schedule: PowerOnSchedule, asks: list[tuple[str, float, float]],
                lead: float) -> dict[str, float]:
    """Each (name, earliest offset, priority) asks from its own thread at the same moment."""
    base = time.monotonic()
    granted: dict[str, float] = {}
    cancel = threading.Event()
    barrier = threading.Barrier(len(asks))

    def ask(name: str, earliest: float, priority: float) -> None:
        barrier.wait(5)
        granted[name] = schedule.reserve(base + earliest, priority, lead, cancel) - base

    threads = [threading.Thread(target=ask, args=a) for a in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(granted) == len(asks)
    return granted


def test_instants_are_spaced_and_the_longest_boot_goes_first():
    schedule = PowerOnSchedule(0.05)
    # Decisions fall 0.1 s before the first instant, 0.5 s after every thread was released:
    # all six are competing by then even on a loaded machine.
    asks = [(f"s{i}", 0.6, priority) for i, priority in enumerate([45, 75, 60, 75, 45, 60])]
    granted = reserve_all(schedule, asks, lead=0.1)
    order = sorted(granted, key=granted.get)
    assert [dict((n, p) for n, _, p in asks)[n] for n in order] == [75, 75, 60, 60, 45, 45]
    times = sorted(granted.values())
    assert times[0] >= 0.6 - 0.005
    assert all(b - a >= 0.05 - 1e-6 for a, b in zip(times, times[1:], strict=False))
    assert set(order[:2]) == {"s1", "s3"}


def test_no_instant_before_earliest_and_never_less_lead_than_asked():
    schedule = PowerOnSchedule(0.0)
    cancel = threading.Event()
    now = time.monotonic()
    assert schedule.reserve(now + 0.15, 1.0, 0.05, cancel) >= now + 0.15
    asked = time.monotonic()
    late = schedule.reserve(asked - 5.0, 1.0, 0.2, cancel)     # its earliest is long gone
    assert late >= asked + 0.2


def test_a_slot_not_yet_settled_does_not_hold_up_one_that_is():
    schedule = PowerOnSchedule(0.05)
    granted = reserve_all(schedule, [("early", 0.05, 1.0), ("late", 0.6, 99.0)], lead=0.0)
    assert granted["early"] < 0.2
    assert granted["late"] >= 0.6 - 0.005


def test_a_waiting_slot_is_released_by_cancel():
    schedule = PowerOnSchedule(0.0)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        schedule.reserve(time.monotonic() + 30, 1.0, 0.0, cancel)
    assert time.monotonic() - started < 1.0


def test_negative_spacing_is_refused():
    with pytest.raises(ValueError, match="spacing"):
        PowerOnSchedule(-0.1)


# --- serialised identity: address turns ------------------------------------------------------

def test_turns_wait_for_every_unit_of_the_group_to_be_off_then_go_one_at_a_time():
    from rig.serialised import AddressTurns
    turns = AddressTurns({"192.168.1.64": ["1", "2", "3"], "192.168.1.65": ["4"]})
    assert turns.address_of("1") == "192.168.1.64"
    assert turns.address_of("4") is None, "a unit alone on its address takes no turn"
    cancel = threading.Event()
    inside: list[str] = []
    overlap: list[tuple[str, ...]] = []
    lock = threading.Lock()

    def unit(name: str) -> None:
        turns.off(name)
        with turns.turn(name, cancel):
            with lock:
                inside.append(name)
                if len(inside) > 1:
                    overlap.append(tuple(inside))
            time.sleep(0.05)
            with lock:
                inside.remove(name)

    first = threading.Thread(target=unit, args=("1",))
    first.start()
    time.sleep(0.2)
    assert first.is_alive(), "a turn must wait while units 2 and 3 may still be on"
    others = [threading.Thread(target=unit, args=(n,)) for n in ("2", "3")]
    for t in others:
        t.start()
    for t in (first, *others):
        t.join(5)
    assert overlap == []
    with turns.turn("4", cancel):      # no group: immediate
        pass


def test_turns_only_on_a_serialised_bench_and_cancel_ends_the_wait(tmp_path):
    from rig.bench import load_bench
    from rig.serialised import AddressTurns
    text = (BENCHES / "poe-serial-24.toml").read_text()
    path = tmp_path / "bench.toml"
    path.write_text(text)
    bench = load_bench(path)
    assert bench.network.identity == "vlan"
    assert AddressTurns.for_bench(bench, bench.slots, lambda s: "192.168.1.64").address_of(
        bench.slots[0].name) is None
    path.write_text(text.replace('identity = "vlan"', 'identity = "serialised"'))
    bench = load_bench(path)
    turns = AddressTurns.for_bench(bench, bench.slots, lambda s: "192.168.1.64")
    assert turns.address_of(bench.slots[0].name) == "192.168.1.64"
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(Interrupted):
        with turns.turn(bench.slots[0].name, cancel):   # the other 23 never said "off"
            pass


def test_a_unit_that_may_still_be_on_spoils_its_groups_later_turns():
    from rig.serialised import AddressSpoiled, AddressTurns
    turns = AddressTurns({"192.168.1.64": ["1", "2", "3"]})
    turns.off("1")
    turns.off("2")
    turns.spoil("3", "its power-off failed")
    cancel = threading.Event()
    with pytest.raises(AddressSpoiled, match="slot 3's unit may still be powered on "
                                             "192.168.1.64 \\(its power-off failed\\)"):
        with turns.turn("1", cancel):
            pass
