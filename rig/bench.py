"""The bench file (TOML): what exists on the bench — slots, their power and button, the PoE switch,
serial relay boards, the network — checked on load with errors that name the key.

This module only describes resources (labgrid's word); drivers that use them live in
rig.actuators and are built from a Bench by rig.wiring. An example file per bench type is in
hardware/benches/.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rig.actuators import poe_mibs, relay_protocols
from rig.camera.netif import strict_rp_filter
from rig.camera.profiles import FirmwareProfile, ProfileError, ProfileSet
from rig.camera.sadp import SadpError, normalize_mac
from rig.certificates.config import CertificateConfig, certificate_lines, read_certificate_table
from rig.checks.config import ChecksConfig, checks_lines, read_checks
from rig.notify.config import NotifyConfig, notify_lines, read_notify
from rig.tomltable import TomlTable
from rig.vocabulary import BUTTON_KINDS, FinalState, IdentityStrategy, Method, PowerKind

GPIO_FACTORIES = ("lgpio", "rpigpio", "pigpio", "native", "mock")
SNMP_VERSIONS = ("2c", "3")
#: The SNMPv3 protocols rig.actuators.snmp speaks, the keys of its AUTH_PROTOCOLS and
#: PRIV_PROTOCOLS in their order (tests/test_bench_file.py holds them equal): named here, because
#: importing the driver to learn them costs pysnmp's ~0.1 s, which ``rig check`` has no use for.
SNMP_AUTH_PROTOCOLS = ("sha", "sha224", "sha256", "sha384", "sha512", "md5")
SNMP_PRIV_PROTOCOLS = ("aes", "aes128", "aes192", "aes256", "aes192-blumenthal",
                       "aes256-blumenthal", "des", "3des")


#: What password_env must look like: a shell variable name.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class BenchError(ValueError):
    """A bench file that does not describe a usable bench. The message names file and key."""


@dataclass(frozen=True)
class GpioOutput:
    kind = PowerKind.GPIO
    pin: int
    active_high: bool = True


@dataclass(frozen=True)
class RelayOutput:
    kind = PowerKind.RELAY
    board: str
    channel: int


@dataclass(frozen=True)
class PoeOutput:
    kind = PowerKind.POE
    switch: str
    port: int


PowerSpec = GpioOutput | RelayOutput | PoeOutput
ButtonSpec = GpioOutput | RelayOutput


@dataclass(frozen=True)
class Secret:
    """A credential given inline or, better, by the name of an environment variable."""

    value: str | None = None
    env: str | None = None

    def get(self) -> str:
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise BenchError(f"environment variable {self.env} is not set")
            return value
        return self.value or ""

    def __repr__(self) -> str:   # never print a secret
        return f"Secret(env={self.env!r})" if self.env else "Secret(***)"


@dataclass(frozen=True)
class SwitchConfig:
    name: str
    host: str
    port: int = 161
    version: str = "2c"
    community: Secret = Secret("private")
    user: str | None = None
    auth_key: Secret | None = None
    priv_key: Secret | None = None
    auth_protocol: str = "sha"
    priv_protocol: str = "aes"
    mib: str = "rfc3621"
    group: int = 1
    timeout: float = 2.0
    retries: int = 1
    power_budget_watts: float | None = None
    port_watts: float = 15.4          # what the switch reserves per port (802.3af class 3)

    @property
    def boots_at_once(self) -> int | None:
        """How many of this switch's units may boot at once within its budget (None: no limit
        set). Boot is when a camera draws its peak (hardware/power.md)."""
        if self.power_budget_watts is None:
            return None
        return max(int(self.power_budget_watts // self.port_watts), 1)


@dataclass(frozen=True)
class RelayBoardConfig:
    name: str
    port: str
    protocol: str
    channels: int
    baudrate: int | None = None


@dataclass(frozen=True)
class NetworkConfig:
    interface: str | None = None          # the bench NIC; SADP is sent only there
    address: str | None = None            # the controller's own address on the bench
    identity: IdentityStrategy = IdentityStrategy.SERIALISED
    http_port: int = 80


@dataclass(frozen=True)
class Slot:
    """One slot. ``profile`` is its unit's firmware family, resolved at load: the slot's own
    ``profile`` key, else the bench's ``[defaults] profile``."""

    name: str
    power: PowerSpec
    button: ButtonSpec | None
    profile: FirmwareProfile
    mac: str | None = None
    serial: str | None = None
    vlan: int | None = None
    address: str | None = None        # where the unit answers after a reset, when not the
    #                                   profile's 192.168.1.64 (a loopback simulated bench)


