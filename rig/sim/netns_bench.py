"""A simulated bench on a real (virtual) Ethernet: every reset camera on 192.168.1.64.

``NetnsBench.start(spec, directory=..., identity=...)`` builds, with rig.sim.netns (root only):

- a ``lan`` namespace holding the bench switch's data plane: bridge ``br0`` (no STP, multicast
  flooded to every port like an unmanaged switch), one port per camera, one for the switch's
  management and one for the controller;
- per slot a namespace ``cam<N>`` whose ``eth0`` has the camera's MAC and the profile's default
  address (192.168.1.64/24 for every family: all units share it, which is the point); the
  camera's ISAPI server (port 80) and SADP responder are created inside it with ``in_netns``,
  in this one process. A profile with ``ipv6 = true`` keeps the kernel's EUI-64 link-local on
  ``eth0`` (``addr_gen_mode`` eui64, ``accept_dad`` 0) and also serves ISAPI on ``[::]:80``;
  with ``ipv6 = false`` the namespace has IPv6 disabled;
- a ``sw`` namespace at 10.254.0.250/24 on the management segment (untagged, VLAN 1) where the
  VirtualSwitch answers SNMP on udp/161. Every slot is powered by a PoE port of that switch;
- a ``ctl`` namespace for the controller: ``eth0`` on the bridge with 10.254.0.2/24, and
  192.168.1.2/24 in the "serialised" and "ipv6-link-local" identity modes;
- reset solenoids on a SimulatedRelayBoard (a pty, linked as ``relay-board`` in ``directory``),
  so a controller in another process (``ip netns exec <ctl> rig run bench.toml``) drives them.

Power and link: a camera's ``network_observers`` hook turns its ``eth0`` down when it loses
power (a unit that is off answers no ARP) and up when its network comes up as it boots, with
``arp_notify`` so the kernel announces it by gratuitous ARP as real cameras do. The
``224.0.0.0/4`` route, dropped with the link, is put back each time. Changes are applied in order
on one worker thread (``wait_links`` waits for it to catch up).

Identity modes (``[network] identity`` of the bench file):

- "serialised" and "ipv6-link-local": one flat segment, as above;
- "vlan": camera N's port is untagged in VLAN 100+N and the controller reaches it through
  ``eth0.<100+N>`` (each with 192.168.1.2/24 and its own 224.0.0.0/4 route, metric 100+N);
  the bench file gives each slot ``vlan = 100+N``. On a kernel with 802.1Q and VLAN-filtering
  bridges the bridge filters (camera ports untagged with pvid 100+N, the controller's port a
  trunk: VLAN 1 untagged, 101.. tagged) and ``eth0.<vid>`` are 802.1Q sub-interfaces of the
  controller's ``eth0``. Without that support (``rig.sim.netns.kernel_has_vlans``) each VLAN is
  its own bridge ``br<vid>`` and ``eth0.<vid>`` is a veth of its own into it: the controller
  sees the same interfaces and the same isolation, only no tags on a wire.

Nothing is configured in the machine's own namespace; ``stop()`` removes every namespace.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.bench import NetworkConfig, PoeOutput, load_bench
from rig.camera.profiles import ProfileSet
from rig.sim.bench import SimBench, stop_hosts
from rig.sim.bench_plan import COMMUNITY, DEFAULT_MAC_BLOCK, SimSlot, SlotPlan, plan_slots
from rig.sim.camera import SimFaults, VirtualCamera
from rig.sim.fleet import CameraHost
from rig.sim.isapi_server import IsapiServer
from rig.sim.netns import NetnsError, NetnsLab, in_netns, ip, kernel_has_vlans, run
from rig.vocabulary import IdentityStrategy, PowerKind, choices

log = logging.getLogger(__name__)

IDENTITY_MODES = choices(IdentityStrategy)
#: The controller's addresses: on the bench segment, and on the switch-management segment.
CONTROLLER_ADDRESS = "192.168.1.2"
MANAGEMENT_NET = ipaddress.IPv4Network("10.254.0.0/24")
CONTROLLER_MANAGEMENT = "10.254.0.2"
SWITCH_ADDRESS = "10.254.0.250"
SNMP_PORT = 161
HTTP_PORT = 80
#: Slot N's VLAN in "vlan" mode.
VLAN_BASE = 100
BRIDGE = "br0"
#: Namespace roles (full names: rig.sim.netns.NetnsLab.name).
LAN, SWITCH, CONTROLLER = "lan", "sw", "ctl"
#: Bound on a bridge port starting to forward after its camera's link comes up (real seconds).
_FORWARDING_WAIT_S = 2.0
#: Bound on the link worker catching up (real seconds) before start() gives up.
_LINK_WAIT_S = 10.0


def netns_spec(count: int, *, profiles: Sequence[str] = ("current",),
               jammed: Iterable[int | str] = (), never_boots: Iterable[int | str] = (),
               sadp_silent: Iterable[int | str] = ()) -> list[SimSlot]:
    """``count`` slots of the namespace bench: PoE power and a relay-board solenoid each,
    profiles cycled over the slots, faults by slot number (1-based)."""
    if count < 1:
        raise ValueError(f"a bench needs at least one slot, not {count}")
    if not profiles:
        raise ValueError("at least one profile")
    names = {str(i + 1) for i in range(count)}
    sets = {}
    for what, given in (("jammed", jammed), ("never_boots", never_boots),
                        ("sadp_silent", sadp_silent)):
        chosen = {str(s) for s in given}
        if chosen - names:
            raise ValueError(f"{what}: no slot {sorted(chosen - names)[0]!r}; slots are "
                             f"1..{count}")
        sets[what] = chosen
    return [SimSlot(power=PowerKind.POE, button=PowerKind.RELAY,
                    profile=profiles[i % len(profiles)],
                    faults=SimFaults(jammed_button=str(i + 1) in sets["jammed"],
                                     never_boots=str(i + 1) in sets["never_boots"],
                                     sadp_silent=str(i + 1) in sets["sadp_silent"]))
            for i in range(count)]


@dataclass(frozen=True)
class _CameraLink:
    """One camera's cable: its namespace (end ``eth0``), the bridge port at the other end in
    the lan namespace, and the unit's MAC."""

    netns: str
    lan_ns: str
    port: str
    mac: str


