"""The virtual camera's state machine, driven by a fake clock (no sockets, no sleeping)."""

from __future__ import annotations

import dataclasses

import pytest

from rig.camera import activation
from rig.camera.profiles import ProfileSet
from rig.camera.sadp import Probe, parse_probe_match
from rig.sim.camera import CameraState, SimFaults, VirtualCamera

PROFILES = ProfileSet.load()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(profile: str = "current", faults: SimFaults | None = None, **changes):
    clock = FakeClock()
    prof = PROFILES.get(profile)
    if changes:
        prof = dataclasses.replace(prof, **changes)
    cam = VirtualCamera(prof, mac="44:47:cc:00:00:01", serial="DS-2CD2320D-I20240115AAWRE00000001",
                        address="127.0.1.1", faults=faults or SimFaults(), clock=clock,
                        wall_clock=lambda: 0.0)
    return cam, clock


def boot(cam: VirtualCamera, clock: FakeClock) -> None:
    cam.set_power(True)
    clock.advance(cam.profile.boot_seconds)
    assert cam.state is CameraState.RUNNING


def button_reset(cam: VirtualCamera, clock: FakeClock, hold: float, press_delay: float = 0.0):
    """Power off, press (optionally after power-on), power on, hold ``hold`` s, release, boot."""
    cam.set_power(False)
    if press_delay == 0:
        cam.set_button(True)
    cam.set_power(True)
    if press_delay:
        clock.advance(press_delay)
        cam.set_button(True)
    clock.advance(hold)
    cam.set_button(False)
    clock.advance(cam.profile.boot_seconds + cam.profile.hold_seconds[1])
    assert cam.state is CameraState.RUNNING


def test_off_booting_running_follow_the_profile_boot_time():
    cam, clock = make()
    assert cam.state is CameraState.OFF
    cam.set_power(True)
    assert cam.state is CameraState.BOOTING
    clock.advance(cam.profile.boot_seconds - 0.1)
    assert cam.state is CameraState.BOOTING
    clock.advance(0.1)
    assert cam.state is CameraState.RUNNING
    cam.set_power(False)
    assert cam.state is CameraState.OFF


def test_time_scale_compresses_every_duration():
    clock = FakeClock()
    cam = VirtualCamera(PROFILES.get("current"), mac="44-47-cc-00-00-02", serial="S",
                        address="127.0.1.2", time_scale=100.0, clock=clock)
    cam.set_power(True)
    clock.advance(PROFILES.get("current").boot_seconds / 100)
    assert cam.state is CameraState.RUNNING
    assert cam.mac == "44:47:cc:00:00:02"


def test_silent_on_sadp_unless_running():
    cam, clock = make()
    probe = Probe(uuid="F93CF8DC-DF53-424B-98A7-9FC0536E1083", types="inquiry")
    assert cam.probe_match(probe) is None
    cam.set_power(True)
    assert cam.probe_match(probe) is None
    clock.advance(cam.profile.boot_seconds)
    assert cam.probe_match(probe) is not None


@pytest.mark.parametrize("profile", ["current", "g5"])
def test_button_held_through_power_up_restores_inactive_defaults(profile):
    cam, clock = make(profile)
    boot(cam, clock)
    cam.provision("Secret123!")
    cam.update_settings(ipv4="10.1.2.3", dhcp=True)
    button_reset(cam, clock, hold=cam.profile.hold_seconds[0] + 0.5)
    s = cam.settings
    assert not cam.activated
    assert s.users == {}
    assert (s.ipv4, s.mask, s.device_name) == ("192.168.1.64", "255.255.255.0", "IP CAMERA")
    assert s.dhcp is cam.profile.default_dhcp
    assert any(what == "factory reset by button" for _, what in cam.events)


def test_legacy_button_reset_restores_admin_12345():
    cam, clock = make("legacy")
    boot(cam, clock)
    assert cam.activated and cam.password_for("admin") == "12345"
    cam.provision("Changed123")
    button_reset(cam, clock, hold=cam.profile.hold_seconds[1])
    assert cam.password_for("admin") == "12345"


def test_button_released_too_early_boots_normally_and_keeps_settings():
    cam, clock = make()
    boot(cam, clock)
    cam.provision("Secret123!")
    button_reset(cam, clock, hold=cam.profile.hold_seconds[0] - 1.0)
    assert cam.activated and cam.settings.device_name == "yard"


def test_press_after_the_grace_window_does_not_reset():
    cam, clock = make()
    boot(cam, clock)
    cam.provision("Secret123!")
    button_reset(cam, clock, hold=cam.profile.hold_seconds[1], press_delay=5.0)
    assert cam.activated


def test_press_within_the_grace_window_still_resets():
    cam, clock = make()
    boot(cam, clock)
    cam.provision("Secret123!")
    button_reset(cam, clock, hold=cam.profile.hold_seconds[1], press_delay=1.0)
    assert not cam.activated