@dataclass(frozen=True)
class HandoverConfig:
    """``[handover]``: the state each unit leaves the bench in, and what provisioning needs.

    ``password`` is the admin password units are activated with (by the NAME of its environment
    variable); ``pool_start`` starts SADP Tool's "start IP, increment" pool: the bench's n-th
    slot gets ``pool_start`` + n when the unit is provisioned."""

    final_state: FinalState = FinalState.FACTORY
    password: Secret | None = None
    user: str = "admin"
    pool_start: str | None = None
    mask: str = "255.255.255.0"
    gateway: str | None = None

    @property
    def activates(self) -> bool:
        """Whether units are activated (every final state but factory)."""
        return self.final_state is not FinalState.FACTORY


@dataclass(frozen=True)
class Bench:
    path: Path
    name: str
    gpio_factory: str
    solenoid_max_on_seconds: float
    network: NetworkConfig
    switches: dict[str, SwitchConfig]
    relay_boards: dict[str, RelayBoardConfig]
    slots: tuple[Slot, ...]
    default_profile: str              # [defaults] profile: a name, already applied to slots
    default_method: Method
    max_solenoids_on: int
    settle_seconds: float
    time_scale: float = 1.0           # > 1 only for simulated benches: compresses every wait
    power_on_spacing_seconds: float = 0.2   # between two power-ons anywhere on the bench
    #: [defaults] password_env: the web admin password, by the NAME of the environment
    #: variable that holds it (``rig run --password-env`` wins over it).
    password: Secret | None = None
    handover: HandoverConfig = HandoverConfig()
    #: [certificate]: the issuer of this bench's certificates and the run defaults
    certificate: CertificateConfig = CertificateConfig()
    checks: ChecksConfig = ChecksConfig()     # [checks]: the functional checks (rig.checks)
    notify: NotifyConfig = NotifyConfig()      # [[notify.webhook]]: rig.notify.config
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def slot(self, name: str) -> Slot:
        for slot in self.slots:
            if slot.name == name:
                return slot
        raise BenchError(f"{self.path}: no slot named {name!r}; slots: "
                         f"{', '.join(s.name for s in self.slots)}")

    def warnings(self) -> list[str]:
        """Things that load but deserve an operator's look (``rig check`` prints them)."""
        out = []
        if self.network.identity == IdentityStrategy.VLAN and self.network.interface:
            strict = sorted({i for i in (f"{self.network.interface}.{s.vlan}"
                                          for s in self.slots) if strict_rp_filter(i)})
            if strict:
                out.append(f"network: strict reverse-path filtering (rp_filter=1) on "
                           f"{', '.join(strict)} drops the replies of every slot VLAN but one: "
                           "set net.ipv4.conf.all.rp_filter=2 (loose) and the same per "
                           "interface")
        for name, switch in self.switches.items():
            ports = [s for s in self.slots if isinstance(s.power, PoeOutput)
                     and s.power.switch == name]
            if switch.power_budget_watts and ports:
                need = len(ports) * switch.port_watts
                if need > switch.power_budget_watts:
                    out.append(f"switch {name}: {len(ports)} PoE slots x {switch.port_watts:g} W "
                               f"= {need:g} W exceeds its {switch.power_budget_watts:g} W budget; "
                               f"at most {switch.boots_at_once} unit(s) will boot at once, and "
                               "a switch allocating by class may refuse ports")
        return out

    def select(self, names: list[str] | None) -> tuple[Slot, ...]:
        return self.slots if not names else tuple(self.slot(n) for n in names)


def _table(path: Path, where: str, data: Any) -> TomlTable:
    """A bench-file table: its errors are BenchErrors naming the file and the key."""
    return TomlTable(path, where, data, error=BenchError)


def _secret(t: TomlTable, name: str, default: Secret | None) -> Secret | None:
    """A credential inline or as ``NAME_env``; ``default`` when neither is given."""
    parts = t.secret_text(name)
    return default if parts is None else Secret(*parts)


