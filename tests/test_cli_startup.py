"""``rig --help`` and every subcommand's parser import nothing heavy; a command's heavy modules
load when it runs (the rule in rig.commands' docstring). Each case is a fresh interpreter that
reports which modules the path loaded. How long start-up takes is benchmarks/startup.py's
business, not a test's: these assert what is imported, never a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rig import cli

ROOT = Path(__file__).resolve().parents[1]

#: What a parser must not pull in: third-party packages and standard modules that cost tens of
#: milliseconds, and rig's own layers below the commands (each drags in several of the former).
HEAVY = ("fastapi", "uvicorn", "pydantic", "starlette", "jinja2", "pysnmp", "pyasn1", "requests",
         "urllib3", "certifi", "cryptography", "gpiozero", "serial", "PIL", "prometheus_client",
         "defusedxml", "sqlite3", "asyncio", "ssl", "http.client", "urllib.request",
         "multiprocessing", "concurrent.futures",
         "rig.runner", "rig.procedures", "rig.context", "rig.hands", "rig.census", "rig.sim",
         "rig.serve", "rig.records", "rig.report", "rig.recovery", "rig.guardian", "rig.wiring",
         "rig.bench", "rig.camera", "rig.actuators", "rig.handover", "rig.activate", "rig.verify",
         "rig.netsetup", "rig.locate", "psycopg", "psycopg_binary", "rig.fleet")
#: What running ``rig check`` or ``rig discover`` has no use for: the bench file and SADP
#: (rig.bench, rig.camera.sadp, ... and defusedxml) they need, the drivers and HTTP they do not.
NOT_FOR_CHECK_OR_DISCOVER = (
    *(name for name in HEAVY if name not in ("defusedxml", "rig.bench", "rig.camera",
                                             "rig.actuators")),
    "rig.camera.isapi", "rig.camera.isapi_http", "rig.camera.http_evidence",
    "rig.camera.activation", "rig.camera.sadp_commands", "rig.actuators.gpio",
    "rig.actuators.poe", "rig.actuators.snmp", "rig.actuators.serial_link",
    "rig.actuators.serial_relay")

#: Runs rig.cli in this interpreter; the last line of its output lists the modules it loaded
#: (beyond what the interpreter had already), whether it ended by returning or by SystemExit.
PROBE = """\
import json, sys
before = set(sys.modules)
from rig import cli
try:
    cli.main(sys.argv[1:]) if len(sys.argv) > 1 else cli.build_parser()
except SystemExit:
    pass
print("\\n" + json.dumps(sorted(set(sys.modules) - before)))
"""


def loaded_by(*argv: str) -> list[str]:
    """The modules ``rig ARGV`` (no ARGV: building the parser) loads, in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert result.stdout, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def heavy_among(modules: list[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy)]


def test_building_the_parser_imports_nothing_heavy() -> None:
    modules = loaded_by()
    assert "rig.commands.run" in modules and "argparse" in modules    # the probe saw the work
    assert heavy_among(modules) == []


def test_only_the_standard_library_and_rig_are_imported_for_help() -> None:
    outside = {m.split(".")[0] for m in loaded_by("--help")} - set(sys.stdlib_module_names)
    assert outside == {"rig"}


@pytest.mark.parametrize("command", cli.COMMANDS)
def test_a_subcommands_help_imports_nothing_heavy(command: str) -> None:
    assert heavy_among(loaded_by(command, "--help")) == []


def test_rig_check_loads_the_bench_file_and_nothing_heavy() -> None:
    modules = loaded_by("check", str(ROOT / "hardware" / "benches" / "poe-serial-24.toml"))
    assert "rig.bench" in modules
    assert heavy_among(modules, NOT_FOR_CHECK_OR_DISCOVER) == []


def test_rig_discover_runs_a_census_and_loads_nothing_heavy() -> None:
    modules = loaded_by("discover", "--bind", "127.0.0.1", "--timeout", "0.1")
    assert "rig.camera.discovery" in modules
    assert heavy_among(modules, NOT_FOR_CHECK_OR_DISCOVER) == []


def test_the_sim_parsers_name_what_the_simulator_has() -> None:
    from rig.commands import sim_bench
    from rig.commands.sim_relay import PROTOCOLS
    from rig.sim.camera import SimFaults
    from rig.sim.media import CODECS
    from rig.sim.serial_board import FIRMWARES
    assert PROTOCOLS == tuple(sorted(FIRMWARES))
    assert sim_bench.FAULT_NAMES == SimFaults.names()
    assert sim_bench.CODECS == CODECS


def test_runs_method_choices_are_the_procedures() -> None:
    from rig.procedures import PROCEDURES
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["run"]
    (method,) = [a for a in sub._actions if a.dest == "method"]
    assert tuple(method.choices) == tuple(sorted(PROCEDURES))
