"""Virtual cameras on the network: each unit's model, web server and SADP responder together.

A ``CameraHost`` puts one VirtualCamera on one address (127.0.1.N on a loopback bench, or
192.168.1.64 inside its own network namespace). A ``CameraFleet`` starts many, with distinct
MACs and serials, so that discovery and verification face a bench's worth of units.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from rig.camera.profiles import ProfileSet
from rig.sim.behaviour import behaviour_for
from rig.sim.camera import SimFaults, VirtualCamera
from rig.sim.isapi_server import IsapiServer
from rig.sim.media import MediaConfig
from rig.sim.rtsp_server import RtspServer
from rig.sim.sadp_responder import SadpResponder

log = logging.getLogger(__name__)

#: Real seconds between a unit accepting new settings and its sockets moving: the reply to the
#: request that moved it leaves from the old address first, as on a real unit.
MOVE_DELAY_S = 0.05

#: Hikvision's OUI as seen in capture A (docs/hikvision-protocols.md §1.3); simulated units use it
#: too.
HIKVISION_OUI = "44:47:cc"


def sim_mac(index: int, block: int = 0xF0) -> str:
    """Deterministic MAC of simulated unit ``index`` (``block`` keeps fleets apart)."""
    return f"{HIKVISION_OUI}:{block & 0xFF:02x}:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}"


def sim_serial(model: str, mac: str) -> str:
    """A serial in the real shape: model + manufacturing date + letters + digits."""
    tail = int(mac.replace(":", "")[-6:], 16)
    return f"{model}20240115AAWRE{tail:08d}"


class CameraHost:
    """One virtual camera reachable on the network (HTTP + SADP) at ``camera.address``.

    With ``follow_address`` (loopback benches, where any 127.x.y.z can be bound) a unit whose
    settings move it (SADP update, ISAPI PUT, a reset back to its default) gets its sockets
    moved too: the old ones closed, new ones opened on the new address, on a thread of its own
    (the observer runs under the unit's lock). Inside a namespace the address is the
    namespace's, which this class cannot change, so there it is off.
    """

    def __init__(self, camera: VirtualCamera, *, sadp_interface: str,
                 follow_address: bool = False) -> None:
        self.camera = camera
        self.sadp_interface = sadp_interface
        self._http: IsapiServer | None = None
        self._rtsp: RtspServer | None = None
        self._sadp: SadpResponder | None = None
        self._move_lock = threading.Lock()
        self._stopped = False
        if follow_address:
            camera.address_observers.append(self._address_changed)

    def start(self) -> CameraHost:
        try:
            self._open()
        except BaseException:
            self.stop()
            raise
        return self

    def _open(self) -> None:
        self._open_servers()
        self._sadp = SadpResponder(self.camera.probe_match,
                                   lambda: self.camera.sadp_reply_styles,
                                   bind_address=self.camera.address,
                                   interface_address=self.sadp_interface,
                                   command=self.camera.sadp_command)
        self._sadp.start()

    def _open_servers(self) -> None:
        """The unit's TCP servers on its address: the web server (ISAPI) and RTSP."""
        self._http = IsapiServer(self.camera)
        self._http.serve_in_thread()
        self._rtsp = RtspServer(self.camera)
        self._rtsp.serve_in_thread()

    def _address_changed(self, address: str) -> None:
        threading.Thread(target=self._move, args=(address,), daemon=True,
                         name=f"sim-move-{self.camera.mac}").start()

    def _move(self, address: str) -> None:
        """Close the sockets on the old address, open them on ``address``. A unit told to move
        where it cannot bind is unreachable, as a real one on a foreign subnet is."""
        time.sleep(MOVE_DELAY_S)
        with self._move_lock:
            if self._stopped or self.camera.settings.ipv4 != address:
                return          # stopped, or moved again since: the later move wins
            self._close()
            try:
                self._readdress(address)
            except Exception as exc:  # noqa: BLE001 - a failed move leaves the unit unreachable
                log.error("camera %s: cannot move to %s: %s", self.camera.mac, address, exc)
                return
            self.camera.address = address
            try:
                self._open()
            except OSError as exc:
                log.error("camera %s: cannot serve on %s: %s", self.camera.mac, address, exc)
                self._close()

    def _readdress(self, address: str) -> None:
        """Give the host ``address`` before the sockets reopen there: nothing on loopback,
        where every 127.x.y.z is already local; a namespace's host changes its interface."""

    def stop(self) -> None:
        with self._move_lock:
            self._stopped = True
            self._close()

    def _close(self) -> None:
        if self._sadp is not None:
            self._sadp.stop()
            self._sadp = None
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._rtsp is not None:
            self._rtsp.close()
            self._rtsp = None


@dataclass
class CameraFleet:
    """Many virtual cameras, started together and always stopped together."""

    hosts: list[CameraHost]

    @property
    def cameras(self) -> list[VirtualCamera]:
        return [h.camera for h in self.hosts]

    @classmethod
    def start(cls, count: int, *, profiles: Sequence[str] = ("current",),
              base: str = "127.0.1.", first: int = 10, http_port: int = 8080,
              rtsp_port: int = 8554, media: Mapping[int, MediaConfig] | None = None,
              time_scale: float = 1.0, powered: bool = True, booted: bool = False,
              sadp_interface: str = "127.0.0.1", mac_block: int = 0xF0,
              faults: Mapping[int, SimFaults] | None = None,
              profile_set: ProfileSet | None = None) -> CameraFleet:
        """Start ``count`` units on ``base + (first + i)``; profiles are cycled over the units.

        ``booted`` brings powered units up at once instead of after their boot time.
        Each unit's factory-default IPv4 is the address it was given, so a loopback bench keeps
        units apart after a full reset (inside namespaces every unit is on 192.168.1.64 anyway).
        ``rtsp_port``: 8554 beside HTTP's 8080 (554 needs root; 0 = any free port, reported in
        adminAccesses); ``media``: unit index → its stream and card (rig.sim.media.MediaConfig;
        default 1920x1080 H.264, no card), like ``faults``.
        """
        if not 1 <= count <= 250 or not 0 < first or first + count - 1 > 254:
            raise ValueError(f"cannot place {count} units from {base}{first} in one /24")
        profile_set = profile_set or ProfileSet.load()
        chosen = [profile_set.get(name) for name in profiles]
        fleet = cls(hosts=[])
        try:
            for i in range(count):
                profile = chosen[i % len(chosen)]
                address = f"{base}{first + i}"
                mac = sim_mac(first + i, mac_block)
                serial = sim_serial(behaviour_for(profile).sample_model, mac)
                camera = VirtualCamera(profile, mac=mac, serial=serial, address=address,
                                       http_port=http_port, rtsp_port=rtsp_port,
                                       media=(media or {}).get(i), default_ipv4=address,
                                       time_scale=time_scale,
                                       faults=(faults or {}).get(i, SimFaults()))
                fleet.hosts.append(CameraHost(camera, sadp_interface=sadp_interface,
                                              follow_address=True).start())
                if powered:
                    camera.set_power(True, booted=booted)
        except BaseException:
            fleet.stop()
            raise
        return fleet

    def wait_running(self, timeout: float) -> bool:
        """True once every powered unit runs; False if ``timeout`` (real seconds) passes first."""
        deadline = time.monotonic() + timeout
        for camera in self.cameras:
            if camera.powered and not camera.wait_running(max(deadline - time.monotonic(), 0)):
                return False
        return True

    def stop(self) -> None:
        for host in self.hosts:
            host.stop()

    def __enter__(self) -> CameraFleet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
