"""The bench file's ``[checks]`` table: which functional checks run, which are key, and the
bench's thresholds, read with the same checked-table helper as the rest of the bench file.

    [checks]
    run = ["device-info", "snapshot", "rtsp", "ir-cut", "storage", "firmware-baseline", "cloud"]
    key = ["device-info", "snapshot"]        # a subset of run: what "key-functions-tested" needs
    storage = "flag"                         # format | flag | ignore (default: flag)
    snapshot_min_stddev = 6.0                # luminance standard deviation, 0-255 scale
    timeout_s = 20.0                         # each check's own time
    format_timeout_s = 120.0                 # a card's format, on top of the storage check's

    [checks.firmware_min]                    # firmware family (profile name) → minimum version
    current = "V5.5.0"

    [[checks.model]]                         # per-model exceptions, first match wins
    match = "DS-2CD2020*"                    # a shell-style pattern on the unit's model
    skip = ["ir-cut"]

Why its own module: bench.py describes resources (what exists); this describes a test plan,
and the checks, the grading, ``rig qa`` and the hand-over read it. No table, or an empty
``run``, means no checks: a bench runs none until it says which.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from rig.camera.profiles import FirmwareVersion
from rig.tomltable import TomlTable
from rig.vocabulary import CheckName, StoragePolicy, choices

DEFAULT_MIN_STDDEV = 6.0
DEFAULT_TIMEOUT_S = 20.0
DEFAULT_FORMAT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ModelRule:
    """``[[checks.model]]``: the checks a bench does not run on models matching ``match``
    (fnmatch pattern, case-insensitive: firmware writes models in upper case, people may not)."""

    match: str
    skip: tuple[CheckName, ...] = ()

    def applies(self, model: str | None) -> bool:
        return model is not None and fnmatch.fnmatchcase(model.upper(), self.match.upper())


@dataclass(frozen=True)
class ChecksConfig:
    """The bench's check plan. ``firmware_min`` maps a firmware family (profile name) to its
    minimum version, as written (``V5.5.0``)."""

    run: tuple[CheckName, ...] = ()
    key: tuple[CheckName, ...] = ()
    storage: StoragePolicy = StoragePolicy.FLAG
    snapshot_min_stddev: float = DEFAULT_MIN_STDDEV
    timeout_s: float = DEFAULT_TIMEOUT_S
    format_timeout_s: float = DEFAULT_FORMAT_TIMEOUT_S
    firmware_min: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    models: tuple[ModelRule, ...] = ()

    def __eq__(self, other: object) -> bool:        # the mapping proxy compares by content
        if not isinstance(other, ChecksConfig):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[Any, ...]:
        return (self.run, self.key, self.storage, self.snapshot_min_stddev, self.timeout_s,
                self.format_timeout_s, tuple(sorted(self.firmware_min.items())), self.models)

    def to_json(self) -> dict[str, Any]:
        """The plan as ``rig check --json`` shows it."""
        return {"run": [str(c) for c in self.run], "key": [str(c) for c in self.key],
                "storage": str(self.storage), "snapshot_min_stddev": self.snapshot_min_stddev,
                "timeout_s": self.timeout_s, "format_timeout_s": self.format_timeout_s,
                "firmware_min": dict(self.firmware_min),
                "models": [{"match": r.match, "skip": [str(c) for c in r.skip]}
                           for r in self.models]}

    @property
    def enabled(self) -> bool:
        """Whether the bench runs any check."""
        return bool(self.run)

    def rule_for(self, model: str | None) -> ModelRule | None:
        """The first ``[[checks.model]]`` rule matching ``model``."""
        return next((r for r in self.models if r.applies(model)), None)

    def selected(self, model: str | None,
                 only: Iterable[CheckName] | None = None) -> tuple[CheckName, ...]:
        """The checks to run on a unit of ``model``, in the vocabulary's order: ``only`` (a
        command line's choice) or the bench's ``run``, less the model's exceptions."""
        wanted = set(only) if only is not None else set(self.run)
        rule = self.rule_for(model)
        skipped = set(rule.skip) if rule else set()
        return tuple(c for c in CheckName if c in wanted and c not in skipped)

    def minimum_for(self, family: str | None) -> FirmwareVersion | None:
        """The bench's minimum firmware for ``family``, None when it names none."""
        text = self.firmware_min.get(family or "")
        return FirmwareVersion.parse(text) if text else None


