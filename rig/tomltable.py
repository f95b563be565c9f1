"""Reading one checked TOML table: typed getters whose errors name the file and the key, and a
final check that refuses unknown keys, listing the allowed ones.

Why one helper: the bench file (rig.bench) and the firmware profiles (rig.camera.profiles) are
both hand-edited TOML that must fail loudly and precisely on a typo. Each caller picks its own
error class (``TomlTable(..., error=BenchError)``) so that its callers keep catching what they
caught before. The helper never prints a value it was told is secret.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _shown(value: Any, limit: int = 60) -> str:
    """A value for an error message, cut short: a hostile file may hold a huge or deeply nested
    one."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class TomlTable:
    """One TOML table being read. ``where`` is its dotted place in the file ("" for the top
    level); every key asked for (present or not) counts as allowed for ``done()``."""

    def __init__(self, path: Path, where: str, data: Any,
                 error: type[Exception] = ValueError) -> None:
        self.error = error
        if not isinstance(data, dict):
            raise error(f"{path}: {where or 'top level'}: must be a table")
        self.path, self.where, self.data = path, where, data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        """The dotted name of ``name`` in the file, for messages."""
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, why: str) -> Exception:
        """The error to raise for key ``name``: file, dotted key, why."""
        return self.error(f"{self.path}: {self.key(name)}: {why}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ...,
            what: str = "") -> Any:
        """The value of ``name`` if it has one of the types ``kind`` (a bool is never taken for
        a number); ``default`` when absent, or an error if there is none."""
        self.used.add(name)
        if name not in self.data:
            if default is ...:
                raise self.fail(name, f"missing (required{': ' + what if what else ''})")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            expected = what or " or ".join(k.__name__ for k in kinds)
            raise self.fail(name, f"{_shown(value)} is not {expected}")
        return value

    def number(self, name: str, default: Any = ..., low: float = 0, high: float | None = None,
               integer: bool = False) -> Any:
        """A number (whole with ``integer``) within ``low``..``high``, both inclusive. TOML's
        nan and inf are refused: nan passes every range comparison (a ``time_scale = nan``
        bench would spin for ever) and inf is no finite wait."""
        value = self.get(name, int if integer else (int, float), default,
                         "a whole number" if integer else "a number")
        if value is default and default is not ...:
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(name, f"{value} is not a number")
        if value < low or (high is not None and value > high):
            bound = f"{low} to {high}" if high is not None else f"at least {low}"
            raise self.fail(name, f"{value} is out of range ({bound})")
        return value

    def choice(self, name: str, allowed: Iterable[str], default: Any = ...) -> Any:
        """A text that must be one of ``allowed`` (listed in the error, in their order)."""
        allowed = tuple(str(a) for a in allowed)
        value = self.get(name, str, default)
        if value is not default and value not in allowed:
            raise self.fail(name, f"{value!r} is not one of: {', '.join(allowed)}")
        return value

    def choices(self, name: str, allowed: Iterable[str], default: Any = ...) -> Any:
        """A list of texts, each one of ``allowed``; returned as a tuple."""
        allowed = tuple(str(a) for a in allowed)
        value = self.get(name, list, default, "a list")
        if value is default and default is not ...:
            return value
        for item in value:
            if item not in allowed:
                raise self.fail(name, f"{_shown(item)} is not one of: {', '.join(allowed)}")
        return tuple(value)

    def texts(self, name: str, default: Any = ...) -> Any:
        """A list of texts, returned as a tuple."""
        value = self.get(name, list, default, "a list of texts")
        if value is default and default is not ...:
            return value
        if not all(isinstance(item, str) for item in value):
            raise self.fail(name, f"{_shown(value)} is not a list of texts")
        return tuple(value)

    def address(self, name: str) -> str | None:
        """An optional IP address, checked."""
        value = self.get(name, str, None)
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise self.fail(name, f"{value!r} is not an IP address") from None
        return value

    def secret_text(self, name: str) -> tuple[str | None, str | None] | None:
        """``name`` given inline or as ``name_env`` (the NAME of an environment variable):
        (value, None) or (None, variable); None when neither is there. The caller wraps it in
        its own secret type, whose repr never shows the value."""
        env_name = f"{name}_env"
        if env_name in self.data:
            self.used.add(name)
            return None, self.get(env_name, str)
        self.used.add(env_name)
        value = self.get(name, str, None)
        return None if value is None else (value, None)

    def sub(self, name: str, default: Any = ...) -> TomlTable | None:
        """The sub-table ``name`` as a TomlTable of the same error class (None if absent and
        the default is None)."""
        value = self.get(name, dict, default)
        return None if value is None else TomlTable(self.path, self.key(name), value, self.error)

    def table(self, name: str) -> TomlTable:
        """The optional sub-table ``name``, empty when absent."""
        value = self.get(name, dict, {})
        return TomlTable(self.path, self.key(name), value, self.error)

    def named(self, name: str) -> list[tuple[str, TomlTable]]:
        """The optional ``[name.NAME]`` tables, in file order, each as a TomlTable."""
        table = self.table(name)
        table.used.update(table.data)
        return [(key, TomlTable(self.path, table.key(key), value, self.error))
                for key, value in table.data.items()]

    def skip(self, name: str) -> None:
        """Allow ``name`` without reading it: another part of the program reads it."""
        self.used.add(name)

    def done(self) -> None:
        """Refuse the first unknown key, listing the keys allowed here."""
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            allowed = ", ".join(sorted(self.used))
            raise self.fail(unknown[0], f"unknown key; allowed here: {allowed}")
