"""``rig activate`` against simulated cameras on loopback: chosen units are activated over a
route of their own and proven (SADP Activated=true, a login with the new password), each
recorded; a bad password or an address other units share is refused before anything is sent."""

from __future__ import annotations

import json

import pytest

from rig.cli import main
from rig.records import RecordStore
from rig.sim.fleet import CameraFleet
from rig.vocabulary import FinalState, Verdict

NEW = "Bench-pass9"


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RIG_DB", str(tmp_path / "records.sqlite"))
    monkeypatch.setenv("RIG_NEW_PW", NEW)
    monkeypatch.delenv("RIG_BENCH", raising=False)


def activate(capsys, *argv: str) -> tuple[int, dict | str, str]:
    code = main(["activate", "--bind", "127.0.0.1", "--password-env", "RIG_NEW_PW",
                 "--timeout", "1.5", *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "--json" in argv and out else out), err


def test_chosen_units_are_activated_and_proven(tmp_path, capsys):
    with CameraFleet.start(3, profiles=("current", "g5", "legacy"), first=60, http_port=0,
                           time_scale=1000.0) as fleet:
        assert fleet.wait_running(5)
        cams = {c.mac: c for c in fleet.cameras}
        current, g5 = (c for c in fleet.cameras if c.profile.name != "legacy")
        code, out, err = activate(capsys, "--mac", current.mac, "--serial", g5.serial, "--json")
        assert code == 0, (out, err)
        mine = out["units"]
        assert [u["mac"] for u in mine] == [current.mac, g5.mac]
        assert all(u["verdict"] == "provisioned" for u in mine)
        assert all(cams[u["mac"]].password_for("admin") == NEW for u in mine)
        legacy = next(c for c in fleet.cameras if c.profile.name == "legacy")
        code, out, err = activate(capsys, "--mac", legacy.mac, "--json")
        assert code == 0, (out, err)
        assert legacy.password_for("admin") == NEW             # factory password changed
    with RecordStore.open(tmp_path / "records.sqlite") as store:
        units = [u for run in store.runs.history() for u in store.runs.load_run(run.run.id).units]
    assert {u.final_state for u in units} == {FinalState.PROVISIONED}
    assert {u.verdict for u in units} == {Verdict.PROVISIONED}
    assert all({"sadp-before", "activation", "handover"} <= {e.kind for e in u.evidence}
               for u in units)


def test_an_activated_unit_is_skipped_and_the_command_fails(capsys):
    with CameraFleet.start(1, first=66, http_port=0, time_scale=1000.0) as fleet:
        assert fleet.wait_running(5)
        cam = fleet.cameras[0]
        cam.provision("Old-pass11")
        code, out, _ = activate(capsys, "--mac", cam.mac)
        assert code == 1 and "already activated" in out
        assert cam.password_for("admin") == "Old-pass11"


@pytest.mark.parametrize(("password", "why"), [
    ("short1", "must be 8 to 16 characters"), ("alllowercase", "at least two"),
    ("admin-Pass1", "must not contain the user name")])
def test_a_password_against_the_rules_is_refused_before_anything_is_sent(capsys, monkeypatch,
                                                                         password, why):
    monkeypatch.setenv("RIG_NEW_PW", password)
    code, _, err = activate(capsys, "--mac", "44:47:cc:00:00:01")
    assert code == 2 and why in err and password not in err


def test_units_sharing_an_address_are_refused_without_a_route_of_their_own(capsys):
    with CameraFleet.start(2, first=70, http_port=0, time_scale=1000.0) as fleet:
        assert fleet.wait_running(5)
        a, b = fleet.cameras
        b.update_settings(ipv4=a.settings.ipv4)      # SADP says both are on one address
        code, out, _ = activate(capsys, "--mac", a.mac, "--mac", b.mac)
        assert code == 1 and out.count("REFUSED") == 2 and "could reach another unit" in out
        assert not a.activated and not b.activated


def test_the_password_variable_must_be_set(capsys, monkeypatch):
    monkeypatch.delenv("RIG_NEW_PW")
    code, _, err = activate(capsys, "--mac", "44:47:cc:00:00:01")
    assert code == 2 and "RIG_NEW_PW is not set" in err


def test_all_chooses_every_inactive_unit_found_and_nothing_twice():
    from rig.activate import Selection, choose
    from rig.camera.discovery import DiscoveryResult
    from rig.camera.sadp import SadpDevice

    def unit(n: int, activated):
        return SadpDevice(uuid="u", mac=f"44:47:cc:00:00:{n:02x}", serial=f"S{n}", model=None,
                          device_type=None, ipv4="192.168.1.64", mask=None, gateway=None,
                          ipv6=None, dhcp=None, http_port=80, command_port=None,
                          firmware=None, dsp_version=None, activated=activated,
                          device_lock=None, boot_time=None)
    found = DiscoveryResult(devices=(unit(1, False), unit(2, True), unit(3, None),
                                     unit(4, False)), skipped=(), interfaces=(),
                            probe_uuid="u", timeout=1, elapsed=1, probes_sent=1)
    chosen = choose(found, Selection(macs=["44-47-CC-00-00-04"], inactive=True), None)
    assert [t.device.serial for t in chosen] == ["S4", "S1"]
    with pytest.raises(ValueError, match="no unit with serial S9"):
        choose(found, Selection(serials=["S9"]), None)


def test_one_client_key_pair_activates_several_units():
    """The V3 key takes seconds on a Pi: a batch makes it once (the device's challenge, not
    our key pair, is what is single-use)."""
    from rig.camera.activation import ClientKeys
    from rig.camera.isapi import IsapiClient

    keys = ClientKeys()
    with CameraFleet.start(2, profiles=("g5", "g5"), first=74, http_port=0,
                           time_scale=1000.0) as fleet:
        assert fleet.wait_running(5)
        for cam in fleet.cameras:
            with IsapiClient(cam.address, cam.http_port, timeout=3) as client:
                client.activate(NEW, keys=keys)
        assert all(cam.password_for("admin") == NEW for cam in fleet.cameras)
    assert keys.get("v3") is keys.get("v3")
