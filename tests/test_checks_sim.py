"""The functional checks end to end against virtual cameras over real sockets (ISAPI over HTTP,
RTSP over TCP): each check passes on a good unit and fails on a unit with the matching fault,
every check is recorded as the data contract says, and the checks spend one login at most."""

from __future__ import annotations

import base64
import io
import itertools
import uuid
from dataclasses import replace

import pytest
from PIL import Image

from rig.camera.isapi import IsapiClient
from rig.camera.isapi_types import Credentials
from rig.camera.profiles import ProfileSet
from rig.camera.sadp import Probe, parse_probe_match
from rig.checks import CheckTarget, run_checks
from rig.checks.config import ChecksConfig, ModelRule
from rig.recorder import Recorder
from rig.records import RecordStore
from rig.sim.camera import SimFaults, VirtualCamera
from rig.sim.isapi_server import IsapiServer
from rig.sim.media import MediaConfig
from rig.sim.rtsp_server import RtspServer
from rig.vocabulary import CheckName, CheckOutcome, EvidenceKind, Grade, StepOutcome, StoragePolicy

PROFILES = ProfileSet.load()
PASSWORD = "Check-pass12"
CREDS = Credentials("admin", PASSWORD)
SMALL = MediaConfig(width=160, height=90)
ALL = tuple(CheckName)
PLAN = ChecksConfig(run=ALL, key=(CheckName.DEVICE_INFO, CheckName.SNAPSHOT),
                    storage=StoragePolicy.FORMAT, timeout_s=5.0, format_timeout_s=5.0)
_addresses = itertools.count(10)


@pytest.fixture
def store(tmp_path):
    with RecordStore.open(tmp_path / "records.sqlite") as opened:
        yield opened


@pytest.fixture
def make_unit():
    """Factory: a running unit with its web and RTSP servers on 127.0.91.N (ephemeral ports),
    activated unless asked not to be."""
    servers: list[IsapiServer | RtspServer] = []

    def make(*faults: str, media: MediaConfig = SMALL, activated: bool = True,
             profile: str = "current") -> VirtualCamera:
        n = next(_addresses)
        cam = VirtualCamera(PROFILES.get(profile), mac=f"44:47:cc:91:00:{n:02x}",
                            serial=f"DS-2CD2320D-I20240115AAWRE000091{n:02d}",
                            address=f"127.0.91.{n}", http_port=0, rtsp_port=0,
                            time_scale=1000.0, faults=SimFaults.from_names(faults), media=media)
        cam.set_power(True, booted=True)
        if activated:
            cam.provision(PASSWORD)
        for server in (IsapiServer(cam), RtspServer(cam)):
            servers.append(server)
            server.serve_in_thread()
        return cam

    yield make
    for server in servers:
        server.close()


def target_of(cam: VirtualCamera) -> CheckTarget:
    """The unit as a run knows it: MAC, its SADP reply, its family."""
    reply = cam.probe_match(Probe(str(uuid.uuid4()).upper(), "inquiry"))
    assert reply is not None
    return CheckTarget(cam.mac, parse_probe_match(reply), cam.profile.name)


def run(store: RecordStore, cam: VirtualCamera, plan: ChecksConfig = PLAN, creds=CREDS,
        **kwargs):
    """Run the checks on ``cam`` as one unit of a manual run; (result, the unit's record,
    the client's signed requests)."""
    run_id = store.runs.start_run("test bench", method="manual: qa")
    unit_id = store.runs.start_unit(run_id, "S1", method="manual: qa", expected_mac=cam.mac)
    rec = Recorder(store, run_id, unit_id, "S1")
    with IsapiClient(cam.address, cam.http_port, timeout=3.0) as client:
        result = run_checks(client, rec, target_of(cam), plan, creds,
                            time_scale=1000.0, **kwargs)
        signed = client.auth_requests
    unit = next(u for u in store.runs.load_run(run_id).units if u.id == unit_id)
    return result, unit, signed


def outcomes(result) -> dict[str, str]:
    return {str(r.name): str(r.outcome) for r in result.results}


def check_evidence(unit, name: str) -> dict:
    found = [e.data for e in unit.evidence
             if e.kind == EvidenceKind.CHECK and e.data["check"] == name]
    assert len(found) == 1, found
    return found[0]


def step(unit, name: str):
    return next(s for s in unit.steps if s.name == f"check {name}")


def test_a_good_unit_passes_every_check_and_is_recorded_as_the_contract_says(store, make_unit):
    cam = make_unit()
    result, unit, _ = run(store, cam)
    assert outcomes(result) == {str(c): "passed" for c in ALL if c != CheckName.FIRMWARE_BASELINE} \
        | {"firmware-baseline": "skipped"}           # the plan names no minimum
    assert result.grade is Grade.FULLY_FUNCTIONAL
    for name in ALL:
        data = check_evidence(unit, str(name))
        assert set(data) == {"check", "outcome", "reason", "key", "details"}
        assert data["key"] is (name in PLAN.key)
        assert step(unit, str(name)).outcome in (StepOutcome.OK, StepOutcome.SKIPPED)
    shot = check_evidence(unit, "snapshot")["details"]
    assert (shot["width"], shot["height"]) == (160, 90) == (shot["expected_width"],
                                                            shot["expected_height"])
    assert shot["luma_stddev"] >= PLAN.snapshot_min_stddev and shot["bytes"] > 0
    snap = next(e for e in unit.evidence if e.kind == EvidenceKind.SNAPSHOT)
    assert snap.data["sha256"] == shot["sha256"]
    thumb = Image.open(io.BytesIO(base64.b64decode(snap.data["thumbnail_jpeg_b64"])))
    assert thumb.format == "JPEG" and thumb.width <= 240
    [jpeg] = store.attachments.for_unit(unit.id)
    assert (jpeg.name, jpeg.content_type) == ("snapshot.jpg", "image/jpeg")
    assert check_evidence(unit, "device-info")["details"]["serial"] == cam.serial
    assert check_evidence(unit, "rtsp")["details"]["codecs"] == ["H264"]
    assert cam.settings.ircut_mode == "auto"                 # the mode it was found in


