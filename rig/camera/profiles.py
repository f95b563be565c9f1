"""Firmware profiles: what each Hikvision firmware family does, loaded from firmware_notes/.

The reference notes disagree on many firmware behaviours (hold time, whether factoryReset reboots
by itself, SADP reply style...). Instead of guessing one answer in code, each behaviour is a field
of a profile, written in ``firmware_notes/profiles/<name>.toml`` next to a readable page, and the
simulator takes the same profile. Fields the reference marks uncertain are listed in ``uncertain``
so that reports and pages can say so.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields
from functools import total_ordering
from importlib import resources
from pathlib import Path
from typing import Any


class ProfileError(ValueError):
    """A profile file that does not describe a valid firmware family."""


@total_ordering
@dataclass(frozen=True)
class FirmwareVersion:
    """``V5.5.6build 180326`` → (5, 5, 6), build "180326"; ordered by number, not text."""

    major: int
    minor: int
    patch: int = 0
    build: str | None = None

    _RE = re.compile(r"V?\s*(\d+)\.(\d+)(?:\.(\d+))?\s*(?:,?\s*build\s*(\d+))?", re.IGNORECASE)

    @classmethod
    def parse(cls, text: str) -> FirmwareVersion:
        match = cls._RE.search(text or "")
        if not match:
            raise ValueError(f"not a firmware version: {text!r}")
        major, minor, patch, build = match.groups()
        return cls(int(major), int(minor), int(patch or 0), build)

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: FirmwareVersion) -> bool:
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FirmwareVersion) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"V{self.major}.{self.minor}.{self.patch}"
        return f"{text}build {self.build}" if self.build else text


#: deviceName of every family after a reset (reference §2.7: "IP CAMERA", "hangzhou", ...).
DEFAULT_DEVICE_NAME = "IP CAMERA"

RESTORE_PARTS = ("network", "users", "parameters")
REPLY_STYLES = ("multicast", "unicast")
REBOOT_STYLES = ("self", "reboot-required")
ACTIVATION_VARIANTS = ("challenge", "v3")
SADP_LAYOUTS = ("lf", "tabs", "crlf", "compact")


@dataclass(frozen=True)
class FirmwareProfile:
    """One firmware family. Durations are real seconds; the simulator scales them down."""

    name: str
    title: str
    firmware_min: FirmwareVersion | None      # inclusive
    firmware_max: FirmwareVersion | None      # exclusive
    sample_firmware: str                      # SoftwareVersion the simulator reports
    sample_dsp: str
    sample_model: str
    device_type: str                          # SADP DeviceType code
    hold_seconds: tuple[float, float]         # reset button held through power-up: min, max
    boot_seconds: float                       # power-on until SADP and ISAPI answer
    default_ipv4: str
    default_mask: str
    default_gateway: str
    default_dhcp: bool
    ipv6: bool                                # IPv6 (link-local) on by default
    default_user: str
    default_password: str | None              # legacy "12345"; None: inactive from the factory
    basic_keeps: tuple[str, ...]              # what factoryReset mode=basic keeps
    full_keeps: tuple[str, ...]               # what mode=full keeps
    factory_reset_reboot: str                 # "self" or "reboot-required" (statusCode 7)
    lockout_attempts: int                     # failed logins per client address before the lock
    lockout_seconds: float
    sadp_reply: tuple[str, ...]               # "multicast", "unicast" or both
    sadp_writes_flase: bool
    sadp_layout: str
    sadp_omit: tuple[str, ...]                # ProbeMatch elements this firmware does not send
    activate_status: bool                     # GET /SDK/activateStatus exists
    activation: tuple[str, ...]               # supported activation exchanges, preferred first
    inactive_http_status: int                 # what ISAPI answers before activation (401 or 403)
    isapi_namespace: str
    uncertain: tuple[str, ...]                # fields the reference marks uncertain

    @property
    def activated_from_factory(self) -> bool:
        """Legacy firmware ships with a password and needs no activation."""
        return self.default_password is not None

    def matches(self, version: FirmwareVersion) -> bool:
        low_ok = self.firmware_min is None or version >= self.firmware_min
        high_ok = self.firmware_max is None or version < self.firmware_max
        return low_ok and high_ok


def _spec() -> dict[str, tuple[str, ...]]:
    """TOML layout: table → keys, each key named after the dataclass field it fills."""
    return {
        "": ("name", "title", "uncertain"),
        "match": ("firmware_min", "firmware_max"),
        "sample": ("sample_firmware", "sample_dsp", "sample_model", "device_type"),
        "reset_button": ("hold_seconds",),
        "boot": ("boot_seconds",),
        "defaults": ("default_ipv4", "default_mask", "default_gateway", "default_dhcp", "ipv6",
                     "default_user", "default_password"),
        "restore": ("basic_keeps", "full_keeps", "factory_reset_reboot"),
        "lockout": ("lockout_attempts", "lockout_seconds"),
        "sadp": ("sadp_reply", "sadp_writes_flase", "sadp_layout", "sadp_omit"),
        "isapi": ("activate_status", "activation", "inactive_http_status", "isapi_namespace"),
    }


_OPTIONAL = {"firmware_min", "firmware_max", "default_password", "uncertain", "sadp_omit"}


def load_profile(path: Path) -> FirmwareProfile:
    """Load and check one profile file; errors name the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    values: dict[str, Any] = {}
    for table, keys in _spec().items():
        section = data if table == "" else data.get(table, {})
        if not isinstance(section, dict):
            raise ProfileError(f"{path}: [{table}] must be a table")
        allowed = set(keys) | (set(_spec()) - {""} if table == "" else set())
        for key in section:
            if key not in allowed:
                raise ProfileError(f"{path}: unknown key {_key(table, key)!r}; "
                                   f"allowed: {', '.join(sorted(keys))}")
        for key in keys:
            if key in section:
                values[key] = section[key]
            elif key not in _OPTIONAL:
                raise ProfileError(f"{path}: missing key {_key(table, key)!r}")
    return _build(path, values)


