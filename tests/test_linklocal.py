"""EUI-64 link-local addresses from MACs, scoped addresses and URLs, and the HTTP route a client
names in its evidence. Pure functions: no network."""

from __future__ import annotations

import ipaddress

import pytest

from rig.camera.linklocal import (
    authority,
    eui64_interface_id,
    eui64_link_local,
    is_link_local,
    link_local_url,
    scoped,
    split_zone,
)
from rig.camera.transport import Route


@pytest.mark.parametrize(("mac", "address"), [
    ("00:11:22:33:44:55", "fe80::211:22ff:fe33:4455"),      # RFC 4291 App. A style vector
    ("44:47:cc:00:00:0a", "fe80::4647:ccff:fe00:a"),
    ("44-47-CC-37-CE-81", "fe80::4647:ccff:fe37:ce81"),      # SADP's form
    ("4447cc37ce81", "fe80::4647:ccff:fe37:ce81"),
    ("02:00:00:00:00:01", "fe80::ff:fe00:1"),               # the U/L flip clears the bit
    ("ff:ff:ff:ff:ff:ff", "fe80::fdff:ffff:feff:ffff"),
])
def test_eui64_vectors(mac: str, address: str) -> None:
    assert eui64_link_local(mac) == address
    assert ipaddress.IPv6Address(address) in ipaddress.IPv6Network("fe80::/64")


def test_interface_id_is_the_mac_with_fffe_and_the_ul_bit_flipped() -> None:
    assert eui64_interface_id("00:11:22:33:44:55").hex() == "021122fffe334455"


@pytest.mark.parametrize("bad", ["", "00:11:22:33:44", "00:11:22:33:44:55:66", "zz:11:22:33:44:55"])
def test_not_a_mac_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="not a MAC"):
        eui64_link_local(bad)


@pytest.mark.parametrize(("host", "expected"), [
    ("fe80::1%eth0", ("fe80::1", "eth0")),
    ("[fe80::1%eth0.101]", ("fe80::1", "eth0.101")),
    ("[fe80::1%25eth0]", ("fe80::1", "eth0")),               # URL form (RFC 6874)
    ("fe80::1%25", ("fe80::1", "25")),                       # bare: interface index 25
    ("fe80::1%3", ("fe80::1", "3")),
    (" [::1] ", ("::1", None)),
    ("192.168.1.64", ("192.168.1.64", None)),
    ("camera.local", ("camera.local", None)),
])
def test_split_zone(host: str, expected: tuple[str, str | None]) -> None:
    assert split_zone(host) == expected


@pytest.mark.parametrize("bad", ["fe80::1%", "192.168.1.64%eth0", "camera%eth0"])
def test_split_zone_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        split_zone(bad)


def test_scoped_and_link_local() -> None:
    assert scoped("fe80::1", "eth0") == "fe80::1%eth0"
    assert scoped("fe80::1%eth0", "eth0") == "fe80::1%eth0"
    with pytest.raises(ValueError, match="already scoped"):
        scoped("fe80::1%eth1", "eth0")
    with pytest.raises(ValueError, match="not an interface"):
        scoped("fe80::1", "")
    assert is_link_local("fe80::1%eth0") and is_link_local("febf::1")
    assert not is_link_local("fec0::1") and not is_link_local("192.168.1.64")
    assert not is_link_local("camera.local")


def test_authority_and_url() -> None:
    assert authority("fe80::1", 80, zone="eth0") == "[fe80::1%eth0]:80"
    assert authority("fe80::1", 80, zone="eth0", url=True) == "[fe80::1%25eth0]:80"
    assert authority("fe80::1", 80, default_port=80) == "[fe80::1]"
    assert authority("192.168.1.64", 8080, default_port=80) == "192.168.1.64:8080"
    with pytest.raises(ValueError):
        authority("192.168.1.64", 80, zone="eth0")
    assert link_local_url("00:11:22:33:44:55", "eth0", "/ISAPI/System/deviceInfo") == \
        "http://[fe80::211:22ff:fe33:4455%25eth0]/ISAPI/System/deviceInfo"
    assert link_local_url("00:11:22:33:44:55", "eth0.101", "SDK/activateStatus", port=8080) == \
        "http://[fe80::211:22ff:fe33:4455%25eth0.101]:8080/SDK/activateStatus"


def test_route_names_what_evidence_shows() -> None:
    ll = Route.parse("fe80::4647:ccff:fe00:a%eth0", 80)
    assert ll.describe() == "[fe80::4647:ccff:fe00:a%eth0]:80"
    assert ll.host_header("http") == "[fe80::4647:ccff:fe00:a]"        # no zone id
    assert ll.url_authority() == "[fe80::4647:ccff:fe00:a%25eth0]:80"
    assert ll.interface is None                                         # scope id, no pinning
    vlan = Route.parse("192.168.1.64", 80, "eth0.101")
    assert vlan.describe() == "192.168.1.64:80 via eth0.101"
    assert vlan.host_header("http") == "192.168.1.64"
    assert Route.parse("192.168.1.64", 8080).host_header("http") == "192.168.1.64:8080"
    both = Route.parse("fe80::1", 80, "eth0")
    assert (both.zone, both.interface, both.describe()) == ("eth0", "eth0", "[fe80::1%eth0]:80")
    with pytest.raises(ValueError, match="needs a zone id"):
        Route.parse("fe80::1", 80)
    with pytest.raises(ValueError, match="scoped to 'eth1' but the interface is 'eth0'"):
        Route.parse("fe80::1%eth1", 80, "eth0")