def load_bench(path: str | Path, profiles: ProfileSet | None = None) -> Bench:
    """Read and check a bench file. Raises BenchError naming the file, key and what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path}: no such bench file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:          # tomllib parses nested arrays and tables recursively
        raise BenchError(f"{path}: not a bench file: arrays or tables nested too deeply") \
            from None
    try:
        profiles = profiles or ProfileSet.load()
    except ProfileError as exc:
        raise BenchError(f"firmware profiles: {exc}") from None
    return _Reader(path, profiles).bench(data)


class _Reader:
    def __init__(self, path: Path, profiles: ProfileSet) -> None:
        self.path, self.profiles = path, profiles

    def bench(self, data: dict) -> Bench:
        top = _table(self.path, "", data)
        head = top.table("bench")
        name = head.get("name", str, self.path.stem)
        gpio_factory = head.choice("gpio_factory", GPIO_FACTORIES, "lgpio")
        cap = head.number("solenoid_max_on_seconds", 45.0, low=1, high=180)
        max_on = head.number("max_solenoids_on", 8, low=1, high=256, integer=True)
        settle = head.number("settle_seconds", 5.0, low=0, high=120)
        time_scale = head.number("time_scale", 1.0, low=1, high=100_000)
        spacing = head.number("power_on_spacing_seconds", 0.2, low=0, high=30)
        head.done()
        network = self.network(top.table("network"))
        defaults = top.table("defaults")
        default_profile = self.profile(defaults, None)
        default_method = Method(defaults.choice("method", Method, Method.AUTO))
        password = self.password(defaults)
        defaults.done()
        handover = self.handover(top.table("handover"))
        certificate = read_certificate_table(top.table("certificate"))
        checks = read_checks(top.table("checks"), self.profiles.names)
        switches = {n: self.switch(n, t) for n, t in top.named("switches")}
        boards = {n: self.board(n, t) for n, t in top.named("relay_boards")}
        notify = read_notify(top.table("notify"))
        raw_slots = top.get("slots", list, what="a list of [[slots]] tables")
        top.done()
        if not raw_slots:
            raise BenchError(f"{self.path}: slots: the bench has no slots")
        slots = tuple(self.slot(i, raw, switches, boards, default_profile)
                      for i, raw in enumerate(raw_slots))
        self.check_unique(slots)
        self.check_identity(network, slots)
        return Bench(path=self.path, name=name, gpio_factory=gpio_factory,
                     solenoid_max_on_seconds=float(cap), network=network, switches=switches,
                     relay_boards=boards, slots=slots, default_profile=default_profile.name,
                     default_method=default_method, max_solenoids_on=max_on,
                     settle_seconds=float(settle), time_scale=float(time_scale),
                     power_on_spacing_seconds=float(spacing), password=password,
                     handover=handover, certificate=certificate, checks=checks,
                     notify=notify)

    def check_identity(self, network: NetworkConfig, slots: tuple[Slot, ...]) -> None:
        """What each identity strategy needs from the rest of the file."""
        if network.identity is not IdentityStrategy.SERIALISED and not network.interface:
            raise BenchError(f"{self.path}: network.interface: identity {str(network.identity)!r} "
                             "needs the bench interface (the link-local zone, or the parent "
                             "of the slot VLAN sub-interfaces)")
        if network.identity is IdentityStrategy.VLAN:
            missing = [s.name for s in slots if s.vlan is None]
            if missing:
                raise BenchError(f"{self.path}: slots: identity '{IdentityStrategy.VLAN}' needs a "
                                 f"vlan for every slot; missing for {', '.join(missing)}")
            seen: dict[int, str] = {}
            for s in slots:
                assert s.vlan is not None
                if s.vlan in seen:
                    raise BenchError(f"{self.path}: slots: slots {seen[s.vlan]} and {s.name} "
                                     f"share vlan {s.vlan}; identity '{IdentityStrategy.VLAN}' "
                                     "needs one per slot")
                seen[s.vlan] = s.name

    def profile(self, table: TomlTable, default: FirmwareProfile | None) -> FirmwareProfile:
        """The firmware profile named by ``table``'s ``profile`` key, else ``default`` (None:
        the family called "current")."""
        name = table.get("profile", str, None if default else "current")
        if name is None:
            assert default is not None
            return default
        if name not in self.profiles.names:
            raise table.fail("profile", f"unknown firmware profile {name!r}; known: "
                                        f"{', '.join(self.profiles.names)}")
        return self.profiles.get(name)

    def handover(self, t: TomlTable) -> HandoverConfig:
        """``[handover]``; a final state that activates units needs the password's variable."""
        final = FinalState(t.choice("final_state", FinalState, FinalState.FACTORY))
        config = HandoverConfig(
            final_state=final, password=self.password(t), user=t.get("user", str, "admin"),
            pool_start=t.address("pool_start"),
            mask=t.address("mask") or "255.255.255.0", gateway=t.address("gateway"))
        t.done()
        if config.activates and config.password is None:
            raise t.fail("password_env", f"final_state {str(final)!r} activates every unit: "
                                         "name the environment variable that holds the "
                                         "password to activate them with")
        return config

    @staticmethod
    def password(t: TomlTable) -> Secret | None:
        """``password_env = "VAR"``: the name of the variable, never the password: a bench file
        is copied, committed and printed. The value is never shown, not even when refused."""
        if "password" in t.data:
            raise t.fail("password", "give the NAME of the environment variable that holds the "
                                     "web password, as password_env; never the password itself")
        name = t.get("password_env", str, None)
        if name is None:
            return None
        if not _ENV_NAME.fullmatch(name):
            raise t.fail("password_env", "not an environment variable name (letters, digits, "
                                         "_): give the variable's NAME, never the password")
        return Secret(env=name)

    def network(self, t: TomlTable) -> NetworkConfig:
        interface = t.get("interface", str, None)
        address = t.address("address")
        identity = IdentityStrategy(t.choice("identity", IdentityStrategy,
                                             IdentityStrategy.SERIALISED))
        http_port = t.number("http_port", 80, low=1, high=65535, integer=True)
        t.done()
        return NetworkConfig(interface=interface, address=address, identity=identity,
                             http_port=http_port)

    def switch(self, name: str, t: TomlTable) -> SwitchConfig:
        version = t.choice("version", SNMP_VERSIONS, "2c")
        config = SwitchConfig(
            name=name, host=t.get("host", str, what="the switch's management address"),
            port=t.number("port", 161, low=1, high=65535, integer=True), version=version,
            community=_secret(t, "community", Secret("private")),
            user=t.get("user", str, None), auth_key=_secret(t, "auth_key", None),
            priv_key=_secret(t, "priv_key", None),
            auth_protocol=t.choice("auth_protocol", SNMP_AUTH_PROTOCOLS, "sha"),
            priv_protocol=t.choice("priv_protocol", SNMP_PRIV_PROTOCOLS, "aes"),
            mib=t.choice("mib", tuple(poe_mibs.names()), "rfc3621"),
            group=t.number("group", 1, low=1, high=64, integer=True),
            timeout=float(t.number("timeout", 2.0, low=0.1, high=60)),
            retries=t.number("retries", 1, low=0, high=5, integer=True),
            power_budget_watts=t.number("power_budget_watts", None, low=1),
            port_watts=float(t.number("port_watts", 15.4, low=0.5, high=100)))
        if version == "3" and not (config.user and config.auth_key and config.priv_key):
            raise t.fail("version", "SNMP v3 needs user, auth_key and priv_key (authPriv)")
        t.done()
        return config

    def board(self, name: str, t: TomlTable) -> RelayBoardConfig:
        config = RelayBoardConfig(
            name=name, port=t.get("port", str, what="a device path such as /dev/serial/by-id/…"),
            protocol=t.choice("protocol", relay_protocols.available()),
            channels=t.number("channels", low=1, high=64, integer=True),
            baudrate=t.number("baudrate", None, low=300, high=1_000_000, integer=True))
        t.done()
        return config

    def output(self, t: TomlTable, kinds: tuple[PowerKind, ...], switches: dict,
               boards: dict) -> PowerSpec:
        kind = PowerKind(t.choice("kind", kinds))
        if kind is PowerKind.GPIO:
            spec: PowerSpec = GpioOutput(pin=t.number("pin", low=0, high=27, integer=True),
                                         active_high=t.get("active_high", bool, True))
        elif kind is PowerKind.RELAY:
            board = t.get("board", str)
            if board not in boards:
                raise t.fail("board", f"no relay board {board!r}; defined: "
                                      f"{', '.join(boards) or 'none ([relay_boards.NAME])'}")
            channel = t.number("channel", low=1, high=boards[board].channels, integer=True)
            spec = RelayOutput(board=board, channel=channel)
        else:
            switch = t.get("switch", str)
            if switch not in switches:
                raise t.fail("switch", f"no switch {switch!r}; defined: "
                                       f"{', '.join(switches) or 'none ([switches.NAME])'}")
            spec = PoeOutput(switch=switch, port=t.number("port", low=1, high=512, integer=True))
        t.done()
        return spec

    def slot(self, index: int, raw: Any, switches: dict, boards: dict,
             default_profile: FirmwareProfile) -> Slot:
        t = _table(self.path, f"slots[{index}]", raw)
        name = str(t.get("name", (str, int), what="a slot name"))
        power_table = t.sub("power", None)
        if power_table is None:
            raise t.fail("power", f"missing (required: {{ kind = {' | '.join(PowerKind)}, … }})")
        power = self.output(power_table, tuple(PowerKind), switches, boards)
        button_table = t.sub("button", None)
        button = (self.output(button_table, BUTTON_KINDS, switches, boards)
                  if button_table is not None else None)
        profile = self.profile(t, default_profile)
        mac = t.get("mac", str, None)
        if mac is not None:
            try:
                mac = normalize_mac(mac)
            except SadpError:
                raise t.fail("mac", f"{mac!r} is not a MAC address") from None
        address = t.address("address")
        slot = Slot(name=name, power=power, button=button, profile=profile, mac=mac,
                    serial=t.get("serial", str, None),
                    vlan=t.number("vlan", None, low=1, high=4094, integer=True),
                    address=address)
        t.done()
        return slot

    def check_unique(self, slots: tuple[Slot, ...]) -> None:
        """Two slots may not share a name, an output (pin, relay channel, port) or a unit."""
        owners: dict[str, str] = {}
        for slot in slots:
            claims = [f"the slot name {slot.name!r}"]
            claims += [self.describe(o) for o in (slot.power, slot.button) if o is not None]
            claims += [f"unit {unit}" for unit in (slot.mac, slot.serial) if unit]
            for claim in claims:
                if claim in owners:
                    raise BenchError(f"{self.path}: slots {owners[claim]!r} and {slot.name!r} "
                                     f"both use {claim}")
                owners[claim] = slot.name

    @staticmethod
    def describe(output: PowerSpec) -> str:
        if isinstance(output, GpioOutput):
            return f"GPIO {output.pin}"
        if isinstance(output, RelayOutput):
            return f"relay board {output.board} channel {output.channel}"
        return f"switch {output.switch} port {output.port}"