def _key(table: str, key: str) -> str:
    return f"{table}.{key}" if table else key


def _build(path: Path, v: dict[str, Any]) -> FirmwareProfile:
    def fail(key: str, why: str) -> ProfileError:
        return ProfileError(f"{path}: {key}: {why}")

    def version(key: str) -> FirmwareVersion | None:
        if v.get(key) is None:
            return None
        try:
            return FirmwareVersion.parse(str(v[key]))
        except ValueError as exc:
            raise fail(key, str(exc)) from None

    def choices(key: str, allowed: tuple[str, ...], many: bool = True) -> Any:
        raw = v.get(key, [] if many else None)
        items = list(raw) if many and isinstance(raw, list) else [raw]
        for item in items:
            if item not in allowed:
                raise fail(key, f"{item!r} is not one of {', '.join(allowed)}")
        return tuple(items) if many else raw

    for key in ("default_dhcp", "ipv6", "sadp_writes_flase", "activate_status"):
        if not isinstance(v[key], bool):
            raise fail(key, f"must be true or false, not {v[key]!r}")
    if not isinstance(v["lockout_attempts"], int) or isinstance(v["lockout_attempts"], bool):
        raise fail("lockout_attempts", "must be a whole number")
    hold = v["hold_seconds"]
    if (not isinstance(hold, list) or len(hold) != 2 or not all(
            isinstance(x, int | float) and x > 0 for x in hold) or hold[0] > hold[1]):
        raise fail("hold_seconds", "must be [min, max] seconds with 0 < min <= max")
    for key in ("boot_seconds", "lockout_seconds", "lockout_attempts"):
        if not isinstance(v[key], int | float) or v[key] <= 0:
            raise fail(key, "must be a positive number")
    if v["inactive_http_status"] not in (401, 403):
        raise fail("inactive_http_status", "must be 401 or 403")
    known = {f.name for f in fields(FirmwareProfile)}
    for key in v.get("uncertain", []):
        if key not in known:
            raise fail("uncertain", f"{key!r} is not a profile field")
    if not v["sadp_reply"]:
        raise fail("sadp_reply", "name at least one of multicast, unicast")
    low, high = version("firmware_min"), version("firmware_max")
    if low is not None and high is not None and not low < high:
        raise fail("firmware_max", f"{high} must be above firmware_min {low}")
    password = v.get("default_password")
    if password in (None, "") and not v["activation"]:
        raise fail("activation", "a family without a factory password must name an activation")
    return FirmwareProfile(
        name=str(v["name"]), title=str(v["title"]),
        firmware_min=low, firmware_max=high,
        sample_firmware=str(v["sample_firmware"]), sample_dsp=str(v["sample_dsp"]),
        sample_model=str(v["sample_model"]), device_type=str(v["device_type"]),
        hold_seconds=(float(hold[0]), float(hold[1])),
        boot_seconds=float(v["boot_seconds"]),
        default_ipv4=str(v["default_ipv4"]), default_mask=str(v["default_mask"]),
        default_gateway=str(v["default_gateway"]), default_dhcp=v["default_dhcp"],
        ipv6=v["ipv6"], default_user=str(v["default_user"]),
        default_password=None if password in (None, "") else str(password),
        basic_keeps=choices("basic_keeps", RESTORE_PARTS),
        full_keeps=choices("full_keeps", RESTORE_PARTS),
        factory_reset_reboot=choices("factory_reset_reboot", REBOOT_STYLES, many=False),
        lockout_attempts=v["lockout_attempts"],
        lockout_seconds=float(v["lockout_seconds"]),
        sadp_reply=choices("sadp_reply", REPLY_STYLES),
        sadp_writes_flase=v["sadp_writes_flase"],
        sadp_layout=choices("sadp_layout", SADP_LAYOUTS, many=False),
        sadp_omit=tuple(str(x) for x in v.get("sadp_omit", [])),
        activate_status=v["activate_status"],
        activation=choices("activation", ACTIVATION_VARIANTS),
        inactive_http_status=int(v["inactive_http_status"]),
        isapi_namespace=str(v["isapi_namespace"]),
        uncertain=tuple(str(x) for x in v.get("uncertain", [])),
    )


