"""The PoE client (rig.actuators.poe) against the virtual switch over real UDP on 127.0.0.1.

Every test starts its own agent on an ephemeral port. Timeouts are short (0.3-0.5 s, one retry)
so the failure cases stay fast while still going through pysnmp's real retry logic.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from rig.actuators.base import ActuatorError, PowerControl, PowerReading, PowerState
from rig.actuators.poe import (
    PoeSwitch,
    PortRestoreError,
    PortVerifyError,
    SnmpAuthError,
    SnmpError,
    SnmpTimeout,
)
from rig.sim.switch import V3User, VirtualSwitch

V3 = V3User("rig", "rig-auth-key-1", "rig-priv-key-1")
ADMIN = "1.3.6.1.2.1.105.1.1.1.3"


@pytest.fixture
def sim():
    with VirtualSwitch(8, v3_user=V3) as switch:
        yield switch


def client(sim: VirtualSwitch, **options) -> PoeSwitch:
    options.setdefault("timeout", 0.5)
    host, port = sim.address
    return PoeSwitch(host, port, **options)


def v3_client(sim: VirtualSwitch, **options) -> PoeSwitch:
    options = {"version": "3", "user": V3.name, "auth_key": V3.auth_key,
               "priv_key": V3.priv_key, **options}
    return client(sim, **options)


def test_v2c_set_and_read_back(sim):
    with client(sim) as poe:
        before = poe.read_ports([3])
        assert before[3].state is PowerState.ON
        poe.set_port(3, False)
        assert sim.state(3).enabled is False
        assert sim.state(2).enabled is True
        assert poe.read_ports([3])[3].state is PowerState.OFF
        assert poe.turned_off == {3}
        poe.set_port(3, True)
        assert sim.state(3).enabled is True
        assert poe.turned_off == frozenset()


def test_detection_status_follows_power_and_plug_in(sim):
    seen: list[bool] = []
    with client(sim) as poe:
        assert poe.read_ports([1])[1] == PowerReading(PowerState.ON, False, "searching")
        sim.attach(1, seen.append)
        assert poe.read_ports([1])[1] == PowerReading(PowerState.ON, True, "deliveringPower")
        poe.set_port(1, False)
        assert poe.read_ports([1])[1] == PowerReading(PowerState.OFF, False, "disabled")
        poe.set_port(1, True)
        sim.detach(1)
        assert poe.read_ports([1])[1] == PowerReading(PowerState.ON, False, "searching")
    assert seen == [True, False, True, False]


def test_v3_auth_priv_sha_aes(sim):
    with v3_client(sim) as poe:
        poe.set_ports({2: False, 5: False})
        assert [sim.state(p).enabled for p in (2, 5, 6)] == [False, False, True]
        readings = poe.read_ports([2, 5, 6])
        assert [readings[p].state for p in (2, 5, 6)] == [PowerState.OFF, PowerState.OFF,
                                                          PowerState.ON]
    assert sim.stats.set_pdus == 1


def test_48_ports_switched_in_one_set_request_and_read_back():
    with VirtualSwitch(48) as sim, client(sim) as poe:
        assert poe.walk_ports() == [(1, p) for p in range(1, 49)]
        sets_before = sim.stats.set_pdus
        poe.set_ports({p: p % 2 == 0 for p in range(1, 49)})
        assert sim.stats.set_pdus - sets_before == 1, "all 48 ports must go in ONE SET PDU"
        assert sim.stats.set_varbinds == 48
        assert [sim.state(p).enabled for p in range(1, 49)] == [p % 2 == 0 for p in range(1, 49)]
        readings = poe.read_ports(range(1, 49))
        assert [readings[p].state is PowerState.ON for p in range(1, 49)] == \
            [p % 2 == 0 for p in range(1, 49)]
        assert poe.turned_off == {p for p in range(1, 49) if p % 2}
        assert poe.restore_ports() == [p for p in range(1, 49) if p % 2]
        assert sim.stats.set_pdus - sets_before == 2
        assert all(sim.state(p).enabled for p in range(1, 49))


def test_poe_port_is_a_power_control(sim):
    with client(sim, name="slot-switch") as poe:
        port = poe.port(4)
        assert isinstance(port, PowerControl)
        assert "slot-switch" in port.name and "port 4" in port.name
        port.off()
        assert port.read().state is PowerState.OFF
        port.on()
        assert port.read().state is PowerState.ON
        port.close()
        with pytest.raises(ActuatorError, match="closed"):
            port.off()
        assert sim.state(4).enabled is True


def test_calls_from_many_threads_share_one_engine(sim):
    errors: list[BaseException] = []
    with client(sim) as poe:
        def toggle(port: int) -> None:
            try:
                for _ in range(3):
                    poe.set_port(port, False)
                    poe.set_port(port, True)
                poe.set_port(port, port % 2 == 0)
            except BaseException as exc:  # noqa: BLE001 - reported by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=toggle, args=(p,)) for p in range(1, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert errors == []
        assert [sim.state(p).enabled for p in range(1, 9)] == [p % 2 == 0 for p in range(1, 9)]
        assert poe.turned_off == {1, 3, 5, 7}
    assert not [t for t in threading.enumerate() if t.name.startswith("poe-")], \
        "close() must end the loop thread"


def _from_threads(count: int, action) -> list[BaseException | None]:
    """Run action(port) for ports 1..count in threads released together; each port's error."""
    errors: list[BaseException | None] = [None] * count
    barrier = threading.Barrier(count)

    def run(port: int) -> None:
        barrier.wait(5)
        try:
            action(port)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors[port - 1] = exc

    threads = [threading.Thread(target=run, args=(p,)) for p in range(1, count + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return errors


def test_a_bench_powering_off_at_once_shares_a_few_set_requests():
    """48 slots asking at the same moment: group commit, not 48 SETs queued one behind another."""
    with VirtualSwitch(48) as sim, client(sim) as poe:
        ports = {p: poe.port(p) for p in range(1, 49)}
        before = sim.stats.set_pdus
        assert _from_threads(48, lambda p: ports[p].off()) == [None] * 48
        assert all(not sim.state(p).enabled for p in range(1, 49))
        assert sim.stats.set_pdus - before <= 4, sim.stats
        assert poe.turned_off == set(range(1, 49))
        assert _from_threads(48, lambda p: ports[p].on()) == [None] * 48
        assert all(sim.state(p).enabled for p in range(1, 49))
        assert poe.turned_off == frozenset()


def test_a_locked_port_in_a_shared_set_fails_only_its_own_caller(sim):
    sim.set_writable(5, False)
    with client(sim) as poe:
        errors = _from_threads(8, lambda p: poe.set_port(p, False))
        assert isinstance(errors[4], SnmpError) and "notWritable" in str(errors[4])
        assert errors[4].port == 5 or "port 5" in str(errors[4])
        assert [e for i, e in enumerate(errors) if i != 4] == [None] * 7
    assert [sim.state(p).enabled for p in range(1, 9)] == [False] * 4 + [True] + [False] * 3


def test_a_port_that_will_not_stay_off_fails_only_its_own_caller(sim):
    sim.attach(6, lambda on: None if on else sim.set_enabled(6, True))
    with client(sim) as poe:
        errors = _from_threads(8, lambda p: poe.set_port(p, False))
        assert isinstance(errors[5], PortVerifyError) and errors[5].port == 6
        assert "port 6 reads on" in str(errors[5])
        assert [e for i, e in enumerate(errors) if i != 5] == [None] * 7


def test_with_the_agent_gone_every_caller_gets_its_own_timeout(sim):
    poe = client(sim, timeout=0.3, retries=0)
    try:
        poe.read_ports([1])
        sim.stop()
        errors = _from_threads(4, lambda p: poe.set_port(p, False))
    finally:
        poe.close()
    assert all(isinstance(e, SnmpTimeout) for e in errors)
    assert len({id(e) for e in errors}) == 4, "threads must not share one exception object"


def test_power_ons_never_share_a_set_the_schedule_spaced_them(sim):
    """Inrush: a slow SET must not bunch power-ons the bench spaced apart into one request."""
    with client(sim) as poe:
        poe.set_ports(dict.fromkeys(range(1, 9), False))
        before = sim.stats.set_pdus
        assert _from_threads(8, lambda p: poe.set_port(p, True)) == [None] * 8
        assert sim.stats.set_pdus - before == 8
        assert all(sim.state(p).enabled for p in range(1, 9))


def test_a_refused_batch_retried_port_by_port_stops_at_the_first_timeout(sim, monkeypatch):
    calls: list[dict] = []

    def fake(states):
        calls.append(dict(states))
        if len(calls) == 1:
            time.sleep(0.3)                  # the others queue up behind this one
            return
        if len(calls) == 2:
            raise SnmpError("sw", "refused", status="notWritable")
        raise SnmpTimeout("sw", "no answer")

    with client(sim) as poe:
        monkeypatch.setattr(poe, "set_ports", fake)
        errors = _from_threads(6, lambda p: poe.set_port(p, False))
    assert len(calls[1]) == 5, calls
    assert len(calls) == 3, "after the agent went silent, no port waits for its own timeout"
    assert sorted(type(e).__name__ for e in errors) == ["NoneType"] + ["SnmpTimeout"] * 5


def test_an_unexpected_error_never_reads_as_success_to_the_other_callers(sim, monkeypatch):
    def broken(states):
        raise RuntimeError("bug")

    with client(sim) as poe:
        monkeypatch.setattr(poe, "set_ports", broken)
        errors = _from_threads(4, lambda p: poe.set_port(p, False))
    assert all(e is not None for e in errors)
    assert any(isinstance(e, RuntimeError) for e in errors)


def test_closed_switch_refuses_requests(sim):
    poe = client(sim)
    poe.read_ports([1])
    poe.close()
    poe.close()
    with pytest.raises(ActuatorError, match="closed"):
        poe.read_ports([1])


# --- errors ---------------------------------------------------------------------------------------


def test_agent_stopped_times_out_within_the_retry_bound(sim):
    poe = client(sim, timeout=0.3, retries=1)
    try:
        poe.read_ports([1])             # engine up and warm
        sim.stop()
        started = time.monotonic()
        with pytest.raises(SnmpTimeout) as caught:
            poe.set_port(2, False)
        elapsed = time.monotonic() - started
    finally:
        poe.close()
    assert 0.5 <= elapsed < 0.3 * 2 + 0.7
    message = str(caught.value)
    assert f"127.0.0.1:{sim.udp_port}" in message
    assert "port 2" in message and f"{ADMIN}.1.2" in message
    assert "timeout (wrong community or agent down)" in message
    assert "2 tries of 0.3 s" in message


def test_wrong_community_is_reported_as_a_timeout_that_says_so(sim):
    with client(sim, community="not-the-community", timeout=0.3) as poe:
        with pytest.raises(SnmpTimeout, match=r"wrong community or agent down"):
            poe.read_ports([1])
    assert sim.stats.get_pdus == 0


def test_read_only_community_cannot_switch_ports(sim):
    with client(sim, community="public") as poe:
        assert poe.read_ports([1])[1].state is PowerState.ON
        with pytest.raises(SnmpError, match=r"noAccess at varbind 1, port 1") as caught:
            poe.set_port(1, False)
        assert caught.value.status == "noAccess"
        assert poe.turned_off == frozenset(), "a refused SET changed nothing"
    assert sim.state(1).enabled is True


def test_nonexistent_port_is_named(sim):
    with client(sim) as poe:
        with pytest.raises(SnmpError, match=r"no such instance 1\.3\.6\.1\.2\.1\.105\.1\.1\.1"
                                             r"\.3\.1\.99: the switch has no port 1\.99"):
            poe.read_ports([99])
        with pytest.raises(SnmpError, match=r"noCreation at varbind 2, port 99") as caught:
            poe.set_ports({2: False, 99: False})
        assert caught.value.port == 99
        assert caught.value.oid == (1, 3, 6, 1, 2, 1, 105, 1, 1, 1, 3, 1, 99)
        assert poe.turned_off == frozenset()
    assert sim.state(2).enabled is True, "the SET is all or nothing"


def test_unknown_oid_points_at_the_mib_profile():
    with VirtualSwitch(4, mibs=("cisco",)) as sim, client(sim) as poe:
        with pytest.raises(SnmpError, match=r"no such object .*wrong MIB profile 'rfc3621'"):
            poe.read_ports([1])
        with pytest.raises(SnmpError, match=r"notWritable at varbind 1"):
            poe.set_port(1, False)
        with pytest.raises(SnmpError, match=r"no PoE ports under 1\.3\.6\.1\.2\.1\.105"):
            poe.walk_ports()


def test_wrong_v3_auth_key(sim):
    with v3_client(sim, auth_key="not-the-auth-key") as poe:
        with pytest.raises(SnmpAuthError, match=r"wrong auth key .*usmStatsWrongDigests"):
            poe.set_port(1, False)
        assert poe.turned_off == frozenset()
    assert sim.state(1).enabled is True
    assert sim.stats.set_pdus == 0


def test_wrong_v3_priv_key(sim):
    with v3_client(sim, priv_key="not-the-priv-key") as poe:
        with pytest.raises(SnmpAuthError, match=r"usmStatsDecryptionErrors"):
            poe.read_ports([1])


def test_v3_needs_explicit_keys_and_known_protocols():
    with pytest.raises(ValueError, match="authPriv"):
        PoeSwitch("127.0.0.1", version="3", user="rig", auth_key="rig-auth-key-1")
    with pytest.raises(ValueError, match="auth_protocol 'sha1'"):
        PoeSwitch("127.0.0.1", version="3", user="rig", auth_key="rig-auth-key-1",
                  priv_key="rig-priv-key-1", auth_protocol="sha1")
    with pytest.raises(ValueError, match="at least 8"):
        PoeSwitch("127.0.0.1", version="3", user="rig", auth_key="short",
                  priv_key="rig-priv-key-1")
    with pytest.raises(ValueError, match="unknown PoE MIB profile 'hp'"):
        PoeSwitch("127.0.0.1", mib="hp")


def test_read_back_mismatch_raises(sim):
    # A switch policy that forces port 6 straight back on: the SET is accepted, the port is not off.
    sim.attach(6, lambda on: None if on else sim.set_enabled(6, True))
    with client(sim) as poe:
        with pytest.raises(PortVerifyError, match=r"port 6 reads on") as caught:
            poe.set_port(6, False)
        assert caught.value.port == 6
        assert poe.turned_off == frozenset()


# --- restore --------------------------------------------------------------------------------------


def test_restore_turns_back_on_only_what_this_rig_turned_off(sim):
    sim.set_enabled(8, False)                    # off before the rig came: not ours to restore
    with client(sim) as poe:
        poe.set_ports({1: False, 2: False, 3: False})
        poe.set_port(2, True)
        assert poe.restore_ports() == [1, 3]
        assert poe.restore_ports() == []
    assert [sim.state(p).enabled for p in range(1, 9)] == [True] * 7 + [False]


def test_restore_names_the_port_the_agent_refuses_and_restores_the_rest(sim, caplog):
    unrestored: list[tuple[int, Exception]] = []
    with client(sim) as poe:
        poe.set_ports({4: False, 5: False, 6: False})
        sim.set_writable(5, False)
        with caplog.at_level(logging.ERROR, logger="rig.actuators.poe"):
            with pytest.raises(PortRestoreError, match=r"port\(s\) 5 LEFT UNPOWERED") as caught:
                poe.restore_ports(lambda port, error: unrestored.append((port, error)))
        assert caught.value.ports == (5,)
        assert "notWritable" in str(caught.value.errors[5])
        assert poe.turned_off == {5}
    assert [sim.state(p).enabled for p in (4, 5, 6)] == [True, False, True]
    assert [port for port, _ in unrestored] == [5]
    assert isinstance(unrestored[0][1], SnmpError)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "PORT 5 LEFT UNPOWERED" in errors[0].getMessage()


def test_restore_with_the_agent_gone_names_every_port_without_waiting_per_port(sim, caplog):
    poe = client(sim, timeout=0.3, retries=1)
    try:
        poe.set_ports({2: False, 7: False})
        sim.stop()
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="rig.actuators.poe"):
            with pytest.raises(PortRestoreError, match=r"port\(s\) 2, 7 LEFT UNPOWERED") as caught:
                poe.restore_ports()
        assert time.monotonic() - started < 0.3 * 2 + 0.7
    finally:
        poe.close()
    assert all(isinstance(e, SnmpTimeout) for e in caught.value.errors.values())
    assert {r.getMessage().split("PORT ")[1][:1] for r in caplog.records
            if r.levelno == logging.ERROR} == {"2", "7"}


def test_a_failing_callback_does_not_hide_the_other_ports(sim):
    with client(sim) as poe:
        poe.set_ports({1: False, 2: False})
        sim.set_writable(1, False)
        sim.set_writable(2, False)
        calls: list[int] = []

        def callback(port: int, error: Exception) -> None:
            calls.append(port)
            raise RuntimeError("records store down")

        with pytest.raises(PortRestoreError) as caught:
            poe.restore_ports(callback)
    assert calls == [1, 2]
    assert caught.value.ports == (1, 2)


# --- vendor profiles and discovery ----------------------------------------------------------------


@pytest.mark.parametrize("mib", ["cisco", "tplink"])
def test_vendor_profile_switches_the_vendor_column(mib):
    powered: list[bool] = []
    with VirtualSwitch(4, mibs=(mib,)) as sim, client(sim, mib=mib) as poe:
        sim.attach(3, powered.append)
        assert poe.read_ports([3])[3].drawing_power is True
        poe.set_port(3, False)
        assert sim.state(3).enabled is False
        reading = poe.read_ports([3])[3]
        assert (reading.state, reading.drawing_power) == (PowerState.OFF, False)
        poe.restore_ports()
        assert poe.read_ports([3])[3].drawing_power is True
        assert poe.walk_ports() == [(1, p) for p in range(1, 5)]
    assert powered == [True, False, True]


def test_both_views_share_one_port_state():
    with VirtualSwitch(4, mibs=("rfc3621", "cisco")) as sim:
        with client(sim, mib="cisco") as cisco, client(sim) as standard:
            cisco.set_port(2, False)
            assert standard.read_ports([2])[2].state is PowerState.OFF
            standard.set_port(2, True)
            assert cisco.read_ports([2])[2].state is PowerState.ON


def test_walk_ports_reports_the_group():
    with VirtualSwitch(3, group=2) as sim, client(sim, group=2) as poe:
        assert poe.walk_ports() == [(2, 1), (2, 2), (2, 3)]
        poe.set_port(3, False)
        assert sim.state(3).enabled is False
