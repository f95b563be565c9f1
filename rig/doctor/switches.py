"""PoE switches: each answers SNMP with the bench file's credentials, knows every port the
bench names, and says how each port and its power budget stand. Read-only GETs; never a SET.

Telling SNMPv3 faults apart: an agent that refuses a v3 request answers with a Report PDU
whose one varbind is the USM counter the refusal incremented (RFC 3414 section 3.2):
usmStatsUnknownUserNames (no such user), usmStatsWrongDigests (the auth key or protocol
differs), usmStatsDecryptionErrors (the privacy key or protocol differs). pysnmp turns that
OID into an error indication, rig.actuators.snmp into ``SnmpAuthError.status``; the doctor
names each with its own fix. v2c has no such report: a wrong community is silence, which
looks like a switch that is down, and the finding says both.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from rig.bench import BenchError, PoeOutput, Slot, SwitchConfig
from rig.doctor.findings import Finding, fail, ok, warn
from rig.vocabulary import DoctorArea, FindingLevel

if TYPE_CHECKING:
    from rig.actuators.poe import PoeSwitch
    from rig.doctor.runner import DoctorContext

_AREA = DoctorArea.SWITCH
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
#: pethMainPseTable (RFC 3621), index group: nominal power W, oper status, consumption W.
MAIN_POWER = (1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1, 2)
MAIN_OPER_STATUS = (1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1, 3)
MAIN_CONSUMPTION = (1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1, 4)
#: Consumption above this share of the nominal budget leaves no room for a booting camera.
BUDGET_HEADROOM = 0.9
_WELL_KNOWN_COMMUNITIES = ("public", "private")

#: SnmpAuthError.status (the USM report's counter) → what it means, what to do.
USM_FAULTS: dict[str, tuple[str, str]] = {
    "UnknownUserName": ("unknown SNMPv3 user (usmStatsUnknownUserNames)",
                        "the switch has no user {user}: create it on the switch "
                        "(snmp-server user …) or fix `user` in the bench file"),
    "WrongDigest": ("wrong auth key (usmStatsWrongDigests)",
                    "the auth key in {auth} or auth_protocol differs from the switch's user "
                    "{user}: set the switch's key"),
    "DecryptionError": ("wrong privacy key (usmStatsDecryptionErrors)",
                        "the privacy key in {priv} or priv_protocol differs from the switch's "
                        "user {user}: set the switch's key"),
}


def probe(ctx: DoctorContext) -> list[Finding]:
    findings: list[Finding] = []
    for name, cfg in ctx.bench.switches.items():
        slots = [s for s in ctx.bench.slots
                 if isinstance(s.power, PoeOutput) and s.power.switch == name]
        findings += _switch(cfg, slots)
    return findings


def _open(cfg: SwitchConfig) -> PoeSwitch:
    """The driver, built as rig.wiring builds it; BenchError/ValueError when the credentials
    cannot even be assembled (a variable unset, a key too short)."""
    from rig.actuators.poe import PoeSwitch

    return PoeSwitch(cfg.host, cfg.port, version=cfg.version, community=cfg.community.get(),
                     user=cfg.user, auth_key=cfg.auth_key.get() if cfg.auth_key else None,
                     priv_key=cfg.priv_key.get() if cfg.priv_key else None,
                     auth_protocol=cfg.auth_protocol, priv_protocol=cfg.priv_protocol,
                     mib=cfg.mib, group=cfg.group, timeout=cfg.timeout, retries=cfg.retries,
                     name=f"switch {cfg.name}")


def _switch(cfg: SwitchConfig, slots: list[Slot]) -> list[Finding]:
    label = f"switch {cfg.name}"
    try:
        switch = _open(cfg)
    except (BenchError, ValueError) as exc:
        return [fail(_AREA, label, f"credentials: {exc}", "set the variable the bench file "
                     "names (in the service's environment), or fix the key in the switch")]
    try:
        first = _credentials(cfg, switch)
        if first.level is FindingLevel.FAIL:
            return [first]
        findings = [first, *_ports(cfg, switch, slots), _budget(cfg, switch, len(slots))]
    finally:
        switch.close()
    return findings


def _env_name(secret: Any) -> str:
    """How the finding names a key: by its variable, never by its value."""
    return f"${secret.env}" if secret is not None and secret.env else "the bench file"


def _credentials(cfg: SwitchConfig, switch: PoeSwitch) -> Finding:
    """One GET of sysName: proves the address, the port and the credentials at once."""
    from rig.actuators.snmp import SnmpAuthError, SnmpError, SnmpTimeout

    label = f"switch {cfg.name}"
    who = f"as user {cfg.user}" if cfg.version == "3" else "with the community"
    try:
        rows = switch.get_scalars([SYS_NAME])
    except SnmpAuthError as exc:
        meaning, fix = USM_FAULTS.get(exc.status or "", (exc.message, "check the SNMPv3 "
                                                         "settings against the switch's"))
        return fail(_AREA, label, f"{cfg.host}:{cfg.port} refused SNMPv3 {who}: {meaning}",
                    fix.format(user=cfg.user, auth=_env_name(cfg.auth_key),
                               priv=_env_name(cfg.priv_key)))
    except SnmpTimeout:
        cause = ("a wrong community (v2c agents stay silent), or the switch is down or "
                 "unreachable" if cfg.version == "2c" else "the switch is down or unreachable")
        return fail(_AREA, label, f"no SNMP answer from {cfg.host}:{cfg.port} within "
                    f"{cfg.timeout:g} s x {cfg.retries + 1}: {cause}",
                    "ping it, check its SNMP access list for this host, and the community")
    except SnmpError as exc:
        return fail(_AREA, label, exc.message, "check the switch's SNMP configuration")
    name = str(rows[0][1]) if rows else "?"
    text = f"answers SNMP v{cfg.version} {who} (sysName {name!r})"
    if cfg.version == "2c" and _cleartext_risk(cfg):
        return warn(_AREA, label, text + "; v2c with a well-known community sends it in clear",
                    "use SNMPv3 authPriv (version = \"3\", user, auth_key_env, priv_key_env)")
    return ok(_AREA, label, text)


def _cleartext_risk(cfg: SwitchConfig) -> bool:
    """A well-known v2c community on a real network (docs/snmp-poe.md §6). On loopback (the
    simulator) nothing crosses a wire to be sniffed."""
    try:
        loopback = ipaddress.ip_address(cfg.host).is_loopback
    except ValueError:
        loopback = cfg.host == "localhost"
    return not loopback and cfg.community.env is None and \
        cfg.community.value in _WELL_KNOWN_COMMUNITIES


def _ports(cfg: SwitchConfig, switch: PoeSwitch, slots: list[Slot]) -> list[Finding]:
    """Admin state and detection status of each port the bench names, one GET each, so a
    port the switch does not have is named alone."""
    from rig.actuators.base import PowerState
    from rig.actuators.snmp import SnmpError

    findings = []
    for slot in slots:
        assert isinstance(slot.power, PoeOutput)
        port = slot.power.port
        label = f"switch {cfg.name} port {port} (slot {slot.name})"
        try:
            reading = switch.read_ports([port])[port]
        except SnmpError as exc:
            findings.append(fail(_AREA, label, exc.message, f"check the port number and mib "
                                 f"= {cfg.mib!r} against the switch (rig's walk_ports lists "
                                 "its ports)"))
            continue
        if reading.state is PowerState.OFF:
            findings.append(warn(_AREA, label, f"PoE off ({reading.detail}): the camera has no "
                                 "power", "rig safe BENCH turns PoE ports back on"))
        elif reading.state is PowerState.UNKNOWN:
            findings.append(fail(_AREA, label, f"admin state unreadable ({reading.detail})",
                                 f"check mib = {cfg.mib!r} against the switch"))
        elif reading.drawing_power is False:
            level = fail if "ault" in reading.detail else warn
            findings.append(level(_AREA, label, f"PoE on, no camera drawing power "
                                  f"({reading.detail})", "check the cable and the camera"))
        else:
            findings.append(ok(_AREA, label, f"PoE on, {reading.detail}"))
    return findings


def _budget(cfg: SwitchConfig, switch: PoeSwitch, ports: int) -> Finding:
    """pethMainPseTable: the PSE is on, has headroom, and covers what the bench assumes."""
    from rig.actuators.snmp import SnmpError

    label = f"switch {cfg.name} power budget"
    oids = [column + (cfg.group,) for column in (MAIN_POWER, MAIN_OPER_STATUS, MAIN_CONSUMPTION)]
    try:
        values = [_number(v) for _, v in switch.get_scalars(oids)]
    except SnmpError as exc:
        return warn(_AREA, label, f"unreadable: {exc.message}", "set power_budget_watts from "
                    "the switch's datasheet")
    nominal, status, used = (values + [None] * 3)[:3]
    if nominal is None:
        known = cfg.power_budget_watts
        text = "the switch does not publish pethMainPseTable"
        if known:
            return ok(_AREA, label, f"{text}; the bench file's {known:g} W is used")
        return warn(_AREA, label, text, "set power_budget_watts from the switch's datasheet")
    if status is not None and status != 1:
        return fail(_AREA, label, f"the PSE is not on (pethMainPseOperStatus {status})",
                    "check the switch's PoE supply")
    text = f"{used if used is not None else '?'} W used of {nominal} W"
    if used is not None and used > BUDGET_HEADROOM * nominal:
        return warn(_AREA, label, text + ": no headroom for a booting camera",
                    "move slots to another switch or lower the load")
    if cfg.power_budget_watts and cfg.power_budget_watts > nominal:
        return warn(_AREA, label, f"{text}; the bench file assumes {cfg.power_budget_watts:g} "
                    "W", f"set power_budget_watts = {nominal}")
    if not cfg.power_budget_watts and ports * cfg.port_watts > nominal:
        return warn(_AREA, label, f"{text}; {ports} ports x {cfg.port_watts:g} W exceed it",
                    f"set power_budget_watts = {nominal} so rig staggers boots")
    return ok(_AREA, label, text)


def _number(value: Any) -> int | None:
    """An SNMP number, or None for noSuchObject / noSuchInstance / anything not a number."""
    try:
        return int(value)
    except Exception:  # noqa: BLE001 - pyasn1 raises its own errors for the absent markers
        return None