class _LinkWorker:
    """Applies camera link changes in order, on one thread: camera observers run under the
    camera's lock and must not wait for ``ip``.

    Link up, then the multicast route again (it went with the link), then the announcement.
    The kernel's own gratuitous ARP at link-up (arp_notify) races the bridge enabling the port
    (carrier reaches the bridge through linkwatch, a moment later) and is usually dropped; so
    once the port forwards, the unit's MAC is set again to itself, and arp_notify announces on
    that address event. A real switch port also forwards only some time after link-up.
    """

    def __init__(self, lab: NetnsLab) -> None:
        self._lab = lab
        self._queue: queue.Queue[tuple[_CameraLink, bool] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._serve, name="netns-bench-links",
                                        daemon=True)
        self.applied: list[tuple[float, str, bool]] = []   # (monotonic, namespace, up)
        self._thread.start()

    def request(self, link: _CameraLink, up: bool) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put((link, up))

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            link, up = item
            try:
                self._apply(link, up)
                self.applied.append((time.monotonic(), link.netns, up))
            except NetnsError as exc:
                if not self._lab.closed:
                    log.warning("camera link %s in %s: %s", "up" if up else "down", link.netns,
                                exc)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _apply(self, link: _CameraLink, up: bool) -> None:
        self._lab.link(link.netns, "eth0", up)
        if not up:
            return
        self._lab.multicast_route(link.netns, "eth0")
        deadline = time.monotonic() + _FORWARDING_WAIT_S
        while "state forwarding" not in run(["bridge", "-n", link.lan_ns, "link", "show",
                                             "dev", link.port]):
            if time.monotonic() > deadline:
                log.warning("bridge port %s did not forward within %g s: %s not announced",
                            link.port, _FORWARDING_WAIT_S, link.mac)
                return
            time.sleep(0.005)
        self._lab.set_mac(link.netns, "eth0", link.mac)     # arp_notify: gratuitous ARP

    def wait(self, timeout: float) -> bool:
        """True once every requested change is applied; False after ``timeout`` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)


class _NamespacedHost(CameraHost):
    """A unit's servers inside its own namespace. When its settings move it (SADP update,
    ISAPI PUT), the namespace's eth0 gets the new IPv4 address (``ip -n``: the old one goes)
    and the sockets reopen inside the namespace, the way a real unit's stack moves."""

    def __init__(self, camera: VirtualCamera, *, netns: str) -> None:
        super().__init__(camera, sadp_interface=camera.address, follow_address=True)
        self.netns = netns

    def _readdress(self, address: str) -> None:
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{self.camera.settings.mask}").prefixlen
        ip(self.netns, "-4", "addr", "flush", "dev", "eth0")
        ip(self.netns, "addr", "add", f"{address}/{prefix}", "dev", "eth0")
        self.sadp_interface = address

    def _open(self) -> None:
        with in_netns(self.netns):
            super()._open()


