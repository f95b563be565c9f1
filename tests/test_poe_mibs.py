"""PoE MIB profiles: each module encodes and decodes its vendor's values and index the same way
the reference gives them (snmp-poe.md §1-2). Over-the-wire use is in test_poe_client.py."""

from __future__ import annotations

import pytest

from rig.actuators import poe_mibs
from rig.actuators.base import PowerState


def test_every_shipped_profile_loads_with_the_full_interface():
    assert poe_mibs.names() == ["cisco", "rfc3621", "tplink"]
    for name in poe_mibs.names():
        profile = poe_mibs.load(name)
        for on in (True, False):
            value = profile.admin_value(on)
            assert profile.admin_state(value) is (PowerState.ON if on else PowerState.OFF)
        suffix = profile.index(1, 7)
        assert profile.port_of(suffix) == (1, 7)
        assert profile.STATUS_COLUMN is not None
        assert profile.detection(-1)[0] is None, "an unknown status is not a verdict"


def test_unknown_profile_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown PoE MIB profile 'juniper'; choose from "
                                         r"cisco, rfc3621, tplink"):
        poe_mibs.load("juniper")
    with pytest.raises(ValueError):
        poe_mibs.load("../base")


def test_rfc3621_truth_values_and_detection_status():
    std = poe_mibs.load("rfc3621")
    assert std.ADMIN_COLUMN == (1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 3)
    assert std.STATUS_COLUMN == (1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 6)
    assert (std.admin_value(True), std.admin_value(False)) == (1, 2)
    assert std.admin_state(0) is PowerState.UNKNOWN
    assert std.index(2, 5) == (2, 5)
    assert std.detection(3) == (True, "deliveringPower")
    assert std.detection(2) == (False, "searching")
    assert std.detection(1) == (False, "disabled")
    assert std.detection(4) == (False, "fault")
    assert std.detection(9) == (None, "unknown detection status 9")


def test_cisco_auto_static_limit_are_on_and_disable_is_off():
    cisco = poe_mibs.load("cisco")
    assert cisco.ADMIN_COLUMN == (1, 3, 6, 1, 4, 1, 9, 9, 402, 1, 2, 1, 1)
    assert (cisco.admin_value(True), cisco.admin_value(False)) == (1, 4)
    assert [cisco.admin_state(v) for v in (1, 2, 3, 4, 5)] == [
        PowerState.ON, PowerState.ON, PowerState.ON, PowerState.OFF, PowerState.UNKNOWN]
    assert cisco.STATUS_COLUMN == poe_mibs.load("rfc3621").STATUS_COLUMN


def test_tplink_uses_zero_for_off_and_has_no_groups():
    tplink = poe_mibs.load("tplink")
    assert tplink.ADMIN_COLUMN == (1, 3, 6, 1, 4, 1, 11863, 6, 56, 1, 1, 2, 1, 1, 2)
    assert (tplink.admin_value(True), tplink.admin_value(False)) == (1, 0)
    assert tplink.admin_state(2) is PowerState.UNKNOWN
    assert tplink.index(1, 12) == (12,)
    assert tplink.port_of((1, 12)) is None
    with pytest.raises(ValueError, match="no groups"):
        tplink.index(2, 1)
    assert tplink.detection(2) == (True, "on")
    assert tplink.detection(1) == (False, "turning-on")
