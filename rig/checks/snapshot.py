"""``snapshot``: the main channel's picture is a JPEG that decodes, has the resolution the main
stream is configured for, and is not flat (firmware_notes/topics/checks.md, "snapshot").

A dead or covered sensor gives a near-uniform frame: the check measures the standard deviation
of luminance (Pillow ``ImageStat`` on the ``L`` image, 0-255) against the bench's
``snapshot_min_stddev``. The picture is kept (the runner attaches the JPEG and records a
thumbnail at most 240 px wide for the report), flat or not: a failed unit's frame is evidence
too. Pillow is imported when a snapshot is taken, not when rig starts.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

from rig.camera.isapi_errors import AuthenticationFailed, IsapiError, NotActivated
from rig.checks import parsers
from rig.checks.base import CheckContext
from rig.checks.results import Finding, Snapshot
from rig.vocabulary import CheckName, CheckOutcome

NAME = CheckName.SNAPSHOT
PICTURE = "/ISAPI/Streaming/channels/101/picture"
STREAM = "/ISAPI/Streaming/channels/101"
#: Largest snapshot accepted: a 12 MP JPEG is a few MB.
MAX_JPEG = 16 * 1024 * 1024
#: Largest frame decoded (a hostile JPEG header may claim a huge one: a decompression bomb).
MAX_PIXELS = 50_000_000
THUMB_WIDTH = 240


@dataclass(frozen=True)
class Measured:
    """What the picture is: its size, its luminance spread and its thumbnail (a JPEG)."""

    width: int
    height: int
    stddev: float
    thumbnail: bytes


def measure(jpeg: bytes) -> Measured:
    """Decode ``jpeg`` and measure it; ValueError saying why it is not a usable JPEG."""
    from PIL import Image, ImageStat

    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            if image.format != "JPEG":
                raise ValueError(f"the picture is {image.format or 'not an image'}, not a JPEG")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ValueError(f"a {width}x{height} frame is larger than any camera's")
            image.load()
            grey = image.convert("L")
            stddev = float(ImageStat.Stat(grey).stddev[0])
            thumb = image.convert("RGB")
            thumb.thumbnail((THUMB_WIDTH, max(1, THUMB_WIDTH * height // max(width, 1))))
            out = io.BytesIO()
            thumb.save(out, "JPEG", quality=70)
    except ValueError:
        raise
    except Exception as exc:        # Pillow raises OSError, SyntaxError, DecompressionBomb...
        raise ValueError(f"the picture does not decode as a JPEG ({type(exc).__name__})") \
            from None
    return Measured(width, height, stddev, out.getvalue())


def check(ctx: CheckContext) -> Finding:
    """Take, decode and judge the main channel's snapshot."""
    expected, config_error = _expected(ctx)
    reply = ctx.calls.send("GET", PICTURE, max_body=MAX_JPEG)
    jpeg = reply.body
    details: dict[str, Any] = {
        "width": None, "height": None, "expected_width": expected.width if expected else None,
        "expected_height": expected.height if expected else None, "luma_stddev": None,
        "sha256": hashlib.sha256(jpeg).hexdigest(), "bytes": len(jpeg)}
    try:
        seen = measure(jpeg)
    except ValueError as exc:
        return Finding(CheckOutcome.FAILED, str(exc), details)
    details.update(width=seen.width, height=seen.height, luma_stddev=round(seen.stddev, 2))
    outcome, reason = _judge(ctx, seen, expected, config_error)
    snapshot = Snapshot(jpeg, details["sha256"], seen.width, seen.height, seen.thumbnail)
    return Finding(outcome, reason, details, snapshot)


def _expected(ctx: CheckContext) -> tuple[parsers.StreamConfig | None, str]:
    """The main stream's configured size, or why it could not be read."""
    try:
        config = ctx.calls.read(STREAM, parsers.stream_config)
    except (AuthenticationFailed, NotActivated):
        raise                      # a failed login: the runner stops
    except IsapiError as exc:
        return None, str(exc)
    if config.width is None or config.height is None:
        return None, "the main stream's configuration gives no resolution"
    return config, ""


def _judge(ctx: CheckContext, seen: Measured, expected: parsers.StreamConfig | None,
           config_error: str) -> tuple[CheckOutcome, str]:
    floor = ctx.config.snapshot_min_stddev
    size = f"{seen.width}x{seen.height}"
    if seen.stddev < floor:
        return CheckOutcome.FAILED, (f"near-uniform frame (luminance stddev {seen.stddev:.1f} "
                                     f"< {floor:g}): dead or covered sensor")
    if expected is None:
        return CheckOutcome.UNKNOWN, (f"a {size} JPEG, but its expected size is unknown: "
                                      f"{config_error}")
    if (seen.width, seen.height) != (expected.width, expected.height):
        return CheckOutcome.FAILED, (f"the snapshot is {size}, the main stream is configured "
                                     f"for {expected.width}x{expected.height}")
    return CheckOutcome.PASSED, (f"a {size} JPEG with luminance stddev {seen.stddev:.1f} "
                                 f"(at least {floor:g})")