class NetnsBench(SimBench):
    """A running namespace bench. Build it with ``NetnsBench.start(...)`` (root only); ``stop()``
    (or the ``with`` block) stops every part and removes every namespace.

    Beyond SimBench's attributes (``bench_path``, ``bench``, ``cameras``, ``switch``,
    ``relay_boards``, ``slots``): ``identity``, ``lab`` (the NetnsLab), ``controller_ns``,
    ``switch_ns``, ``lan_ns``, ``camera_ns`` (slot name → namespace), ``vlans`` (slot name →
    VLAN id, "vlan" mode only), ``controller_interfaces`` (slot name → the controller's
    interface that reaches it: "eth0", or "eth0.<vid>"), ``tagged`` (True when "vlan" mode uses
    real 802.1Q tags; False when it emulates them with a bridge per VLAN).
    """

    def __init__(self, directory: Path, time_scale: float, identity: IdentityStrategy) -> None:
        super().__init__(directory, time_scale)
        self.identity = identity
        self.lab: NetnsLab | None = None
        self.lan_ns = self.switch_ns = self.controller_ns = ""
        self.camera_ns: dict[str, str] = {}
        self.vlans: dict[str, int] = {}
        self.controller_interfaces: dict[str, str] = {}
        self.tagged = False
        self._links: _LinkWorker | None = None

    def stop(self) -> None:
        """SimBench.stop, and the namespaces removed whatever happened in it (an interrupt
        raised by one part is raised again only after the lab is closed). Idempotent."""
        try:
            super().stop()
        finally:
            if self.lab is not None:
                self.lab.close()

    @classmethod
    def start(cls, spec: Sequence[SimSlot] | int, *,  # type: ignore[override]
              directory: str | Path, identity: str = IdentityStrategy.SERIALISED,
              time_scale: float = 1.0,
              provision: str | None = None, boot: bool = True,
              boot_timeout: float | None = None, expected_identity: bool = True,
              relay_protocol: str = "numato", mac_block: int = DEFAULT_MAC_BLOCK,
              name: str = "netns", profile_set: ProfileSet | None = None) -> NetnsBench:
        """Build the network and the bench; ``spec`` is a list of SimSlot (PoE power and relay
        buttons only: ``netns_spec`` makes one) or a slot count. The other arguments are
        SimBench.start's. ``provision``: every unit starts used (activated with this password,
        still on 192.168.1.64). Raises NotRootError (not root), NetnsError (an ``ip`` command
        failed), ValueError, ProfileError, OSError or RuntimeError; whatever was built by then
        is removed again."""
        if identity not in IDENTITY_MODES:
            raise ValueError(f"identity {identity!r} is not one of: {', '.join(IDENTITY_MODES)}")
        if not time_scale >= 1:
            raise ValueError(f"time_scale must be at least 1, not {time_scale}")
        if provision is not None and not provision:
            raise ValueError("provision must be a non-empty password or None")
        slots = netns_spec(spec) if isinstance(spec, int) else list(spec)
        for item in slots:
            if (not isinstance(item, SimSlot) or item.power is not PowerKind.POE
                    or item.button is not PowerKind.RELAY):
                raise ValueError(f"a namespace bench slot has PoE power and a relay button, "
                                 f"not {item!r}")
        if len(slots) > 150:
            raise ValueError("at most 150 slots (VLAN ids 101..250, one /24 of ports)")
        profiles = profile_set or ProfileSet.load()
        chosen = [profiles.get(item.profile) for item in slots]
        plans, boards = plan_slots(slots, profiles=profiles, base="", first=1,
                              relay_protocol=relay_protocol, relay_channels=None,
                              mac_block=mac_block,
                              addresses=[p.default_ipv4 for p in chosen])
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sim = cls(directory, float(time_scale), IdentityStrategy(identity))
        try:
            sim._plans = plans
            sim._build_network(plans)
            sim._build_cameras(plans, provision)
            for board in boards:
                sim._start_relay_board(board, plans, relay_protocol)
            sim._start_switch_netns(plans)
            sim._write_bench(name, network=NetworkConfig(
                interface="eth0", address=CONTROLLER_ADDRESS, identity=sim.identity),
                header=sim._header(), expected_identity=expected_identity,
                own_addresses=False, vlans=sim.vlans)
            sim._bench = load_bench(sim.bench_path, profiles)
            if not sim.wait_links(_LINK_WAIT_S):
                raise RuntimeError(f"camera links not set within {_LINK_WAIT_S:g} s")
            if boot:
                sim._await_boot(boot_timeout)
        except BaseException:
            sim.stop()
            raise
        log.info("namespace bench %s: %d slot(s), identity %s, bench file %s, controller "
                 "namespace %s", name, len(plans), identity, sim.bench_path, sim.controller_ns)
        return sim

    # --- building -------------------------------------------------------------------------------

    def _header(self) -> tuple[str, ...]:
        """The comment at the top of the bench file: where to run the controller."""
        return ("A simulated bench written by rig.sim.netns_bench: every unit is a virtual camera",
                "in its own network namespace, all on 192.168.1.64. Run the controller inside the",
                f"controller namespace: ip netns exec {self.controller_ns} rig run "
                f"{self.bench_path}")

    def _build_network(self, plans: list[SlotPlan]) -> None:
        lab = self.lab = NetnsLab()
        self._undo.append(lab.close)              # runs late: after every server closed
        self._links = _LinkWorker(lab)
        self._undo.append(self._links.stop)
        vlan = self.identity is IdentityStrategy.VLAN
        self.tagged = vlan and kernel_has_vlans()
        if vlan:
            self.vlans = {p.name: VLAN_BASE + int(p.name) for p in plans}

        lan = self.lan_ns = lab.namespace(LAN)
        lab.sysctl(lan, {"net.ipv6.conf.all.disable_ipv6": 1,
                         "net.ipv6.conf.default.disable_ipv6": 1})
        lab.bridge(lan, BRIDGE, vlan_filtering=self.tagged)

        sw = self.switch_ns = lab.namespace(SWITCH)
        lab.sysctl(sw, {"net.ipv6.conf.all.disable_ipv6": 1,
                        "net.ipv6.conf.default.disable_ipv6": 1})
        lab.veth(lan, "sw", sw, "eth0")
        lab.attach(lan, "sw", BRIDGE)
        lab.address(sw, "eth0", f"{SWITCH_ADDRESS}/{MANAGEMENT_NET.prefixlen}")
        lab.link(sw, "eth0", True)
        lab.multicast_route(sw)

        ctl = self.controller_ns = lab.namespace(CONTROLLER)
        lab.sysctl(ctl, {"net.ipv6.conf.all.accept_dad": 0,
                         "net.ipv6.conf.default.accept_dad": 0,
                         "net.ipv4.conf.all.rp_filter": 0,
                         "net.ipv4.conf.default.rp_filter": 0})
        lab.veth(lan, "ctl", ctl, "eth0")
        lab.attach(lan, "ctl", BRIDGE)
        lab.address(ctl, "eth0", f"{CONTROLLER_MANAGEMENT}/{MANAGEMENT_NET.prefixlen}")
        if not vlan:
            lab.address(ctl, "eth0", f"{CONTROLLER_ADDRESS}/24")
        lab.link(ctl, "eth0", True)
        lab.multicast_route(ctl)
        for plan in plans:
            self.controller_interfaces[plan.name] = "eth0"
        for slot, vid in self.vlans.items():
            sub = self._controller_vlan(slot, vid)
            self.controller_interfaces[slot] = sub
            lab.address(ctl, sub, f"{CONTROLLER_ADDRESS}/24")
            lab.link(ctl, sub, True)
            lab.multicast_route(ctl, sub, metric=vid)

    def _controller_vlan(self, slot: str, vid: int) -> str:
        """The controller's way into VLAN ``vid``: an 802.1Q sub-interface on the trunk, or a
        veth into that VLAN's own bridge. Returns the interface name, ``eth0.<vid>``."""
        lab = self.lab
        assert lab is not None
        if self.tagged:
            lab.bridge_vlan(self.lan_ns, "ctl", vid)                 # tagged on the trunk
            return lab.vlan(self.controller_ns, "eth0", vid)
        bridge = lab.bridge(self.lan_ns, f"br{vid}")
        lab.veth(self.lan_ns, f"v{vid}", self.controller_ns, f"eth0.{vid}")
        lab.attach(self.lan_ns, f"v{vid}", bridge)
        return f"eth0.{vid}"

    def _build_cameras(self, plans: list[SlotPlan], provision: str | None) -> None:
        """Per slot: a namespace with eth0 (the unit's MAC, its address, link down until it is
        powered), the camera, and its servers created inside the namespace."""
        lab, links = self.lab, self._links
        assert lab is not None and links is not None
        hosts: list[CameraHost] = []
        servers: list[IsapiServer] = []
        self._undo.append(lambda: stop_hosts(hosts))
        self._undo.append(lambda: [server.close() for server in servers])
        for plan in plans:
            ns = self.camera_ns[plan.name] = lab.namespace(f"cam{plan.name}")
            port = f"c{plan.name}"
            lab.veth(self.lan_ns, port, ns, "eth0", mac_b=plan.mac)
            if self.vlans and not self.tagged:
                lab.attach(self.lan_ns, port, f"br{self.vlans[plan.name]}")
            else:
                lab.attach(self.lan_ns, port, BRIDGE)
            if self.vlans and self.tagged:
                vid = self.vlans[plan.name]
                lab.bridge_vlan(self.lan_ns, port, vid, pvid=True, untagged=True)
                lab.bridge_vlan(self.lan_ns, port, 1, remove=True)
            settings: dict[str, str | int] = {"net.ipv4.conf.all.arp_notify": 1,
                                              "net.ipv4.conf.default.arp_notify": 1,
                                              "net.ipv4.conf.eth0.arp_notify": 1}
            if plan.profile.ipv6:
                settings.update({"net.ipv6.conf.all.accept_dad": 0,
                                 "net.ipv6.conf.default.accept_dad": 0,
                                 "net.ipv6.conf.eth0.accept_dad": 0,
                                 "net.ipv6.conf.eth0.addr_gen_mode": 0})   # eui64
            else:
                settings.update({"net.ipv6.conf.all.disable_ipv6": 1,
                                 "net.ipv6.conf.default.disable_ipv6": 1,
                                 "net.ipv6.conf.eth0.disable_ipv6": 1})
            lab.sysctl(ns, settings)
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{plan.profile.default_mask}").prefixlen
            lab.address(ns, "eth0", f"{plan.address}/{prefix}")

            camera = VirtualCamera(plan.profile, mac=plan.mac, serial=plan.serial,
                                   address=plan.address, http_port=HTTP_PORT,
                                   default_ipv4=plan.address, time_scale=self.time_scale,
                                   faults=plan.sim.faults, media=plan.sim.media)
            if provision is not None:
                camera.provision(provision)
            cable = _CameraLink(ns, self.lan_ns, port, plan.mac)
            camera.network_observers.append(lambda up, cable=cable: links.request(cable, up))
            self.cameras[plan.name] = camera
            self.slots[plan.name] = plan.sim
            with in_netns(ns):
                hosts.append(_NamespacedHost(camera, netns=ns).start())
                if plan.profile.ipv6:
                    server = IsapiServer(camera, address="::", port=HTTP_PORT)
                    servers.append(server)
                    server.serve_in_thread()

    def _start_switch_netns(self, plans: list[SlotPlan]) -> None:
        """The PoE switch's agent inside the management namespace on udp/161; every camera on
        its port, which powers it (ports start enabled)."""
        from rig.sim.switch import VirtualSwitch

        with in_netns(self.switch_ns):
            switch = VirtualSwitch(len(plans), bind=SWITCH_ADDRESS, udp_port=SNMP_PORT,
                                   community_rw=COMMUNITY,
                                   sys_name="rig-sim-netns-switch").start()
        self.switch = switch
        self._undo.append(switch.stop)
        for plan in plans:
            assert isinstance(plan.power, PoeOutput)
            switch.attach(plan.power.port, self.cameras[plan.name])   # ports start enabled

    # --- using ----------------------------------------------------------------------------------

    def provision(self, password: str, device_name: str = "yard") -> None:
        """Make every unit used now (activated with ``password``, a parameter changed), as a
        batch arrives: a jammed unit stays so after the run, still on 192.168.1.64."""
        for camera in self.cameras.values():
            camera.provision(password, device_name)

    def wait_links(self, timeout: float) -> bool:
        """True once every camera link change so far is applied (``ip`` done)."""
        return self._links is None or self._links.wait(timeout)

    def exec_argv(self, command: Sequence[str]) -> list[str]:
        """argv running ``command`` in the controller namespace (``ip netns exec``)."""
        return ["ip", "netns", "exec", self.controller_ns, *command]

    def describe(self) -> list[dict[str, Any]]:
        rows = super().describe()
        for row in rows:
            row["namespace"] = self.camera_ns.get(row["slot"])
            row["vlan"] = self.vlans.get(row["slot"])
            row["controller_interface"] = self.controller_interfaces.get(row["slot"])
        return rows

    def __enter__(self) -> NetnsBench:
        return self