def test_hold_outlasting_the_boot_restarts_the_unit_into_defaults():
    cam, clock = make(boot_seconds=5.0, hold_seconds=(15.0, 20.0))
    boot(cam, clock)
    cam.provision("Secret123!")
    cam.set_power(False)
    cam.set_button(True)
    cam.set_power(True)
    clock.advance(6.0)
    assert cam.state is CameraState.RUNNING and cam.activated     # booted, hold not complete
    clock.advance(9.5)
    assert cam.state is CameraState.BOOTING and not cam.activated  # reset, rebooting
    cam.set_button(False)
    clock.advance(5.0)
    assert cam.state is CameraState.RUNNING and not cam.activated


def test_jammed_button_never_resets():
    cam, clock = make(faults=SimFaults(jammed_button=True))
    boot(cam, clock)
    cam.provision("Secret123!")
    button_reset(cam, clock, hold=cam.profile.hold_seconds[1])
    assert cam.activated and not cam.button_pressed


def test_unit_that_never_boots_stays_booting():
    cam, clock = make(faults=SimFaults(never_boots=True))
    cam.set_power(True)
    clock.advance(10 * cam.profile.boot_seconds)
    assert cam.state is CameraState.BOOTING


def test_basic_restore_keeps_network_and_users_and_waits_for_reboot():
    cam, clock = make("current")          # factory_reset_reboot = reboot-required
    boot(cam, clock)
    cam.provision("Secret123!")
    cam.update_settings(ipv4="10.1.2.3", gateway="10.1.2.1", login_lock_attempts=3)
    assert cam.factory_reset("basic") is False
    assert cam.settings.device_name == "yard"       # nothing applied before the reboot
    cam.reboot()
    clock.advance(1.0)
    assert cam.state is CameraState.BOOTING
    clock.advance(cam.profile.boot_seconds)
    s = cam.settings
    assert cam.activated and cam.password_for("admin") == "Secret123!"
    assert (s.ipv4, s.gateway) == ("10.1.2.3", "10.1.2.1")
    assert s.device_name == "IP CAMERA" and s.login_lock_attempts == cam.profile.lockout_attempts


def test_full_restore_on_self_rebooting_firmware_returns_to_inactive_factory_state():
    cam, clock = make("g5")               # factory_reset_reboot = self
    boot(cam, clock)
    cam.provision("Secret123!")
    cam.update_settings(ipv4="10.1.2.3")
    assert cam.factory_reset("full") is True
    clock.advance(1.0)
    assert cam.state is CameraState.BOOTING
    clock.advance(cam.profile.boot_seconds)
    assert cam.state is CameraState.RUNNING
    assert not cam.activated and cam.settings.ipv4 == "192.168.1.64"


def test_pending_restore_survives_a_power_cycle():
    cam, clock = make("current")
    boot(cam, clock)
    cam.provision("Secret123!")
    cam.factory_reset("full")
    cam.set_power(False)
    boot(cam, clock)
    assert not cam.activated


def test_unknown_restore_mode_is_refused():
    cam, clock = make()
    boot(cam, clock)
    with pytest.raises(ValueError):
        cam.factory_reset("part")


def test_illegal_login_lock_per_client_for_the_profile_time():
    cam, clock = make("current")
    boot(cam, clock)
    cam.provision("Secret123!")
    attempts = cam.profile.lockout_attempts
    for left in range(attempts - 1, 0, -1):
        result = cam.check_login("10.0.0.9", "admin", None)
        assert not result.ok and not result.locked and result.retry_login_time == left
    locked = cam.check_login("10.0.0.9", "admin", None)
    assert locked.locked and locked.unlock_time == int(cam.profile.lockout_seconds)
    assert not cam.check_login("10.0.0.9", "admin", "Secret123!").ok   # right password, locked
    assert cam.check_login("10.0.0.7", "admin", "Secret123!").ok       # other client unaffected
    assert cam.is_locked("10.0.0.9") and not cam.is_locked("10.0.0.7")
    clock.advance(cam.profile.lockout_seconds)
    assert cam.check_login("10.0.0.9", "admin", "Secret123!").ok


@pytest.mark.parametrize("cleared", [True, False])
def test_a_power_cycle_clears_the_login_lock_only_when_the_profile_says_so(cleared):
    cam, clock = make("g5", lock_cleared_by_power_cycle=cleared)
    boot(cam, clock)
    cam.provision("Secret123!")
    for _ in range(cam.profile.lockout_attempts):
        cam.check_login("10.0.0.9", "admin", None)
    assert cam.is_locked() and cam.failed_logins("10.0.0.9") == cam.profile.lockout_attempts
    cam.set_power(False)
    boot(cam, clock)
    assert cam.is_locked() is not cleared


def test_a_failure_count_survives_a_restart_unless_the_profile_says_otherwise():
    cam, clock = make("current")
    assert not cam.profile.lock_cleared_by_power_cycle        # unknown: the safe assumption
    boot(cam, clock)
    cam.provision("Secret123!")
    cam.check_login("c", "admin", None)
    cam.set_power(False)
    boot(cam, clock)
    left = cam.check_login("c", "admin", None).retry_login_time
    assert left == cam.profile.lockout_attempts - 2 and cam.failed_logins() == 2


