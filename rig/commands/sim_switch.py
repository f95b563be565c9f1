"""``rig sim switch``: a virtual PoE switch (a real SNMP agent) on the command line.

It serves the POWER-ETHERNET-MIB port table (and, with ``--mib``, the Cisco or TP-Link columns)
over v1/v2c and SNMPv3 authPriv, so ``rig`` and net-snmp's snmpget/snmpset/snmpwalk can switch
its ports. ``register(sim_sub)`` adds the parser to the ``rig sim`` subcommands.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rig.commands._serve import until_stopped

DEFAULT_V3_USER = "rig"
DEFAULT_V3_AUTH_KEY = "rig-auth-key-1"
DEFAULT_V3_PRIV_KEY = "rig-priv-key-1"


def register(sim_sub: argparse._SubParsersAction) -> None:
    """Add ``switch`` to the ``rig sim`` subparsers (pysnmp is imported only when it runs)."""
    parser = sim_sub.add_parser(
        "switch", help="start a virtual PoE switch (SNMP agent) and run until stopped",
        description="Start a virtual PoE switch with N ports (1..N, group 1) behind a real SNMP "
                    "agent on UDP, print how to reach it and the OIDs of port 1, and serve until "
                    "Ctrl-C or SIGTERM. v1/v2c use the two communities; SNMPv3 uses one authPriv "
                    "user with SHA and AES-128.")
    parser.add_argument("--ports", type=int, default=8, help="number of PoE ports (default 8)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1161,
                        help="UDP port (default 1161; 0 = any free port; 161 needs root)")
    parser.add_argument("--community-ro", default="public",
                        help="read-only community (default public)")
    parser.add_argument("--community-rw", default="private",
                        help="read-write community (default private)")
    parser.add_argument("--v3-user", default=DEFAULT_V3_USER,
                        help=f"SNMPv3 user (default {DEFAULT_V3_USER})")
    parser.add_argument("--v3-auth-key", default=DEFAULT_V3_AUTH_KEY,
                        help="SNMPv3 SHA passphrase, 8+ characters")
    parser.add_argument("--v3-priv-key", default=DEFAULT_V3_PRIV_KEY,
                        help="SNMPv3 AES-128 passphrase, 8+ characters")
    parser.add_argument("--no-v3", action="store_true", help="do not serve SNMPv3")
    parser.add_argument("--mib", default="rfc3621",
                        help="MIB view(s): rfc3621, cisco, tplink, a comma list, or both "
                             "(= rfc3621,cisco); default rfc3621")
    parser.add_argument("--disabled", action="store_true",
                        help="start with every port off (default: ports powered)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds instead of waiting for Ctrl-C")
    parser.add_argument("--json", action="store_true", help="print the switch as JSON")
    parser.set_defaults(func=run_switch)


def run_switch(args: argparse.Namespace) -> int:
    from rig.sim.switch import V3User, VirtualSwitch, parse_mibs

    try:
        v3 = None if args.no_v3 else V3User(args.v3_user, args.v3_auth_key, args.v3_priv_key)
        switch = VirtualSwitch(args.ports, bind=args.bind, udp_port=args.port,
                               community_ro=args.community_ro or None,
                               community_rw=args.community_rw or None, v3_user=v3,
                               mibs=parse_mibs(args.mib), enabled=not args.disabled)
        switch.start()
    except (ValueError, OSError) as exc:
        print(f"rig sim switch: error: {exc}", file=sys.stderr)
        return 2
    try:
        with until_stopped(args.duration) as wait:
            info = describe(switch)
            print(json.dumps({"switch": info}) if args.json else render(info), flush=True)
            wait()
    finally:
        switch.stop()
    return 0


def describe(switch: Any) -> dict[str, Any]:
    """What a user needs to talk to the switch, as plain data."""
    host, port = switch.address
    v3 = switch.v3_user
    return {
        "address": host, "port": port, "ports": len(switch.port_numbers), "group": switch.group,
        "mibs": list(switch.mibs),
        "communities": {"ro": switch.community_ro, "rw": switch.community_rw},
        "v3": None if v3 is None else {"user": v3.name, "auth": "SHA", "auth_key": v3.auth_key,
                                       "priv": "AES", "priv_key": v3.priv_key},
        "port1_oids": switch.oids(1),
        "port1_off": _off_example(switch),
        "walk_root": ".".join(map(str, next(c for c in switch.columns if c.write).oid[:-1])),
    }


def _off_example(switch: Any) -> str:
    """``OID i VALUE`` that turns port 1 off through the first writable column served."""
    column = next(c for c in switch.columns if c.write)
    off = next(value for value, on in column.write.items() if not on)
    oid = ".".join(map(str, column.oid + column.index(switch.group, 1)))
    return f"{oid} i {off}"


def render(info: dict[str, Any]) -> str:
    target = f"{info['address']}:{info['port']}"
    lines = [f"virtual PoE switch on udp {target}: {info['ports']} ports (group "
             f"{info['group']}), MIB view(s) {', '.join(info['mibs'])}"]
    ro, rw = info["communities"]["ro"], info["communities"]["rw"]
    lines.append(f"  v1/v2c communities: read-only {ro or '(none)'}, read-write {rw or '(none)'}")
    v3 = info["v3"]
    lines.append("  SNMPv3: off" if v3 is None else
                 f"  SNMPv3: user {v3['user']}, authPriv SHA/AES, keys {v3['auth_key']} / "
                 f"{v3['priv_key']}")
    lines.append("  port 1:")
    for name, oid in info["port1_oids"].items():
        lines.append(f"    {name:<32} {oid}")
    if rw:
        lines.append(f"  try: snmpset -v2c -c {rw} -On {target} {info['port1_off']}")
    if v3 is not None:
        lines.append(f"  try: snmpwalk -v3 -l authPriv -u {v3['user']} -a SHA -A "
                     f"{v3['auth_key']} -x AES -X {v3['priv_key']} -On {target} "
                     f"{info['walk_root']}")
    lines.append("Ctrl-C to stop.")
    return "\n".join(lines)
