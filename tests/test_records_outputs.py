"""The outputs ledger: written before an output moves, cleared once it is back at rest, by id or
by target (the manual commands clear whatever run left a target engaged)."""

from __future__ import annotations

from pathlib import Path

import pytest
from records_support import FakeClock, new_run, peek

from rig.records import RecordError, RecordStore
from rig.vocabulary import OutputKind


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "rig.sqlite"


@pytest.fixture
def store(db: Path):
    with RecordStore(db, clock=FakeClock()) as s:
        yield s


def test_outputs_ledger_lists_what_is_still_engaged(store):
    outputs = store.outputs
    run = new_run(store)
    solenoid = outputs.engaged(run, "1", OutputKind.SOLENOID_ON, "GPIO 22")
    port = outputs.engaged(run, "2", "poe-port-off", "switch main port 3")
    assert [(o.id, o.kind, o.target) for o in outputs.open()] == [
        (solenoid, "solenoid-on", "GPIO 22"), (port, "poe-port-off", "switch main port 3")]
    assert outputs.cleared(solenoid, "released after 12 s") is True
    assert outputs.cleared(solenoid) is False                    # twice is harmless
    assert [o.id for o in outputs.open(run)] == [port]
    assert outputs.open(run + 1) == []
    cleared = store.runs.load_run(run).outputs[0]
    assert cleared.cleared_at is not None and cleared.note == "released after 12 s"


def test_an_output_needs_a_known_run_a_kind_and_a_target(store):
    with pytest.raises(ValueError, match="kind and a target"):
        store.outputs.engaged(new_run(store), "1", OutputKind.POWER_ON, "")
    with pytest.raises(RecordError, match="no run 9"):
        store.outputs.engaged(9, "1", OutputKind.POWER_ON, "GPIO 5")
    with pytest.raises(RecordError, match="no output 3"):
        store.outputs.cleared(3)


def test_clear_target_clears_every_open_line_for_it_whichever_run_left_it(store, db):
    outputs = store.outputs
    crashed, manual = new_run(store), new_run(store)
    first = outputs.engaged(crashed, "3", OutputKind.POWER_OFF, "GPIO 17", "hard reset")
    again = outputs.engaged(manual, "3", OutputKind.POWER_OFF, "GPIO 17")
    other = outputs.engaged(manual, "4", OutputKind.POWER_OFF, "GPIO 27")
    done = outputs.engaged(manual, "3", OutputKind.SOLENOID_ON, "GPIO 17")
    outputs.cleared(done, "released")

    assert outputs.clear_target("GPIO 17", "turned on by the operator") == 2
    assert [o.id for o in outputs.open()] == [other]
    notes = dict(peek(db, "SELECT id, note FROM outputs"))
    assert notes[first] == "hard reset; turned on by the operator"
    assert notes[again] == "turned on by the operator"
    assert notes[done] == "released"                       # a closed line is left as it was
    assert outputs.clear_target("GPIO 17", "again") == 0   # nothing open: nothing written
    assert outputs.clear_target("no such output", "x") == 0
