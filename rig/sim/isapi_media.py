"""The virtual camera's ISAPI endpoints for the functional checks: main stream, snapshot, IR-cut
filter, SD card, Hik-Connect (EZVIZ) and the access ports.

Written from firmware_notes/topics/checks.md and the public sources it names, never from
the controller's checks, so that a misreading on one side cannot pass the other. Every route
needs an activated unit and a Digest login, like the other authenticated routes of
rig.sim.isapi_server, which adds ``ROUTES`` to its table. The handler is passed in; this module
does not import the server, so either can be imported first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rig.sim.media import CARD_CAPACITY_MB, IRCUT_MODES, snapshot_jpeg

if TYPE_CHECKING:
    from collections.abc import Callable

    from rig.sim.isapi_server import _Handler

#: The one card slot of a simulated unit (hddList/hdd id).
HDD_ID = "1"


def _document(handler: _Handler, root: str, inner: str) -> Exception:
    """A 200 reply with ``inner`` inside ``root`` in the unit's namespace."""
    return handler.reply(200, f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} version="2.0" '
                              f'xmlns="{handler._ns()}">\n{inner}</{root}>\n')


def _elements(fields: list[tuple[str, object]]) -> str:
    return "".join(f"<{k}>{v}</{k}>\n" for k, v in fields)


def _b(value: bool) -> str:
    return "true" if value else "false"


def streaming_channel(handler: _Handler, path: str, query: dict, body: bytes) -> None:
    """GET /ISAPI/Streaming/channels/101: the main stream's codec and size."""
    handler._authenticate("GET")
    config = handler.camera.media.config
    video = _elements([("enabled", "true"), ("videoInputChannelID", 1),
                       ("videoCodecType", config.codec), ("videoScanType", "progressive"),
                       ("videoResolutionWidth", config.width),
                       ("videoResolutionHeight", config.height),
                       ("videoQualityControlType", "VBR"), ("constantBitRate", 4096),
                       ("maxFrameRate", 2500)])
    inner = _elements([("id", 101), ("channelName", "Camera 01"), ("enabled", "true")])
    raise _document(handler, "StreamingChannel", f"{inner}<Video>\n{video}</Video>\n")


def picture(handler: _Handler, path: str, query: dict, body: bytes) -> None:
    """GET /ISAPI/Streaming/channels/101/picture: a JPEG the main stream's size; a dead sensor
    gives a flat frame."""
    handler._authenticate("GET")
    cam = handler.camera
    config = cam.media.config
    data = snapshot_jpeg(config.width, config.height, cam.serial, cam.faults.dead_sensor)
    raise handler.reply(200, data, "image/jpeg")


def ircut_filter(handler: _Handler, path: str, query: dict, body: bytes) -> None:
    """GET/PUT /ISAPI/Image/channels/1/ircutFilter. A stuck filter accepts the PUT and keeps
    its mode; a model without one answers 403 notSupport."""
    handler._authenticate(handler.command)
    cam = handler.camera
    if cam.faults.no_ircut:
        raise handler._status(403, 4, "notSupport")
    if handler.command == "PUT":
        mode = handler._parse_xml(body).get("IrcutFilterType", "")
        if mode not in IRCUT_MODES:
            raise handler._status(400, 6, "badXmlContent")
        if not cam.faults.stuck_ircut:
            cam.update_settings(ircut_mode=mode)
        raise handler._status(200, 1, "ok")
    raise _document(handler, "IrcutFilter", _elements([
        ("IrcutFilterType", cam.settings.ircut_mode), ("nightToDayFilterLevel", "normal"),
        ("nightToDayFilterTime", 5)]))


