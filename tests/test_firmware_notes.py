"""The firmware notes stay in step with the profiles that rig and the simulator load.

firmware_notes/profiles/<name>.toml is what the code reads; firmware_notes/<name>.md is what a
bench technician reads. These tests fail when the two drift apart, when the firmware ranges leave a
gap or overlap, or when the loader stops rejecting broken profiles with a useful message.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from rig.camera.profiles import (
    FirmwareProfile,
    FirmwareVersion,
    ProfileError,
    ProfileSet,
    load_profile,
)
from rig.sim.behaviour import SimBehaviour, behaviour_for, load_behaviour

NOTES = Path(__file__).resolve().parents[1] / "firmware_notes"
PROFILES = NOTES / "profiles"
PROFILE_FILES = sorted(PROFILES.glob("*.toml"))
FAMILY_NAMES = [p.stem for p in PROFILE_FILES]
#: Every key a profile file may hold: the firmware facts (FirmwareProfile, less the file it was
#: read from) and the [sim] table (SimBehaviour).
PROFILE_FIELDS = {f.name for f in fields(FirmwareProfile)} - {"source"}
SIM_FIELDS = {f.name for f in fields(SimBehaviour)}
FIELD_NAMES = PROFILE_FIELDS | SIM_FIELDS


# --------------------------------------------------------------------------- helpers


def toml_keys(path: Path) -> dict[str, tuple[str, object]]:
    """Every key of a profile file → (table it sits in, "" for the top level; its value)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    keys: dict[str, tuple[str, object]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                keys[sub] = (key, sub_value)
        else:
            keys[key] = ("", value)
    return keys


def page_text(name: str) -> str:
    return (NOTES / f"{name}.md").read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    """The body of the level-2 section whose heading starts with ``title``."""
    match = re.search(rf"^## {re.escape(title)}[^\n]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no '## {title}' section"
    return match.group(1)


def field_rows(name: str) -> dict[str, tuple[list[str], str]]:
    """Rows of the page's Profile fields table: key → (cells, whole line)."""
    rows: dict[str, tuple[list[str], str]] = {}
    for line in section(page_text(name), "Profile fields").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0]) if line.startswith("|") else None
        if match:
            key = match.group(1)
            assert key not in rows, f"{name}.md: key {key} listed twice in Profile fields"
            rows[key] = (cells, line)
    assert rows, f"{name}.md: Profile fields table has no rows"
    return rows