def describe_output(output: PowerSpec | None) -> str:
    """Short human description of a power or button output ("GPIO 17 (active-low)", …)."""
    if output is None:
        return "-"
    text = _Reader.describe(output)
    if isinstance(output, GpioOutput) and not output.active_high:
        text += " (active-low)"
    return text


# --- writing ------------------------------------------------------------------------------------

#: The community a switch gets when the file names none (SwitchConfig's default): not written.
_DEFAULT_COMMUNITY = Secret("private")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dump(bench: Bench, *, header: Sequence[str] = (),
         slot_notes: Mapping[str, str] | None = None) -> str:
    """The bench file (TOML text) that ``load_bench`` reads back into ``bench``: for every bench
    ``b`` written to a file, ``load_bench(file)`` equals ``b`` but for ``path``.

    Secrets are written only as ``*_env`` names. An inline one (a switch's community other than
    the default "private", an auth or priv key given as a value) is refused with a BenchError
    naming the key, never the value: a written bench file is copied and committed. ``header``:
    comment lines at the top; ``slot_notes``: slot name → a comment after that slot's table.
    Every slot's profile is written, so the file does not depend on ``[defaults] profile``.
    """
    notes = slot_notes or {}
    lines = [f"# {line}" if line else "#" for line in header]
    lines += _head_tables(bench)
    for name, switch in bench.switches.items():
        lines += ["", f"[switches.{_toml_key(name)}]", *_switch_lines(bench, switch)]
    for name, board in bench.relay_boards.items():
        lines += ["", f"[relay_boards.{_toml_key(name)}]",
                  *_field_lines(board, skip={"name"})]
    for slot in bench.slots:
        lines += ["", "[[slots]]", *_slot_lines(slot)]
        if slot.name in notes:
            lines[-1] += f"    # {notes[slot.name]}"
    lines += notify_lines(bench.notify)
    return "\n".join(lines).lstrip("\n") + "\n"


