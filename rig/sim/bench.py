"""A whole simulated bench as one object: virtual cameras wired to simulated power and buttons,
and the bench file that describes it.

``SimBench.start(spec, directory=...)`` builds what a person builds at a real bench, then writes
down what they built, so the controller can be pointed at it like at any bench:

- one virtual camera per slot on its own loopback address ``base + (first + i)``: its web
  server (ISAPI) on an ephemeral port (the unit reports it in SADP, as ``HttpPort``), and SADP
  answered from its own address and port 37020 (one listener on the multicast group serves
  every unit of the bench, see ``_SadpHub``);
- camera power (``SimSlot.power``): "gpio", an active-low relay module input on a pin of one
  ``MockFactory`` (rig.sim.gpio); "poe", a port of ONE ``VirtualSwitch`` (a real SNMP agent on
  127.0.0.1, ephemeral UDP port) with as many ports as there are PoE slots; "relay", a channel
  of a ``SimulatedRelayBoard`` on a pty, reached through a stable link inside ``directory``
  like ``/dev/serial/by-id/...``;
- reset button (``SimSlot.button``): a solenoid, either behind an active-high gate on a GPIO
  pin ("gpio", the default for gpio and PoE power) or on a relay-board channel ("relay", the
  default for relay power). PoE power with relay buttons is the large real bench
  (hardware/wiring-poe-serial-24.md): no GPIO at all, so it is not limited by the header;
- relay boards: as many as the slots' relay channels need, each slot's power and button on one
  board. A bench that fits on one board has one, named ``sim`` and linked as ``relay-board``;
  a larger one has ``sim1``, ``sim2``, ... linked as ``relay-board-1``, ``relay-board-2``, ...
- a bench TOML in ``directory`` that ``rig.bench.load_bench`` reads: the controller gets a pin
  factory, addresses and ports and never learns that the bench is simulated
  (DESIGN.md, "One code path for real and simulated hardware").

Where power stands when ``start()`` returns, and what the controller's drivers then do to it
(this is what a real bench does too, so the runner must not be surprised by it):

- every slot's camera is powered, and with ``boot=True`` running, as a bench is found in the
  morning: units on, some of them used (``provision=``);
- GPIO slots: the relay pin sits at its active level (LOW) before anyone claims it, as a Pi
  kernel leaves a line a previous controller drove. ``BenchHardware`` builds ``GpioPower``
  OFF, so **opening a GPIO slot's drivers powers its camera down**; closing them releases the
  pin, which floats to the module's idle level: the camera stays off;
- PoE slots: the port is enabled (a switch powers its ports by default); the drivers change
  nothing until told to, and ``BenchHardware.close()`` turns back on ports the rig turned off;
- relay slots: the power channel is on (switched on through the real driver, ``SerialRelayBoard``,
  whose records are then cleared); opening the board changes no relay and closing it keeps
  power relays as they are; an ``OutputGuard``'s ``all_off`` switches them off;
- relay buttons are released (every channel of a simulated board starts off).

Pins follow hardware/pinmap.md: relay inputs on BCM 4-7 (pulled up at boot: right for active-low
modules), solenoids on 17, 27, 22, 23, 24, 25, 16, 26, then the map's spares 12, 13, 18-21, so a
simulated 4-slot GPIO bench or 8-slot PoE bench is wired pin for pin like the example benches.
A larger *simulated* bench borrows further pins (8, 9-11, then pulled-down pins for relays); the
mock factory does not model boot-time pulls, so that layout works here but is not one to build.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gpiozero.pins.mock import MockFactory

from rig.actuators import relay_protocols
from rig.bench import (
    Bench,
    GpioOutput,
    PoeOutput,
    PowerSpec,
    RelayOutput,
    describe_output,
    load_bench,
)
from rig.camera.discovery import open_group_socket
from rig.camera.profiles import FirmwareProfile, ProfileSet
from rig.camera.sadp import GROUP, PORT
from rig.sim.behaviour import behaviour_for
from rig.sim.camera import SimFaults, VirtualCamera
from rig.sim.fleet import CameraHost, sim_mac, sim_serial
from rig.sim.gpio import LoadPin, wire_gpio_slot
from rig.sim.isapi_server import IsapiServer
from rig.sim.sadp_responder import READ_SIZE, SadpResponder
from rig.sim.serial_board import FIRMWARES, SimulatedRelayBoard
from rig.vocabulary import PowerKind

if TYPE_CHECKING:
    from rig.sim.switch import VirtualSwitch

log = logging.getLogger(__name__)

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

#: Where a slot's reset solenoid can be switched from.
BUTTON_KINDS = ("gpio", "relay")

SWITCH_NAME = "sim"
#: The relay board's name on a bench that one board serves (the name it has always had); with
#: several boards they are BOARD_NAME + "1", "2", ... ("sim1", "sim2", ...).
BOARD_NAME = "sim"
#: The stable link to a board inside the bench directory, like /dev/serial/by-id/...:
#: BOARD_LINK for a single board, BOARD_LINK + "-1", "-2", ... with several.
BOARD_LINK = "relay-board"
#: The read-write community written into the bench file (the switch's read-only one is "public").
COMMUNITY = "private"
#: Where the controller stands on a loopback bench; SADP is served and probed there only.
LOOPBACK = "127.0.0.1"
#: MAC block of bench units (rig.sim.fleet.sim_mac); CameraFleet uses 0xF0 by default.
DEFAULT_MAC_BLOCK = 0xBE
#: Real seconds a relay channel may take to reach its camera when the bench powers up.
_RELAY_SETTLE_S = 2.0


@dataclass(frozen=True)
class SimSlot:
    """What one simulated slot is: how its camera is powered, which firmware family it runs,
    which faults it has, and where its reset solenoid is switched from.

    ``button`` is "gpio" (a MOSFET gate on a header pin) or "relay" (a relay-board channel);
    None picks what the smaller benches use: GPIO for "gpio" and "poe" power, the relay board
    for "relay" power. It is resolved here, so ``SimSlot("poe").button == "gpio"``. It comes
    after ``faults`` so that positional ``SimSlot(power, profile, faults)`` keeps its meaning.
    ``SimSlot(power="poe", button="relay")`` is a slot of the 24/48-slot PoE bench.
    """

    power: str = "gpio"
    profile: str = "current"
    faults: SimFaults = field(default_factory=SimFaults)
    button: str | None = None

    def __post_init__(self) -> None:
        if self.power not in tuple(PowerKind):
            raise ValueError(f"SimSlot power {self.power!r} is not one of: "
                             f"{', '.join(PowerKind)}")
        if self.button is None:
            object.__setattr__(self, "button", "relay" if self.power == "relay" else "gpio")
        elif self.button not in BUTTON_KINDS:
            raise ValueError(f"SimSlot button {self.button!r} is not one of: "
                             f"{', '.join(BUTTON_KINDS)}")

    @property
    def relay_channels(self) -> int:
        """Relay-board channels this slot takes (power and/or button), all on one board."""
        return (self.power == "relay") + (self.button == "relay")


@dataclass(frozen=True)
class _Plan:
    """One slot as it will be built: outputs (the bench file's own types), unit identity."""

    name: str
    sim: SimSlot
    profile: FirmwareProfile
    power: PowerSpec
    button: GpioOutput | RelayOutput
    address: str
    mac: str
    serial: str


def _fault_names(faults: SimFaults) -> list[str]:
    return [name for name, on in vars(faults).items() if on]


def _toml(value: Any) -> str:
    """A TOML value for a str, bool, int, float or a flat inline table of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)   # a JSON string (ASCII, \uXXXX escapes) is a TOML basic string
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def _output_table(spec: PowerSpec) -> dict[str, Any]:
    if isinstance(spec, GpioOutput):
        table: dict[str, Any] = {"kind": "gpio", "pin": spec.pin}
        if not spec.active_high:
            table["active_high"] = False
        return table
    if isinstance(spec, RelayOutput):
        return {"kind": "relay", "board": spec.board, "channel": spec.channel}
    return {"kind": "poe", "switch": spec.switch, "port": spec.port}


def _allocate_pins(gpio_power: int, gpio_buttons: int) -> tuple[list[int], list[int]]:
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


def _relay_channel_limit(protocol: str) -> int:
    """Channels one board can have: what both the simulator and the rig's driver address."""
    if protocol not in FIRMWARES:
        raise ValueError(f"unknown relay protocol {protocol!r} "
                         f"(known: {', '.join(sorted(FIRMWARES))})")
    return min(FIRMWARES[protocol].MAX_CHANNELS, relay_protocols.load(protocol).MAX_CHANNELS,
               _BENCH_MAX_CHANNELS)


@dataclass(frozen=True)
class _BoardPlan:
    """One simulated relay board as it will be built: its bench-file name, its stable link's
    file name inside the bench directory, and how many channels it has."""

    name: str
    link: str
    channels: int


def _allocate_relay_channels(spec: Sequence[SimSlot], protocol: str,
                             per_board: int | None) -> tuple[list[_BoardPlan],
                                                             list[tuple[int, int] | None]]:
    """Boards and, per slot, (board index, first channel) or None for a slot without relays.

    Slots fill boards in order, channels counted from 1, a slot's power channel before its
    button channel, and a slot never straddles two boards (its harness goes to one board, and
    today's single-board layout, power 2i-1 / button 2i, is unchanged). ``per_board``: channels
    of every board, as bought (unused channels stay unwired); None: boards of the protocol's
    maximum, each declared with just the channels it carries, so a bench that fits on one board
    looks exactly as before. Raises ValueError when a slot cannot fit on one board.
    """
    needs = [item.relay_channels for item in spec]
    if per_board is None and not any(needs):
        return [], [None] * len(spec)
    limit = _relay_channel_limit(protocol)
    if per_board is not None and not (
            isinstance(per_board, int) and not isinstance(per_board, bool)
            and 1 <= per_board <= limit):
        raise ValueError(f"relay_channels must be 1..{limit} for a simulated {protocol} board, "
                         f"not {per_board!r}")
    if not any(needs):
        return [], [None] * len(spec)
    size = per_board or limit
    if max(needs) > size:
        i = max(range(len(spec)), key=lambda k: needs[k])
        raise ValueError(f"slot {i + 1} needs {needs[i]} channels (power and button each) on "
                         f"one relay board; a simulated {protocol} board has at most {size}")
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
        boards = [_BoardPlan(BOARD_NAME, BOARD_LINK, per_board or used[0])]
    else:
        boards = [_BoardPlan(f"{BOARD_NAME}{k}", f"{BOARD_LINK}-{k}", per_board or n)
                  for k, n in enumerate(used, start=1)]
    return boards, where


def _addresses(base: str, first: int, count: int) -> list[str]:
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


def _plan(spec: Sequence[SimSlot], *, profiles: ProfileSet, base: str, first: int,
          relay_protocol: str, relay_channels: int | None, mac_block: int,
          addresses: Sequence[str] | None = None) -> tuple[list[_Plan], list[_BoardPlan]]:
    """Every slot's outputs and identity, and the relay boards, checked before anything binds
    or opens. ``addresses`` replaces the loopback addresses ``base + (first + i)`` (the
    namespace bench puts every unit on its profile's default); MACs still count from
    ``first``."""
    spec = list(spec)
    for item in spec:
        if not isinstance(item, SimSlot):
            raise TypeError(f"a simulated bench is a sequence of SimSlot, not {item!r}")
    if addresses is None:
        addresses = _addresses(base, first, len(spec))
    elif len(addresses) != len(spec):
        raise ValueError(f"{len(addresses)} address(es) for {len(spec)} slot(s)")
    chosen = [profiles.get(item.profile) for item in spec]   # ProfileError names the bad one
    gpio_power = sum(item.power == "gpio" for item in spec)
    gpio_buttons = sum(item.button == "gpio" for item in spec)
    power_pins, button_pins = _allocate_pins(gpio_power, gpio_buttons)
    boards, where = _allocate_relay_channels(spec, relay_protocol, relay_channels)
    plans: list[_Plan] = []
    poe_port = 0
    powers, buttons = iter(power_pins), iter(button_pins)
    for i, (item, profile, place) in enumerate(zip(spec, chosen, where, strict=True)):
        channels = iter(range(place[1], place[1] + item.relay_channels)) if place else None
        board = boards[place[0]].name if place else ""
        power: PowerSpec
        button: GpioOutput | RelayOutput
        if item.power == "gpio":
            power = GpioOutput(pin=next(powers), active_high=False)
        elif item.power == "poe":
            poe_port += 1
            power = PoeOutput(switch=SWITCH_NAME, port=poe_port)
        else:
            assert channels is not None
            power = RelayOutput(board=board, channel=next(channels))
        if item.button == "gpio":
            button = GpioOutput(pin=next(buttons))
        else:
            assert channels is not None
            button = RelayOutput(board=board, channel=next(channels))
        mac = sim_mac(first + i, mac_block)
        plans.append(_Plan(name=str(i + 1), sim=item, profile=profile, power=power,
                           button=button, address=addresses[i], mac=mac,
                           serial=sim_serial(behaviour_for(profile).sample_model, mac)))
    return plans, boards


#: A datagram whose root element is <ProbeMatch>: another unit's reply, never an inquiry.
_PROBE_MATCH = re.compile(rb"\A\s*(?:<\?xml[^>]*\?>\s*)?<ProbeMatch[\s/>]")


class _SadpHub:
    """SADP for every unit of the bench: ONE socket on the multicast group, one unicast socket
    per unit, one thread.

    A real camera listens on the group itself, and so does a ``CameraHost``'s responder. But the
    replies go to the group too, so with N units on one host every reply reaches every unit:
    N*N datagrams a census round, each woken for, read and parsed only to be refused. At 30 units
    and the runner's fastest cadence (a 50 ms window every 80 ms, time scale >= 25) that load
    made most rounds miss most units, and units "never answered SADP after the reset"; at 48 units
    and a 0.4 s cadence it cost over one CPU in the controller's process, starving its threads of
    the GIL (a 10-statement SQLite read took 250 ms, the PoE driver's SNMP engine timed out
    opening). Here the group is heard once: other units' ProbeMatches are dropped by a byte
    match before any parse, and a Probe is handed to every unit. What each unit answers, from its
    own address and port 37020, by its own reply styles, is decided by the same
    ``SadpResponder`` code as before (one per unit, never started: its sockets are ours).
    """

    def __init__(self, cameras: Sequence[VirtualCamera], interface_address: str) -> None:
        self._responders = [SadpResponder(camera.probe_match,
                                          lambda camera=camera: camera.sadp_reply_styles,
                                          bind_address=camera.address,
                                          interface_address=interface_address)
                            for camera in cameras]
        self._interface = interface_address
        self._sockets: list[socket.socket] = []
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> _SadpHub:
        """Open every socket (OSError if an address or port is taken) and start answering."""
        try:
            group = open_group_socket(self._interface, GROUP, PORT)
            self._sockets.append(group)
            for responder in self._responders:
                self._sockets.append(responder._open_unicast_socket())
            self._wake = socket.socketpair()
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._serve, name="sim-bench-sadp", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._wake is not None
        group, unicast, wake = self._sockets[0], self._sockets[1:], self._wake[0]
        owner = {sock: responder for sock, responder in zip(unicast, self._responders,
                                                             strict=True)}
        # epoll, not select(): a test process with a few large benches passes fd 1024.
        with selectors.DefaultSelector() as selector:
            for sock in (*self._sockets, wake):
                selector.register(sock, selectors.EVENT_READ)
            while not self._stopping.is_set():
                try:
                    events = selector.select()
                except (OSError, ValueError):  # a socket closed under us: we are being stopped
                    return
                for key, _ in events:
                    sock = key.fileobj
                    if sock is wake or self._stopping.is_set():
                        return
                    assert isinstance(sock, socket.socket)
                    self._receive(sock, group, unicast, owner)

    def _receive(self, sock: socket.socket, group: socket.socket, unicast: list[socket.socket],
                 owner: dict[socket.socket, SadpResponder]) -> None:
        """One datagram: a Probe on the group goes to every unit, one on a unit's own address
        to that unit; another unit's ProbeMatch on the group goes nowhere."""
        try:
            data, sender = sock.recvfrom(READ_SIZE)
        except OSError as exc:
            log.debug("simulated bench SADP: receive error (%s)", exc)
            return
        if sock is not group:
            owner[sock]._handle(data, sender, sock)
        elif not _PROBE_MATCH.match(data):
            for unit_sock, responder in zip(unicast, self._responders, strict=True):
                responder._handle(data, sender, unit_sock)

    def stop(self) -> None:
        """Stop answering and close every socket. Idempotent."""
        self._stopping.set()
        wake, self._wake = self._wake, None
        if wake is not None:
            try:
                wake[1].send(b"x")
            except OSError:
                pass
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=2)
            if thread.is_alive():
                log.warning("simulated bench SADP: thread did not stop in time")
        sockets, self._sockets = self._sockets, []
        for sock in (*sockets, *(wake or ())):
            sock.close()