def mentions(line: str, key: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", line) is not None


@pytest.fixture(scope="module")
def profile_set() -> ProfileSet:
    return ProfileSet.load(PROFILES)


# --------------------------------------------------------------------------- profiles load


def test_every_profile_loads(profile_set: ProfileSet) -> None:
    assert len(FAMILY_NAMES) >= 3, f"expected the legacy, current and g5 profiles in {PROFILES}"
    assert sorted(profile_set.names) == FAMILY_NAMES, "a profile's name must equal its file stem"
    for path in PROFILE_FILES:
        profile = load_profile(path)
        assert isinstance(profile, FirmwareProfile)
        assert isinstance(load_behaviour(path), SimBehaviour)
        assert profile.hold_seconds[0] <= profile.hold_seconds[1]
        assert set(profile.uncertain) <= FIELD_NAMES
    # The default directory (package data or the checkout) holds the same families.
    assert sorted(ProfileSet.load().names) == FAMILY_NAMES


def test_inactive_families_can_be_activated(profile_set: ProfileSet) -> None:
    for profile in profile_set.profiles:
        if profile.default_password is None:
            assert profile.activation, f"{profile.name}: inactive from the factory, no activation"
        else:
            assert not profile.activation, f"{profile.name}: has a factory password and activation"


# --------------------------------------------------------------------------- pages and index


def test_exactly_one_page_per_profile() -> None:
    pages = sorted(p.stem for p in NOTES.glob("*.md") if p.name != "README.md")
    assert pages == FAMILY_NAMES


def test_readme_links_every_page() -> None:
    readme = (NOTES / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w-]+)\.md(?:#[\w-]*)?\)", readme))
    missing = set(FAMILY_NAMES) - linked
    assert not missing, f"README.md does not link: {sorted(missing)}"
    dangling = {name for name in linked if not (NOTES / f"{name}.md").is_file()}
    assert not dangling, f"README.md links pages that do not exist: {sorted(dangling)}"


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_page_has_the_required_sections(name: str) -> None:
    text = page_text(name)
    for title in ("Which firmware", "Reset button", "Boot time", "Factory-default state",
                  "Activation", "Restore", "Illegal-login lockout", "SADP", "ISAPI",
                  "Profile fields", "Open questions to settle on the bench",
                  "Bench measurements"):
        assert section(text, title).strip(), f"{name}.md: section '{title}' is empty"
    for label in ("[confirmed]", "[single source]", "[uncertain]"):
        assert label in text, f"{name}.md never uses the label {label}"


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_uncertain_fields_are_marked_on_the_page(name: str, profile_set: ProfileSet) -> None:
    profile = profile_set.get(name)
    text = page_text(name)
    rows = field_rows(name)
    # The row that lists the `uncertain` array itself names every key; it proves nothing.
    own_row = rows["uncertain"][1] if "uncertain" in rows else None
    for key in profile.uncertain:
        lines = [line for line in text.splitlines()
                 if line != own_row and mentions(line, key) and "uncertain" in line.lower()]
        assert lines, f"{name}.md: no line mentions {key} together with 'uncertain'"
        assert key in rows and "**uncertain**" in rows[key][1], (
            f"{name}.md: Profile fields row for {key} must say **uncertain**")
    for key, (_, line) in rows.items():
        if key not in profile.uncertain:
            assert "**uncertain**" not in line, (
                f"{name}.md: {key} is marked **uncertain** but the profile does not list it")


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_open_questions_cover_every_uncertain_field(name: str, profile_set: ProfileSet) -> None:
    questions = section(page_text(name), "Open questions to settle on the bench")
    missing = [key for key in profile_set.get(name).uncertain if not mentions(questions, key)]
    assert not missing, f"{name}.md: no open question for {missing}"


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_profile_fields_table_matches_the_toml(name: str) -> None:
    keys = toml_keys(PROFILES / f"{name}.toml")
    rows = field_rows(name)
    assert set(rows) == FIELD_NAMES, (
        f"{name}.md Profile fields: missing {sorted(FIELD_NAMES - set(rows))}, "
        f"not profile fields {sorted(set(rows) - FIELD_NAMES)}")
    for key, (cells, line) in rows.items():
        assert len(cells) >= 3, f"{name}.md: short row {line!r}"
        if key not in keys:
            assert cells[2] == "not set", f"{name}.md: {key} is not in the TOML, say 'not set'"
            continue
        table, value = keys[key]
        assert cells[1] == (f"[{table}]" if table else "top"), f"{name}.md: {key} table column"
        shown = re.fullmatch(r"`(.*)`", cells[2])
        assert shown, f"{name}.md: value of {key} must be written as `toml`"
        assert tomllib.loads(f"v = {shown.group(1)}")["v"] == value, (
            f"{name}.md: {key} shows {shown.group(1)}, the profile has {value!r}")


# --------------------------------------------------------------------------- firmware ranges


def test_ranges_touch_end_to_end(profile_set: ProfileSet) -> None:
    ordered = sorted(profile_set.profiles,
                     key=lambda p: (p.firmware_min is not None,
                                    p.firmware_min or FirmwareVersion(0, 0)))
    assert ordered[0].firmware_min is None, "the oldest family must have no lower bound"
    assert ordered[-1].firmware_max is None, "the newest family must have no upper bound"
    for older, newer in zip(ordered, ordered[1:], strict=False):
        assert older.firmware_max is not None and newer.firmware_min is not None
        assert older.firmware_max == newer.firmware_min, (
            f"{older.name} ends at {older.firmware_max}, {newer.name} starts at "
            f"{newer.firmware_min}: gap or overlap")
    for profile in ordered:
        if profile.firmware_min and profile.firmware_max:
            assert profile.firmware_min < profile.firmware_max, f"{profile.name}: empty range"


def test_family_boundaries(profile_set: ProfileSet) -> None:
    v530, v570 = FirmwareVersion.parse("V5.3.0"), FirmwareVersion.parse("V5.7.0")
    legacy, current, g5 = (profile_set.get(n) for n in ("legacy", "current", "g5"))
    assert legacy.firmware_min is None and legacy.firmware_max == v530
    assert current.firmware_min == v530 and current.firmware_max == v570
    assert g5.firmware_min == v570 and g5.firmware_max is None


@pytest.mark.parametrize(("firmware", "family"), [
    ("V4.0.8build 120101", "legacy"),
    ("V5.2.5", "legacy"),
    ("V5.2.99build 150101", "legacy"),
    ("V5.3.0", "current"),
    ("V5.3.0build 150513", "current"),
    ("V5.5.6build 180326", "current"),
    ("V5.6.9", "current"),
    ("V5.7.0", "g5"),
    ("V5.7.14", "g5"),
    ("V5.8.1", "g5"),
    ("V5.10.0", "g5"),            # compared as numbers, not text
    ("V6.0.0build 250101", "g5"),
])
def test_each_version_belongs_to_exactly_one_family(firmware: str, family: str,
                                                    profile_set: ProfileSet) -> None:
    version = FirmwareVersion.parse(firmware)
    matching = [p.name for p in profile_set.profiles if p.matches(version)]
    assert matching == [family], f"{firmware} matches {matching}"
    found = profile_set.for_firmware(firmware)
    assert found is not None and found.name == family


def test_sample_firmware_maps_back_to_its_profile(profile_set: ProfileSet) -> None:
    for profile in profile_set.profiles:
        sample = behaviour_for(profile).sample_firmware
        found = profile_set.for_firmware(sample)
        assert found is not None and found.name == profile.name, (
            f"{profile.name}: sample_firmware {sample} maps to {found.name if found else None}")


# --------------------------------------------------------------------------- broken profiles


GOOD = PROFILES / "current.toml"


def mutate(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.M)
    assert count == 1, f"fixture drift: {pattern!r} matched {count} times in {GOOD.name}"
    return new


BROKEN = {
    # case id: (pattern, replacement, key the error must name)
    "unknown-key": (r"^\[isapi\]$", "[isapi]\nbogus_key = 1", "bogus_key"),
    "unknown-sim-key": (r"^\[sim\]$", "[sim]\nbogus_key = 1", "bogus_key"),
    "bad-status": (r"^inactive_http_status = .*$", "inactive_http_status = 500",
                   "inactive_http_status"),
    "unknown-top-key": (r"^name = ", 'colour = "red"\nname = ', "colour"),
    "missing-key": (r"^boot_seconds = .*\n", "", "boot_seconds"),
    "missing-default": (r"^default_ipv4 = .*\n", "", "default_ipv4"),
    "hold-reversed": (r"^hold_seconds = .*$", "hold_seconds = [30, 15]", "hold_seconds"),
    "hold-zero": (r"^hold_seconds = .*$", "hold_seconds = [0, 10]", "hold_seconds"),
    "hold-one-value": (r"^hold_seconds = .*$", "hold_seconds = [20]", "hold_seconds"),
    "hold-text": (r"^hold_seconds = .*$", 'hold_seconds = "20"', "hold_seconds"),
    "bad-layout": (r"^sadp_layout = .*$", 'sadp_layout = "zigzag"', "sadp_layout"),
    "bad-reboot": (r"^factory_reset_reboot = .*$", 'factory_reset_reboot = "maybe"',
                   "factory_reset_reboot"),
    "bad-activation": (r"^activation = .*$", 'activation = ["v4"]', "activation"),
    "bad-reply": (r"^sadp_reply = .*$", 'sadp_reply = ["broadcast"]', "sadp_reply"),
    "bad-restore-part": (r"^basic_keeps = .*$", 'basic_keeps = ["firmware"]', "basic_keeps"),
    "bool-as-text": (r"^default_dhcp = .*$", 'default_dhcp = "false"', "default_dhcp"),
    "attempts-fraction": (r"^lockout_attempts = .*$", "lockout_attempts = 6.5",
                          "lockout_attempts"),
    "range-reversed": (r'^firmware_max = .*$', 'firmware_max = "V5.2.0"', "firmware_max"),
    "inactive-without-activation": (r"^activation = .*$", "activation = []", "activation"),
}


def test_profile_set_refuses_two_families_with_one_name(tmp_path: Path) -> None:
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text(GOOD.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ProfileError, match="already used"):
        ProfileSet.load(tmp_path)


def test_unmodified_copy_loads(tmp_path: Path) -> None:
    copy = tmp_path / "copy.toml"
    copy.write_text(GOOD.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_profile(copy).name == "current"


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_profile_error_names_file_and_key(case: str, tmp_path: Path) -> None:
    pattern, replacement, key = BROKEN[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(mutate(GOOD.read_text(encoding="utf-8"), pattern, replacement),
                    encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)          # the firmware facts, then the simulator's [sim] table
        load_behaviour(path)
    message = str(caught.value)
    assert str(path) in message, f"error does not name the file: {message}"
    assert key in message, f"error does not name the key {key}: {message}"


def test_profile_set_refuses_a_directory_with_one_broken_file(tmp_path: Path) -> None:
    for path in PROFILE_FILES:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert sorted(ProfileSet.load(tmp_path).names) == FAMILY_NAMES
    broken = tmp_path / "zz-extra.toml"
    pattern, replacement, _ = BROKEN["bad-reboot"]
    broken.write_text(mutate(GOOD.read_text(encoding="utf-8"), pattern, replacement),
                      encoding="utf-8")
    with pytest.raises(ProfileError, match=re.escape(str(broken))):
        ProfileSet.load(tmp_path)


def test_the_controller_never_reads_the_simulators_table() -> None:
    """Firmware facts and simulator presentation are apart: no key is both, and nothing of the
    controller (outside rig/sim and the sim commands) imports the simulator."""
    assert not PROFILE_FIELDS & SIM_FIELDS
    rig = Path(__file__).resolve().parents[1] / "rig"
    for path in rig.rglob("*.py"):
        part = path.relative_to(rig).parts[0]
        if part in ("sim", "commands"):
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import) rig\.sim\b", text, re.M), path
