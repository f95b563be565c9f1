"""What a stage gets for one slot in one run: the immutable slot context, and the unit it works on.

The runner builds one ``SlotContext`` per slot per run; stages (procedures, verification) read
it and never write it. What they learn comes back as their outcome; what they do goes to the
records through a ``Recorder``. The context also holds the bench's timings (every duration from
a firmware profile is divided by the bench's ``time_scale``, 1 on a real bench) and the
interruptible sleep every wait goes through.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from rig.bench import Bench, Slot
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_types import Credentials
from rig.camera.profiles import FirmwareProfile, ProfileSet
from rig.camera.sadp import SadpDevice
from rig.census import Census, Interrupted
from rig.faults import BenchFault, UnitFault
from rig.hands import SlotHands
from rig.identity import NoRoute, UnitRoute, http_route, slot_interface
from rig.limits import Limits
from rig.logins import LoginAllowance
from rig.serialised import SlotTurn
from rig.verify import sharing_address

#: A unit gets this many times its profile's boot time (plus a fixed margin) to answer again.
BOOT_TIMEOUT_FACTOR = 2.0
BOOT_TIMEOUT_MARGIN_S = 30.0
#: ISAPI request timeout (real seconds; not scaled: it is a network bound, not a device time).
HTTP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Unit:
    """The unit in a slot as far as the rig knows it: its MAC (None until learned) and its SADP
    reply from before the reset (None when it was not seen)."""

    mac: str | None
    before: SadpDevice | None = None


@dataclass(frozen=True)
class SlotContext:
    """Everything a stage needs about one slot in one run. Built by the runner; never mutated.
    ``hands``, ``turn`` and ``logins`` are the slot's own devices (power and button; its
    serialised turn; the logins it may spend), ``limits`` and ``census`` are shared by the whole
    batch."""

    bench: Bench
    slot: Slot
    profile: FirmwareProfile
    profiles: ProfileSet
    hands: SlotHands
    turn: SlotTurn
    limits: Limits
    census: Census
    cancel: threading.Event
    logins: LoginAllowance
    credentials: Credentials | None = None

    # --- time ----------------------------------------------------------------------------------

    def scaled(self, seconds: float) -> float:
        return seconds / self.bench.time_scale

    def sleep(self, seconds: float) -> None:
        """Wait, unless the run is stopped first (raises Interrupted)."""
        if self.cancel.wait(seconds):
            raise Interrupted("run stopped")

    def after_power_on(self) -> float:
        """How long the unit needs from power-on (its place in the power-on schedule)."""
        return self.scaled(max(self.profile.boot_seconds, self.profile.hold_seconds[1]))

    def boot_timeout(self) -> float:
        return self.scaled(self.profile.boot_seconds * BOOT_TIMEOUT_FACTOR +
                           BOOT_TIMEOUT_MARGIN_S)

    def census_round(self) -> float:
        return self.census.interval + self.census.window

    # --- the unit's web server -----------------------------------------------------------------

    def route(self, mac: str, device: SadpDevice) -> UnitRoute:
        """The HTTP route to unit ``mac`` by the bench's identity strategy (raises NoRoute)."""
        sighting = self.census.last(mac)
        interface = slot_interface(self.bench, self.slot)
        return http_route(self.bench, self.slot, mac, device.ipv4, device.http_port or 80,
                          shared=self.turn.address,
                          heard_on=sighting.heard_on if sighting else (),
                          neighbours=self.census.heard_on(interface) if interface else ())

    def client(self, route: UnitRoute) -> IsapiClient:
        return IsapiClient.at(route.route, timeout=HTTP_TIMEOUT_S)

    def web_client(self, mac: str, device: SadpDevice) -> IsapiClient:
        """A client for a web reset: over the identity route, so a login or a factoryReset
        sent to a shared address never reaches another slot's unit."""
        try:
            route = self.route(mac, device)
        except NoRoute as exc:
            raise UnitFault.not_default("http-attribution",
                                        f"no route to this unit: {exc}") from exc
        sharing = sharing_address(device, self.census.present().values())
        if not route.claim.exclusive and sharing:   # the bench's setup, not the unit's fault
            raise BenchFault(f"{len(sharing) + 1} units answer on {device.ipv4} "
                             f"({', '.join(sharing)} too): a web request there could reach "
                             "another unit; use the hard method, or identity ipv6-link-local "
                             "or vlan")
        return self.client(route)

    def family_of(self, device: SadpDevice) -> FirmwareProfile:
        """The firmware family the unit's SADP reply shows; it overrules the bench file's."""
        return self.profiles.for_firmware(device.firmware or "") or self.profile

    def claimed(self) -> set[str]:
        """Units that belong to some slot: from the bench file or learned during this run."""
        return {s.mac for s in self.bench.slots if s.mac} | self.limits.learned
