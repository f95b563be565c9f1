"""The virtual camera's functional-check endpoints over real HTTP on loopback: stream config,
snapshot, IR-cut, storage and format, EZVIZ, access ports, old firmware; each with its faults.

Driven with requests' own Digest auth, not rig's ISAPI client or rig.checks, so that a misreading
of firmware_notes/topics/checks.md on one side cannot pass the other.
"""

from __future__ import annotations

import argparse
import io
import itertools
import time

import pytest
import requests
from PIL import Image, ImageStat
from requests.auth import HTTPDigestAuth

from rig import xmlsafe
from rig.camera.profiles import ProfileSet
from rig.commands.sim_bench import build_spec
from rig.sim.camera import SimFaults, VirtualCamera
from rig.sim.isapi_server import IsapiServer
from rig.sim.media import CARD_CAPACITY_MB, CARD_FREE_MB, FORMAT_FAILS_AT, MediaConfig
from rig.vocabulary import ResetMode

PROFILES = ProfileSet.load()
PASSWORD = "Secret123!"
AUTH = HTTPDigestAuth("admin", PASSWORD)
SMALL = MediaConfig(width=160, height=90)
_addresses = itertools.count(10)


class Clock:
    """A clock the test moves by hand: format progress is read at chosen moments."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_unit():
    """Factory: a running, activated unit with its web server on 127.0.77.N (ephemeral port)."""
    servers: list[IsapiServer] = []

    def make(*faults: str, media: MediaConfig = SMALL, profile: str = "current",
             clock: Clock | None = None, activated: bool = True
             ) -> tuple[VirtualCamera, str]:
        n = next(_addresses)
        extra = {"clock": clock} if clock is not None else {}
        cam = VirtualCamera(PROFILES.get(profile), mac=f"44:47:cc:77:00:{n:02x}",
                            serial=f"DS-2CD2320D-I20240115AAWRE000077{n:02d}",
                            address=f"127.0.77.{n}", http_port=0, rtsp_port=0,
                            time_scale=1000.0, faults=SimFaults.from_names(faults),
                            media=media, **extra)
        cam.set_power(True, booted=True)
        if activated:
            cam.provision(PASSWORD)
        server = IsapiServer(cam)
        servers.append(server)
        server.serve_in_thread()
        return cam, f"http://{cam.address}:{cam.http_port}"

    yield make
    for server in servers:
        server.close()


def get(url: str, path: str, **kwargs) -> requests.Response:
    return requests.get(url + path, auth=AUTH, timeout=3, **kwargs)


def put(url: str, path: str, body: str) -> requests.Response:
    return requests.put(url + path, data=body.encode(), auth=AUTH, timeout=3)


def fields(response: requests.Response) -> dict[str, str]:
    return xmlsafe.children_text(xmlsafe.parse(response.content))


def nested(response: requests.Response, name: str) -> list[dict[str, str]]:
    """Children of every element called ``name``, whatever the namespace."""
    root = xmlsafe.parse(response.content)
    return [xmlsafe.children_text(e) for e in root.iter() if xmlsafe.local_name(e.tag) == name]


def ircut_body(mode: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><IrcutFilter version="2.0" '
            f'xmlns="http://www.hikvision.com/ver20/XMLSchema"><IrcutFilterType>{mode}'
            f"</IrcutFilterType></IrcutFilter>")


# --- every route needs an activated unit and a login --------------------------------------------

@pytest.mark.parametrize("path", ["/ISAPI/Streaming/channels/101",
                                  "/ISAPI/Streaming/channels/101/picture",
                                  "/ISAPI/Image/channels/1/ircutFilter",
                                  "/ISAPI/ContentMgmt/Storage", "/ISAPI/System/Network/EZVIZ",
                                  "/ISAPI/Security/adminAccesses"])
def test_every_check_endpoint_needs_an_activated_unit_and_a_login(make_unit, path):
    cam, url = make_unit(activated=False)
    assert get(url, path).status_code == 401
    assert fields(get(url, path))["subStatusCode"] == "notActivated"
    cam.provision(PASSWORD)
    assert requests.get(url + path, auth=HTTPDigestAuth("admin", "wrong-Pass1"),
                        timeout=3).status_code == 401
    assert get(url, path).status_code == 200


# --- stream and snapshot ------------------------------------------------------------------------

def test_main_stream_reports_its_configured_codec_and_size(make_unit):
    _, url = make_unit(media=MediaConfig(width=640, height=360, codec="H.265"))
    video = nested(get(url, "/ISAPI/Streaming/channels/101"), "Video")[0]
    assert (video["videoCodecType"], video["videoResolutionWidth"],
            video["videoResolutionHeight"]) == ("H.265", "640", "360")


def test_main_stream_defaults_to_1080p_h264(make_unit):
    _, url = make_unit(media=MediaConfig())
    video = nested(get(url, "/ISAPI/Streaming/channels/101"), "Video")[0]
    assert (video["videoCodecType"], video["videoResolutionWidth"],
            video["videoResolutionHeight"]) == ("H.264", "1920", "1080")


def luminance_stddev(response: requests.Response) -> tuple[tuple[int, int], float]:
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG"
    return image.size, ImageStat.Stat(image.convert("L")).stddev[0]


def test_snapshot_is_a_patterned_jpeg_of_the_stream_size(make_unit):
    _, url = make_unit(media=MediaConfig(width=320, height=180))
    r = get(url, "/ISAPI/Streaming/channels/101/picture")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    size, stddev = luminance_stddev(r)
    assert size == (320, 180) and stddev > 30


def test_dead_sensor_snapshot_is_flat(make_unit):
    _, url = make_unit("dead-sensor", media=MediaConfig(width=320, height=180))
    size, stddev = luminance_stddev(get(url, "/ISAPI/Streaming/channels/101/picture"))
    assert size == (320, 180) and stddev < 2


def test_each_unit_s_snapshot_carries_its_serial(make_unit):
    _, one = make_unit()
    _, two = make_unit()
    assert (get(one, "/ISAPI/Streaming/channels/101/picture").content
            != get(two, "/ISAPI/Streaming/channels/101/picture").content)


# --- IR-cut filter ------------------------------------------------------------------------------

IRCUT = "/ISAPI/Image/channels/1/ircutFilter"


def test_ircut_switches_and_reads_back(make_unit):
    _, url = make_unit()
    assert fields(get(url, IRCUT))["IrcutFilterType"] == "auto"
    for mode in ("day", "night", "auto"):
        r = put(url, IRCUT, ircut_body(mode))
        assert r.status_code == 200 and fields(r)["statusCode"] == "1"
        assert fields(get(url, IRCUT))["IrcutFilterType"] == mode


def test_ircut_refuses_an_unknown_mode(make_unit):
    _, url = make_unit()
    r = put(url, IRCUT, ircut_body("twilight"))
    assert r.status_code == 400
    assert put(url, IRCUT, "<not xml").status_code == 400


def test_stuck_ircut_answers_ok_but_keeps_its_mode(make_unit):
    _, url = make_unit("stuck-ircut")
    r = put(url, IRCUT, ircut_body("day"))
    assert r.status_code == 200 and fields(r)["statusCode"] == "1"
    assert fields(get(url, IRCUT))["IrcutFilterType"] == "auto"


def test_model_without_ircut_says_not_supported(make_unit):
    _, url = make_unit("no-ircut")
    for r in (get(url, IRCUT), put(url, IRCUT, ircut_body("day"))):
        assert r.status_code == 403 and fields(r)["subStatusCode"] == "notSupport"


# --- storage ------------------------------------------------------------------------------------

STORAGE = "/ISAPI/ContentMgmt/Storage"
FORMAT = "/ISAPI/ContentMgmt/Storage/hdd/1/format"
STATUS = "/ISAPI/ContentMgmt/Storage/hdd/1/formatStatus"


def test_default_unit_has_no_card(make_unit):
    _, url = make_unit()
    r = get(url, STORAGE)
    assert r.status_code == 200
    assert nested(r, "hddList") == [{}] and nested(r, "hdd") == []
    assert put(url, FORMAT, "").status_code == 404


def test_no_card_fault_empties_the_slot_of_a_configured_card(make_unit):
    _, url = make_unit("no-card", media=MediaConfig(width=160, height=90, card=True))
    assert nested(get(url, STORAGE), "hdd") == []


def test_card_reports_presence_capacity_and_status(make_unit):
    _, url = make_unit(media=MediaConfig(width=160, height=90, card=True))
    [hdd] = nested(get(url, STORAGE), "hdd")
    assert {k: hdd[k] for k in ("id", "hddType", "status", "capacity", "freeSpace",
                                 "property")} == {
        "id": "1", "hddType": "SD", "status": "ok", "capacity": str(CARD_CAPACITY_MB),
        "freeSpace": str(CARD_FREE_MB), "property": "RW"}
    assert hdd["hddName"]


def test_format_progresses_in_scaled_time_and_empties_the_card(make_unit):
    clock = Clock()
    _, url = make_unit(media=MediaConfig(width=160, height=90, card=True), clock=clock)
    assert fields(put(url, FORMAT, ""))["statusCode"] == "1"
    assert fields(get(url, STATUS)) == {"formating": "true", "percent": "0"}
    clock.now += 0.010                  # half of 20 s at time scale 1000
    assert fields(get(url, STATUS)) == {"formating": "true", "percent": "50"}
    assert nested(get(url, STORAGE), "hdd")[0]["status"] == "formatting"
    clock.now += 0.011
    assert fields(get(url, STATUS)) == {"formating": "false", "percent": "100"}
    [hdd] = nested(get(url, STORAGE), "hdd")
    assert (hdd["status"], hdd["freeSpace"]) == ("ok", str(CARD_CAPACITY_MB))


def test_a_card_that_fails_to_format_stops_with_an_error(make_unit):
    clock = Clock()
    _, url = make_unit("card-format-fails", clock=clock)
    assert nested(get(url, STORAGE), "hdd")[0]["status"] == "ok"     # the fault brings a card
    put(url, FORMAT, "")
    clock.now += 10.0
    assert fields(get(url, STATUS)) == {"formating": "false", "percent": str(FORMAT_FAILS_AT)}
    assert nested(get(url, STORAGE), "hdd")[0]["status"] == "error"


# --- cloud, ports, firmware ---------------------------------------------------------------------

def test_unbound_unit_has_hik_connect_off(make_unit):
    cam, url = make_unit()
    got = fields(get(url, "/ISAPI/System/Network/EZVIZ"))
    assert (got["enabled"], got["registerStatus"], got["bindStatus"]) == ("false", "false",
                                                                          "unbind")
    assert dict(cam.sadp_fields("u"))["HCPlatformEnable"] in ("false", "flase")


def test_bound_unit_reports_its_binding_in_isapi_and_sadp(make_unit):
    cam, url = make_unit("cloud-bound")
    got = fields(get(url, "/ISAPI/System/Network/EZVIZ"))
    assert (got["enabled"], got["registerStatus"], got["bindStatus"]) == ("true", "true", "bind")
    assert dict(cam.sadp_fields("u"))["HCPlatformEnable"] == "true"


def test_admin_accesses_lists_the_http_and_rtsp_ports(make_unit):
    cam, url = make_unit()
    cam.rtsp_port = 10554
    ports = {p["protocol"]: p["portNo"]
             for p in nested(get(url, "/ISAPI/Security/adminAccesses"), "AdminAccessProtocol")}
    assert ports["HTTP"] == str(cam.http_port) and ports["RTSP"] == "10554"


@pytest.mark.parametrize(("profile", "old"), [("current", "V5.3.0"), ("g5", "V5.7.0"),
                                              ("legacy", "V5.0.0")])
def test_old_firmware_is_reported_alike_in_device_info_and_sadp(make_unit, profile, old):
    cam, url = make_unit("old-firmware", profile=profile)
    info = fields(get(url, "/ISAPI/System/deviceInfo"))
    sadp = dict(cam.sadp_fields("u"))["SoftwareVersion"]
    assert info["firmwareVersion"] == old and sadp.startswith(old + "build")
    assert PROFILES.for_firmware(sadp).name == profile       # still its own family


def test_normal_firmware_is_the_family_sample(make_unit):
    cam, url = make_unit()
    assert fields(get(url, "/ISAPI/System/deviceInfo"))["firmwareVersion"] == "V5.5.6"


# --- what a reset does --------------------------------------------------------------------------

def test_reset_restores_ir_mode_but_keeps_card_contents_and_cloud_binding(make_unit):
    cam, url = make_unit("cloud-bound", media=MediaConfig(width=160, height=90, card=True))
    put(url, IRCUT, ircut_body("night"))
    if not cam.factory_reset(ResetMode.BASIC):      # basic keeps the users: still logged in
        cam.reboot()
    deadline = time.monotonic() + 3
    # cam.running first: the unit replays its due events (reboot, restore) only when asked.
    while not (cam.running and any(what == "restore basic" for _, what in cam.events)):
        assert time.monotonic() < deadline, cam.events
        time.sleep(0.005)
    assert fields(get(url, IRCUT))["IrcutFilterType"] == "auto"
    assert fields(get(url, "/ISAPI/System/Network/EZVIZ"))["bindStatus"] == "bind"
    assert nested(get(url, STORAGE), "hdd")[0]["freeSpace"] == str(CARD_FREE_MB)


# --- configuration ------------------------------------------------------------------------------

def test_fault_names_read_with_dashes_or_underscores():
    assert SimFaults.from_names(["dead-sensor", "rtsp_refused"]) == SimFaults(
        dead_sensor=True, rtsp_refused=True)
    assert "card-format-fails" in SimFaults.names()
    with pytest.raises(ValueError, match="dead-sensor"):
        SimFaults.from_names(["dead-pixel"])


def test_media_config_refuses_what_no_unit_streams():
    with pytest.raises(ValueError, match="codec"):
        MediaConfig(codec="MJPEG")
    with pytest.raises(ValueError, match="resolution"):
        MediaConfig(width=0)
    assert MediaConfig.parse_resolution("640x360") == (640, 360)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        MediaConfig.parse_resolution("640")


def test_sim_bench_options_give_each_slot_its_faults_and_card():
    args = argparse.Namespace(slots=3, power="gpio", profiles="current", jammed=["1"],
                              fault=["2:dead-sensor", "2:cloud-bound", "old-firmware"],
                              card=["3"], resolution="640x360", codec="H.265")
    spec = build_spec(args)
    assert spec[0].faults == SimFaults(jammed_button=True, old_firmware=True)
    assert spec[1].faults == SimFaults(dead_sensor=True, cloud_bound=True, old_firmware=True)
    assert [s.media.card for s in spec] == [False, False, True]
    assert spec[2].media == MediaConfig(width=640, height=360, codec="H.265", card=True)
    with pytest.raises(ValueError, match="no unit '4'"):
        build_spec(argparse.Namespace(**{**vars(args), "fault": ["4:dead-sensor"]}))


def test_sim_bench_slots_carry_their_faults_card_and_rtsp_port(tmp_path):
    from rig.sim.bench import SimBench, SimSlot

    spec = [SimSlot("gpio", "current", SimFaults(dead_sensor=True)),
            SimSlot("gpio", "current", SimFaults(rtsp_refused=True),
                    media=MediaConfig(width=160, height=90, card=True))]
    with SimBench.start(spec, directory=tmp_path, time_scale=1000.0, base="127.0.77.",
                        first=200, provision=PASSWORD) as sim:
        rows = {row["slot"]: row for row in sim.describe()}
        assert rows["1"]["faults"] == ["dead_sensor"] and rows["2"]["card"] is True
        for slot, row in rows.items():
            url = f"http://{row['address']}:{row['http_port']}"
            ports = {p["protocol"]: p["portNo"] for p in nested(
                get(url, "/ISAPI/Security/adminAccesses"), "AdminAccessProtocol")}
            assert ports["RTSP"] == str(row["rtsp_port"]) != "0"
            assert len(nested(get(url, STORAGE), "hdd")) == (slot == "2")
