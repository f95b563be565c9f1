"""Property-based fuzzing of the bench-file loader (rig.bench.load_bench): real bench files
mutated key by key and byte by byte, and random TOML documents. Whatever the file holds, it
loads into a Bench or raises BenchError naming what is wrong, never another exception and
never slowly; and a bench that loads is written back by ``dump`` into a file that loads into
the same bench (``dump``'s documented contract). Budget and long runs: fuzz_support."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import FUZZ, mutated, value_or
from hypothesis import example, given
from hypothesis import strategies as st
from test_checks_config import CHECKS

from rig.bench import Bench, BenchError, dump, load_bench
from rig.camera.profiles import ProfileSet
from rig.commands.run import _natural as run_summary_order
from rig.serve.queries import _natural as dashboard_order

ROOT = Path(__file__).resolve().parents[1]
HANDOVER = ('\n[handover]\nfinal_state = "provisioned"\npassword_env = "RIG_FUZZ_PW"\n'
            'pool_start = "192.168.1.100"\ngateway = "192.168.1.1"\n')
TEXTS = tuple(p.read_text(encoding="utf-8") for p in
              sorted((ROOT / "hardware" / "benches").glob("*.toml")))
TEXTS += (TEXTS[-1] + CHECKS + HANDOVER,)
BASES = tuple(tomllib.loads(t) for t in TEXTS)
PROFILES = ProfileSet.load()
#: The orders rig prints slots in (the run summary, the dashboard): any name a bench accepts
#: must sort, "²" included (str.isdigit() accepts it, int() does not).
SLOT_ORDERS = (run_summary_order, dashboard_order)


def _keys(node: Any) -> set[str]:
    """Every key the real bench files use, at any depth: mutations add these most often."""
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


KEYS = st.sampled_from(sorted(set().union(*map(_keys, BASES)))) | st.text(max_size=12)
WORDS = ("gpio", "poe", "relay", "hard", "auto", "poe-cycle", "web-full", "current", "legacy",
         "g5", "vlan", "serialised", "ipv6-link-local", "lgpio", "mock", "numato", "lcus",
         "kmtronic", "provisioned", "factory", "eth0", "lo", "192.168.1.2", "::1", "fe80::1",
         "44:47:cc:00:00:01", "", " ", "A1", "1", "v2c", "v3", "SHA", "AES", "private",
         "/dev/ttyUSB0", "snapshot", "device-info", "V5.5.0", "99999999999999999999999", "²",
         "٣")
SCALARS = st.one_of(
    st.sampled_from(WORDS), st.text(max_size=16), st.booleans(),
    st.sampled_from((-1, 0, 1, 2, 4, 17, 27, 255, 256, 4094, 4095, 4096, 65535, 65536,
                     2**63 - 1, -(2**63))) | st.integers(-(2**63), 2**63 - 1),
    st.sampled_from((math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-9, 0.5, 1e308)) | st.floats())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(KEYS, inner, max_size=4), max_leaves=10)


@st.composite
def mutated_benches(draw: st.DrawFn) -> dict[str, Any]:
    """A real bench file's data with 1-4 edits: a value replaced or removed, a key added, a
    list item duplicated, at any depth."""
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        _edit(draw, data)
    return data


def _edit(draw: st.DrawFn, node: dict[str, Any] | list[Any]) -> None:
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys or not draw(st.integers(0, 3)):
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and draw(st.booleans()):
            node = child
            continue
        if draw(st.booleans()):
            node[key] = draw(VALUES)
        else:
            del node[key]
        return
    if isinstance(node, dict):
        node[draw(KEYS)] = draw(VALUES)
    elif node and draw(st.booleans()):
        node.append(copy.deepcopy(draw(st.sampled_from(node))))
    else:
        node.append(draw(VALUES))


def toml_value(value: Any) -> str:
    """``value`` as TOML, tables inline (the loader sees the same data either way)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)     # inf, -inf, 1e+20: TOML too
    if isinstance(value, str):       # a JSON string is a TOML basic string, but for DEL
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}"
                           for k, v in value.items()) + "}"


def toml_document(data: dict[str, Any]) -> bytes:
    return "".join(f"{toml_value(str(k))} = {toml_value(v)}\n"
                   for k, v in data.items()).encode("utf-8")


@pytest.fixture
def bench_path(tmp_path: Path) -> Path:
    return tmp_path / "bench.toml"


def loads_or_refuses(path: Path, data: bytes) -> Bench | None:
    """The property: a Bench, or a BenchError; a Bench survives ``dump`` and a reload."""
    path.write_bytes(data)
    bench = value_or(BenchError, lambda: load_bench(path, PROFILES))
    if bench is None:
        return None
    names = [s.name for s in bench.slots]
    for order in SLOT_ORDERS:                               # slot names are printed sorted
        sorted(names, key=order)
    text = value_or(BenchError, lambda: dump(bench))        # an inline secret is refused
    if text is not None:
        again = path.with_name("again.toml")
        again.write_text(text, encoding="utf-8")
        assert dataclasses.replace(load_bench(again, PROFILES), path=path) == bench, text
    return bench


def test_the_base_files_load(bench_path: Path) -> None:
    """The mutations start from benches that load: a mutant refused is a refusal of the edit."""
    for text in TEXTS:
        assert loads_or_refuses(bench_path, text.encode()) is not None


@FUZZ
@given(mutated_benches())
def test_a_mutated_bench_file_loads_or_is_refused_by_name(bench_path: Path,
                                                         data: dict[str, Any]) -> None:
    assert _comparable(tomllib.loads(toml_document(data).decode())) == _comparable(data)
    loads_or_refuses(bench_path, toml_document(data))


@FUZZ
@given(st.sampled_from(TEXTS).map(str.encode).flatmap(mutated))
@example(b"[bench]\ntime_scale = nan\n[[slots]]\n")
@example(b"x = " + b"[" * 3000 + b"]" * 3000)
@example('[bench]\ngpio_factory = "mock"\n[[slots]]\nname = "²"\n'
         'power = { kind = "gpio", pin = 4 }\n'.encode())
def test_a_corrupted_bench_file_loads_or_is_refused_by_name(bench_path: Path,
                                                           data: bytes) -> None:
    loads_or_refuses(bench_path, data)


@FUZZ
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_any_toml_document_loads_or_is_refused_by_name(bench_path: Path,
                                                       data: dict[str, Any]) -> None:
    loads_or_refuses(bench_path, toml_document(data))


def _comparable(value: Any) -> Any:
    """``value`` with NaN made comparable (NaN != NaN) and keys as TOML writes them."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {str(k): _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value
