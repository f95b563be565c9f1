"""Serialised identity without sockets or hardware: the turn rules, the parking, the spoiling and
the un-parking, driven through SlotTurn with fake power outputs and a real (in-memory) store."""

from __future__ import annotations

import threading
import time

import pytest

from rig.actuators.base import ActuatorError
from rig.bench import PoeOutput, Slot
from rig.camera.profiles import ProfileSet
from rig.faults import BenchFault
from rig.hands import SlotHands
from rig.limits import PowerOnSchedule
from rig.recorder import Recorder
from rig.records import RecordStore
from rig.serialised import AddressTurns, SlotTurn

ADDRESS = "192.168.1.64"


class FakePower:
    """A power output that records what it was told; ``fail_off`` makes cutting it fail."""

    def __init__(self, fail_off: bool = False) -> None:
        self.on_ = True
        self.fail_off = fail_off
        self.calls: list[str] = []

    def off(self) -> None:
        if self.fail_off:
            raise ActuatorError("fake port", "refused")
        self.calls.append("off")
        self.on_ = False

    def on(self) -> None:
        self.calls.append("on")
        self.on_ = True


class FakeSlotHardware:
    def __init__(self, power: FakePower) -> None:
        self.power, self.button = power, None


class FakeHardware:
    def __init__(self) -> None:
        self.powers: dict[str, FakePower] = {}

    def slot(self, name: str) -> FakeSlotHardware:
        return FakeSlotHardware(self.powers.setdefault(name, FakePower()))


@pytest.fixture
def store(tmp_path):
    with RecordStore(tmp_path / "records.sqlite") as s:
        yield s


class Bench2:
    """Two slots sharing the default address, each with a turn, hands and recorder."""

    def __init__(self, store: RecordStore, names=("1", "2")) -> None:
        self.store = store
        self.hardware = FakeHardware()
        self.cancel = threading.Event()
        self.turns = AddressTurns({ADDRESS: list(names)})
        self.run_id = store.runs.start_run("bench", method="hard")
        self.recs = {n: Recorder(store, self.run_id, store.runs.plan_unit(self.run_id, n,
                                                                      method="hard"), n)
                     for n in names}
        profile = ProfileSet.load().get("current")
        self.hands = {n: SlotHands(self.hardware,
                                   Slot(n, PoeOutput("sw", int(n)), None, profile), self.recs[n])
                      for n in names}
        self.slot_turns = {n: SlotTurn(self.turns, self.hands[n], self.recs[n], self.cancel)
                           for n in names}

    def power_off(self, name: str) -> None:
        self.hands[name].cut_power("reset in progress")
        self.slot_turns[name].unit_off()

    def steps(self, name: str) -> list[str]:
        unit = self.recs[name].unit_id
        return [s.name for s in self.store.runs.load_unit(unit).steps]


def test_a_slot_alone_on_its_address_takes_no_turn_and_is_never_parked(store):
    turns = AddressTurns({"127.0.1.10": ["1"], "127.0.1.11": ["2"]})
    bench = Bench2(store)
    turn = SlotTurn(turns, bench.hands["1"], bench.recs["1"], bench.cancel)
    assert turn.address is None
    with turn:
        turn.acquire()
        bench.hands["1"].cut_power("x")
        bench.hands["1"].apply_power()
    assert turn.parked_entry is None and bench.steps("1") == []
    assert bench.hardware.powers["1"].calls == ["off", "on"]


def test_the_first_turn_waits_until_every_other_unit_of_the_group_is_off(store):
    bench = Bench2(store)
    got: list[float] = []

    def slot_one() -> None:
        with bench.slot_turns["1"] as turn:
            bench.power_off("1")
            turn.acquire()
            got.append(time.monotonic())

    worker = threading.Thread(target=slot_one)
    worker.start()
    time.sleep(0.3)
    assert not got                   # slot 2's unit may still answer on the address
    off_at = time.monotonic()
    bench.power_off("2")
    worker.join(5)
    assert got and got[0] >= off_at


def test_each_turn_ends_with_the_unit_parked_and_the_next_one_alone(store):
    bench = Bench2(store)
    order: list[str] = []
    bench.power_off("2")

    with bench.slot_turns["1"] as turn:
        bench.power_off("1")
        turn.acquire()
        bench.hands["1"].apply_power()            # the unit boots during its turn
        order.append("1 verified")
        blocked = threading.Thread(target=lambda: (bench.slot_turns["2"].acquire(),
                                                   order.append("2 has the turn")))
        blocked.start()
        time.sleep(0.3)
        assert order == ["1 verified"]           # slot 2 waits while slot 1 holds the address
    blocked.join(5)
    assert order == ["1 verified", "2 has the turn"]
    assert bench.hardware.powers["1"].calls == ["off", "on", "off"]      # parked
    assert bench.slot_turns["1"].parked_entry is not None
    assert bench.steps("1") == ["address turn", "park"]
    open_lines = {o.slot: o.kind for o in store.outputs.open(bench.run_id)}
    assert open_lines["1"] == "poe-port-off"


def test_a_unit_that_may_still_be_on_spoils_the_later_turns_of_its_group(store):
    bench = Bench2(store)
    with bench.slot_turns["1"]:
        pass                                      # never powered off: it may still answer
    bench.power_off("2")
    with pytest.raises(BenchFault, match="slot 1's unit may still be powered on"):
        bench.slot_turns["2"].acquire()


def test_a_unit_that_cannot_be_parked_is_noted_and_spoils_its_group(store):
    bench = Bench2(store)
    bench.power_off("2")
    with bench.slot_turns["1"] as turn:
        bench.power_off("1")
        turn.acquire()
        bench.hands["1"].apply_power()
        bench.hardware.powers["1"].fail_off = True
    assert any("could not be parked" in n or "could not park" in n
               for n in bench.recs["1"].notes)
    with pytest.raises(BenchFault, match="it could not be parked"):
        bench.slot_turns["2"].acquire()


def test_unpark_powers_the_unit_back_on_and_clears_its_ledger_line(store):
    bench = Bench2(store)
    bench.power_off("2")
    with bench.slot_turns["1"] as turn:
        bench.power_off("1")
        turn.acquire()
        bench.hands["1"].apply_power()
    turn.unpark(PowerOnSchedule(0.0), bench.cancel)
    assert bench.hardware.powers["1"].calls[-1] == "on" and turn.parked_entry is None
    assert [o for o in store.outputs.open(bench.run_id) if o.slot == "1"] == []


def test_a_unit_that_was_off_when_its_slot_ended_lets_the_group_go_on(store):
    bench = Bench2(store)
    with bench.slot_turns["1"]:
        bench.power_off("1")                      # failed before its turn, but known off
    bench.power_off("2")
    with bench.slot_turns["2"] as turn:
        turn.acquire()                            # does not wait for slot 1, nor fail