def _head_tables(bench: Bench) -> list[str]:
    """``[bench]``, ``[network]`` and ``[defaults]``."""
    lines = ["", "[bench]", f"name = {_toml_value(bench.name)}",
             f"gpio_factory = {_toml_value(bench.gpio_factory)}"]
    for key in ("solenoid_max_on_seconds", "max_solenoids_on", "settle_seconds", "time_scale",
                "power_on_spacing_seconds"):
        lines.append(f"{key} = {_toml_value(getattr(bench, key))}")
    lines += ["", "[network]", *_field_lines(bench.network)]
    lines += ["", "[defaults]", f"profile = {_toml_value(bench.default_profile)}",
              f"method = {_toml_value(bench.default_method)}"]
    if bench.password is not None:
        env = _env_name(bench, "defaults.password", bench.password)
        lines.append(f"password_env = {_toml_value(env)}")
    if bench.handover != HandoverConfig():
        lines += ["", "[handover]", *_field_lines(bench.handover, skip={"password"})]
        if bench.handover.password is not None:
            env = _env_name(bench, "handover.password", bench.handover.password)
            lines.append(f"password_env = {_toml_value(env)}")
    return (lines + certificate_lines(bench.certificate)
            + checks_lines(bench.checks, _toml_value))


def _switch_lines(bench: Bench, switch: SwitchConfig) -> list[str]:
    skip = {"name", "community", "auth_key", "priv_key"}
    if switch.version != "3" and (switch.auth_protocol, switch.priv_protocol) == ("sha", "aes"):
        skip |= {"auth_protocol", "priv_protocol"}      # v2c: the v3 defaults say nothing
    lines = _field_lines(switch, skip=skip)
    where = f"switches.{switch.name}"
    if switch.community != _DEFAULT_COMMUNITY:
        env = _env_name(bench, f"{where}.community", switch.community)
        lines.append(f"community_env = {_toml_value(env)}")
    for key in ("auth_key", "priv_key"):
        secret = getattr(switch, key)
        if secret is not None:
            lines.append(f"{key}_env = {_toml_value(_env_name(bench, f'{where}.{key}', secret))}")
    return lines


