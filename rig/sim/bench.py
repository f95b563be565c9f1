"""A whole simulated bench as one object: virtual cameras wired to simulated power and buttons,
and the bench file that describes it.

``SimBench.start(spec, directory=...)`` builds what a person builds at a real bench, then writes
down what they built, so the controller can be pointed at it like at any bench:

- one virtual camera per slot on its own loopback address ``base + (first + i)``: its web
  server (ISAPI) on an ephemeral port (the unit reports it in SADP, as ``HttpPort``), and SADP
  answered from its own address and port 37020 (one listener on the multicast group serves
  every unit of the bench, see rig.sim.sadp_hub);
- camera power (``SimSlot.power``): "gpio", an active-low relay module input on a pin of one
  ``MockFactory`` (rig.sim.gpio); "poe", a port of ONE ``VirtualSwitch`` (a real SNMP agent on
  127.0.0.1, ephemeral UDP port) with as many ports as there are PoE slots; "relay", a channel
  of a ``SimulatedRelayBoard`` on a pty, reached through a stable link inside ``directory``
  like ``/dev/serial/by-id/...``;
- reset button (``SimSlot.button``): a solenoid, either behind an active-high gate on a GPIO
  pin ("gpio", the default for gpio and PoE power) or on a relay-board channel ("relay", the
  default for relay power). PoE power with relay buttons is the large real bench
  (hardware/wiring-poe-serial-24.md): no GPIO at all, so it is not limited by the header;
- relay boards: as many as the slots' relay channels need (rig.sim.bench_plan);
- a bench TOML in ``directory``, written by ``rig.bench.dump`` from the planned ``Bench``,
  that ``rig.bench.load_bench`` reads: the controller gets a pin
  factory, addresses and ports and never learns that the bench is simulated
  (one code path for real and simulated hardware).

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

Planning (outputs, pins, addresses, the Bench written down) is rig.sim.bench_plan; SADP for
every unit is rig.sim.sadp_hub.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from gpiozero.pins.mock import MockFactory

from rig.bench import (
    Bench,
    GpioOutput,
    NetworkConfig,
    PoeOutput,
    RelayOutput,
    describe_output,
    dump,
    load_bench,
)
from rig.camera.profiles import ProfileSet
from rig.sim.bench_plan import (
    COMMUNITY,
    DEFAULT_MAC_BLOCK,
    EXTRA_RELAY_PINS,
    EXTRA_SOLENOID_PINS,
    LOOPBACK,
    RELAY_PINS,
    SOLENOID_PINS,
    BoardPlan,
    SimSlot,
    SlotPlan,
    bench_of,
    board_config,
    fault_names,
    plan_slots,
    slot_notes,
    switch_config,
)
from rig.sim.camera import VirtualCamera
from rig.sim.fleet import CameraHost
from rig.sim.gpio import LoadPin, wire_gpio_slot
from rig.sim.sadp_hub import SadpHub
from rig.sim.serial_board import SimulatedRelayBoard
from rig.vocabulary import IdentityStrategy

if TYPE_CHECKING:
    from rig.sim.switch import VirtualSwitch

__all__ = ["COMMUNITY", "DEFAULT_MAC_BLOCK", "EXTRA_RELAY_PINS", "EXTRA_SOLENOID_PINS",
           "LOOPBACK", "RELAY_PINS", "SOLENOID_PINS", "SimBench", "SimSlot", "stop_hosts"]

log = logging.getLogger(__name__)
#: The comment at the top of a loopback bench's file.
_HEADER = ("A simulated bench written by rig.sim.bench: every unit is a virtual camera on a",
           "loopback address; GPIO pins exist only in the process that started it.")
#: Real seconds a relay channel may take to reach its camera when the bench powers up.
_RELAY_SETTLE_S = 2.0


class _BenchHost(CameraHost):
    """A CameraHost serving HTTP and RTSP only: the bench's ``SadpHub`` answers SADP for it. A
    unit that moves (SADP update, ISAPI PUT) takes its web and RTSP servers to the new
    address; the hub keeps answering from the old one, whose replies carry the new settings."""

    def _open(self) -> None:
        self._open_servers()


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


def stop_hosts(hosts: Sequence[CameraHost]) -> None:
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
        self._plans: list[SlotPlan] = []
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
        plans, boards = plan_slots(spec, profiles=profiles, base=base, first=first,
                              relay_protocol=relay_protocol, relay_channels=relay_channels,
                              mac_block=mac_block)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sim = cls(directory, float(time_scale))
        try:
            sim._build(plans, boards, relay_protocol=relay_protocol, provision=provision)
            sim._write_bench(name, network=NetworkConfig(
                address=LOOPBACK, identity=IdentityStrategy.SERIALISED), header=_HEADER,
                expected_identity=expected_identity, own_addresses=True)
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

    def _build(self, plans: list[SlotPlan], boards: list[BoardPlan], *, relay_protocol: str,
               provision: str | None) -> None:
        """Cameras first (unpowered), then each kind of power, each powering its units on."""
        self._plans = plans
        hosts: list[CameraHost] = []
        self._undo.append(lambda: stop_hosts(hosts))
        for plan in plans:
            camera = VirtualCamera(plan.profile, mac=plan.mac, serial=plan.serial,
                                   address=plan.address, http_port=0, rtsp_port=0,
                                   default_ipv4=plan.address, time_scale=self.time_scale,
                                   faults=plan.sim.faults, media=plan.sim.media)
            if provision is not None:
                camera.provision(provision)
            self.cameras[plan.name] = camera
            self.slots[plan.name] = plan.sim
            hosts.append(_BenchHost(camera, sadp_interface=LOOPBACK,
                                    follow_address=True).start())
        sadp = SadpHub([self.cameras[p.name] for p in plans], LOOPBACK)
        self._undo.append(sadp.stop)
        sadp.start()
        self._wire_gpio(plans)
        poe = [p for p in plans if isinstance(p.power, PoeOutput)]
        if poe:
            self._start_switch(poe)
        for board in boards:
            self._start_relay_board(board, plans, relay_protocol)

    def _wire_gpio(self, plans: list[SlotPlan]) -> None:
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

    def _start_switch(self, plans: list[SlotPlan]) -> None:
        from rig.sim.switch import VirtualSwitch  # pysnmp costs ~0.1 s: only for PoE slots

        switch = VirtualSwitch(len(plans), bind=LOOPBACK, udp_port=0, community_rw=COMMUNITY,
                               sys_name="rig-sim-bench-switch").start()
        self.switch = switch
        self._undo.append(switch.stop)
        for plan in plans:
            assert isinstance(plan.power, PoeOutput)
            switch.attach(plan.power.port, self.cameras[plan.name])   # ports start enabled

    def _start_relay_board(self, spec: BoardPlan, plans: list[SlotPlan], protocol: str) -> None:
        """One board on its own pty and link, every channel off; its slots' relay outputs
        wired to their cameras; then its power channels switched on as an operator would."""
        from rig.actuators.serial_relay import SerialRelayBoard

        board = SimulatedRelayBoard(protocol, spec.channels, link=self.directory / spec.link,
                                    power_on_state=False).start()
        self.relay_boards[spec.name] = board
        self._undo.append(board.stop)
        powered: list[SlotPlan] = []
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

    def _write_bench(self, name: str, *, network: NetworkConfig, header: Sequence[str],
                     expected_identity: bool, own_addresses: bool,
                     vlans: dict[str, int] | None = None) -> None:
        """Write down what was built: the planned ``Bench`` (rig.bench_plan.bench_of), with the
        switch and boards where they were started, through rig.bench.dump; each slot's
        simulated faults in a comment."""
        switch = switch_config(*self.switch.address) if self.switch is not None else None
        boards = {n: board_config(n, b.link, b.protocol, b.channels)
                  for n, b in self.relay_boards.items() if b.link is not None}
        bench = bench_of(self._plans, path=self.bench_path, name=name,
                         time_scale=self.time_scale, network=network, switch=switch,
                         boards=boards, expected_identity=expected_identity,
                         own_addresses=own_addresses, vlans=vlans)
        self.bench_path.write_text(dump(bench, header=header, slot_notes=slot_notes(self._plans)),
                                   encoding="utf-8")

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
                "rtsp_port": camera.rtsp_port, "card": camera.media.has_card,
                "faults": fault_names(plan.sim.faults), "powered": camera.powered,
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
