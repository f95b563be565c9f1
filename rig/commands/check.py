"""``rig check BENCH.toml``: validate a bench file and print the bench it describes."""

from __future__ import annotations

import argparse
import json
import sys

from rig.bench import Bench, BenchError, describe_output, load_bench


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("check", help="validate a bench file and show the bench it describes",
                            description=__doc__)
    parser.add_argument("bench", help="bench file (TOML); examples in hardware/benches/")
    parser.add_argument("--json", action="store_true", help="print the bench as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        bench = load_bench(args.bench)
    except BenchError as exc:
        print(f"rig check: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(as_json(bench), indent=2) if args.json else as_text(bench))
    for warning in bench.warnings():
        print(f"rig check: warning: {warning}", file=sys.stderr)
    return 0


def as_json(bench: Bench) -> dict:
    return {
        "name": bench.name, "path": str(bench.path), "gpio_factory": bench.gpio_factory,
        "solenoid_max_on_seconds": bench.solenoid_max_on_seconds,
        "max_solenoids_on": bench.max_solenoids_on,
        "password_env": bench.password.env if bench.password else None,
        "network": {"interface": bench.network.interface, "address": bench.network.address,
                    "identity": bench.network.identity},
        "switches": {n: {"host": s.host, "port": s.port, "version": s.version, "mib": s.mib}
                     for n, s in bench.switches.items()},
        "relay_boards": {n: {"port": b.port, "protocol": b.protocol, "channels": b.channels}
                         for n, b in bench.relay_boards.items()},
        "slots": [{"name": s.name, "power": describe_output(s.power),
                   "button": describe_output(s.button),
                   "profile": s.profile.name, "mac": s.mac,
                   "serial": s.serial} for s in bench.slots],
        "checks": bench.checks.to_json(),
    }


def as_text(bench: Bench) -> str:
    lines = [f"bench {bench.name!r} ({bench.path}): {len(bench.slots)} slot(s), "
             f"GPIO factory {bench.gpio_factory}, solenoid cap {bench.solenoid_max_on_seconds:g} s"]
    if bench.password is not None:
        lines.append(f"  web password: from environment variable {bench.password.env} "
                     "([defaults] password_env)")
    for name, s in bench.switches.items():
        lines.append(f"  switch {name}: {s.host}:{s.port} SNMP v{s.version}, MIB {s.mib}")
    for name, b in bench.relay_boards.items():
        lines.append(f"  relay board {name}: {b.port} ({b.protocol}, {b.channels} channels)")
    if bench.checks.enabled:
        lines.append(f"  functional checks: {', '.join(bench.checks.run)} (key: "
                     f"{', '.join(bench.checks.key) or 'none'}; storage {bench.checks.storage})")
    lines.append(f"  {'SLOT':<8} {'POWER':<34} {'BUTTON':<30} {'PROFILE':<8} EXPECTED UNIT")
    for s in bench.slots:
        lines.append(f"  {s.name:<8} {describe_output(s.power):<34} "
                     f"{describe_output(s.button):<30} {s.profile.name:<8} "
                     f"{s.mac or s.serial or '-'}")
    lines.append("OK")
    return "\n".join(lines)
