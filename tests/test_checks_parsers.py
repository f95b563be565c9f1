"""The functional checks' readers on sample bodies (both namespaces and none) and on hostile
ones: a wrong document, a card id that would walk the URL, values out of range, entity tricks,
and pictures that are not JPEGs. Nothing here raises anything but ValueError (or XmlError, a
ValueError) with a sentence."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from rig import xmlsafe
from rig.camera.rtsp import video_codecs
from rig.checks import parsers
from rig.checks.snapshot import measure

HIK = 'xmlns="http://www.hikvision.com/ver20/XMLSchema"'
STD = 'xmlns="http://www.std-cgi.com/ver20/XMLSchema"'


def xml(text: str):
    return xmlsafe.parse(text.encode())


@pytest.mark.parametrize("ns", [HIK, STD, ""])
def test_stream_config_in_any_namespace(ns):
    root = xml(f"<StreamingChannel {ns}><id>101</id><Video><enabled>true</enabled>"
               "<videoCodecType>H.265+</videoCodecType><videoResolutionWidth>2560"
               "</videoResolutionWidth><videoResolutionHeight>1440</videoResolutionHeight>"
               "</Video></StreamingChannel>")
    config = parsers.stream_config(root)
    assert (config.width, config.height, config.family) == (2560, 1440, "H.265")


@pytest.mark.parametrize(("body", "why"), [
    ("<ResponseStatus><statusCode>4</statusCode></ResponseStatus>", "not <StreamingChannel>"),
    ("<StreamingChannel><id>101</id></StreamingChannel>", "no <Video>"),
])
def test_a_body_that_is_not_the_stream_config_is_refused(body, why):
    with pytest.raises(ValueError, match=why):
        parsers.stream_config(xml(body))


def test_a_nonsense_resolution_reads_as_unknown_not_as_a_number():
    config = parsers.stream_config(xml(
        "<StreamingChannel><Video><videoResolutionWidth>-5</videoResolutionWidth>"
        "<videoResolutionHeight>99999999999</videoResolutionHeight><videoCodecType>MJPEG"
        "</videoCodecType></Video></StreamingChannel>"))
    assert (config.width, config.height, config.family) == (None, None, None)


def test_cards_with_sizes_and_statuses():
    root = xml(f"<storage {HIK}><hddList><hdd><id>1</id><hddName>hdd1</hddName>"
               "<hddType>SD</hddType><status>OK</status><capacity>30436</capacity>"
               "<freeSpace>6087</freeSpace><property>RW</property></hdd></hddList>"
               "<nasList/></storage>")
    [card] = parsers.cards(root)
    assert card.to_json() == {"id": "1", "type": "SD", "status": "ok", "capacity_mb": 30436,
                              "free_mb": 6087}
    assert parsers.cards(xml("<storage><hddList/></storage>")) == ()
    assert parsers.cards(xml("<storage/>")) == ()


@pytest.mark.parametrize("card_id", ["../../System/factoryReset", "1?mode=full", "", "1 2",
                                     "12345678"])
def test_a_card_id_that_could_walk_the_url_is_refused(card_id):
    with pytest.raises(ValueError, match="card id"):
        parsers.cards(xml(f"<storage><hddList><hdd><id>{card_id}</id></hdd></hddList>"
                          "</storage>"))


def test_a_flood_of_cards_is_refused():
    cards = "".join(f"<hdd><id>{i}</id></hdd>" for i in range(40))
    with pytest.raises(ValueError, match="more than"):
        parsers.cards(xml(f"<storage><hddList>{cards}</hddList></storage>"))


@pytest.mark.parametrize(("body", "expected"), [
    ("<formatStatus><formating>true</formating><percent>40</percent></formatStatus>",
     (True, 40)),
    ("<formatStatus><formating>flase</formating><percent>100</percent></formatStatus>",
     (False, 100)),
    ("<formatStatus><percent>250</percent></formatStatus>", (None, None)),
    ("<formatStatus><percent>forty</percent></formatStatus>", (None, None)),
])
def test_format_status(body, expected):
    status = parsers.format_status(xml(body))
    assert (status.formatting, status.percent) == expected


@pytest.mark.parametrize(("fields", "expected"), [
    ("<enabled>true</enabled><registerStatus>true</registerStatus><bindStatus>bind"
     "</bindStatus>", (True, True, True)),
    ("<enabled>true</enabled><bindStatus>unbind</bindStatus>", (True, None, False)),
    ("<enabled>false</enabled><bindStatus>false</bindStatus>", (False, None, False)),
    ("<enabled>maybe</enabled><bindStatus>perhaps</bindStatus>", (None, None, None)),
    ("", (None, None, None)),
])
def test_cloud_state_reads_every_bind_spelling_and_nothing_it_cannot(fields, expected):
    state = parsers.cloud_state(xml(f"<EZVIZ {HIK}>{fields}</EZVIZ>"))
    assert (state.enabled, state.registered, state.bound) == expected


@pytest.mark.parametrize(("entries", "port"), [
    ([("HTTP", "80"), ("rtsp", "10554")], 10554),
    ([("HTTP", "80"), ("DEV_MANAGE", "8000")], None),
    ([("RTSP", "70000")], None),
    ([("RTSP", "x")], None),
])
def test_the_rtsp_port_from_admin_accesses(entries, port):
    body = "".join(f"<AdminAccessProtocol><id>{i}</id><enabled>true</enabled><protocol>{p}"
                   f"</protocol><portNo>{n}</portNo></AdminAccessProtocol>"
                   for i, (p, n) in enumerate(entries))
    assert parsers.rtsp_port(xml(f"<AdminAccessProtocolList {HIK}>{body}"
                                 "</AdminAccessProtocolList>")) == port


def test_ircut_mode_and_body():
    assert parsers.ircut_mode(xml(f"<IrcutFilter {HIK}><IrcutFilterType>night"
                                  "</IrcutFilterType></IrcutFilter>")) == "night"
    assert parsers.ircut_mode(xml("<IrcutFilter/>")) is None
    body = parsers.ircut_xml("day")
    assert parsers.ircut_mode(xml(body)) == "day"
    with pytest.raises(ValueError, match="not an IR-cut mode"):
        parsers.ircut_xml("</IrcutFilterType><evil/>")


def test_entity_tricks_never_reach_a_reader():
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><EZVIZ><enabled>&b;</enabled></EZVIZ>')
    with pytest.raises(ValueError, match="unsafe"):
        xml(bomb)


def test_sdp_video_codecs():
    sdp = (b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=Media Presentation\r\n"
           b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
           b"m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    assert video_codecs(sdp) == ("H264",)
    assert video_codecs(b"m=video 0 RTP/AVP 98\na=rtpmap:98 H265/90000\n") == ("H265",)
    assert video_codecs(b"m=audio 0 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n") == ()
    assert video_codecs(b"\xff\xfe garbage \x00") == ()
    # an rtpmap for a payload the video line does not list is not its codec
    assert video_codecs(b"m=video 0 RTP/AVP 96\na=rtpmap:97 H264/90000\n") == ()


def picture(kind: str, size=(64, 48), flat: bool = False) -> bytes:
    image = Image.new("RGB", size, (90, 90, 90))
    if not flat:
        for x in range(size[0]):
            for y in range(0, size[1], 2):
                image.putpixel((x, y), (x * 4 % 256, 255 - x * 4 % 256, y * 5 % 256))
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


def test_a_jpeg_is_measured_and_thumbnailed():
    seen = measure(picture("JPEG", (640, 360)))
    assert (seen.width, seen.height) == (640, 360) and seen.stddev > 20
    thumb = Image.open(io.BytesIO(seen.thumbnail))
    assert thumb.format == "JPEG" and thumb.size == (240, 135)
    assert measure(picture("JPEG", flat=True)).stddev < 2


@pytest.mark.parametrize(("data", "why"), [
    (b"", "does not decode"),
    (b"\xff\xd8\xff\xe0 truncated", "does not decode"),
    (b"<html>Unauthorized</html>", "does not decode"),
])
def test_a_picture_that_is_not_a_jpeg_says_so(data, why):
    with pytest.raises(ValueError, match=why):
        measure(data)


def test_a_png_is_not_a_jpeg():
    with pytest.raises(ValueError, match="PNG, not a JPEG"):
        measure(picture("PNG"))


def test_a_jpeg_claiming_a_huge_frame_is_refused_before_decoding():
    data = bytearray(picture("JPEG", (64, 48)))
    sof = data.index(b"\xff\xc0")              # baseline start of frame: height, width
    data[sof + 5:sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    with pytest.raises(ValueError):
        measure(bytes(data))