class _BenchHost(CameraHost):
    """A CameraHost serving HTTP only: the bench's ``_SadpHub`` answers SADP for it."""

    def start(self) -> _BenchHost:
        try:
            self._http = IsapiServer(self.camera)
            self._http.serve_in_thread()
        except BaseException:
            self.stop()
            raise
        return self


def _run_all(actions: Iterable[Callable[[], None]]) -> None:
    """Run every action in order. An Exception is logged and the next action runs; so does an
    interrupt (KeyboardInterrupt, SystemExit), which is raised again once every action ran."""
    pending = iter(actions)
    interrupt: BaseException | None = None
    while True:
        try:
            for action in pending:
                try:
                    action()
                except Exception:  # noqa: BLE001 - every part must get its chance to stop
                    log.exception("simulated bench: stopping %r failed", action)
            break
        except BaseException as exc:  # noqa: BLE001 - re-raised below, once the rest ran
            if interrupt is None:
                interrupt = exc
            log.warning("simulated bench: %s while stopping; stopping the rest first",
                        type(exc).__name__)
    if interrupt is not None:
        raise interrupt


def _stop_all(hosts: Sequence[CameraHost]) -> None:
    """Stop camera hosts side by side: each HTTP server notices its shutdown only at its next
    poll (up to 50 ms), which one after another costs seconds on a 48-slot bench."""
    if not hosts:
        return
    with ThreadPoolExecutor(max_workers=min(len(hosts), 16),
                            thread_name_prefix="sim-bench-stop") as pool:
        for future in [pool.submit(host.stop) for host in hosts]:
            try:
                future.result()
            except Exception:  # noqa: BLE001 - every host must get its chance to stop
                log.exception("simulated bench: stopping a camera host failed")


