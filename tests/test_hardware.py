"""hardware/: the example bench files load, and the pin map, wiring tables, BOM, diagrams, README
and systemd unit agree with them and with each other."""

from __future__ import annotations

import importlib.util
import logging
import math
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rig.bench import Bench, GpioOutput, PoeOutput, RelayOutput, describe_output, load_bench

ROOT = Path(__file__).resolve().parents[1]
HW = ROOT / "hardware"
BENCH_DIR = HW / "benches"
DIAGRAMS = HW / "diagrams"
SCRIPT = DIAGRAMS / "make_diagrams.py"
SVG_NS = "{http://www.w3.org/2000/svg}"

#: file -> (slots, power kinds, button kinds, wiring page)
EXPECTED = {
    "dc-gpio-4.toml": (4, {"gpio"}, {"gpio"}, "wiring-dc-gpio-4.md"),
    "poe-gpio-8.toml": (8, {"poe"}, {"gpio"}, "wiring-poe-gpio-8.md"),
    "poe-serial-24.toml": (24, {"poe"}, {"relay"}, "wiring-poe-serial-24.md"),
}
RESERVED = {0, 1, 2, 3, 14, 15}        # HAT EEPROM, I2C, UART
PULLED_UP_AT_BOOT = set(range(0, 9))   # BCM283x reset state: 0-8 up, 9-27 down
SPI0_KEPT_FREE = {8, 9, 10, 11}        # pinmap.md: SPI0 stays usable with CE0 only
ENV = {"RIG_SNMP_AUTH_KEY": "auth-passphrase-1", "RIG_SNMP_PRIV_KEY": "priv-passphrase-1"}


