"""Pinning a slot's expected identity from the dashboard (what a barcode scanner types): the API
records it with who and when, replaces and clears it; the next run takes it as the slot's
expected serial or MAC, and a unit that is not the one pinned is skipped, not reset."""

from __future__ import annotations

import requests

from rig.serve.security import Policy
from rig.sim.bench import SimBench, SimSlot
from rig.vocabulary import Verdict
from tests.serve_support import BASE, MAC_BLOCK, run_batch, served
from tests.test_serve_security import out_of_service_bench

ACTION = {"X-Rig-Request": "1"}


def cards(url: str, **kwargs) -> dict:
    answer = requests.get(url + "/api/slots", timeout=5, **kwargs).json()
    return {c["slot"]: c for c in answer["slots"]}


def test_a_scanned_code_pins_a_serial_or_a_mac_with_who_and_when(tmp_path):
    with served(tmp_path / "r.sqlite") as (url, store):
        out_of_service_bench(store)
        pin = requests.post(url + "/api/slots/2/pin", json={"code": " DS-2CD2143G0-I0001 "},
                            headers=ACTION, timeout=5)
        assert pin.status_code == 200, pin.text
        assert pin.json() | {"pinned_at": None} == pin.json() | {
            "serial": "DS-2CD2143G0-I0001", "mac": None, "pinned_by": "local",
            "pinned_at": None, "used_by_run": None}
        assert cards(url)["2"]["pin"]["serial"] == "DS-2CD2143G0-I0001"
        again = requests.post(url + "/api/slots/2/pin", json={"code": "4447CC37CE81",
                                                              "by": "ann"},
                              headers=ACTION, timeout=5).json()
        assert (again["mac"], again["serial"], again["pinned_by"]) == \
            ("44:47:cc:37:ce:81", None, "ann (local)")
        history = requests.get(url + "/api/slots/2/pins", timeout=5).json()
        assert [p["cleared_by"] for p in history] == [None, "ann (local) (replaced)"]
        assert requests.post(url + "/api/slots/2/pin", json={"code": "two words"},
                             headers=ACTION, timeout=5).status_code == 422
        assert requests.post(url + "/api/slots/9/pin", json={"code": "X1"},
                             headers=ACTION, timeout=5).status_code == 404
        assert requests.post(url + "/api/slots/2/pin", json={"code": "X1"},
                             timeout=5).status_code == 403        # no cross-site header
        cleared = requests.delete(url + "/api/slots/2/pin", headers=ACTION, timeout=5)
        assert cleared.status_code == 200 and cards(url)["2"]["pin"] is None
        assert requests.delete(url + "/api/slots/2/pin", headers=ACTION,
                               timeout=5).status_code == 404


def test_actions_through_the_token_are_recorded_as_the_tokens(tmp_path):
    token = {"Authorization": "Bearer t0ken-for-pins", **ACTION}
    with served(tmp_path / "r.sqlite", policy=Policy(token="t0ken-for-pins",
                                                     loopback=False)) as (url, store):
        out_of_service_bench(store)
        pinned = requests.post(url + "/api/slots/2/pin", json={"code": "SN-7"}, headers=token,
                               timeout=5).json()
        requests.post(url + "/api/slots/1/clear", json={"by": "bo", "why": "fixed"},
                      headers=token, timeout=5).raise_for_status()
        assert pinned["pinned_by"] == "token"
        assert store.slots.events("b", "1")[0].actor == "bo (token)"


def test_the_next_run_expects_the_pinned_unit_and_skips_another(tmp_path):
    db = tmp_path / "records.sqlite"
    spec = [SimSlot("relay", "current"), SimSlot("relay", "current")]
    with SimBench.start(spec, directory=tmp_path, time_scale=60.0, base=BASE, first=90,
                        mac_block=MAC_BLOCK, provision="Pinned-pass1",
                        expected_identity=False) as sim:
        right = sim.cameras["1"].serial
        with served(db, bench=sim.bench) as (url, store):
            for slot, code in (("1", right), ("2", "DS-NOT-THE-UNIT-IN-SLOT-2")):
                requests.post(f"{url}/api/slots/{slot}/pin", json={"code": code},
                              headers=ACTION, timeout=5).raise_for_status()
            result = run_batch(sim, db, method="hard")
            record = store.runs.load_run(result.run_id)
            assert cards(url)["1"]["pin"] is None              # taken by the run
            used = [p.used_by_run for p in store.pins.history(sim.bench.name, "2")]
    units = {u.slot: u for u in record.units}
    assert units["1"].expected_serial == right and units["1"].verdict is Verdict.FACTORY_DEFAULT
    wrong = units["2"]
    assert (wrong.verdict, wrong.check) == (Verdict.SKIPPED, "identity-mismatch")
    assert "expected serial DS-NOT-THE-UNIT-IN-SLOT-2, found " + sim.cameras["2"].serial \
        in wrong.reason
    assert "press" not in " ".join(step.name for step in wrong.steps)     # not reset
    assert used == [result.run_id]