def _env_name(bench: Bench, key: str, secret: Secret) -> str:
    if secret.env is None:
        raise BenchError(f"{bench.path}: {key}: an inline secret; dump() writes secrets only as "
                         f"{key.rsplit('.', 1)[-1]}_env, the NAME of an environment variable")
    return secret.env


def _slot_lines(slot: Slot) -> list[str]:
    lines = [f"name = {_toml_value(slot.name)}", f"power = {_output_value(slot.power)}"]
    if slot.button is not None:
        lines.append(f"button = {_output_value(slot.button)}")
    lines.append(f"profile = {_toml_value(slot.profile.name)}")
    for key in ("mac", "serial", "vlan", "address"):
        value = getattr(slot, key)
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    return lines


def _output_value(output: PowerSpec) -> str:
    """An output as the inline table the loader reads (``active_high`` only when false)."""
    table: dict[str, Any] = {"kind": output.kind}
    if isinstance(output, GpioOutput):
        table["pin"] = output.pin
        if not output.active_high:
            table["active_high"] = False
    elif isinstance(output, RelayOutput):
        table.update(board=output.board, channel=output.channel)
    else:
        table.update(switch=output.switch, port=output.port)
    return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in table.items()) + " }"


def _field_lines(config: Any, skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """``key = value`` for each field of the dataclass ``config`` that is set (not None): the
    written file pins every value instead of leaning on the loader's defaults."""
    return [f"{f.name} = {_toml_value(getattr(config, f.name))}" for f in fields(config)
            if f.name not in skip and getattr(config, f.name) is not None]


def _toml_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name)


def _toml_value(value: Any) -> str:
    """A TOML value for a str (enums included), bool, int or float."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(str(value))   # a JSON string (\uXXXX escapes) is a TOML basic string
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise TypeError(f"no TOML form for {value!r}")