@pytest.fixture
def snmp_env(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def benches() -> dict[str, Bench]:
    return {name: load_bench(BENCH_DIR / name) for name in EXPECTED}


@pytest.fixture(scope="module")
def diagrams_module():
    spec = importlib.util.spec_from_file_location("make_diagrams", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_diagrams"] = module      # dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("make_diagrams", None)


def gpio_pins(bench: Bench, part: str) -> list[int]:
    outputs = [getattr(slot, part) for slot in bench.slots]
    return [o.pin for o in outputs if isinstance(o, GpioOutput)]


def table_after(text: str, heading: str) -> list[list[str]]:
    """Body rows of the first Markdown table after ``heading`` (a whole line), as cell lists."""
    lines = text.splitlines()
    start = lines.index(heading)
    rows, in_table = [], False
    for line in lines[start + 1:]:
        if line.startswith("|"):
            in_table = True
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif in_table or line.startswith("#"):
            break
    assert rows, f"no table after {heading!r}"
    return rows[1:]    # drop the header row


# --- the bench files ---------------------------------------------------------------------------

def test_every_bench_file_in_the_folder_is_an_expected_example():
    assert sorted(p.name for p in BENCH_DIR.glob("*.toml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_bench_loads_with_the_expected_slots(name, snmp_env):
    slots, power_kinds, button_kinds, _ = EXPECTED[name]
    bench = load_bench(BENCH_DIR / name)
    assert bench.name == Path(name).stem
    assert len(bench.slots) == slots
    assert {s.power.kind for s in bench.slots} == power_kinds
    assert {s.button.kind for s in bench.slots if s.button} == button_kinds
    assert all(s.button is not None for s in bench.slots), "every slot needs its solenoid"
    assert bench.gpio_factory == "lgpio"
    assert bench.network.interface == "eth0" and bench.network.address
    assert 1 <= bench.max_solenoids_on <= slots
    assert bench.solenoid_max_on_seconds <= 45, "solenoid-driver.md reasons about a 45 s cap"
    # relays are active-low modules, solenoids active-high MOSFET gates
    for slot in bench.slots:
        if isinstance(slot.power, GpioOutput):
            assert slot.power.active_high is False, slot.name
        if isinstance(slot.button, GpioOutput):
            assert slot.button.active_high is True, slot.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_switches_use_snmp_v3_authpriv_with_keys_from_the_environment(name, snmp_env):
    bench = load_bench(BENCH_DIR / name)
    uses_poe = any(isinstance(s.power, PoeOutput) for s in bench.slots)
    assert bool(bench.switches) == uses_poe
    for switch in bench.switches.values():
        assert switch.version == "3" and switch.user
        assert (switch.auth_protocol, switch.priv_protocol) == ("sha", "aes")
        assert switch.auth_key.env == "RIG_SNMP_AUTH_KEY"
        assert switch.priv_key.env == "RIG_SNMP_PRIV_KEY"
        assert switch.auth_key.get() == ENV["RIG_SNMP_AUTH_KEY"]
        assert switch.priv_key.get() == ENV["RIG_SNMP_PRIV_KEY"]
        assert switch.mib in {"rfc3621", "cisco", "tplink"}
        assert switch.power_budget_watts
    for board in bench.relay_boards.values():
        assert board.port.startswith(("/dev/serial/by-id/", "/dev/serial/by-path/", "/dev/rig/")), \
            f"{board.name}: {board.port} is not a stable name"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vlan_identity_gives_every_slot_its_own_vlan(name, benches):
    bench = benches[name]
    vlans = [s.vlan for s in bench.slots]
    if bench.network.identity == "vlan":
        assert None not in vlans and len(set(vlans)) == len(vlans)
    else:
        assert set(vlans) == {None}


def test_poe_budget_covers_every_port_by_class_three_allocation(benches):
    """power.md's worked examples: 15.4 W reserved per class-3 camera must fit the budget."""
    for bench in benches.values():
        for switch in bench.switches.values():
            ports = [s for s in bench.slots
                     if isinstance(s.power, PoeOutput) and s.power.switch == switch.name]
            assert len(ports) * 15.4 <= switch.power_budget_watts, bench.name


# --- pins ---------------------------------------------------------------------------------------

def pinmap_rows() -> dict[int, tuple[int, str]]:
    text = (HW / "pinmap.md").read_text(encoding="utf-8")
    rows = table_after(text, "## Pins the benches drive")
    return {int(r[0]): (int(r[1]), r[2]) for r in rows}


def test_pinmap_lists_exactly_the_pins_the_benches_use(benches, diagrams_module):
    rows = pinmap_rows()
    buttons = {p for b in benches.values() for p in gpio_pins(b, "button")}
    relays = {p for b in benches.values() for p in gpio_pins(b, "power")}
    assert set(rows) == buttons | relays
    assert {p for p, (_, role) in rows.items() if "solenoid" in role} == buttons
    assert {p for p, (_, role) in rows.items() if "relay" in role} == relays
    for bcm, (header, _) in rows.items():
        assert diagrams_module.BCM_TO_HEADER[bcm] == header, f"GPIO{bcm}"


def test_header_table_is_the_40_pin_header(diagrams_module):
    header = diagrams_module.HEADER
    assert sorted(header) == list(range(1, 41))
    assert sorted(v for v in header.values() if isinstance(v, int)) == list(range(28))
    names = [v for v in header.values() if isinstance(v, str)]
    assert (names.count("GND"), names.count("3V3"), names.count("5V")) == (8, 2, 2)
    # a few fixed points that every pinout agrees on
    assert (header[7], header[11], header[27], header[40]) == (4, 17, 0, 21)


def test_no_reserved_pin_and_no_pulled_up_pin_drives_a_solenoid(benches):
    for bench in benches.values():
        buttons, relays = gpio_pins(bench, "button"), gpio_pins(bench, "power")
        assert not (set(buttons) | set(relays)) & RESERVED, bench.name
        assert not (set(buttons) | set(relays)) & SPI0_KEPT_FREE, bench.name
        assert not set(buttons) & PULLED_UP_AT_BOOT, f"{bench.name}: solenoid on a pull-up pin"
        # active-low relay inputs idle off on pins the SoC pulls up
        assert set(relays) <= PULLED_UP_AT_BOOT, bench.name


def test_a_pin_has_one_role_and_slot_n_uses_the_same_solenoid_pin_everywhere(benches):
    role: dict[int, str] = {}
    by_slot: dict[int, int] = {}
    for bench in benches.values():
        for index, slot in enumerate(bench.slots):
            for part, output in (("relay", slot.power), ("solenoid", slot.button)):
                if isinstance(output, GpioOutput):
                    assert role.setdefault(output.pin, part) == part, f"GPIO{output.pin}"
            if isinstance(slot.button, GpioOutput):
                assert by_slot.setdefault(index, slot.button.pin) == slot.button.pin


def test_rigs_gpio_driver_accepts_every_example_pin_without_a_boot_warning(benches, caplog):
    from rig.actuators.gpio import validate_output_pin

    caplog.set_level(logging.WARNING)
    checked = 0
    for bench in benches.values():
        for slot in bench.slots:
            for role, output in (("camera power relay", slot.power),
                                 ("reset solenoid", slot.button)):
                if isinstance(output, GpioOutput):
                    validate_output_pin(output.pin, active_high=output.active_high, role=role)
                    checked += 1
    assert checked == 16
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_dc_bench_file_drives_mock_pins_to_rest_and_back(benches):
    """The example file through rig's own wiring: at rest every relay input is high (active-low
    off) and every gate low; switching and pressing move exactly the pins the pin map names."""
    from gpiozero.pins.mock import MockFactory

    from rig.wiring import BenchHardware

    bench = benches["dc-gpio-4.toml"]
    factory = MockFactory()
    hardware = BenchHardware(bench, pin_factory=factory)
    try:
        slots = [hardware.slot(s.name) for s in bench.slots]
        state = {n: factory.pin(n).state for n in (4, 5, 6, 7, 17, 27, 22, 23)}
        assert state == {4: True, 5: True, 6: True, 7: True,
                         17: False, 27: False, 22: False, 23: False}
        slots[0].power.on()
        assert factory.pin(4).state is False and factory.pin(5).state is True
        with slots[0].button.hold(5.0):
            assert factory.pin(17).state is True and factory.pin(27).state is False
        assert factory.pin(17).state is False
        slots[0].power.off()
        assert factory.pin(4).state is True
    finally:
        hardware.close()


# --- wiring pages and BOM -----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wiring_page_slot_table_matches_the_bench_file(name, benches):
    page = HW / EXPECTED[name][3]
    rows = table_after(page.read_text(encoding="utf-8"), "## Slot table")
    expected = [[s.name, describe_output(s.power), describe_output(s.button),
                 str(s.vlan) if s.vlan else "-"] for s in benches[name].slots]
    assert [r[:4] for r in rows] == expected


def bom_quantities() -> dict[str, tuple[int, int, int]]:
    out = {}
    for line in (HW / "bom.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 6 and all(c.isdigit() for c in cells[2:5]):
            out.setdefault(cells[0], tuple(int(c) for c in cells[2:5]))
    return out


def test_bom_quantities_follow_the_bench_files(benches):
    bom = bom_quantities()
    order = ["dc-gpio-4.toml", "poe-gpio-8.toml", "poe-serial-24.toml"]
    bs = [benches[n] for n in order]
    solenoids = tuple(sum(1 for s in b.slots if s.button) for b in bs)
    gpio_buttons = tuple(len(gpio_pins(b, "button")) for b in bs)
    assert bom["push solenoid, 12 V"] == solenoids
    assert bom["flyback diode"] == solenoids
    assert bom["branch fuse, solenoids"] == solenoids
    assert bom["solenoid mount"] == solenoids
    for item in ("N-MOSFET", "gate resistor", "gate pull-down", "one-shot timer",
                 "timing resistor", "timing capacitor", "trigger resistor", "trigger capacitor",
                 "input pull-down", "timer decoupling"):
        assert bom[item] == gpio_buttons, item
    assert bom["8-channel USB relay board"] == tuple(len(b.relay_boards) for b in bs)
    assert bom["4-channel relay module"] == tuple(math.ceil(len(gpio_pins(b, "power")) / 4)
                                                 for b in bs)
    assert bom["patch cables"] == tuple(len(b.slots) + 1 for b in bs)


# --- diagrams ----------------------------------------------------------------------------------

def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("svg")
    result = run_script("--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


EXPECTED_SVGS = {"wiring-dc-gpio-4.svg", "wiring-poe-gpio-8.svg", "wiring-poe-serial-24.svg",
                 "header-pinmap.svg", "solenoid-driver.svg", "relay-module.svg"}


def test_make_diagrams_writes_well_formed_svg_with_title_and_labels(generated):
    assert {p.name for p in generated.glob("*.svg")} == EXPECTED_SVGS
    for path in generated.glob("*.svg"):
        root = ET.parse(path).getroot()
        assert root.tag == f"{SVG_NS}svg", path.name
        assert root.get("viewBox"), path.name
        title = root.find(f"{SVG_NS}title")
        assert title is not None and title.text.strip(), path.name
        texts = [t.text for t in root.iter(f"{SVG_NS}text") if t.text]
        assert len(texts) >= 10, path.name
        assert "Legend" in texts, f"{path.name} has no legend"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wiring_svg_shows_every_slot_and_output(name, generated, benches):
    svg = generated / f"wiring-{Path(name).stem}.svg"
    texts = " ".join(t.text for t in ET.parse(svg).getroot().iter(f"{SVG_NS}text") if t.text)
    for slot in benches[name].slots:
        assert f"slot {slot.name}" in texts
        for output in (slot.power, slot.button):
            if isinstance(output, GpioOutput):
                assert f"GPIO{output.pin} · pin" in texts
            elif isinstance(output, RelayOutput):
                assert f"board “{output.board}” channel {output.channel}" in texts
            elif isinstance(output, PoeOutput):
                assert f"switch “{output.switch}” port {output.port}" in texts


def test_committed_svgs_equal_freshly_generated_ones(generated):
    committed = {p.name for p in DIAGRAMS.glob("*.svg")}
    assert committed == EXPECTED_SVGS, "stale or missing SVG in hardware/diagrams"
    for name in sorted(EXPECTED_SVGS):
        fresh = (generated / name).read_text(encoding="utf-8")
        assert (DIAGRAMS / name).read_text(encoding="utf-8") == fresh, \
            f"{name} drifted: run python3 hardware/diagrams/make_diagrams.py and commit"


def test_check_mode_flags_a_stale_svg(tmp_path):
    copy = tmp_path / "svg"
    shutil.copytree(DIAGRAMS, copy)
    assert run_script("--check", "--out", str(copy)).returncode == 0
    stale = copy / "solenoid-driver.svg"
    stale.write_text(stale.read_text(encoding="utf-8").replace("AO3400A", "IRLZ44N"),
                     encoding="utf-8")
    result = run_script("--check", "--out", str(copy))
    assert result.returncode == 1 and "solenoid-driver.svg" in result.stderr


def test_diagrams_follow_an_edited_bench_file(tmp_path):
    benches = tmp_path / "benches"
    shutil.copytree(BENCH_DIR, benches)
    path = benches / "poe-gpio-8.toml"
    text = path.read_text(encoding="utf-8")
    assert "pin = 26 }" in text
    path.write_text(text.replace("pin = 26 }", "pin = 12 }"), encoding="utf-8")
    out = tmp_path / "out"
    assert run_script("--benches", str(benches), "--out", str(out)).returncode == 0
    wiring = (out / "wiring-poe-gpio-8.svg").read_text(encoding="utf-8")
    assert "GPIO12 · pin 32" in wiring and "GPIO26 · pin 37" not in wiring
    header = (out / "header-pinmap.svg").read_text(encoding="utf-8")
    assert "solenoid, slot 8 (poe-gpio-8)" in header


# --- README and links --------------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def local_links(page: Path) -> list[str]:
    targets = LINK.findall(page.read_text(encoding="utf-8"))
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and t.split("#")[0]]


@pytest.mark.parametrize("page", sorted(p.name for p in HW.glob("*.md")))
def test_every_local_link_in_hardware_pages_resolves(page):
    path = HW / page
    for target in local_links(path):
        assert (path.parent / target).exists(), f"{page}: broken link {target}"


def test_readme_links_every_page_and_file():
    readme = HW / "README.md"
    linked = {(HW / t).resolve() for t in local_links(readme)}
    wanted = [p for p in HW.glob("*.md") if p.name != "README.md"]
    for folder, pattern in (("benches", "*.toml"), ("diagrams", "*.svg"),
                            ("diagrams", "*.py"), ("systemd", "*"), ("udev", "*")):
        wanted += list((HW / folder).glob(pattern))
    assert len(wanted) >= 19
    missing = sorted(str(p.relative_to(HW)) for p in wanted if p.resolve() not in linked)
    assert not missing, f"README.md does not link: {missing}"
    # paths quoted in backticks exist too
    text = readme.read_text(encoding="utf-8")
    for quoted in re.findall(r"`((?:hardware|rig|tests)/[\w./-]+)`", text):
        assert (ROOT / quoted).exists(), quoted


def test_readme_states_the_safety_rules_before_the_bench_types():
    text = (HW / "README.md").read_text(encoding="utf-8")
    safety, types = text.index("## Safety rules"), text.index("## The three bench types")
    assert safety < types
    rules = text[safety:types]
    for must in ("pull-down", "active-low", "flyback diode", "Fuse", "solenoid_max_on_seconds",
                 "JD-VCC", "strict_gpiod"):
        assert must in rules, must


# --- systemd unit and udev rules ---------------------------------------------------------------

def unit_entries(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path.name}: {line!r} outside a section"
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(entries: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in entries if k == key]


def test_systemd_unit_runs_as_rig_and_makes_outputs_safe_after_every_stop(benches):
    unit = unit_entries(HW / "systemd" / "rig.service")
    service = unit["Service"]
    assert values(service, "User") == ["rig"]
    assert set(values(service, "SupplementaryGroups")[0].split()) >= {"gpio", "dialout"}
    assert values(service, "KillSignal") == ["SIGTERM"]
    assert values(service, "ExecStopPost") == ["/usr/local/bin/rig safe /etc/rig/bench.toml"]
    assert "/usr/local/bin/rig safe /etc/rig/bench.toml" in values(service, "ExecStartPre")
    assert values(service, "ExecStart") == ["/usr/local/bin/rig run /etc/rig/bench.toml"]
    assert "GPIOZERO_PIN_FACTORY=lgpio" in values(service, "Environment")
    assert values(service, "StateDirectory") == ["rig"]
    # long enough to put every PoE port of the biggest example in its safe state, one request
    # per port, with the switch not answering
    worst = max(len(b.slots) * s.timeout * (s.retries + 1)
                for b in benches.values() for s in b.switches.values())
    assert float(values(service, "TimeoutStopSec")[0]) > worst
    # a restarted rig has forgotten its cool-downs: wait out the longest cap first
    longest_cap = max(b.solenoid_max_on_seconds for b in benches.values())
    assert float(values(service, "RestartSec")[0]) > longest_cap
    # rig run exits 1 when a unit fails verification: that must not repeat the batch
    assert values(service, "Restart") == ["on-abnormal"]
    assert "RIG_DB=/var/lib/rig/rig.sqlite" in values(service, "Environment")
    assert values(unit["Install"], "WantedBy") == ["multi-user.target"]


def rig_subcommands() -> set[str]:
    import argparse

    from rig.cli import build_parser

    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return {name for action in actions for name in action.choices}


def test_unit_uses_only_commands_that_exist_or_are_documented_as_upcoming():
    existing = rig_subcommands()
    assert {"check", "safe"} <= existing
    unit = (HW / "systemd" / "rig.service").read_text(encoding="utf-8")
    service_md = (HW / "service.md").read_text(encoding="utf-8")
    used = set(re.findall(r"/usr/local/bin/rig (\w+)", unit))
    assert used == {"check", "run", "safe"}
    for command in used - existing:
        assert re.search(rf"`rig {command} BENCH\.toml` \| \*\*upcoming\*\*", service_md), command


def test_udev_rules_keep_modemmanager_off_numato_boards():
    lines = [ln for ln in (HW / "udev" / "99-rig-relays.rules").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    numato = [ln for ln in lines if 'ATTRS{idVendor}=="2a19"' in ln]
    assert numato and all('ENV{ID_MM_DEVICE_IGNORE}="1"' in ln for ln in numato)
    assert any('SUBSYSTEM=="tty"' in ln and 'GROUP="dialout"' in ln for ln in numato)
    for line in lines:   # every key is a match (==) or an assignment (=, +=), comma-separated
        for part in line.split(", "):
            assert re.fullmatch(r'[A-Z]+(\{[\w]+\})?(==|!=|=|\+=)"[^"]*"', part.strip()), part
