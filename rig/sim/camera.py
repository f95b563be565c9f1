"""The virtual camera's device model: power, boot, reset button, settings, activation, lockout.

A state machine driven by inputs (power, button, ISAPI requests) and by time. Transitions are
computed lazily from an injected clock: every input and every query first replays the timed
events that fell due (boot finished, button held long enough, reboot), in order. No background
thread, so the behaviour is deterministic and time can be compressed with ``time_scale``
(profile durations are divided by it).

What it models (firmware_notes/ has the facts and their confidence):
- off → booting → running; a unit answers SADP and HTTP only when running.
- Reset button held through power-up (pressed no later than ``PRESS_GRACE_S`` after power-on)
  and still held at power-on + the profile's minimum hold time: factory defaults. Released
  earlier: a normal boot that keeps every setting. If the hold outlasts the boot, the unit
  restarts into defaults when the hold completes.
- Web restore: mode=basic keeps what the profile says (network, users); mode=full keeps nothing.
  Firmware either reboots by itself or answers "reboot required" and applies it at next boot.
- Activation (current/G5 firmware) through the challenge exchange; legacy ships admin/12345.
- Illegal-login lock per client address after the profile's number of failures, for its lock
  time; a restart clears the count and the lock only if the profile says a power cycle does
  (``lock_cleared_by_power_cycle``). Every failed login is an event ("login failed from ...").
"""

from __future__ import annotations

import enum
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from rig.camera import activation
from rig.camera.profiles import DEFAULT_DEVICE_NAME, FirmwareProfile
from rig.camera.sadp import Probe, build_probe_match, normalize_mac
from rig.sim.behaviour import SimBehaviour, behaviour_for
from rig.sim.media import MediaConfig, MediaState, old_firmware
from rig.sim.sadp_actions import SadpActions
from rig.vocabulary import ResetMode

log = logging.getLogger(__name__)

#: The bootloader samples the button shortly after power-on: a press up to this late still counts.
PRESS_GRACE_S = 2.0
#: Delay between answering a reboot/self-rebooting reset and going down (real seconds).
REBOOT_DELAY_S = 1.0
#: How long a challenge stays usable for the activate call that follows it (real seconds).
CHALLENGE_TTL_S = 60.0
#: SADP elements real firmware writes as "flase" when false (captures A and B,
#: docs/hikvision-protocols.md §1.3).
FLASE_FIELDS = frozenset({"HCPlatformEnable", "DeviceLock"})


class CameraState(enum.Enum):
    OFF = "off"
    BOOTING = "booting"
    RUNNING = "running"


@dataclass(frozen=True)
class SimFaults:
    """Faults a bench meets, switchable per unit. On the command line each is named with
    dashes (``dead-sensor``); ``from_names`` reads such a list."""

    jammed_button: bool = False   # the solenoid presses but the button never registers
    never_boots: bool = False     # powered, but stays booting forever
    sadp_silent: bool = False     # runs, but never answers SADP
    refuse_network: bool = False  # refuses every new network setting (SADP update, ISAPI PUT)
    # Functional faults (rig.sim.media, rig.sim.isapi_media, rig.sim.rtsp_server):
    dead_sensor: bool = False     # snapshots are a flat, near-uniform frame
    stuck_ircut: bool = False     # an IR-cut PUT answers OK, the read-back keeps the old mode
    no_ircut: bool = False        # a model without IR-cut filter: 403 notSupport
    no_card: bool = False         # the card slot is empty even when a card is configured
    card_format_fails: bool = False   # a card is in, and its format stops with "error"
    old_firmware: bool = False    # reports the oldest firmware of its family (deviceInfo, SADP)
    cloud_bound: bool = False     # Hik-Connect on and bound to an account (survives a reset)
    rtsp_refused: bool = False    # the RTSP port refuses connections

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every fault's command-line name (``dead-sensor``)."""
        return tuple(name.replace("_", "-") for name in cls.__dataclass_fields__)

    @classmethod
    def from_names(cls, names: Iterable[str]) -> SimFaults:
        """Faults switched on by name (dashes or underscores); ValueError naming the known."""
        chosen = {}
        for name in names:
            key = name.strip().replace("-", "_")
            if key not in cls.__dataclass_fields__:
                raise ValueError(f"no fault {name!r}; faults are: {', '.join(cls.names())}")
            chosen[key] = True
        return cls(**chosen)


