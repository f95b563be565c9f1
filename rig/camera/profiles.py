"""Firmware profiles: what each Hikvision firmware family does, loaded from firmware_notes/.

The public sources (docs/hikvision-protocols.md) disagree on many firmware behaviours (hold
time, whether factoryReset reboots by itself, SADP reply style...). Instead of guessing one
answer in code, each behaviour is a field of a profile, written in
``firmware_notes/profiles/<name>.toml`` next to a readable page, and the simulator takes the
same profile. Fields those notes mark uncertain are listed in ``uncertain`` so that reports and
pages can say so.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from functools import total_ordering
from importlib import resources
from pathlib import Path
from typing import Any

from rig.tomltable import TomlTable


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


#: deviceName of every family after a reset (docs/hikvision-protocols.md §2.7: "IP CAMERA",
#: "hangzhou", ...).
DEFAULT_DEVICE_NAME = "IP CAMERA"

RESTORE_PARTS = ("network", "users", "parameters")
REBOOT_STYLES = ("self", "reboot-required")
ACTIVATION_VARIANTS = ("challenge", "v3")
#: How SADP ``update`` carries the admin password (docs/hikvision-protocols.md §1.5):
#: base64 of the raw MD5 digest, as Skylight's PoC sends it to an intercom.
SADP_PASSWORD_ENCODINGS = ("md5-base64",)
#: The profile file's table read by the simulator only (rig.sim.behaviour): how a simulated
#: unit presents itself. The controller must accept every variant, so it never reads it.
SIM_TABLE = "sim"


@dataclass(frozen=True)
class FirmwareProfile:
    """One firmware family: what the firmware does, as far as the controller relies on it.
    Durations are real seconds; the simulator scales them down. How a simulated unit of the
    family presents itself (sample identity, SADP and ISAPI wire details) is not here: it is
    the profile file's ``[sim]`` table, read by rig.sim.behaviour."""

    name: str
    title: str
    firmware_min: FirmwareVersion | None      # inclusive
    firmware_max: FirmwareVersion | None      # exclusive
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
    lock_cleared_by_power_cycle: bool         # a power cycle (any restart) ends lock and count
    activate_status: bool                     # GET /SDK/activateStatus exists
    activation: tuple[str, ...]               # supported activation exchanges, preferred first
    sadp_update: bool                         # SADP ``update`` (network settings by MAC) works
    sadp_lamp: bool                           # SADP ``lamp`` (blink the LED) works
    sadp_update_lockout_attempts: int         # failed ``update`` passwords before it locks
    sadp_update_lockout_minutes: float        # how long ``update`` stays locked
    sadp_password_encoding: str               # how ``update`` carries the password
    uncertain: tuple[str, ...]                # keys of the file the notes mark uncertain
    #: The file it was loaded from (the simulator reads its [sim] table); not part of the value.
    source: Path | None = field(default=None, compare=False, repr=False)

    @property
    def activated_from_factory(self) -> bool:
        """Legacy firmware ships with a password and needs no activation."""
        return self.default_password is not None

    def matches(self, version: FirmwareVersion) -> bool:
        low_ok = self.firmware_min is None or version >= self.firmware_min
        high_ok = self.firmware_max is None or version < self.firmware_max
        return low_ok and high_ok