def profiles_dir() -> Path:
    """firmware_notes/profiles: inside the installed package, or at the top of a source checkout."""
    packaged = resources.files("rig").joinpath("firmware_notes").joinpath("profiles")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "firmware_notes" / "profiles"


@dataclass(frozen=True)
class ProfileSet:
    """All known families, looked up by name or by firmware version."""

    profiles: tuple[FirmwareProfile, ...]

    @classmethod
    def load(cls, directory: Path | None = None) -> ProfileSet:
        directory = directory or profiles_dir()
        files = sorted(directory.glob("*.toml"))
        if not files:
            raise ProfileError(f"no firmware profiles (*.toml) in {directory}")
        profiles = tuple(load_profile(p) for p in files)
        seen: dict[str, Path] = {}
        for path, profile in zip(files, profiles, strict=True):
            if profile.name in seen:
                raise ProfileError(f"{path}: name: {profile.name!r} is already used by "
                                   f"{seen[profile.name]}")
            seen[profile.name] = path
        return cls(profiles)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.profiles]

    def get(self, name: str) -> FirmwareProfile:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise ProfileError(f"unknown firmware profile {name!r}; known: {', '.join(self.names)}")

    def for_firmware(self, firmware: str) -> FirmwareProfile | None:
        """The family a SoftwareVersion / firmwareVersion string belongs to, if any."""
        try:
            version = FirmwareVersion.parse(firmware)
        except ValueError:
            return None
        return next((p for p in self.profiles if p.matches(version)), None)
