"""Planning a simulated bench, before anything binds or opens: which slot gets which firmware,
outputs (pins, relay channels, PoE ports), address and identity, and the ``Bench`` that
describes it (written with ``rig.bench.dump``). Pure: no socket, pty or thread, so it is unit
tested on its own (tests/test_sim_bench_plan.py).

Pins follow hardware/pinmap.md: relay inputs on BCM 4-7 (pulled up at boot: right for active-low
modules), solenoids on 17, 27, 22, 23, 24, 25, 16, 26, then the map's spares 12, 13, 18-21, so a
simulated 4-slot GPIO bench or 8-slot PoE bench is wired pin for pin like the example benches.
A larger *simulated* bench borrows further pins (8, 9-11, then pulled-down pins for relays); the
mock factory does not model boot-time pulls, so that layout works here but is not one to build.

Relay boards: as many as the slots' relay channels need, each slot's power and button on one
board. A bench that fits on one board has one, named ``sim`` and linked as ``relay-board``; a
larger one has ``sim1``, ``sim2``, ... linked as ``relay-board-1``, ``relay-board-2``, ...
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rig.actuators import relay_protocols
from rig.bench import (
    Bench,
    GpioOutput,
    NetworkConfig,
    PoeOutput,
    PowerSpec,
    RelayBoardConfig,
    RelayOutput,
    Secret,
    Slot,
    SwitchConfig,
)
from rig.camera.profiles import FirmwareProfile, ProfileSet
from rig.sim.behaviour import behaviour_for
from rig.sim.camera import SimFaults
from rig.sim.fleet import sim_mac, sim_serial
from rig.sim.media import MediaConfig
from rig.sim.serial_board import FIRMWARES
from rig.vocabulary import BUTTON_KINDS, Method, PowerKind

#: hardware/pinmap.md, "Pins the benches drive": camera relay inputs IN1-IN4 (active-low module),
#: GPIO 4-7, pulled up at boot so an unclaimed pin leaves the relay off.
RELAY_PINS = (4, 5, 6, 7)
#: hardware/pinmap.md: slot N's solenoid gate on the N-th of these (header order 11-37), then
#: the map's spare pins, all pulled down at boot so an unclaimed gate leaves the solenoid off.
SOLENOID_PINS = (17, 27, 22, 23, 24, 25, 16, 26, 12, 13, 18, 19, 20, 21)
#: Beyond the pin map: pulled-down pins the map leaves to SPI0 (9-11) for more solenoids, and the
#: last pulled-up pin (8, SPI0 CE0) for a fifth relay. Only a simulated bench uses them.
EXTRA_SOLENOID_PINS = (9, 10, 11)
EXTRA_RELAY_PINS = (8,)
#: Relays beyond those take pulled-down pins from the end of the solenoid list (simulation only).
_BUTTON_POOL = SOLENOID_PINS + EXTRA_SOLENOID_PINS
_POWER_POOL = RELAY_PINS + EXTRA_RELAY_PINS + tuple(reversed(_BUTTON_POOL))
#: The most channels a bench file accepts for one relay board (rig.bench).
_BENCH_MAX_CHANNELS = 64

SWITCH_NAME = "sim"
#: The relay board's name on a bench that one board serves (the name it has always had); with
#: several boards they are BOARD_NAME + "1", "2", ... ("sim1", "sim2", ...).
BOARD_NAME = "sim"
#: The stable link to a board inside the bench directory, like /dev/serial/by-id/...:
#: BOARD_LINK for a single board, BOARD_LINK + "-1", "-2", ... with several.
BOARD_LINK = "relay-board"
#: The read-write community of the simulated switches (the read-only one is "public"); it is
#: also the bench file's default, so the written file carries no community at all.
COMMUNITY = "private"
#: Where the controller stands on a loopback bench; SADP is served and probed there only.
LOOPBACK = "127.0.0.1"
#: MAC block of bench units (rig.sim.fleet.sim_mac); CameraFleet uses 0xF0 by default.
DEFAULT_MAC_BLOCK = 0xBE
#: The [defaults] profile written into simulated bench files (every slot names its own).
DEFAULT_PROFILE = "current"


@dataclass(frozen=True)
class SimSlot:
    """What one simulated slot is: how its camera is powered, which firmware family it runs,
    which faults it has, and where its reset solenoid is switched from.

    ``button`` is "gpio" (a MOSFET gate on a header pin) or "relay" (a relay-board channel);
    None picks what the smaller benches use: GPIO for GPIO and PoE power, the relay board for
    relay power. It is resolved here, so ``SimSlot("poe").button == "gpio"``. It comes after
    ``faults`` so that positional ``SimSlot(power, profile, faults)`` keeps its meaning.
    ``SimSlot(power="poe", button="relay")`` is a slot of the 24/48-slot PoE bench. Both are
    held as PowerKind (equal to their text). ``media``: the unit's main stream and whether a
    card is in (rig.sim.media.MediaConfig; default 1920x1080 H.264, no card).
    """

    power: PowerKind = PowerKind.GPIO
    profile: str = "current"
    faults: SimFaults = field(default_factory=SimFaults)
    button: PowerKind | None = None
    media: MediaConfig = field(default_factory=MediaConfig)

    def __post_init__(self) -> None:
        if self.power not in tuple(PowerKind):
            raise ValueError(f"SimSlot power {self.power!r} is not one of: "
                             f"{', '.join(PowerKind)}")
        object.__setattr__(self, "power", PowerKind(self.power))
        if self.button is None:
            object.__setattr__(self, "button", PowerKind.RELAY
                               if self.power is PowerKind.RELAY else PowerKind.GPIO)
        elif self.button not in BUTTON_KINDS:
            raise ValueError(f"SimSlot button {self.button!r} is not one of: "
                             f"{', '.join(BUTTON_KINDS)}")
        object.__setattr__(self, "button", PowerKind(self.button))

    @property
    def relay_channels(self) -> int:
        """Relay-board channels this slot takes (power and/or button), all on one board."""
        return (self.power is PowerKind.RELAY) + (self.button is PowerKind.RELAY)


@dataclass(frozen=True)
class SlotPlan:
    """One slot as it will be built: outputs (the bench file's own types), unit identity."""

    name: str
    sim: SimSlot
    profile: FirmwareProfile
    power: PowerSpec
    button: GpioOutput | RelayOutput
    address: str
    mac: str
    serial: str


@dataclass(frozen=True)
class BoardPlan:
    """One simulated relay board as it will be built: its bench-file name, its stable link's
    file name inside the bench directory, and how many channels it has."""

    name: str
    link: str
    channels: int


def fault_names(faults: SimFaults) -> list[str]:
    """The faults switched on, by field name."""
    return [name for name, on in vars(faults).items() if on]


def allocate_pins(gpio_power: int, gpio_buttons: int) -> tuple[list[int], list[int]]:
    """Pins for ``gpio_power`` relay inputs and ``gpio_buttons`` solenoid gates, all distinct,
    following the pin map as far as it goes. Raises ValueError when the header runs out."""
    buttons = list(_BUTTON_POOL[:gpio_buttons])
    powers = [p for p in _POWER_POOL if p not in buttons][:gpio_power]
    if len(buttons) < gpio_buttons or len(powers) < gpio_power:
        usable = len(set(_POWER_POOL))
        raise ValueError(
            f"not enough GPIO pins: {gpio_power} GPIO-powered slot(s) need a relay pin each and "
            f"{gpio_buttons} slot(s) with a GPIO button a solenoid pin "
            f"each, {gpio_power + gpio_buttons} in all; the header has {usable} usable pins "
            f"(BCM 4-27 without 14, 15), at most {len(_BUTTON_POOL)} of them for solenoids. "
            f"Put buttons on relay boards (button='relay'; PoE power takes no pin at all)")
    return powers, buttons


def relay_channel_limit(protocol: str) -> int:
    """Channels one board can have: what both the simulator and the rig's driver address."""
    if protocol not in FIRMWARES:
        raise ValueError(f"unknown relay protocol {protocol!r} "
                         f"(known: {', '.join(sorted(FIRMWARES))})")
    return min(FIRMWARES[protocol].MAX_CHANNELS, relay_protocols.load(protocol).MAX_CHANNELS,
               _BENCH_MAX_CHANNELS)


def _board_size(needs: list[int], protocol: str, per_board: int | None) -> int:
    """Channels of each board: ``per_board`` checked, or the protocol's maximum."""
    limit = relay_channel_limit(protocol)
    if per_board is not None and not (
            isinstance(per_board, int) and not isinstance(per_board, bool)
            and 1 <= per_board <= limit):
        raise ValueError(f"relay_channels must be 1..{limit} for a simulated {protocol} board, "
                         f"not {per_board!r}")
    size = per_board or limit
    if any(needs) and max(needs) > size:
        i = max(range(len(needs)), key=lambda k: needs[k])
        raise ValueError(f"slot {i + 1} needs {needs[i]} channels (power and button each) on "
                         f"one relay board; a simulated {protocol} board has at most {size}")
    return size


def allocate_relay_channels(spec: Sequence[SimSlot], protocol: str,
                            per_board: int | None) -> tuple[list[BoardPlan],
                                                            list[tuple[int, int] | None]]:
    """Boards and, per slot, (board index, first channel) or None for a slot without relays.

    Slots fill boards in order, channels counted from 1, a slot's power channel before its
    button channel, and a slot never straddles two boards (its harness goes to one board, and
    the single-board layout, power 2i-1 / button 2i, is unchanged). ``per_board``: channels of
    every board, as bought (unused channels stay unwired); None: boards of the protocol's
    maximum, each declared with just the channels it carries, so a bench that fits on one board
    looks exactly as before. Raises ValueError when a slot cannot fit on one board.
    """
    needs = [item.relay_channels for item in spec]
    if per_board is None and not any(needs):
        return [], [None] * len(spec)
    size = _board_size(needs, protocol, per_board)
    if not any(needs):
        return [], [None] * len(spec)
    where: list[tuple[int, int] | None] = []
    used: list[int] = []               # channels taken on each board so far
    for need in needs:
        if not need:
            where.append(None)
            continue
        if not used or used[-1] + need > size:
            used.append(0)
        where.append((len(used) - 1, used[-1] + 1))
        used[-1] += need
    if len(used) == 1:
        boards = [BoardPlan(BOARD_NAME, BOARD_LINK, per_board or used[0])]
    else:
        boards = [BoardPlan(f"{BOARD_NAME}{k}", f"{BOARD_LINK}-{k}", per_board or n)
                  for k, n in enumerate(used, start=1)]
    return boards, where


def loopback_addresses(base: str, first: int, count: int) -> list[str]:
    """``count`` loopback addresses ``base + (first + i)``; ValueError naming what is wrong."""
    if count < 1:
        raise ValueError("a simulated bench needs at least one slot")
    if not 1 <= first or first + count - 1 > 254:
        raise ValueError(f"cannot place {count} unit(s) from {base}{first}: the last octet "
                         f"must stay within 1..254")
    out = []
    for i in range(count):
        text = f"{base}{first + i}"
        try:
            address = ipaddress.IPv4Address(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv4 address (base must look like "
                             f"'127.0.1.')") from None
        if not address.is_loopback:
            raise ValueError(f"{text} is not a loopback address: a simulated bench binds "
                             f"its units on 127.0.0.0/8 only")
        out.append(text)
    return out


def plan_slots(spec: Sequence[SimSlot], *, profiles: ProfileSet, base: str, first: int,
               relay_protocol: str, relay_channels: int | None, mac_block: int,
               addresses: Sequence[str] | None = None) -> tuple[list[SlotPlan], list[BoardPlan]]:
    """Every slot's outputs and identity, and the relay boards. ``addresses`` replaces the
    loopback addresses ``base + (first + i)`` (the namespace bench puts every unit on its
    profile's default); MACs still count from ``first``."""
    spec = list(spec)
    for item in spec:
        if not isinstance(item, SimSlot):
            raise TypeError(f"a simulated bench is a sequence of SimSlot, not {item!r}")
    if addresses is None:
        addresses = loopback_addresses(base, first, len(spec))
    elif len(addresses) != len(spec):
        raise ValueError(f"{len(addresses)} address(es) for {len(spec)} slot(s)")
    chosen = [profiles.get(item.profile) for item in spec]   # ProfileError names the bad one
    power_pins, button_pins = allocate_pins(
        sum(item.power is PowerKind.GPIO for item in spec),
        sum(item.button is PowerKind.GPIO for item in spec))
    boards, where = allocate_relay_channels(spec, relay_protocol, relay_channels)
    powers, buttons, poe_ports = iter(power_pins), iter(button_pins), iter(range(1, 513))
    plans: list[SlotPlan] = []
    for i, (item, profile, place) in enumerate(zip(spec, chosen, where, strict=True)):
        channels = iter(range(place[1], place[1] + item.relay_channels)) if place else iter(())
        board = boards[place[0]].name if place else ""
        power: PowerSpec
        if item.power is PowerKind.GPIO:
            power = GpioOutput(pin=next(powers), active_high=False)
        elif item.power is PowerKind.POE:
            power = PoeOutput(switch=SWITCH_NAME, port=next(poe_ports))
        else:
            power = RelayOutput(board=board, channel=next(channels))
        button = (GpioOutput(pin=next(buttons)) if item.button is PowerKind.GPIO
                  else RelayOutput(board=board, channel=next(channels)))
        mac = sim_mac(first + i, mac_block)
        plans.append(SlotPlan(name=str(i + 1), sim=item, profile=profile, power=power,
                              button=button, address=addresses[i], mac=mac,
                              serial=sim_serial(behaviour_for(profile).sample_model, mac)))
    return plans, boards


def switch_config(host: str, port: int) -> SwitchConfig:
    """The simulated switch as the bench file names it: SNMP v2c, the read-write community."""
    return SwitchConfig(name=SWITCH_NAME, host=host, port=port, version="2c",
                        community=Secret(COMMUNITY), mib="rfc3621", timeout=1.0, retries=1)


def board_config(name: str, link: Path, protocol: str, channels: int) -> RelayBoardConfig:
    """A simulated relay board as the bench file names it: by its stable link."""
    return RelayBoardConfig(name=name, port=str(link), protocol=protocol, channels=channels)


def solenoid_cap(plans: Sequence[SlotPlan], time_scale: float) -> float:
    """The solenoid cap: the longest hold the profiles ask for, scaled, plus a second; at
    least 2 s and at most the bench file's 180 s."""
    hold_max = max(p.profile.hold_seconds[1] for p in plans)
    return round(min(max(hold_max / time_scale + 1.0, 2.0), 180.0), 3)


def bench_of(plans: Sequence[SlotPlan], *, path: Path, name: str, time_scale: float,
             network: NetworkConfig, switch: SwitchConfig | None,
             boards: Mapping[str, RelayBoardConfig], expected_identity: bool,
             own_addresses: bool, vlans: Mapping[str, int] | None = None) -> Bench:
    """The ``Bench`` a simulated bench's file describes: a mock pin factory, every slot free
    to press at once, waits compressed by ``time_scale``. ``expected_identity``: the units'
    MAC and serial are named; ``own_addresses``: each slot answers on its plan's address (a
    loopback bench) rather than the profile's default; ``vlans``: slot name → VLAN id."""
    vlans = vlans or {}
    slots = tuple(Slot(name=p.name, power=p.power, button=p.button, profile=p.profile,
                       mac=p.mac if expected_identity else None,
                       serial=p.serial if expected_identity else None,
                       vlan=vlans.get(p.name), address=p.address if own_addresses else None)
                  for p in plans)
    return Bench(path=path, name=name, gpio_factory="mock",
                 solenoid_max_on_seconds=solenoid_cap(plans, time_scale), network=network,
                 switches={switch.name: switch} if switch else {}, relay_boards=dict(boards),
                 slots=slots, default_profile=DEFAULT_PROFILE, default_method=Method.AUTO,
                 max_solenoids_on=len(plans), settle_seconds=5.0 / time_scale,
                 time_scale=float(time_scale))


def slot_notes(plans: Sequence[SlotPlan]) -> dict[str, str]:
    """Slot name → "simulated fault: ..." for the slots that have faults (a bench file comment)."""
    return {p.name: f"simulated fault: {', '.join(fault_names(p.sim.faults))}"
            for p in plans if fault_names(p.sim.faults)}