def test_success_resets_the_failure_count():
    cam, clock = make()
    boot(cam, clock)
    cam.provision("Secret123!")
    cam.check_login("c", "admin", None)
    assert cam.check_login("c", "admin", "Secret123!").ok
    assert cam.check_login("c", "admin", None).retry_login_time == cam.profile.lockout_attempts - 1


@pytest.mark.parametrize("profile,variant", [("current", "challenge"), ("g5", "v3")])
def test_activation_exchange(profile, variant):
    cam, clock = make(profile)
    boot(cam, clock)
    key = activation.new_client_key(variant)
    random_hex = activation.decrypt_challenge(
        key, cam.start_challenge("c", activation.public_key_param(key), variant))
    field, iv = activation.encrypt_password(random_hex, "Secret123!", variant)
    assert cam.activate("c", field, variant, iv) == "ok"
    assert cam.activated and cam.password_for("admin") == "Secret123!"
    with pytest.raises(PermissionError):
        cam.activate("c", field, variant, iv)


def test_activation_challenge_is_single_use_and_per_client():
    cam, clock = make()
    boot(cam, clock)
    key = activation.new_client_key()
    random_hex = activation.decrypt_challenge(
        key, cam.start_challenge("a", activation.public_key_param(key), "challenge"))
    field, _ = activation.encrypt_password(random_hex, "Secret123!")
    with pytest.raises(activation.ActivationError):
        cam.activate("b", field, "challenge")          # another client's challenge
    assert cam.activate("a", field, "challenge") == "ok"


def test_activation_refuses_weak_passwords_and_flags_risky_ones():
    cam, clock = make()
    boot(cam, clock)
    key = activation.new_client_key()

    def attempt(password: str) -> str:
        rnd = activation.decrypt_challenge(
            key, cam.start_challenge("c", activation.public_key_param(key), "challenge"))
        return cam.activate("c", activation.encrypt_password(rnd, password)[0], "challenge")

    with pytest.raises(ValueError, match="8 to 16"):
        attempt("short1")
    assert not cam.activated
    assert attempt("abcdefg123") == "riskPassword"
    assert cam.activated


def test_probe_match_reads_like_the_real_captures():
    cam, clock = make("current")
    boot(cam, clock)
    data = cam.probe_match(Probe(uuid="13A888A9-F1B1-4020-AE9F-05607682D23B", types="inquiry"))
    text = data.decode()
    assert "<MAC>44-47-cc-00-00-01</MAC>" in text
    assert "<DeviceLock>flase</DeviceLock>" in text and "<HCPlatformEnable>flase<" in text
    assert "<Activated>false</Activated>" in text
    dev = parse_probe_match(data)
    assert (dev.mac, dev.serial, dev.activated, dev.ipv4) == (
        "44:47:cc:00:00:01", cam.serial, False, "192.168.1.64")


def test_probe_match_layout_and_omissions_follow_the_profile():
    g5, clock = make("g5")
    boot(g5, clock)
    assert b"\n\t<Uuid>" in g5.probe_match(Probe(uuid="13A888A9-F1B1-4020-AE9F-05607682D23B",
                                                 types="inquiry"))
    legacy, clock = make("legacy")
    boot(legacy, clock)
    dev = parse_probe_match(legacy.probe_match(Probe(uuid="13A888A9-F1B1-4020-AE9F-05607682D23B",
                                                     types="inquiry")))
    assert dev.activated is None and "Salt" not in dev.raw


def test_probe_with_another_units_mac_gets_no_answer():
    cam, clock = make()
    boot(cam, clock)
    uuid = "13A888A9-F1B1-4020-AE9F-05607682D23B"
    assert cam.probe_match(Probe(uuid=uuid, types="inquiry", mac="44-47-cc-00-00-99")) is None
    assert cam.probe_match(Probe(uuid=uuid, types="inquiry", mac="44-47-CC-00-00-01")) is not None
    assert cam.probe_match(Probe(uuid=uuid, types="inquiry", mac="ff-ff-ff-ff-ff-ff")) is not None


def test_sadp_silent_fault():
    cam, clock = make(faults=SimFaults(sadp_silent=True))
    boot(cam, clock)
    assert cam.probe_match(Probe(uuid="13A888A9-F1B1-4020-AE9F-05607682D23B",
                                 types="inquiry")) is None


def test_booted_power_on_is_running_at_once_and_ignores_the_button():
    cam, clock = make()
    cam.set_button(True)
    cam.set_power(True, booted=True)
    assert cam.state is CameraState.RUNNING
    clock.advance(cam.profile.hold_seconds[1])
    assert cam.state is CameraState.RUNNING and not any(
        what == "factory reset by button" for _, what in cam.events)