@pytest.mark.parametrize(("fault", "check", "words"), [
    ("dead-sensor", "snapshot", "near-uniform frame"),
    ("stuck-ircut", "ir-cut", "stuck IR-cut filter"),
    ("cloud-bound", "cloud", "still bound to a cloud account: unbind it"),
    ("rtsp-refused", "rtsp", "connection refused"),
])
def test_a_faulty_unit_fails_the_matching_check_only(store, make_unit, fault, check, words):
    cam = make_unit(fault)
    result, unit, _ = run(store, cam)
    failed = {n for n, o in outcomes(result).items() if o == "failed"}
    assert failed == {check}
    data = check_evidence(unit, check)
    assert data["outcome"] == "failed" and words in data["reason"]
    assert step(unit, check).outcome is StepOutcome.FAILED
    assert words in step(unit, check).detail
    expected = (Grade.NOT_FUNCTIONAL if check in ("snapshot", "device-info")
                else Grade.KEY_FUNCTIONS_TESTED)
    assert result.grade is expected


def test_a_dead_sensor_keeps_its_flat_frame_as_evidence(store, make_unit):
    result, unit, _ = run(store, make_unit("dead-sensor"),
                          replace(PLAN, run=(CheckName.SNAPSHOT,), key=()))
    assert check_evidence(unit, "snapshot")["details"]["luma_stddev"] < 6
    assert [e.kind for e in unit.evidence].count(EvidenceKind.SNAPSHOT) == 1
    assert len(store.attachments.for_unit(unit.id)) == 1


def test_storage_policies(store, make_unit):
    card = replace(SMALL, card=True)
    only = (CheckName.STORAGE,)
    flagged, unit, _ = run(store, make_unit(media=card),
                           replace(PLAN, run=only, key=(), storage=StoragePolicy.FLAG))
    assert "remove the card" in flagged.results[0].reason
    assert check_evidence(unit, "storage")["details"]["cards"][0]["id"] == "1"
    formatted, unit, _ = run(store, make_unit(media=card), replace(PLAN, run=only, key=()))
    assert formatted.results[0].outcome is CheckOutcome.PASSED
    details = check_evidence(unit, "storage")["details"]
    assert details["formatted"] == ["1"] and details["policy"] == "format"
    broken, _, _ = run(store, make_unit("card-format-fails", media=card),
                       replace(PLAN, run=only, key=()))
    assert broken.results[0].outcome is CheckOutcome.FAILED
    ignored, _, _ = run(store, make_unit(media=card),
                        replace(PLAN, run=only, key=(), storage=StoragePolicy.IGNORE))
    assert ignored.results[0].outcome is CheckOutcome.SKIPPED
    empty, _, _ = run(store, make_unit(), replace(PLAN, run=only, key=(),
                                                  storage=StoragePolicy.FLAG))
    assert (empty.results[0].outcome, empty.results[0].reason) == (CheckOutcome.PASSED,
                                                                   "no card")


def test_a_unit_without_ir_cut_is_skipped_and_stays_fully_functional(store, make_unit):
    result, _, _ = run(store, make_unit("no-ircut"))
    assert outcomes(result)["ir-cut"] == "skipped"
    assert result.grade is Grade.FULLY_FUNCTIONAL


def test_firmware_below_the_bench_minimum_fails_naming_both_versions(store, make_unit):
    plan = replace(PLAN, run=(CheckName.FIRMWARE_BASELINE,), key=(),
                   firmware_min={"current": "V5.5.0"})
    good, _, _ = run(store, make_unit(), plan)
    assert good.results[0].outcome is CheckOutcome.PASSED
    old, unit, _ = run(store, make_unit("old-firmware"), plan)
    assert old.results[0].outcome is CheckOutcome.FAILED
    assert "below the bench's minimum V5.5.0" in old.results[0].reason


def test_a_refused_login_sends_nothing_else_and_leaves_every_check_unknown(store, make_unit):
    cam = make_unit()
    result, unit, signed = run(store, cam, creds=Credentials("admin", "Wrong-pass12"))
    assert set(outcomes(result).values()) == {"unknown"}
    assert all("refused" in r.reason for r in result.results)
    assert result.grade is Grade.NOT_FUNCTIONAL
    assert signed == 1 and cam.failed_logins() == 1
    login = next(s for s in unit.steps if s.name == "checks login")
    assert login.outcome is StepOutcome.FAILED


def test_an_inactive_unit_gives_unknown_never_passed(store, make_unit):
    result, _, _ = run(store, make_unit(activated=False))
    assert set(outcomes(result).values()) == {"unknown"}


def test_a_model_exception_skips_the_check_and_only_names_the_rest(store, make_unit):
    cam = make_unit("stuck-ircut")
    plan = replace(PLAN, models=(ModelRule("ds-2cd2*", (CheckName.IR_CUT,)),))
    result, unit, _ = run(store, cam, plan)
    assert outcomes(result)["ir-cut"] == "skipped"
    assert "[[checks.model]]" in check_evidence(unit, "ir-cut")["reason"]
    assert result.grade is Grade.FULLY_FUNCTIONAL


def test_no_check_selected_runs_nothing_and_grades_nothing(store, make_unit):
    result, unit, signed = run(store, make_unit(), ChecksConfig())
    assert result.results == () and result.grade is None
    assert signed == 0 and unit.steps == ()
