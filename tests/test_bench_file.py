"""Bench files: a valid one loads into typed slots; each mistake gives an error naming the key."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from rig.bench import BenchError, GpioOutput, PoeOutput, RelayOutput, load_bench
from rig.camera.profiles import ProfileSet

GOOD = """
[bench]
name = "test bench"
gpio_factory = "mock"
solenoid_max_on_seconds = 40

[network]
interface = "eth0"
address = "192.168.1.2"
identity = "serialised"

[defaults]
profile = "current"
method = "hard"

[switches.main]
host = "192.168.1.250"
version = "3"
user = "rig"
auth_key_env = "RIG_TEST_AUTH"
priv_key = "privpriv123"

[relay_boards.b1]
port = "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0"
protocol = "lcus"
channels = 8

[[slots]]
name = "A1"
power = { kind = "gpio", pin = 17, active_high = false }
button = { kind = "gpio", pin = 22 }
profile = "legacy"
mac = "44-47-CC-37-CE-81"

[[slots]]
name = "A2"
power = { kind = "poe", switch = "main", port = 2 }
button = { kind = "relay", board = "b1", channel = 1 }

[[slots]]
name = "A3"
power = { kind = "relay", board = "b1", channel = 2 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_bench_loads_into_typed_slots(tmp_path, monkeypatch):
    monkeypatch.setenv("RIG_TEST_AUTH", "authauth123")
    bench = load_bench(write(tmp_path, GOOD))
    assert bench.name == "test bench" and bench.gpio_factory == "mock"
    a1, a2, a3 = bench.slots
    assert a1.power == GpioOutput(pin=17, active_high=False)
    assert a1.button == GpioOutput(pin=22) and a1.mac == "44:47:cc:37:ce:81"
    assert a1.profile.name == "legacy" and bench.default_profile == "current"
    assert a2.profile == a3.profile == ProfileSet.load().get("current")   # the default, applied
    assert a2.power == PoeOutput(switch="main", port=2)
    assert a2.button == RelayOutput(board="b1", channel=1)
    assert a3.button is None
    switch = bench.switches["main"]
    assert switch.auth_key.get() == "authauth123" and "authauth" not in repr(switch)
    assert bench.slot("A2") is a2
    with pytest.raises(BenchError, match="no slot named 'B9'"):
        bench.slot("B9")


BROKEN = {
    # id: (pattern in GOOD, replacement, text the error must contain)
    "unknown-top-key": (r'^\[bench\]$', '[bench]\ncolour = "red"', "bench.colour: unknown key"),
    "bad-factory": (r'^gpio_factory = .*$', 'gpio_factory = "wiringpi"',
                    "bench.gpio_factory: 'wiringpi' is not one of: lgpio"),
    "cap-too-long": (r"^solenoid_max_on_seconds = .*$", "solenoid_max_on_seconds = 600",
                     "bench.solenoid_max_on_seconds: 600 is out of range"),
    "bad-address": (r'^address = .*$', 'address = "192.168.1"', "network.address"),
    "bad-identity": (r'^identity = .*$', 'identity = "guess"', "network.identity"),
    "unknown-profile": (r'^profile = "legacy"$', 'profile = "g9"',
                        "slots[0].profile: unknown firmware profile 'g9'"),
    "bad-method": (r'^method = .*$', 'method = "smash"', "defaults.method"),
    "pin-out-of-range": (r"pin = 17", "pin = 40", "slots[0].power.pin: 40 is out of range"),
    "pin-as-text": (r"pin = 17", 'pin = "17"', "slots[0].power.pin: '17' is not a whole number"),
    "active-high-text": (r"active_high = false", 'active_high = "no"',
                         "slots[0].power.active_high: 'no' is not bool"),
    "bad-power-kind": (r'kind = "gpio", pin = 17', 'kind = "mains", pin = 17',
                       "slots[0].power.kind: 'mains' is not one of: gpio, relay, poe"),
    "poe-button": (r'button = \{ kind = "gpio", pin = 22 \}',
                   'button = { kind = "poe", switch = "main", port = 9 }',
                   "slots[0].button.kind: 'poe' is not one of: gpio, relay"),
    "unknown-switch": (r'switch = "main", port = 2', 'switch = "core", port = 2',
                       "slots[1].power.switch: no switch 'core'; defined: main"),
    "unknown-board": (r'board = "b1", channel = 1', 'board = "b2", channel = 1',
                      "slots[1].button.board: no relay board 'b2'"),
    "channel-beyond-board": (r'board = "b1", channel = 2', 'board = "b1", channel = 9',
                             "slots[2].power.channel: 9 is out of range (1 to 8)"),
    "missing-power": (r'^power = \{ kind = "relay", board = "b1", channel = 2 \}$', "",
                      "slots[2].power: missing"),
    "typo-in-slot": (r'^name = "A3"$', 'name = "A3"\nproflie = "current"',
                     "slots[2].proflie: unknown key"),
    "bad-mac": (r'^mac = .*$', 'mac = "44-47-cc"', "slots[0].mac: '44-47-cc' is not a MAC"),
    "pin-shared": (r"pin = 22", "pin = 17", "slots 'A1' and 'A1' both use GPIO 17"),
    "channel-shared": (r'board = "b1", channel = 2', 'board = "b1", channel = 1',
                       "slots 'A2' and 'A3' both use relay board b1 channel 1"),
    "name-shared": (r'^name = "A3"$', 'name = "A1"', "both use the slot name 'A1'"),
    "v3-without-keys": (r'^priv_key = .*$', "", "switches.main.version: SNMP v3 needs"),
    "bad-protocol": (r'^protocol = .*$', 'protocol = "morse"', "relay_boards.b1.protocol"),
    "unknown-mib": (r'^priv_key = .*$', 'priv_key = "privpriv123"\nmib = "hp-poe"',
                    "switches.main.mib: 'hp-poe' is not one of: cisco, rfc3621, tplink"),
    "slot-address": (r'^name = "A3"$', 'name = "A3"\naddress = "127.0.1"',
                     "slots[2].address: '127.0.1' is not an IP address"),
    "time-scale-below-one": (r"^solenoid_max_on_seconds = .*$",
                             "solenoid_max_on_seconds = 40\ntime_scale = 0.5",
                             "bench.time_scale: 0.5 is out of range"),
    "not-toml": (r"^\[bench\]$", "[bench", "not valid TOML"),
    "link-local-without-interface": (
        r'^interface = "eth0"\naddress = "192.168.1.2"\nidentity = "serialised"$',
        'address = "192.168.1.2"\nidentity = "ipv6-link-local"',
        "network.interface: identity 'ipv6-link-local' needs the bench interface"),
    "vlan-missing-for-a-slot": (r'^identity = "serialised"$', 'identity = "vlan"',
                                "identity 'vlan' needs a vlan for every slot; missing for A1, "
                                "A2, A3"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_bench_files_name_file_and_key(case, tmp_path, monkeypatch):
    monkeypatch.setenv("RIG_TEST_AUTH", "authauth123")
    pattern, replacement, expected = BROKEN[case]
    text, count = re.subn(pattern, replacement, GOOD, count=1, flags=re.M)
    assert count == 1, f"fixture drift: {pattern}"
    path = write(tmp_path, text)
    with pytest.raises(BenchError) as caught:
        load_bench(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_a_bench_without_slots(tmp_path):
    with pytest.raises(BenchError, match="slots: the bench has no slots"):
        load_bench(write(tmp_path, 'slots = []\n[bench]\nname = "empty"\n'))
    with pytest.raises(BenchError, match="slots: missing"):
        load_bench(write(tmp_path, '[bench]\nname = "empty"\n'))


def test_missing_file(tmp_path):
    with pytest.raises(BenchError, match="no such bench file"):
        load_bench(tmp_path / "nope.toml")


def test_secret_from_an_unset_environment_variable_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("RIG_TEST_AUTH", raising=False)
    bench = load_bench(write(tmp_path, GOOD))
    with pytest.raises(BenchError, match="RIG_TEST_AUTH is not set"):
        bench.switches["main"].auth_key.get()


def test_rig_check_prints_the_bench_and_fails_cleanly_on_errors(tmp_path, monkeypatch, capsys):
    from rig.cli import main

    monkeypatch.setenv("RIG_TEST_AUTH", "authauth123")
    path = write(tmp_path, GOOD)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "GPIO 17 (active-low)" in out and "switch main port 2" in out and out.endswith("OK\n")
    assert main(["check", str(path), "--json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)["slots"]] == [
        "A1", "A2", "A3"]
    path.write_text(GOOD.replace("pin = 17", "pin = 99"), encoding="utf-8")
    assert main(["check", str(path)]) == 2
    assert "slots[0].power.pin: 99 is out of range" in capsys.readouterr().err


def test_a_vlan_bench_needs_one_vlan_per_slot(tmp_path, monkeypatch):
    monkeypatch.setenv("RIG_TEST_AUTH", "authauth123")
    text = GOOD.replace('identity = "serialised"', 'identity = "vlan"')
    for name, vlan in (("A1", 101), ("A2", 102), ("A3", 103)):
        text = text.replace(f'name = "{name}"\n', f'name = "{name}"\nvlan = {vlan}\n')
    bench = load_bench(write(tmp_path, text))
    assert [s.vlan for s in bench.slots] == [101, 102, 103]
    with pytest.raises(BenchError, match="slots A1 and A3 share vlan 101"):
        load_bench(write(tmp_path, text.replace("vlan = 103", "vlan = 101")))


def test_a_vlan_bench_warns_about_strict_reverse_path_filtering(monkeypatch):
    import rig.bench
    bench = load_bench(Path(__file__).parent.parent / "hardware" / "benches" / "poe-gpio-8.toml")
    assert bench.network.identity == "vlan"
    monkeypatch.setattr(rig.bench, "strict_rp_filter", lambda name: name == "eth0.103")
    warnings = bench.warnings()
    assert any("rp_filter=1" in w and "eth0.103" in w and "eth0.101" not in w for w in warnings)
    monkeypatch.setattr(rig.bench, "strict_rp_filter", lambda name: False)
    assert not any("rp_filter" in w for w in bench.warnings())


# ------------------------------------------------------------------ choices from vocabulary


def test_choices_come_from_the_vocabulary_and_the_registries(tmp_path, monkeypatch):
    from rig.actuators import relay_protocols
    from rig.actuators.snmp import AUTH_PROTOCOLS, PRIV_PROTOCOLS
    from rig.vocabulary import IdentityStrategy, Method, PowerKind

    monkeypatch.setenv("RIG_TEST_AUTH", "authauth123")
    bench = load_bench(write(tmp_path, GOOD))
    assert bench.default_method is Method.HARD
    assert bench.network.identity is IdentityStrategy.SERIALISED
    assert [s.power.kind for s in bench.slots] == [PowerKind.GPIO, PowerKind.POE, PowerKind.RELAY]
    for key, allowed in (("protocol", relay_protocols.available()),
                         ("auth_protocol", list(AUTH_PROTOCOLS)),
                         ("priv_protocol", list(PRIV_PROTOCOLS))):
        text = GOOD.replace('protocol = "lcus"', 'protocol = "morse"') if key == "protocol" \
            else GOOD.replace('priv_key = "privpriv123"', f'priv_key = "privpriv123"\n{key} = "x"')
        with pytest.raises(BenchError) as caught:
            load_bench(write(tmp_path, text))
        assert f"is not one of: {', '.join(allowed)}" in str(caught.value)


# ------------------------------------------------------------------ [defaults] password_env


def test_password_env_names_the_variable_and_rig_check_shows_only_the_name(tmp_path, monkeypatch,
                                                                          capsys):
    from rig.bench import Secret
    from rig.cli import main

    monkeypatch.setenv("RIG_TEST_AUTH", "authauth123")
    monkeypatch.setenv("RIG_TEST_WEB", "Web-Pass-123")
    path = write(tmp_path, GOOD.replace('method = "hard"',
                                        'method = "hard"\npassword_env = "RIG_TEST_WEB"'))
    bench = load_bench(path)
    assert bench.password == Secret(env="RIG_TEST_WEB") and bench.password.get() == "Web-Pass-123"
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "RIG_TEST_WEB" in out and "Web-Pass-123" not in out
    assert main(["check", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["password_env"] == "RIG_TEST_WEB"
    assert load_bench(write(tmp_path, GOOD)).password is None


@pytest.mark.parametrize(("line", "expected"), [
    ('password = "Web-Pass-123"', "defaults.password: give the NAME of the environment variable"),
    ('password_env = "Web-Pass-123!"', "defaults.password_env: not an environment variable name"),
])
def test_a_password_in_the_bench_file_is_refused_without_showing_it(tmp_path, line, expected):
    path = write(tmp_path, GOOD.replace('method = "hard"', f'method = "hard"\n{line}'))
    with pytest.raises(BenchError) as caught:
        load_bench(path)
    assert expected in str(caught.value) and "Web-Pass-123" not in str(caught.value)


# --------------------------------------------------------------------------- dump


EXAMPLES = sorted((Path(__file__).parent.parent / "hardware" / "benches").glob("*.toml"))


def round_trip(bench, tmp_path: Path):
    from rig.bench import dump

    path = tmp_path / "dumped.toml"
    path.write_text(dump(bench), encoding="utf-8")
    return dataclasses.replace(load_bench(path), path=bench.path)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_dump_writes_back_every_example_bench(example, tmp_path):
    bench = load_bench(example)
    assert round_trip(bench, tmp_path) == bench


def test_dump_writes_secrets_as_names_and_refuses_inline_ones(tmp_path, monkeypatch):
    from rig.bench import dump

    monkeypatch.setenv("RIG_TEST_AUTH", "authauth123")
    inline = load_bench(write(tmp_path, GOOD))
    with pytest.raises(BenchError) as caught:
        dump(inline)
    assert "switches.main.priv_key: an inline secret" in str(caught.value)
    assert "privpriv123" not in str(caught.value)
    text = GOOD.replace('priv_key = "privpriv123"', 'priv_key_env = "RIG_TEST_PRIV"\n'
                        'community_env = "RIG_TEST_COMMUNITY"')
    text = text.replace('method = "hard"', 'method = "hard"\npassword_env = "RIG_TEST_WEB"')
    bench = load_bench(write(tmp_path, text))
    written = dump(bench, header=["a header"], slot_notes={"A2": "a note"})
    assert written.startswith("# a header\n") and "# a note" in written
    for name in ("RIG_TEST_AUTH", "RIG_TEST_PRIV", "RIG_TEST_COMMUNITY", "RIG_TEST_WEB"):
        assert f'_env = "{name}"' in written
    assert "authauth123" not in written
    assert round_trip(bench, tmp_path) == bench
    assert round_trip(dataclasses.replace(bench, name="odd \"name\" ü"), tmp_path).name == \
        'odd "name" ü'