def read_profile_file(path: Path) -> TomlTable:
    """A profile file's top level as a checked table (ProfileError naming the file)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    return TomlTable(path, "", data, error=ProfileError)


def load_profile(path: Path) -> FirmwareProfile:
    """Load and check one profile file; errors name the file and the key. The ``[sim]`` table
    is left to the simulator."""
    top = read_profile_file(path)
    name, title = top.get("name", str), top.get("title", str)
    low, high = _match(top.table("match"))
    hold, boot = _timing(top.table("reset_button"), top.table("boot"))
    defaults = _defaults(top.table("defaults"))
    restore = _restore(top.table("restore"))
    lockout = _lockout(top.table("lockout"))
    isapi = _isapi(top.table("isapi"))
    sadp = _sadp(top.table("sadp"))
    if defaults["default_password"] is None and not isapi["activation"]:
        raise top.fail("isapi.activation",
                       "a family without a factory password must name an activation")
    uncertain = _uncertain(top)
    top.skip(SIM_TABLE)
    top.done()
    return FirmwareProfile(name=name, title=title, firmware_min=low, firmware_max=high,
                           hold_seconds=hold, boot_seconds=boot, **defaults, **restore,
                           **lockout, **isapi, **sadp, uncertain=uncertain, source=path)


def _version(t: TomlTable, key: str) -> FirmwareVersion | None:
    text = t.get(key, str, None)
    if text is None:
        return None
    try:
        return FirmwareVersion.parse(text)
    except ValueError as exc:
        raise t.fail(key, str(exc)) from None


def _match(t: TomlTable) -> tuple[FirmwareVersion | None, FirmwareVersion | None]:
    """[match]: the half-open firmware range, either end open."""
    low, high = _version(t, "firmware_min"), _version(t, "firmware_max")
    if low is not None and high is not None and not low < high:
        raise t.fail("firmware_max", f"{high} must be above firmware_min {low}")
    t.done()
    return low, high


def _positive(t: TomlTable, key: str, integer: bool = False) -> Any:
    value = t.get(key, int if integer else (int, float), what="a whole number" if integer
                  else "a number")
    if value <= 0:
        raise t.fail(key, "must be a positive number")
    return value


def _timing(button: TomlTable, boot: TomlTable) -> tuple[tuple[float, float], float]:
    """[reset_button] hold_seconds = [min, max], [boot] boot_seconds."""
    hold = button.get("hold_seconds", list, what="[min, max] seconds")
    if (len(hold) != 2 or not all(isinstance(x, int | float) and not isinstance(x, bool)
                                  and x > 0 for x in hold) or hold[0] > hold[1]):
        raise button.fail("hold_seconds", "must be [min, max] seconds with 0 < min <= max")
    seconds = float(_positive(boot, "boot_seconds"))
    button.done()
    boot.done()
    return (float(hold[0]), float(hold[1])), seconds


def _defaults(t: TomlTable) -> dict[str, Any]:
    """[defaults]: the factory-default network settings and login."""
    flag = "true or false"
    password = t.get("default_password", str, None)
    values = {
        "default_ipv4": t.get("default_ipv4", str), "default_mask": t.get("default_mask", str),
        "default_gateway": t.get("default_gateway", str),
        "default_dhcp": t.get("default_dhcp", bool, what=flag),
        "ipv6": t.get("ipv6", bool, what=flag), "default_user": t.get("default_user", str),
        "default_password": password or None}
    t.done()
    return values


def _restore(t: TomlTable) -> dict[str, Any]:
    """[restore]: what each factoryReset mode keeps, and whether it reboots by itself."""
    values = {"basic_keeps": t.choices("basic_keeps", RESTORE_PARTS),
              "full_keeps": t.choices("full_keeps", RESTORE_PARTS),
              "factory_reset_reboot": t.choice("factory_reset_reboot", REBOOT_STYLES)}
    t.done()
    return values


def _lockout(t: TomlTable) -> dict[str, Any]:
    """[lockout]: failed logins before the lock, how long it lasts, and whether a power cycle
    clears the failure count (unknown for every family: rig only relies on it when true)."""
    values = {"lockout_attempts": _positive(t, "lockout_attempts", integer=True),
              "lockout_seconds": float(_positive(t, "lockout_seconds")),
              "lock_cleared_by_power_cycle": t.get("lock_cleared_by_power_cycle", bool,
                                                   what="true or false")}
    t.done()
    return values


def _isapi(t: TomlTable) -> dict[str, Any]:
    """[isapi]: /SDK/activateStatus, and the activation exchanges, preferred first."""
    values = {"activate_status": t.get("activate_status", bool, what="true or false"),
              "activation": t.choices("activation", ACTIVATION_VARIANTS)}
    t.done()
    return values


def _sadp(t: TomlTable) -> dict[str, Any]:
    """[sadp]: the SADP commands besides discovery (``update``, ``lamp``) and the ``update``
    password lock, which is the firmware's own and not the ISAPI login lock."""
    flag = "true or false"
    values = {"sadp_update": t.get("sadp_update", bool, what=flag),
              "sadp_lamp": t.get("sadp_lamp", bool, what=flag),
              "sadp_update_lockout_attempts": _positive(t, "sadp_update_lockout_attempts",
                                                        integer=True),
              "sadp_update_lockout_minutes": float(_positive(t, "sadp_update_lockout_minutes")),
              "sadp_password_encoding": t.choice("sadp_password_encoding",
                                                 SADP_PASSWORD_ENCODINGS)}
    t.done()
    return values


def _uncertain(top: TomlTable) -> tuple[str, ...]:
    """The file's keys the notes mark uncertain: profile fields, or [sim] keys (named
    here, read by the simulator)."""
    keys = top.texts("uncertain", ())
    sim = top.data.get(SIM_TABLE)
    known = {f.name for f in fields(FirmwareProfile)} - {"source"}
    known |= set(sim) if isinstance(sim, dict) else set()
    for key in keys:
        if key not in known:
            raise top.fail("uncertain", f"{key!r} is not a profile field")
    return keys


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