class SimBench:
    """A running simulated bench. Build it with ``SimBench.start(...)``; ``stop()`` (or leaving
    the ``with`` block) stops every part and frees every address, port and pty.

    Attributes: ``bench_path`` (the bench TOML), ``bench`` (it, loaded by rig.bench),
    ``pin_factory`` (the MockFactory wired to the GPIO slots: hand it to ``BenchHardware``),
    ``cameras`` (slot name → VirtualCamera), ``switch`` (the VirtualSwitch, or None without PoE
    slots), ``relay_boards`` (bench-file board name → SimulatedRelayBoard, empty without relay
    outputs), ``relay_board`` (the first of them, or None), ``slots`` (slot name → the SimSlot
    it was built from).
    """

    def __init__(self, directory: Path, time_scale: float) -> None:
        # Use SimBench.start(); the constructor only sets up an empty bench for it to fill.
        self.directory = directory
        self.time_scale = time_scale
        self.bench_path: Path = directory / "bench.toml"
        self._bench: Bench | None = None
        self.pin_factory: MockFactory = MockFactory()
        self.cameras: dict[str, VirtualCamera] = {}
        self.slots: dict[str, SimSlot] = {}
        self.switch: VirtualSwitch | None = None
        self.relay_boards: dict[str, SimulatedRelayBoard] = {}
        self._plans: list[_Plan] = []
        # What stop() undoes, in reverse: the factory's pins are closed after their loads unwire.
        self._undo: list[Callable[[], None]] = [self.pin_factory.close]
        self._stopped = False

    # --- building -------------------------------------------------------------------------------

    @classmethod
    def start(cls, spec: Sequence[SimSlot], *, directory: str | Path, time_scale: float = 1.0,
              base: str = "127.0.1.", first: int = 40, provision: str | None = None,
              boot: bool = True, boot_timeout: float | None = None,
              expected_identity: bool = True, relay_protocol: str = "numato",
              relay_channels: int | None = None, mac_block: int = DEFAULT_MAC_BLOCK,
              name: str = "sim", profile_set: ProfileSet | None = None) -> SimBench:
        """Build and power a bench of ``len(spec)`` slots named "1".."N"; slot i's unit is on
        ``base + (first + i)`` (loopback only; the last octet stays within 1..254, so at most
        254 slots, one /24). ``directory`` receives the bench file (``bench.toml``) and the relay
        boards' stable links (``relay-board``, or ``relay-board-1``, ``-2``, ... with several
        boards); they are replaced if a previous bench left them there.

        ``time_scale`` (≥ 1, as the bench file allows) divides every firmware duration, and is
        written into the bench file so the controller compresses its waits by the same factor.
        ``provision``: every unit starts used, activated with this admin password (legacy units
        too), so a reset has something to undo. ``boot``: wait until every powered unit runs
        (``boot_timeout`` real seconds; default: the slowest profile's boot plus 10 s); units
        with the ``never_boots`` fault are not waited for. ``expected_identity=False`` leaves
        mac/serial out of the bench file, for runners that must learn identity from SADP.
        ``relay_protocol``: what the relay boards speak (numato: up to 32 channels a board;
        lcus: 8; kmtronic boards have one channel, too few for a relay-powered slot).
        ``relay_channels``: channels per board, as bought (e.g. 8 like hardware/benches/
        poe-serial-24.toml, or 16); None: the protocol's maximum, each board declared with the
        channels it carries. Boards are added until every slot's relay outputs fit.
        ``mac_block`` keeps this bench's MACs apart from other simulated units on the host.

        Raises ValueError (bad spec, not enough pins or channels, bad addresses), ProfileError,
        OSError (an address or port in use) or RuntimeError (units did not boot in time);
        whatever was started by then is stopped again.
        """
        if not time_scale >= 1:
            raise ValueError(f"time_scale must be at least 1 (a bench file's range), "
                             f"not {time_scale}")
        if provision is not None and not provision:
            raise ValueError("provision must be a non-empty password or None")
        profiles = profile_set or ProfileSet.load()
        plans, boards = _plan(spec, profiles=profiles, base=base, first=first,
                              relay_protocol=relay_protocol, relay_channels=relay_channels,
                              mac_block=mac_block)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sim = cls(directory, float(time_scale))
        try:
            sim._build(plans, boards, relay_protocol=relay_protocol, provision=provision)
            sim._write_bench_file(name, expected_identity, relay_protocol)
            sim._bench = load_bench(sim.bench_path, profiles)
            if boot:
                sim._await_boot(boot_timeout)
        except BaseException:
            sim.stop()
            raise
        log.info("simulated bench %s: %d slot(s), bench file %s", name, len(plans),
                 sim.bench_path)
        return sim

    def _await_boot(self, boot_timeout: float | None) -> None:
        """Wait until every powered unit runs (``boot_timeout`` real seconds; default: the
        slowest profile's boot plus 10 s); RuntimeError naming the slots still not running."""
        timeout = boot_timeout if boot_timeout is not None else (
            max(p.profile.boot_seconds for p in self._plans) / self.time_scale + 10.0)
        if not self.wait_running(timeout):
            late = [n for n, c in self.cameras.items() if c.powered and not c.running
                    and not c.faults.never_boots]
            raise RuntimeError(f"simulated bench: slot(s) {', '.join(late)} not running after "
                               f"{timeout:.1f} s")

    def _build(self, plans: list[_Plan], boards: list[_BoardPlan], *, relay_protocol: str,
               provision: str | None) -> None:
        """Cameras first (unpowered), then each kind of power, each powering its units on."""
        self._plans = plans
        hosts: list[CameraHost] = []
        self._undo.append(lambda: _stop_all(hosts))
        for plan in plans:
            camera = VirtualCamera(plan.profile, mac=plan.mac, serial=plan.serial,
                                   address=plan.address, http_port=0,
                                   default_ipv4=plan.address, time_scale=self.time_scale,
                                   faults=plan.sim.faults)
            if provision is not None:
                camera.provision(provision)
            self.cameras[plan.name] = camera
            self.slots[plan.name] = plan.sim
            hosts.append(_BenchHost(camera, sadp_interface=LOOPBACK).start())
        sadp = _SadpHub([self.cameras[p.name] for p in plans], LOOPBACK)
        self._undo.append(sadp.stop)
        sadp.start()
        self._wire_gpio(plans)
        poe = [p for p in plans if isinstance(p.power, PoeOutput)]
        if poe:
            self._start_switch(poe)
        for board in boards:
            self._start_relay_board(board, plans, relay_protocol)

    def _wire_gpio(self, plans: list[_Plan]) -> None:
        """Relay modules and solenoid gates on the mock pins; then the relays pulled in."""
        factory = self.pin_factory
        for plan in plans:
            camera = self.cameras[plan.name]
            if isinstance(plan.power, GpioOutput):
                gpio_button = plan.button if isinstance(plan.button, GpioOutput) else None
                wiring = wire_gpio_slot(factory, camera, power_pin=plan.power.pin,
                                        power_active_high=plan.power.active_high,
                                        button_pin=gpio_button.pin if gpio_button else None,
                                        button_active_high=gpio_button.active_high
                                        if gpio_button else True)
                self._undo.append(wiring.disconnect)
                # The state a previous controller left: the line driven to the relay's active
                # level. The first driver to claim the pin (GpioPower starts OFF) ends it.
                if plan.power.active_high:
                    wiring.power.drive_high()
                else:
                    wiring.power.drive_low()
                if not camera.powered:
                    raise RuntimeError(f"slot {plan.name}: GPIO{plan.power.pin} at the active "
                                       f"level did not power the camera")
            elif isinstance(plan.button, GpioOutput):
                pin = factory.pin(plan.button.pin, pin_class=LoadPin)
                assert isinstance(pin, LoadPin)
                pin.connect(active_high=plan.button.active_high, on_change=camera.set_button)
                self._undo.append(pin.disconnect)

    def _start_switch(self, plans: list[_Plan]) -> None:
        from rig.sim.switch import VirtualSwitch  # pysnmp costs ~0.1 s: only for PoE slots

        switch = VirtualSwitch(len(plans), bind=LOOPBACK, udp_port=0, community_rw=COMMUNITY,
                               sys_name="rig-sim-bench-switch").start()
        self.switch = switch
        self._undo.append(switch.stop)
        for plan in plans:
            assert isinstance(plan.power, PoeOutput)
            switch.attach(plan.power.port, self.cameras[plan.name])   # ports start enabled

    def _start_relay_board(self, spec: _BoardPlan, plans: list[_Plan], protocol: str) -> None:
        """One board on its own pty and link, every channel off; its slots' relay outputs
        wired to their cameras; then its power channels switched on as an operator would."""
        from rig.actuators.serial_relay import SerialRelayBoard

        board = SimulatedRelayBoard(protocol, spec.channels, link=self.directory / spec.link,
                                    power_on_state=False).start()
        self.relay_boards[spec.name] = board
        self._undo.append(board.stop)
        powered: list[_Plan] = []
        for plan in plans:
            camera = self.cameras[plan.name]
            if isinstance(plan.power, RelayOutput) and plan.power.board == spec.name:
                board.attach(plan.power.channel, camera.set_power)
                powered.append(plan)
            if isinstance(plan.button, RelayOutput) and plan.button.board == spec.name:
                board.attach(plan.button.channel, camera.set_button)
        if not powered:
            return          # a board of buttons only: every solenoid released, nothing to do
        # Power on as an operator would, through the real driver over the pty: the board's
        # relays and the cameras cannot disagree. Closing the driver keeps power relays on.
        with SerialRelayBoard(str(board.link), protocol=protocol, channels=board.channels,
                              timeout=1.0, name=f"sim bench power-up ({spec.name})") as client:
            for plan in powered:
                assert isinstance(plan.power, RelayOutput)
                client.set(plan.power.channel, True)
        deadline = time.monotonic() + _RELAY_SETTLE_S
        while not all(self.cameras[p.name].powered for p in powered):
            if time.monotonic() > deadline:
                raise RuntimeError(f"simulated relay board {spec.name}: power channels did not "
                                   f"reach the cameras")
            time.sleep(0.005)
        board.clear_records()   # a run's tests see only the run's own frames

    def _write_bench_file(self, name: str, expected_identity: bool,
                          relay_protocol: str) -> None:
        lines = [
            "# A simulated bench written by rig.sim.bench: every unit is a virtual camera on a",
            "# loopback address; GPIO pins exist only in the process that started it.",
            *self._bench_table(name),
            "",
            "[network]",
            f"address = {_toml(LOOPBACK)}",
            'identity = "serialised"',
        ]
        if self.switch is not None:
            lines += self._switch_table(*self.switch.address)
        lines += self._board_tables(relay_protocol)
        for plan in self._plans:
            lines += self._slot_table(plan, expected_identity,
                                      [f"address = {_toml(plan.address)}"])
        self.bench_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # The bench file's parts, shared with the namespace bench (rig.sim.netns_bench).

    def _bench_table(self, name: str) -> list[str]:
        """``[bench]``: name, time scale, the solenoid cap, settle time, coil limit."""
        hold_max = max(p.profile.hold_seconds[1] for p in self._plans)
        cap = min(max(hold_max / self.time_scale + 1.0, 2.0), 180.0)
        return [
            "",
            "[bench]",
            f"name = {_toml(name)}",
            'gpio_factory = "mock"',
            f"time_scale = {_toml(self.time_scale)}",
            f"solenoid_max_on_seconds = {_toml(round(cap, 3))}",
            f"settle_seconds = {_toml(5.0 / self.time_scale)}",
            f"max_solenoids_on = {_toml(len(self._plans))}",   # every slot may press at once
        ]

    @staticmethod
    def _switch_table(host: str, port: int) -> list[str]:
        """``[switches.sim]``: the virtual switch, SNMP v2c with the read-write community."""
        return ["", f"[switches.{SWITCH_NAME}]", f"host = {_toml(host)}",
                f"port = {_toml(port)}", 'version = "2c"',
                f"community = {_toml(COMMUNITY)}", 'mib = "rfc3621"', "timeout = 1.0",
                "retries = 1"]

    def _board_tables(self, relay_protocol: str) -> list[str]:
        """``[relay_boards.*]``: each simulated board by its stable link."""
        lines: list[str] = []
        for board_name, board in self.relay_boards.items():
            lines += ["", f"[relay_boards.{board_name}]",
                      f"port = {_toml(str(board.link))}",
                      f"protocol = {_toml(relay_protocol)}",
                      f"channels = {_toml(board.channels)}"]
        return lines

    @staticmethod
    def _slot_table(plan: _Plan, expected_identity: bool, extra: Sequence[str]) -> list[str]:
        """One ``[[slots]]`` entry: outputs, profile, identity, then ``extra`` lines; the last
        line names the slot's simulated faults in a comment."""
        lines = ["", "[[slots]]", f"name = {_toml(plan.name)}",
                 f"power = {_toml(_output_table(plan.power))}",
                 f"button = {_toml(_output_table(plan.button))}",
                 f"profile = {_toml(plan.profile.name)}"]
        if expected_identity:
            lines += [f"mac = {_toml(plan.mac)}", f"serial = {_toml(plan.serial)}"]
        lines += extra
        faults = _fault_names(plan.sim.faults)
        if faults:
            lines[-1] += f"    # simulated fault: {', '.join(faults)}"
        return lines

    # --- using ----------------------------------------------------------------------------------

    @property
    def relay_board(self) -> SimulatedRelayBoard | None:
        """The first relay board (the only one on a bench that fits on one), or None."""
        return next(iter(self.relay_boards.values()), None)

    @property
    def bench(self) -> Bench:
        """The bench file as rig.bench loaded it: what the controller is given."""
        if self._bench is None:
            raise RuntimeError("the simulated bench has not been started")
        return self._bench

    def wait_running(self, timeout: float) -> bool:
        """True once every powered unit runs; False if ``timeout`` (real seconds) passes first.
        Units with the ``never_boots`` fault are skipped: they would never get there."""
        deadline = time.monotonic() + timeout
        for camera in self.cameras.values():
            if camera.faults.never_boots or not camera.powered:
                continue
            if not camera.wait_running(max(deadline - time.monotonic(), 0.0)):
                return False
        return True

    def describe(self) -> list[dict[str, Any]]:
        """One row per slot, as plain data: outputs, unit identity, where it answers, faults."""
        rows = []
        for plan in self._plans:
            camera = self.cameras[plan.name]
            rows.append({
                "slot": plan.name, "power_kind": plan.sim.power, "button_kind": plan.sim.button,
                "power": describe_output(plan.power), "button": describe_output(plan.button),
                "profile": plan.profile.name, "mac": plan.mac, "serial": plan.serial,
                "address": plan.address, "http_port": camera.http_port,
                "faults": _fault_names(plan.sim.faults), "powered": camera.powered,
                "state": camera.state.value, "activated": camera.activated})
        return rows

    # --- stopping -------------------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Stop every part in the reverse order it started: relay boards (ptys and links removed),
        switch (UDP port freed), GPIO loads unwired, the SADP listener (group and unit sockets
        closed), the cameras' web servers (side by side) and the mock factory. Idempotent; an
        error in one part does not keep the others running. Neither does an interrupt (a second
        Ctrl-C, SystemExit) raised in one part: the remaining parts are still stopped, then the
        first interrupt is raised again. Close the controller's BenchHardware first: its devices
        live on ``pin_factory``."""
        self._stopped = True
        undo, self._undo = self._undo, []
        _run_all(reversed(undo))

    def __enter__(self) -> SimBench:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
