"""``rtsp``: an RTSP DESCRIBE of the main stream with Digest returns SDP with a video track
(H.264 or H.265) (firmware_notes/topics/checks.md, "rtsp").

The port is the unit's own (``/ISAPI/Security/adminAccesses``, protocol RTSP), 554 when it
lists none, so a simulated unit on loopback can listen anywhere. A refused connection, a
refusal of the stream or an SDP without video fails; no answer, or one rig cannot read, is
unknown. The signed DESCRIBE is a login like any other: refused, it is reported to the runner
(LoginRefused), which sends nothing more.
"""

from __future__ import annotations

from typing import Any

from rig.camera.isapi_errors import AuthenticationFailed, IsapiError, NotActivated
from rig.camera.rtsp import RtspError, RtspSession, rtsp_route, video_codecs
from rig.checks import parsers
from rig.checks.base import CheckContext
from rig.checks.calls import LoginRefused
from rig.checks.results import Finding, failed, passed, unknown
from rig.vocabulary import CheckName

NAME = CheckName.RTSP
ACCESS = "/ISAPI/Security/adminAccesses"
STREAM = "/Streaming/Channels/101"
DEFAULT_PORT = 554


def check(ctx: CheckContext) -> Finding:
    """DESCRIBE the main stream (see the module docstring)."""
    port, source = _port(ctx)
    calls = ctx.calls
    route = rtsp_route(calls.client.route, port)
    details: dict[str, Any] = {"port": port, "port_source": source, "status": None,
                               "codecs": []}
    seconds = max(min(calls.remaining(), calls.client.timeout), 0.1)
    try:
        with RtspSession(route, timeout=seconds) as session:
            details["url"] = session.url(STREAM)
            reply = session.describe(STREAM, calls.creds)
    except RtspError as exc:
        if exc.kind == "login":
            raise LoginRefused(str(exc)) from None
        if exc.kind in ("refused", "reset"):
            return failed(f"RTSP {exc}", **details)
        return unknown(f"RTSP {exc}", **details)
    details["status"] = reply.status
    if reply.status != 200:
        return failed(f"RTSP DESCRIBE answered {reply.status} {reply.reason}".rstrip(),
                      **details)
    codecs = video_codecs(reply.body)
    details["codecs"] = list(codecs)
    usable = [c for c in codecs if c in ("H264", "H265")]
    if not usable:
        what = f"video tracks in {', '.join(codecs)}" if codecs else "no video track"
        return failed(f"the stream's SDP has {what} (H264 or H265 expected)", **details)
    return passed(f"RTSP DESCRIBE on port {port} gives a {usable[0]} video track", **details)


def _port(ctx: CheckContext) -> tuple[int, str]:
    """The unit's RTSP port and where it came from."""
    try:
        port = ctx.calls.read(ACCESS, parsers.rtsp_port)
    except (AuthenticationFailed, NotActivated):
        raise                      # a failed login: the runner stops
    except IsapiError:
        return DEFAULT_PORT, "default (adminAccesses unreadable)"
    if port is None:
        return DEFAULT_PORT, "default (adminAccesses lists no RTSP port)"
    return port, "adminAccesses"