def read_checks(t: TomlTable, families: Iterable[str]) -> ChecksConfig:
    """``[checks]`` from its table (``families``: the firmware profile names a minimum may be
    given for). Raises ``t.error`` naming the file and the key."""
    run = tuple(CheckName(c) for c in t.choices("run", choices(CheckName), ()))
    key = tuple(CheckName(c) for c in t.choices("key", choices(CheckName), ()))
    outside = [str(k) for k in key if k not in run]
    if outside:
        raise t.fail("key", f"{', '.join(outside)} not in checks.run: a key check must also "
                            "be one the bench runs")
    for name, names in (("run", run), ("key", key)):
        if len(set(names)) != len(names):
            raise t.fail(name, "names a check twice")
    config = ChecksConfig(
        run=run, key=key,
        storage=StoragePolicy(t.choice("storage", StoragePolicy, StoragePolicy.FLAG)),
        snapshot_min_stddev=float(t.number("snapshot_min_stddev", DEFAULT_MIN_STDDEV,
                                           low=0, high=128)),
        timeout_s=float(t.number("timeout_s", DEFAULT_TIMEOUT_S, low=0.1, high=600)),
        format_timeout_s=float(t.number("format_timeout_s", DEFAULT_FORMAT_TIMEOUT_S,
                                        low=0.1, high=7200)),
        firmware_min=MappingProxyType(_firmware_min(t.table("firmware_min"), list(families))),
        models=tuple(_model(TomlTable(t.path, f"{t.key('model')}[{i}]", raw, t.error))
                     for i, raw in enumerate(t.get("model", list, [], "a list of "
                                                   "[[checks.model]] tables"))))
    t.done()
    return config


def _firmware_min(t: TomlTable, families: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for family in list(t.data):
        if family not in families:
            raise t.fail(family, f"unknown firmware family; known: {', '.join(families)}")
        text = t.get(family, str, what="a firmware version such as \"V5.5.0\"")
        try:
            FirmwareVersion.parse(text)
        except ValueError:
            raise t.fail(family, f"{text!r} is not a firmware version (such as "
                                 "\"V5.5.0\")") from None
        out[family] = text
    t.done()
    return out


def _model(t: TomlTable) -> ModelRule:
    match = t.get("match", str, what="a model pattern such as \"DS-2CD2020*\"")
    if not match.strip():
        raise t.fail("match", "is empty: give a model pattern such as \"DS-2CD2020*\"")
    rule = ModelRule(match, tuple(CheckName(c) for c in t.choices("skip", choices(CheckName),
                                                                  ())))
    t.done()
    return rule


def checks_lines(config: ChecksConfig, value: Any) -> list[str]:
    """The ``[checks]`` tables as TOML lines that ``read_checks`` reads back into ``config``
    (``value``: the bench writer's TOML value formatter). Empty for the default plan."""
    if config == ChecksConfig():
        return []

    def names(items: Iterable[CheckName]) -> str:
        return "[" + ", ".join(value(str(c)) for c in items) + "]"

    lines = ["", "[checks]", f"run = {names(config.run)}", f"key = {names(config.key)}",
             f"storage = {value(str(config.storage))}",
             f"snapshot_min_stddev = {value(config.snapshot_min_stddev)}",
             f"timeout_s = {value(config.timeout_s)}",
             f"format_timeout_s = {value(config.format_timeout_s)}"]
    if config.firmware_min:
        lines += ["", "[checks.firmware_min]"]
        lines += [f"{value(k)} = {value(v)}" for k, v in config.firmware_min.items()]
    for rule in config.models:
        lines += ["", "[[checks.model]]", f"match = {value(rule.match)}",
                  f"skip = {names(rule.skip)}"]
    return lines
