"""How the controller reaches ONE unit's web server when every reset unit answers on the same
address (192.168.1.64): the bench's identity strategy turns a unit known by its SADP MAC into
an HTTP route that only that unit can answer on, and says why.

- ``ipv6-link-local``: the unit's EUI-64 link-local address, derived from the MAC in its SADP
  reply and scoped to the bench interface. Only the unit with that MAC holds that address.
- ``vlan``: the slot's own VLAN on the switch, reached through the controller's sub-interface
  ``<interface>.<vlan>``; only the slot's port is in that VLAN.
- ``serialised``: the unit's IPv4 address while it is the only unit powered on it (the runner's
  address turns, rig.limits.AddressTurns); the census must show nobody else there.

Whatever the route, an answer that names another unit (deviceInfo's macAddress) is rejected:
the route is a claim, the answer's content is the check (rig.verify).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from rig.bench import Bench, Slot
from rig.camera.linklocal import eui64_link_local
from rig.camera.transport import Route
from rig.vocabulary import IdentityStrategy, RouteKind


@dataclass(frozen=True)
class Claim:
    """Why an answer on a route is this unit's: the route's kind, the reason in words, and
    whether the route alone attributes the answer (``exclusive``) or the census must also show
    nobody else on the address (serialised, own address)."""

    kind: RouteKind
    how: str
    exclusive: bool


@dataclass(frozen=True)
class UnitRoute:
    """One unit's web server as the controller reaches it: the transport's own ``Route`` (no
    zone id formatted into a host string) and the claim that only this unit answers there."""

    route: Route
    claim: Claim

    @property
    def target(self) -> str:
        return self.route.describe()

    def to_json(self) -> dict[str, Any]:
        return {"strategy": str(self.claim.kind), "target": self.target, "how": self.claim.how,
                "exclusive": self.claim.exclusive}


class NoRoute(ValueError):
    """The strategy cannot reach this unit (no interface configured, no VLAN for the slot)."""


def slot_interface(bench: Bench, slot: Slot) -> str | None:
    """The controller's sub-interface for ``slot`` on a VLAN bench (``eth0.101``)."""
    if (bench.network.identity != IdentityStrategy.VLAN or slot.vlan is None
            or not bench.network.interface):
        return None
    return f"{bench.network.interface}.{slot.vlan}"


def http_route(bench: Bench, slot: Slot, mac: str, ipv4: str | None, port: int, *,
               shared: str | None, heard_on: tuple[str, ...] = (),
               neighbours: Collection[str] = ()) -> UnitRoute:
    """The route to the unit ``mac`` in ``slot`` (its SADP reply gave ``ipv4`` and ``port``).
    ``shared`` is the address the unit shares with other slots on a serialised bench (its
    address turn), None when it is alone on its address. ``heard_on``: the interfaces the
    census last heard the unit on, ``neighbours``: the other units heard on the slot's own
    interface (a VLAN bench: there must be none). Raises NoRoute."""
    strategy = bench.network.identity
    if strategy == IdentityStrategy.IPV6_LINK_LOCAL:
        return _link_local(bench, mac, port)
    if not ipv4:
        raise NoRoute(f"the unit's SADP reply gives no IPv4 address ({strategy} needs one)")
    if strategy == IdentityStrategy.VLAN:
        return _vlan(bench, slot, mac, ipv4, port, heard_on, neighbours)
    if shared is not None and ipv4 == shared:
        return UnitRoute(Route(ipv4, port), Claim(
            RouteKind.SERIALISED, f"the only unit powered on {shared} during its turn (the "
                                  "others parked)", exclusive=False))
    return UnitRoute(Route(ipv4, port), Claim(
        RouteKind.OWN_ADDRESS, f"{ipv4} is this unit's own address on the bench",
        exclusive=False))


def _link_local(bench: Bench, mac: str, port: int) -> UnitRoute:
    """fe80:: + EUI-64 of the MAC, scoped to the bench interface: only that MAC holds it."""
    interface = bench.network.interface
    if not interface:
        raise NoRoute("identity ipv6-link-local needs [network] interface (the link-local "
                      "zone)")
    address = eui64_link_local(mac)
    return UnitRoute(Route(address, port, zone=interface), Claim(
        RouteKind.IPV6_LINK_LOCAL,
        f"{address} is the EUI-64 link-local address of {mac} on {interface}", exclusive=True))


def _vlan(bench: Bench, slot: Slot, mac: str, ipv4: str, port: int,
          heard_on: tuple[str, ...], neighbours: Collection[str]) -> UnitRoute:
    """The slot's VLAN sub-interface, if the unit answered there and nobody else did."""
    interface = slot_interface(bench, slot)
    if interface is None:
        raise NoRoute(f"identity vlan needs [network] interface and a vlan for slot "
                      f"{slot.name}")
    if interface not in heard_on:
        where = ", ".join(heard_on) or "no slot interface"
        raise NoRoute(f"unit {mac} answers SADP on {where}, not on slot {slot.name}'s "
                      f"{interface}: is it in the right slot?")
    others = sorted(set(neighbours) - {mac})
    if others:
        raise NoRoute(f"{len(others) + 1} units answer on {interface} ({', '.join(others)} "
                      f"besides {mac}): VLAN {slot.vlan} does not isolate slot "
                      f"{slot.name}, so an answer there is nobody's in particular")
    return UnitRoute(Route(ipv4, port, interface=interface), Claim(
        RouteKind.VLAN, f"only slot {slot.name}'s port is in VLAN {slot.vlan}, reached "
                        f"through {interface}", exclusive=True))
