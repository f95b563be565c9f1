"""Identity strategies without a network: which HTTP route each one picks, what it needs, and
how the verifier weighs a route against the answer's own deviceInfo MAC."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_verify import ACCEPTED, FACTORY, FULL, MAC, PROFILES, http, info, logged_in, sadp

from rig.bench import Bench, NetworkConfig, load_bench
from rig.identity import NoRoute, http_route
from rig.verify import judge

BENCHES = Path(__file__).parent.parent / "hardware" / "benches"


def bench(identity: str, interface: str | None = "eth0") -> Bench:
    base = load_bench(BENCHES / "poe-gpio-8.toml")
    return dataclasses.replace(base, network=NetworkConfig(interface=interface,
                                                           address="192.168.1.2",
                                                           identity=identity))


def test_link_local_route_is_the_eui64_of_the_sadp_mac_on_the_bench_interface():
    b = bench("ipv6-link-local")
    route = http_route(b, b.slots[0], "44:47:cc:37:ce:81", "192.168.1.64", 80, shared=None)
    assert (route.route.host, route.route.zone) == ("fe80::4647:ccff:fe37:ce81", "eth0")
    assert route.claim.exclusive and route.route.interface is None
    assert route.target == "[fe80::4647:ccff:fe37:ce81%eth0]:80"
    assert "EUI-64" in route.claim.how and "44:47:cc:37:ce:81" in route.claim.how
    with pytest.raises(NoRoute, match="needs \\[network\\] interface"):
        b2 = bench("ipv6-link-local", interface=None)
        http_route(b2, b2.slots[0], MAC, "192.168.1.64", 80, shared=None)


def test_vlan_route_goes_through_the_slots_own_interface_and_only_if_heard_there():
    b = bench("vlan")
    slot = b.slots[2]
    assert slot.vlan is not None
    own = f"eth0.{slot.vlan}"
    route = http_route(b, slot, MAC, "192.168.1.64", 80, shared=None, heard_on=(own,))
    assert (route.route.host, route.route.interface, route.claim.exclusive) == (
        "192.168.1.64", own, True)
    assert route.target == f"192.168.1.64:80 via {own}"
    with pytest.raises(NoRoute, match="is it in the right slot"):
        http_route(b, slot, MAC, "192.168.1.64", 80, shared=None, heard_on=("eth0.199",))


def test_serialised_route_needs_the_census_to_show_the_unit_alone():
    b = bench("serialised")
    route = http_route(b, b.slots[0], MAC, "192.168.1.64", 80, shared="192.168.1.64")
    assert route.claim.kind == "serialised" and not route.claim.exclusive
    lone = http_route(b, b.slots[0], MAC, "127.0.1.9", 80, shared=None)
    assert lone.claim.kind == "own-address"
    with pytest.raises(NoRoute, match="no IPv4"):
        http_route(b, b.slots[0], MAC, None, 80, shared=None)


def test_an_exclusive_route_credits_an_answer_unless_deviceinfo_names_another_unit():
    b = bench("ipv6-link-local")
    route = http_route(b, b.slots[0], MAC, "192.168.1.64", 80, shared=None)
    crowd = [sadp(mac=f"44:47:cc:00:00:{n:02x}") for n in range(2, 9)]   # all on .64 too
    legacy = PROFILES.get("legacy")
    ok = judge(mac=MAC, profile=legacy, expect=FULL, after=sadp(),
               http=logged_in(FACTORY, ACCEPTED, device_info=info()), others=crowd,
               claim=route.claim)
    assert ok.passed, ok.reason
    other = judge(mac=MAC, profile=legacy, expect=FULL, after=sadp(),
                  http=logged_in(FACTORY, ACCEPTED, device_info=info("44:47:cc:00:00:07")),
                  others=crowd, claim=route.claim)
    assert not other.passed and other.check == "http-attribution"
    assert "another unit answered" in other.reason
    current = PROFILES.get("current")
    no_info = judge(mac=MAC, profile=current, expect=FULL, after=sadp(),
                    http=http(), others=crowd, claim=route.claim)
    assert no_info.passed, "the link-local address itself attributes an inactive unit"
    naive = judge(mac=MAC, profile=current, expect=FULL, after=sadp(),
                  http=http(), others=crowd,
                  claim=http_route(bench("serialised"), b.slots[0], MAC, "192.168.1.64", 80,
                                   shared="192.168.1.64").claim)
    assert not naive.passed and "8 units answer on 192.168.1.64" in naive.reason


def test_a_vlan_that_holds_two_units_attributes_nothing():
    b = bench("vlan")
    slot = b.slots[0]
    own = f"eth0.{slot.vlan}"
    with pytest.raises(NoRoute, match="2 units answer on eth0.101 .* does not isolate"):
        http_route(b, slot, MAC, "192.168.1.64", 80, shared=None, heard_on=(own,),
                   neighbours=[MAC, "44:47:cc:00:00:99"])
    route = http_route(b, slot, MAC, "192.168.1.64", 80, shared=None, heard_on=(own,),
                       neighbours=[MAC])
    assert route.claim.exclusive


def test_a_unit_on_its_own_address_is_not_described_as_a_serialised_turn():
    b = bench("serialised")
    route = http_route(b, b.slots[0], MAC, "10.1.2.3", 80, shared="192.168.1.64")
    assert route.claim.kind == "own-address"