@dataclass(frozen=True)
class Settings:
    """What the unit keeps in flash. ``users`` maps user name to password."""

    users: dict[str, str]
    device_name: str
    ipv4: str
    mask: str
    gateway: str
    dhcp: bool
    login_lock_enabled: bool
    login_lock_attempts: int
    login_lock_seconds: float
    #: The IR-cut filter's mode (an image parameter: a restore sets it back to auto).
    ircut_mode: str = "auto"

    @property
    def activated(self) -> bool:
        return bool(self.users.get("admin"))


@dataclass
class _LoginRecord:
    failures: int = 0
    locked_until: float | None = None


@dataclass(frozen=True)
class LoginResult:
    """Outcome of one credential check, with the fields userCheck reports."""

    ok: bool
    locked: bool
    retry_login_time: int     # attempts left before the lock
    unlock_time: int          # seconds until the lock ends (real, unscaled seconds)


@dataclass
class _Pending:
    """Timed events the state machine has scheduled (absolute clock times)."""

    boot_done_at: float | None = None
    reset_check_at: float | None = None
    reboot_at: float | None = None
    restore_at_boot: str | None = None   # a ResetMode applied at the next boot
    challenges: dict[str, tuple[str, str, float]] = field(default_factory=dict)


class VirtualCamera:
    """One simulated Hikvision camera. Thread-safe: HTTP and SADP threads call into it.

    Over 300 lines on purpose: it is one state machine (power, boot, button, restore,
    activation, login lock) whose transitions share one lock and one clock; split across
    classes, a transition would have to lock two objects and the rules would hide from each
    other.
    """

    def __init__(self, profile: FirmwareProfile, *, mac: str, serial: str, address: str,
                 http_port: int = 80, rtsp_port: int = 554,
                 default_ipv4: str | None = None,
                 time_scale: float = 1.0, faults: SimFaults = SimFaults(),
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 behaviour: SimBehaviour | None = None,
                 media: MediaConfig | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.profile = profile
        #: How this unit presents itself (sample identity, SADP and ISAPI wire details): the
        #: [sim] table of the profile's file unless given.
        self.behaviour = behaviour or behaviour_for(profile)
        self.mac = normalize_mac(mac)
        self.serial = serial
        self.address = address
        self.http_port = http_port
        #: The RTSP listener's port (rig.sim.rtsp_server; 0 until a server picked one).
        self.rtsp_port = rtsp_port
        #: Where a full reset puts the unit: the profile's 192.168.1.64, or the address the
        #: simulation assigned (loopback benches give every unit its own 127.0.1.N).
        self.default_ipv4 = default_ipv4 or profile.default_ipv4
        self.time_scale = time_scale
        self.faults = faults
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.RLock()
        self._state = CameraState.OFF
        self._settings = self.factory_settings()
        self._pending = _Pending()
        self._powered = False
        self._power_on_at: float | None = None
        self._button_since: float | None = None
        self._logins: dict[str, _LoginRecord] = {}
        self._boot_wall: float | None = None
        self.salt = hashlib.sha256(f"salt:{serial}".encode()).hexdigest()
        self.events: list[tuple[float, str]] = []   # (clock time, what happened), for tests
        #: Called with True when the unit's network comes up (as a boot starts) and with False
        #: when it goes down (power off; a restart drops it and brings it back). Called on the
        #: thread that caused the change, with the unit's lock held: an observer must be quick,
        #: must not call back into the unit, and should hand slow work to a thread of its own.
        self.network_observers: list[Callable[[bool], None]] = []
        #: Called with the new IPv4 address when the settings move the unit (SADP update, ISAPI
        #: PUT, a reset back to the default): its host rebinds its sockets there. Same rules as
        #: ``network_observers``.
        self.address_observers: list[Callable[[str], None]] = []
        #: SADP update and lamp (rig.sim.sadp_actions): the lamp and the update lock.
        self.sadp_actions = SadpActions(self)
        config = media or MediaConfig()
        #: Main stream, card and cloud binding: what a reset does not touch (rig.sim.media).
        self.media = MediaState(config, card=(config.card or faults.card_format_fails)
                                and not faults.no_card, format_fails=faults.card_format_fails,
                                cloud_bound=faults.cloud_bound, clock=clock, scaled=self.scaled)
        #: SoftwareVersion as SADP reports it (deviceInfo splits it into version and build).
        self.firmware = (old_firmware(self.behaviour.sample_firmware, profile)
                         if faults.old_firmware else self.behaviour.sample_firmware)

    # --- time -----------------------------------------------------------------------------------

    def scaled(self, seconds: float) -> float:
        """A profile duration in this simulation's compressed time."""
        return seconds / self.time_scale

    def _log(self, now: float, what: str) -> None:
        self.events.append((now, what))

    def _advance(self) -> float:
        """Replay every timed event that is due, earliest first. Returns 'now'."""
        now = self._clock()
        while True:
            due = [(t, name) for name, t in (("boot", self._pending.boot_done_at),
                                             ("reset", self._pending.reset_check_at),
                                             ("reboot", self._pending.reboot_at))
                   if t is not None and t <= now]
            if not due:
                return now
            at, name = min(due)
            {"boot": self._finish_boot, "reset": self._reset_check,
             "reboot": self._do_reboot}[name](at)

    def _network(self, up: bool) -> None:
        for observer in list(self.network_observers):
            try:
                observer(up)
            except Exception:  # noqa: BLE001 - an observer's bug must not break the unit
                log.exception("camera %s: network observer failed", self.mac)

    def _start_boot(self, at: float) -> None:
        # The network comes up as the boot starts (the model has no finer boot stages; SADP and
        # HTTP still wait for RUNNING). A restart first drops the link, as a real reboot does.
        if self._state is not CameraState.OFF:
            self._network(False)
        self._network(True)
        self._state = CameraState.BOOTING
        if self.profile.lock_cleared_by_power_cycle:
            self._logins.clear()             # the profile says the lock table lives in RAM
        self.sadp_actions.cleared_by_boot()  # the SADP update counter lives in RAM
        self._pending.challenges.clear()
        if self._pending.restore_at_boot:
            self._apply_restore(self._pending.restore_at_boot, at)
            self._pending.restore_at_boot = None
        self._pending.boot_done_at = (None if self.faults.never_boots
                                      else at + self.scaled(self.profile.boot_seconds))

    def _finish_boot(self, at: float) -> None:
        self._pending.boot_done_at = None
        self._state = CameraState.RUNNING
        self._boot_wall = self._wall() - (self._clock() - at)
        self._log(at, "running")

    def _reset_check(self, at: float) -> None:
        self._pending.reset_check_at = None
        assert self._power_on_at is not None
        held_from_start = (self._button_since is not None
                           and self._button_since <= self._power_on_at + self.scaled(PRESS_GRACE_S))
        if not held_from_start:
            return
        old = self._settings.ipv4
        self._settings = self.factory_settings()
        self._moved(old)
        self._log(at, "factory reset by button")
        if self._state is CameraState.RUNNING:     # hold outlasted the boot: restart into defaults
            self._start_boot(at)

    def _do_reboot(self, at: float) -> None:
        self._pending.reboot_at = None
        self._log(at, "reboot")
        self._start_boot(at)

    # --- physical inputs ------------------------------------------------------------------------

    def set_power(self, on: bool, *, booted: bool = False) -> None:
        """Power applied or removed (relay, serial relay channel or PoE port).

        ``booted`` starts the unit as if it had been powered long enough to finish booting (a
        simulated bench that should be usable at once); the button is not sampled then.
        """
        with self._lock:
            now = self._advance()
            if on == self._powered:
                return
            self._powered = on
            if on:
                self._power_on_at = now
                self._log(now, "power on")
                self._start_boot(now)
                if booted and not self.faults.never_boots:
                    self._finish_boot(now)
                else:
                    self._pending.reset_check_at = now + self.scaled(self.profile.hold_seconds[0])
            else:
                self._log(now, "power off")
                self._state = CameraState.OFF
                self._network(False)
                self._power_on_at = None
                self._pending = _Pending(restore_at_boot=self._pending.restore_at_boot)

    def set_button(self, pressed: bool) -> None:
        """The reset button pressed or released (solenoid or a finger)."""
        with self._lock:
            now = self._advance()
            if self.faults.jammed_button:
                return
            if pressed and self._button_since is None:
                self._button_since = now
                self._log(now, "button pressed")
            elif not pressed and self._button_since is not None:
                self._button_since = None
                self._log(now, "button released")
                self._pending.reset_check_at = None   # released before the hold completed

    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def button_pressed(self) -> bool:
        return self._button_since is not None

    @property
    def state(self) -> CameraState:
        with self._lock:
            self._advance()
            return self._state

    @property
    def running(self) -> bool:
        return self.state is CameraState.RUNNING

    def wait_running(self, timeout: float) -> bool:
        """Poll until the unit runs; False when ``timeout`` (real seconds) passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running:
                return True
            time.sleep(0.005)
        return self.running

    # --- settings -------------------------------------------------------------------------------

    def factory_settings(self) -> Settings:
        """What a full reset leaves: defaults of the profile (legacy: admin/12345)."""
        p = self.profile
        users = {p.default_user: p.default_password} if p.default_password else {}
        return Settings(users=users, device_name=DEFAULT_DEVICE_NAME, ipv4=self.default_ipv4,
                        mask=p.default_mask, gateway=p.default_gateway, dhcp=p.default_dhcp,
                        login_lock_enabled=True, login_lock_attempts=p.lockout_attempts,
                        login_lock_seconds=p.lockout_seconds)

    @property
    def settings(self) -> Settings:
        with self._lock:
            self._advance()
            return self._settings

    def update_settings(self, **changes: object) -> None:
        """Change settings as the web UI would (ISAPI PUT handlers call this)."""
        with self._lock:
            self._advance()
            old = self._settings.ipv4
            self._settings = replace(self._settings, **changes)
            self._moved(old)

    def _moved(self, old_ipv4: str) -> None:
        """Tell the address observers when the unit's IPv4 address changed."""
        new = self._settings.ipv4
        if new == old_ipv4:
            return
        self._log(self._clock(), f"address {old_ipv4} -> {new}")
        for observer in list(self.address_observers):
            try:
                observer(new)
            except Exception:  # noqa: BLE001 - an observer's bug must not break the unit
                log.exception("camera %s: address observer failed", self.mac)

    @property
    def activated(self) -> bool:
        return self.settings.activated

    def provision(self, password: str, device_name: str = "yard") -> None:
        """Make this a used unit: activated with ``password``, a parameter changed from default."""
        with self._lock:
            users = dict(self._settings.users, admin=password)
            self.update_settings(users=users, device_name=device_name)

    def _apply_restore(self, mode: str, at: float) -> None:
        keeps = self.profile.basic_keeps if mode == ResetMode.BASIC else self.profile.full_keeps
        fresh, old = self.factory_settings(), self._settings
        kept: dict[str, object] = {}
        if "network" in keeps:
            kept.update(ipv4=old.ipv4, mask=old.mask, gateway=old.gateway, dhcp=old.dhcp)
        if "users" in keeps:
            kept.update(users=old.users)
        if "parameters" in keeps:
            kept.update(device_name=old.device_name, login_lock_enabled=old.login_lock_enabled,
                        login_lock_attempts=old.login_lock_attempts,
                        login_lock_seconds=old.login_lock_seconds, ircut_mode=old.ircut_mode)
        self._settings = replace(fresh, **kept)
        self._moved(old.ipv4)
        self._log(at, f"restore {mode}")

    # --- ISAPI-level operations -----------------------------------------------------------------

    def check_login(self, client: str, user: str, password: str | None) -> LoginResult:
        """One credential check from ``client``; counts failures toward the illegal-login lock.

        ``password`` None means the client's digest did not match any password: a failure.
        """
        with self._lock:
            now = self._advance()
            s = self._settings
            record = self._logins.setdefault(client, _LoginRecord())
            if record.locked_until is not None and now >= record.locked_until:
                record.failures, record.locked_until = 0, None
            attempts = s.login_lock_attempts
            if record.locked_until is not None:
                self._log(now, f"login failed from {client} (locked)")
                return LoginResult(False, True, 0, self._unscaled_left(record.locked_until, now))
            if password is not None and s.users.get(user) == password:
                record.failures = 0
                return LoginResult(True, False, attempts, 0)
            record.failures += 1
            self._log(now, f"login failed from {client}")
            if s.login_lock_enabled and record.failures >= attempts:
                record.locked_until = now + self.scaled(s.login_lock_seconds)
                self._log(now, f"login locked for {client}")
                return LoginResult(False, True, 0, self._unscaled_left(record.locked_until, now))
            left = max(attempts - record.failures, 0) if s.login_lock_enabled else attempts
            return LoginResult(False, False, left, 0)

    def failed_logins(self, client: str | None = None) -> int:
        """How many logins failed (from ``client``, or from anyone), locked refusals included."""
        with self._lock:
            return sum(1 for _, what in self.events if what.startswith("login failed from ")
                       and (client is None or what.split()[3] == client))

    def password_for(self, user: str) -> str | None:
        with self._lock:
            return self._settings.users.get(user)

    def is_locked(self, client: str | None = None) -> bool:
        """Whether ``client`` (or any client) is in the illegal-login lock now."""
        with self._lock:
            now = self._advance()
            records = ([self._logins.get(client)] if client else list(self._logins.values()))
            return any(r is not None and r.locked_until is not None and now < r.locked_until
                       for r in records)

    def _unscaled_left(self, until: float, now: float) -> int:
        return max(int(round((until - now) * self.time_scale)), 1)

    def start_challenge(self, client: str, public_key_param: str, variant: str) -> str:
        """First half of activation: remember a random string, return it encrypted to the client."""
        with self._lock:
            now = self._advance()
            key = activation.public_key_from_param(public_key_param, variant)
            random_hex, encrypted = activation.make_challenge(key)
            self._pending.challenges[client] = (random_hex, variant, now + CHALLENGE_TTL_S)
            return encrypted

    def activate(self, client: str, password_field: str, variant: str,
                 iv_hex: str | None = None) -> str:
        """Second half: decrypt the password and activate. Returns "ok" or "riskPassword".

        Raises ActivationError (bad exchange), ValueError (password rules) or PermissionError
        (already activated).
        """
        with self._lock:
            now = self._advance()
            if self._settings.activated:
                raise PermissionError("hasActivated")
            challenge = self._pending.challenges.pop(client, None)   # single use
            if challenge is None or challenge[1] != variant or now > challenge[2]:
                raise activation.ActivationError("no valid challenge from this client")
            password = activation.decrypt_password(challenge[0], password_field, variant, iv_hex)
            problem = activation.password_problem(password, self.profile.default_user)
            if problem:
                raise ValueError(problem)
            users = dict(self._settings.users, **{self.profile.default_user: password})
            self._settings = replace(self._settings, users=users)
            self._log(now, "activated")
            return "riskPassword" if activation.is_risk_password(password) else "ok"

    def factory_reset(self, mode: ResetMode | str) -> bool:
        """Web restore. Returns True when the firmware reboots by itself, False when it asks for a
        reboot (statusCode 7) and applies the restore at the next boot."""
        if mode not in tuple(ResetMode):
            raise ValueError(f"unknown factoryReset mode {mode!r}")
        with self._lock:
            now = self._advance()
            self._pending.restore_at_boot = mode
            self._log(now, f"factoryReset {mode} requested")
            if self.profile.factory_reset_reboot == "self":
                self._pending.reboot_at = now + self.scaled(REBOOT_DELAY_S)
                return True
            return False

    def reboot(self) -> None:
        with self._lock:
            now = self._advance()
            self._pending.reboot_at = now + self.scaled(REBOOT_DELAY_S)

    # --- SADP -----------------------------------------------------------------------------------

    @property
    def lamp(self) -> bool:
        """The locate LED blinks (SADP ``lamp`` open) until ``close`` or the next boot."""
        return self.sadp_actions.lamp

    def sadp_command(self, types: str, data: bytes) -> bytes | None:
        """The reply to a SADP ``update`` or ``lamp`` aimed at this unit (rig.sim.sadp_actions)."""
        return self.sadp_actions.handle(types, data)

    @property
    def sadp_reply_styles(self) -> tuple[str, ...]:
        return self.behaviour.sadp_reply

    def probe_match(self, probe: Probe, sender: tuple[str, int] | None = None) -> bytes | None:
        """The ProbeMatch this unit sends for ``probe``, or None when it stays silent."""
        with self._lock:
            if self.state is not CameraState.RUNNING or self.faults.sadp_silent:
                return None
            if probe.mac and probe.mac.lower() not in ("ff-ff-ff-ff-ff-ff", "ff:ff:ff:ff:ff:ff"):
                try:
                    if normalize_mac(probe.mac) != self.mac:
                        return None
                except ValueError:
                    return None
            fields = self.sadp_fields(probe.uuid, probe.types or "inquiry")
        omit = set(self.behaviour.sadp_omit)
        return build_probe_match([(k, v) for k, v in fields if k not in omit],
                                 layout=self.behaviour.sadp_layout)

    def sadp_fields(self, probe_uuid: str, types: str = "inquiry") -> list[tuple[str, str]]:
        """ProbeMatch elements in the order real firmware writes them (captures A and B)."""
        s, p, b = self._settings, self.profile, self.behaviour

        def flag(name: str, value: bool) -> str:
            if value:
                return "true"
            return "flase" if b.sadp_writes_flase and name in FLASE_FIELDS else "false"

        boot = datetime.fromtimestamp(self._boot_wall or self._wall())
        fields = [
            ("Uuid", probe_uuid), ("Types", types), ("DeviceType", b.device_type),
            ("DeviceDescription", b.sample_model), ("DeviceSN", self.serial),
            ("CommandPort", "8000"), ("HttpPort", str(self.http_port)),
            ("MAC", self.mac.replace(":", "-")), ("IPv4Address", s.ipv4),
            ("IPv4SubnetMask", s.mask), ("IPv4Gateway", s.gateway),
            ("IPv6Address", "::"), ("IPv6Gateway", "::"), ("IPv6MaskLen", "64"),
            ("DHCP", flag("DHCP", s.dhcp)), ("AnalogChannelNum", "0"),
            ("DigitalChannelNum", "1"), ("SoftwareVersion", self.firmware),
            ("DSPVersion", b.sample_dsp), ("BootTime", boot.strftime("%Y-%m-%d %H:%M:%S")),
            ("Encrypt", "true"), ("ResetAbility", "false"),
            ("DiskNumber", "1" if self.media.has_card else "0"),
            ("Activated", flag("Activated", s.activated)),
            ("PasswordResetAbility", "true"), ("PasswordResetModeSecond", "true"),
            ("SupportSecurityQuestion", "true"), ("SupportHCPlatform", "true"),
            ("HCPlatformEnable", flag("HCPlatformEnable", self.media.cloud_enabled)),
            ("IsModifyVerificationCode", "true"), ("Salt", self.salt),
            ("DeviceLock", flag("DeviceLock", self.is_locked())),
        ]
        if "v3" in p.activation:       # newer firmware adds the SDK-over-TLS nodes (capture B)
            fields += [("SDKOverTLSPort", "8443"), ("SDKServerStatus", "true"),
                       ("SDKOverTLSServerStatus", "true"), ("SupportMailBox", "true")]
        return fields