def storage(handler: _Handler, path: str, query: dict, body: bytes) -> None:
    """GET /ISAPI/ContentMgmt/Storage: the card, if one is in; otherwise an empty hddList."""
    handler._authenticate("GET")
    media = handler.camera.media
    hdds = ""
    if media.has_card:
        card = media.card()
        hdds = "<hdd>\n" + _elements([
            ("id", HDD_ID), ("hddName", "hdd1"), ("hddPath", ""), ("hddType", "SD"),
            ("status", card.status), ("capacity", CARD_CAPACITY_MB),
            ("freeSpace", card.free_mb), ("property", "RW")]) + "</hdd>\n"
    raise _document(handler, "storage",
                    f'<hddList version="2.0">\n{hdds}</hddList>\n<nasList version="2.0">\n'
                    f"</nasList>\n<workMode>group</workMode>\n")


def format_hdd(handler: _Handler, path: str, query: dict, body: bytes) -> None:
    """PUT /ISAPI/ContentMgmt/Storage/hdd/1/format: start formatting (progress in scaled time)."""
    handler._authenticate("PUT")
    if not handler.camera.media.start_format():
        raise handler._status(404, 4, "notSupport")     # no card in the slot
    raise handler._status(200, 1, "ok")


def format_status(handler: _Handler, path: str, query: dict, body: bytes) -> None:
    """GET /ISAPI/ContentMgmt/Storage/hdd/1/formatStatus: ``formating`` (sic) and ``percent``."""
    handler._authenticate("GET")
    media = handler.camera.media
    if not media.has_card:
        raise handler._status(404, 4, "notSupport")
    card = media.card()
    raise _document(handler, "formatStatus", _elements([
        ("formating", _b(card.formatting)), ("percent", card.percent)]))


def ezviz(handler: _Handler, path: str, query: dict, body: bytes) -> None:
    """GET /ISAPI/System/Network/EZVIZ: Hik-Connect on/off, registered, bound."""
    handler._authenticate("GET")
    media = handler.camera.media
    raise _document(handler, "EZVIZ", _elements([
        ("enabled", _b(media.cloud_enabled)), ("registerStatus", _b(media.cloud_enabled)),
        ("bindStatus", "bind" if media.cloud_bound else "unbind"),
        ("redirect", "true"), ("serverDiscoveryMode", "auto"),
        ("serverAddress", "dev.ezvizlife.com" if media.cloud_enabled else "")]))


def admin_accesses(handler: _Handler, path: str, query: dict, body: bytes) -> None:
    """GET /ISAPI/Security/adminAccesses: the ports the unit serves on (HTTP, RTSP, ...)."""
    handler._authenticate("GET")
    cam = handler.camera
    ports = [("HTTP", cam.http_port), ("HTTPS", 443), ("DEV_MANAGE", 8000),
             ("RTSP", cam.rtsp_port)]
    inner = "".join("<AdminAccessProtocol>\n" + _elements([
        ("id", i), ("enabled", "true"), ("protocol", name), ("portNo", port)])
        + "</AdminAccessProtocol>\n" for i, (name, port) in enumerate(ports, start=1))
    raise _document(handler, "AdminAccessProtocolList", inner)


ROUTES: dict[tuple[str, str], Callable[[_Handler, str, dict, bytes], None]] = {
    ("GET", "/ISAPI/Streaming/channels/101"): streaming_channel,
    ("GET", "/ISAPI/Streaming/channels/101/picture"): picture,
    ("GET", "/ISAPI/Image/channels/1/ircutFilter"): ircut_filter,
    ("PUT", "/ISAPI/Image/channels/1/ircutFilter"): ircut_filter,
    ("GET", "/ISAPI/ContentMgmt/Storage"): storage,
    ("PUT", f"/ISAPI/ContentMgmt/Storage/hdd/{HDD_ID}/format"): format_hdd,
    ("GET", f"/ISAPI/ContentMgmt/Storage/hdd/{HDD_ID}/formatStatus"): format_status,
    ("GET", "/ISAPI/System/Network/EZVIZ"): ezviz,
    ("GET", "/ISAPI/Security/adminAccesses"): admin_accesses,
}
