"""The virtual PoE switch driven by net-snmp's snmpget/snmpset/snmpwalk, an independent client.

These do not use rig's PoE client, so a shared misunderstanding of the MIB cannot hide here. The
net-snmp tools come from the Debian package ``snmp``, which .ci/run installs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from rig.camera.profiles import ProfileSet
from rig.sim.camera import CameraState, VirtualCamera
from rig.sim.switch import (
    PETH_ADMIN_ENABLE,
    V3User,
    VirtualSwitch,
    columns_for,
    parse_mibs,
)

pytestmark = pytest.mark.skipif(
    shutil.which("snmpset") is None,
    reason="net-snmp's snmpget/snmpset/snmpwalk are missing (Debian package 'snmp'; .ci/run "
           "installs it)")

V3 = V3User("rig", "rig-auth-key-1", "rig-priv-key-1")
ADMIN = ".".join(map(str, PETH_ADMIN_ENABLE))
STATUS = "1.3.6.1.2.1.105.1.1.1.6"
CLASS = "1.3.6.1.2.1.105.1.1.1.10"
V3_ARGS = ("-v3", "-l", "authPriv", "-u", V3.name, "-a", "SHA", "-A", V3.auth_key, "-x", "AES",
           "-X", V3.priv_key)


def snmp(tool: str, sim: VirtualSwitch, *args: str,
         auth: tuple[str, ...] = ("-v2c", "-c", "private")) -> subprocess.CompletedProcess[str]:
    """Run one net-snmp tool against the switch: numeric OIDs, 1 s timeout, no retries."""
    return subprocess.run([tool, *auth, "-On", "-t", "1", "-r", "0",
                           f"127.0.0.1:{sim.udp_port}", *args],
                          capture_output=True, text=True, timeout=10)


def values(output: str) -> dict[str, str]:
    """``.oid = TYPE: value`` lines → {oid: value}."""
    found = {}
    for line in output.splitlines():
        oid, _, value = line.partition(" = ")
        found[oid.lstrip(".")] = value.split(": ", 1)[-1]
    return found


@pytest.fixture
def sim():
    with VirtualSwitch(8, v3_user=V3) as switch:
        yield switch


@pytest.fixture
def camera():
    return VirtualCamera(ProfileSet.load().get("current"), mac="44:47:cc:0b:00:01",
                         serial="DS-2CD2320D-I20240115AAWRE00000071", address="127.0.1.71",
                         http_port=0, time_scale=1000.0)


def test_snmpset_off_takes_the_power_from_the_attached_camera(sim, camera):
    sim.attach(3, camera)
    assert camera.powered and camera.wait_running(3)
    result = snmp("snmpset", sim, f"{ADMIN}.1.3", "i", "2")
    assert result.returncode == 0, result.stderr
    assert camera.state is CameraState.OFF
    assert not camera.powered
    assert snmp("snmpset", sim, f"{ADMIN}.1.3", "i", "1").returncode == 0
    assert camera.powered and camera.wait_running(3)


def test_snmpget_and_snmpwalk_see_the_port_table(sim, camera):
    sim.attach(2, camera, power_class=3)
    sim.set_enabled(4, False)
    got = snmp("snmpget", sim, f"{ADMIN}.1.2", f"{STATUS}.1.2", f"{CLASS}.1.2", f"{STATUS}.1.1",
               f"{STATUS}.1.4", auth=("-v2c", "-c", "public"))
    assert got.returncode == 0, got.stderr
    assert list(values(got.stdout).values()) == ["1", "3", "4", "2", "1"]
    walk = snmp("snmpwalk", sim, "1.3.6.1.2.1.105.1.1.1", auth=("-v2c", "-c", "public"))
    assert walk.returncode == 0, walk.stderr
    table = values(walk.stdout)
    assert len(table) == 3 * 8
    assert [table[f"{ADMIN}.1.{p}"] for p in range(1, 9)] == ["1", "1", "1", "2", "1", "1", "1",
                                                              "1"]
    bulk = snmp("snmpbulkwalk", sim, "1.3.6.1.2.1.105", auth=("-v2c", "-c", "public"))
    assert bulk.returncode == 0, bulk.stderr
    lines = bulk.stdout.splitlines()
    # port table + pethMainPseTable, then the end of the MIB, reported once (not once per
    # remaining repetition, which pysnmp's responder would do by itself)
    assert len(lines) == 3 * 8 + 3 + 1
    assert [i for i, line in enumerate(lines) if "No more variables" in line] == [27]


def test_snmp_v3_auth_priv_sha_aes(sim):
    got = snmp("snmpget", sim, f"{ADMIN}.1.1", auth=V3_ARGS)
    assert got.returncode == 0, got.stderr
    assert values(got.stdout) == {f"{ADMIN}.1.1": "1"}
    assert snmp("snmpset", sim, f"{ADMIN}.1.1", "i", "2", auth=V3_ARGS).returncode == 0
    assert sim.state(1).enabled is False
    wrong = list(V3_ARGS)
    wrong[wrong.index(V3.auth_key)] = "wrong-auth-key"
    refused = snmp("snmpget", sim, f"{ADMIN}.1.1", auth=tuple(wrong))
    assert refused.returncode != 0
    assert "Authentication failure" in refused.stderr


@pytest.mark.parametrize(("field", "wrong", "report"), [
    ("user", "nobody", "Unknown user name"),                  # usmStatsUnknownUserNames
    ("auth", "wrong-auth-key", "Authentication failure"),     # usmStatsWrongDigests
    ("priv", "wrong-priv-key", "Decryption error"),           # usmStatsDecryptionErrors
])
def test_each_v3_refusal_is_reported_by_its_own_usm_counter(sim, field, wrong, report):
    """net-snmp names a refusal after the counter OID in the agent's Report PDU, so the rig
    doctor's three SNMPv3 diagnoses rest on what the simulated switch sends, not on rig's
    client (RFC 3414 section 3.2)."""
    args = list(V3_ARGS)
    current = {"user": V3.name, "auth": V3.auth_key, "priv": V3.priv_key}[field]
    args[args.index(current)] = wrong
    refused = snmp("snmpget", sim, f"{ADMIN}.1.1", auth=tuple(args))
    assert refused.returncode != 0
    assert report in refused.stderr, refused.stderr
    others = {"Unknown user name", "Authentication failure", "Decryption error"} - {report}
    assert not any(o in refused.stderr for o in others)


def test_a_set_is_all_or_nothing_and_names_the_bad_varbind(sim):
    result = snmp("snmpset", sim, f"{ADMIN}.1.1", "i", "2", f"{ADMIN}.1.2", "i", "7",
                  f"{ADMIN}.1.3", "i", "2")
    assert result.returncode != 0
    assert "wrongValue" in result.stderr
    assert f"Failed object: .{ADMIN}.1.2" in result.stderr
    assert all(sim.state(p).enabled for p in (1, 2, 3))
    assert sim.stats.set_pdus == 1 and sim.stats.set_varbinds == 3


@pytest.mark.parametrize(("args", "status", "failed"), [
    ((f"{ADMIN}.1.1", "i", "2", f"{STATUS}.1.1", "i", "1"), "notWritable", f"{STATUS}.1.1"),
    ((f"{ADMIN}.1.1", "s", "off"), "wrongType", f"{ADMIN}.1.1"),
    ((f"{ADMIN}.1.1", "i", "2", f"{ADMIN}.1.9", "i", "2"), "noCreation", f"{ADMIN}.1.9"),
    (("1.3.6.1.2.1.1.5.0", "s", "renamed"), "notWritable", "1.3.6.1.2.1.1.5.0"),
])
def test_set_errors_carry_the_real_error_status(sim, args, status, failed):
    result = snmp("snmpset", sim, *args)
    assert result.returncode != 0
    assert status in result.stderr
    assert f"Failed object: .{failed}" in result.stderr
    assert sim.state(1).enabled is True


def test_read_only_community_may_read_but_not_write(sim):
    assert snmp("snmpget", sim, f"{ADMIN}.1.1", auth=("-v2c", "-c", "public")).returncode == 0
    result = snmp("snmpset", sim, f"{ADMIN}.1.1", "i", "2", auth=("-v2c", "-c", "public"))
    assert result.returncode != 0 and "noAccess" in result.stderr
    assert sim.state(1).enabled is True


def test_a_locked_port_refuses_writes(sim):
    sim.set_writable(5, False)
    result = snmp("snmpset", sim, f"{ADMIN}.1.4", "i", "2", f"{ADMIN}.1.5", "i", "2")
    assert "notWritable" in result.stderr and f"Failed object: .{ADMIN}.1.5" in result.stderr
    assert sim.state(4).enabled and sim.state(5).enabled


def test_snmpv1_gets_no_such_name_for_a_missing_port(sim):
    result = snmp("snmpget", sim, f"{ADMIN}.1.9", auth=("-v1", "-c", "public"))
    assert result.returncode != 0 and "noSuchName" in result.stderr
    assert snmp("snmpset", sim, f"{ADMIN}.1.6", "i", "2",
                auth=("-v1", "-c", "private")).returncode == 0
    assert sim.state(6).enabled is False


def test_cisco_view_is_writable_and_shares_the_port_state(camera):
    cisco = "1.3.6.1.4.1.9.9.402.1.2.1.1"
    with VirtualSwitch(4, mibs=parse_mibs("both")) as sim:
        sim.attach(1, camera)
        assert snmp("snmpset", sim, f"{cisco}.1.1", "i", "4").returncode == 0
        assert not camera.powered
        got = snmp("snmpget", sim, f"{ADMIN}.1.1", f"{cisco}.1.1", f"{STATUS}.1.1")
        assert list(values(got.stdout).values()) == ["2", "4", "1"]
        assert snmp("snmpset", sim, f"{cisco}.1.1", "i", "2").returncode == 0   # static = on
        assert camera.powered


def test_ports_start_enabled_unless_configured_otherwise():
    with VirtualSwitch(2) as on, VirtualSwitch(2, enabled=False) as off:
        assert values(snmp("snmpget", on, f"{ADMIN}.1.1").stdout) == {f"{ADMIN}.1.1": "1"}
        assert values(snmp("snmpget", off, f"{ADMIN}.1.1").stdout) == {f"{ADMIN}.1.1": "2"}


def test_stop_is_prompt_and_frees_the_port():
    sim = VirtualSwitch(2).start()
    port = sim.udp_port
    assert snmp("snmpget", sim, f"{ADMIN}.1.1").returncode == 0
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.0
    assert not sim.running
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", port))
    sim.stop()


def test_a_port_in_use_fails_at_start():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(OSError):
            VirtualSwitch(2, udp_port=taken.getsockname()[1]).start()


def test_configuration_errors_are_refused_before_anything_binds():
    with pytest.raises(ValueError, match="unknown MIB view"):
        columns_for(["hp"])
    with pytest.raises(ValueError, match="must differ"):
        VirtualSwitch(2, community_ro="same", community_rw="same")
    with pytest.raises(ValueError, match="at least 8"):
        V3User("rig", "short", "rig-priv-key-1")
    assert parse_mibs("both,tplink") == ("rfc3621", "cisco", "tplink")
