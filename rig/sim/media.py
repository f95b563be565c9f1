"""What a virtual camera sees and stores: its main stream, its snapshot, its SD card, its cloud
binding (the device side of the functional checks, firmware_notes/topics/checks.md).

Why apart from the camera's ``Settings``: a factory reset replaces the settings wholesale, while
these survive it on a real unit. The card keeps its recordings (Australian Cyber Security Centre,
"Disposing of an IoT device": removable media may keep personal data after a reset) and a
Hik-Connect binding is reported not to be cleared by a reset (kzmlabs toolkit README; both
cited in firmware_notes/topics/checks.md). The IR-cut mode, which a reset does restore to
``auto``, is a setting (``Settings.ircut_mode``), so it goes with the rest.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from rig.camera.profiles import FirmwareProfile, FirmwareVersion

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

#: Codecs the main stream can be configured with (the videoCodecType words,
#: firmware_notes/topics/checks.md).
CODECS = ("H.264", "H.265")
#: IrcutFilterType values the firmware accepts in a PUT (firmware_notes/topics/checks.md
#: "ir-cut").
IRCUT_MODES = ("day", "night", "auto", "schedule", "eventTrigger")
#: How long a real format of the simulated card takes (unscaled seconds; a guess: a 32 GB card
#: formats in tens of seconds on the units people describe). Divided by the time scale.
FORMAT_SECONDS = 20.0
#: A card that fails to format stops here and reports status "error".
FORMAT_FAILS_AT = 40
#: The simulated card: 32 GB nominal, as the firmware reports it (MB), 80 % used by the previous
#: owner's recordings until formatted.
CARD_CAPACITY_MB = 30436
CARD_FREE_MB = 6087
#: Build date written after an old firmware's version (SADP SoftwareVersion style).
OLD_FIRMWARE_BUILD = "150410"


@dataclass(frozen=True)
class MediaConfig:
    """How one unit's media side is configured: the main stream and whether a card is in.

    ``card`` is off by default: units mostly reach a reset bench without their card (it is sold
    or wiped apart), and with no card the storage check passes under every policy
    (firmware_notes/topics/checks.md:
    "No card at all passes"), so a default unit is a good unit whatever the bench's policy. A
    card is a scenario a test asks for. ``width``/``height`` can be made small to keep a test's
    snapshots cheap.
    """

    width: int = 1920
    height: int = 1080
    codec: str = "H.264"
    card: bool = False

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"codec {self.codec!r} is not one of: {', '.join(CODECS)}")
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ValueError(f"resolution {self.width}x{self.height} is outside 16..8192")

    @classmethod
    def parse_resolution(cls, text: str) -> tuple[int, int]:
        """``"640x360"`` → (640, 360); ValueError naming the text."""
        width, sep, height = text.lower().partition("x")
        if not sep or not width.isdigit() or not height.isdigit():
            raise ValueError(f"resolution {text!r} is not WIDTHxHEIGHT (e.g. 640x360)")
        return int(width), int(height)


@dataclass(frozen=True)
class CardStatus:
    """One reading of the card (what ``hddList/hdd`` and ``formatStatus`` report)."""

    status: str         # ok, formatting, error
    free_mb: int
    formatting: bool
    percent: int


class MediaState:
    """What survives a reset: the card's contents and format progress, the cloud binding.

    Time comes from the camera's clock and scale (``clock``, ``scaled``), so a format progresses
    in compressed time like every other firmware duration. Thread-safe: the web server's threads
    read and format concurrently.
    """

    def __init__(self, config: MediaConfig, *, card: bool, format_fails: bool,
                 cloud_bound: bool, clock: Callable[[], float],
                 scaled: Callable[[float], float]) -> None:
        self.config = config
        self.has_card = card
        self.format_fails = format_fails
        #: Bound to someone's Hik-Connect account; a reset does not clear it (module docstring).
        self.cloud_bound = cloud_bound
        self._clock, self._scaled = clock, scaled
        self._lock = threading.Lock()
        self._free_mb = CARD_FREE_MB
        self._format_started: float | None = None

    @property
    def cloud_enabled(self) -> bool:
        """Hik-Connect on: a bound unit has it on; a unit out of the box has it off."""
        return self.cloud_bound

    def start_format(self) -> bool:
        """Begin formatting the card; False when there is no card to format."""
        if not self.has_card:
            return False
        with self._lock:
            self._format_started = self._clock()
        return True

    def card(self) -> CardStatus:
        """The card now: a finished format empties it, a failing card stops at an error."""
        with self._lock:
            if self._format_started is None:
                return CardStatus("ok", self._free_mb, False, 0)
            duration = max(self._scaled(FORMAT_SECONDS), 1e-9)
            elapsed = self._clock() - self._format_started
            percent = min(int(100 * elapsed / duration + 1e-6), 100)    # 1e-6: float noise
            if self.format_fails and percent >= FORMAT_FAILS_AT:
                return CardStatus("error", self._free_mb, False, FORMAT_FAILS_AT)
            if percent < 100:
                return CardStatus("formatting", self._free_mb, True, percent)
            self._free_mb = CARD_CAPACITY_MB
            return CardStatus("ok", self._free_mb, False, 100)


def old_firmware(sample: str, profile: FirmwareProfile) -> str:
    """The firmware an "old firmware" unit reports: the oldest version of its own family (the
    profile's minimum, or V5.0.0 for a family without one), so the controller still treats it
    as that family, while any bench baseline above the family's floor fails it."""
    floor = profile.firmware_min or FirmwareVersion(5, 0, 0)
    version = FirmwareVersion(floor.major, floor.minor, floor.patch, OLD_FIRMWARE_BUILD)
    if not version < FirmwareVersion.parse(sample):
        raise ValueError(f"profile {profile.name}: no firmware older than {sample} in the family")
    return str(version)


def snapshot_jpeg(width: int, height: int, label: str, flat: bool) -> bytes:
    """A JPEG the size of the main stream: colour bars over a grey ramp with ``label`` (the
    unit's serial) written in, or, for a dead sensor, a flat dark frame. Cached: the pattern of
    one unit at one size is made once."""
    return _snapshot(width, height, label, flat)


@lru_cache(maxsize=64)
def _snapshot(width: int, height: int, label: str, flat: bool) -> bytes:
    from PIL import Image  # Pillow costs tens of ms to import: only when a snapshot is asked

    if flat:
        image = Image.new("RGB", (width, height), (18, 18, 18))
    else:
        image = _test_pattern(width, height, label)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def _fitting_font(draw: ImageDraw.ImageDraw, label: str, width: int, size: int
                  ) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont,
                             tuple[float, float, float, float]]:
    """The largest default font, from ``size`` down, in which ``label`` fits ``width``: the
    serial's last digits (the ones that tell units apart) must not be cut off."""
    from PIL import ImageFont

    while True:
        try:
            font = ImageFont.load_default(size=size)
        except TypeError:       # Pillow without FreeType: the fixed bitmap font, as it is
            font = ImageFont.load_default()
            return font, draw.textbbox((0, 0), label, font=font)
        box = draw.textbbox((0, 0), label, font=font)
        if box[2] - box[0] <= width - 8 or size <= 4:
            return font, box
        size -= 1


def _test_pattern(width: int, height: int, label: str) -> Image.Image:
    """SMPTE-like bars on the top two thirds, a grey ramp below, the label in a black box."""
    from PIL import Image, ImageDraw

    bars = [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0),
            (192, 0, 192), (192, 0, 0), (0, 0, 192)]
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    top = height * 2 // 3
    for i, colour in enumerate(bars):
        draw.rectangle([i * width // len(bars), 0, (i + 1) * width // len(bars), top], colour)
    ramp = Image.linear_gradient("L").rotate(90).resize((width, height - top)).convert("RGB")
    image.paste(ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (0, top))
    font, box = _fitting_font(draw, label, width, max(height // 18, 6))
    x, y = max((width - (box[2] - box[0])) // 2, 0), max(top - (box[3] - box[1]) * 2, 0)
    draw.rectangle([x - 4, y - 4, x + box[2] - box[0] + 4, y + box[3] + 4], (0, 0, 0))
    draw.text((x, y), label, fill=(255, 255, 255), font=font)
    return image
