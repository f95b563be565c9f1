"""One batch for a QA session: every unit reset, verified and activated, then found by MAC.

rig's pytest plugin (rig.pytest_plugin) calls ``run`` once per test session. It is ``rig run``
with the hand-over forced to ``provisioned`` (a QA test needs a unit it can log into), on the
same path: the guardian watching the outputs, the OutputGuard, the runner and its records. The
census afterwards says where each unit answers now: its pool address, or the address it has
on its own link (VLAN) when the bench gives each unit a route of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from rig.actuators.base import OutputGuard
from rig.bench import Bench, BenchError, Secret
from rig.camera.discovery import DiscoveryError, run_discovery
from rig.camera.isapi_types import Credentials
from rig.guardian import Guardian, GuardianError
from rig.identity import slot_interface
from rig.pytest_plugin import RigUnit
from rig.records import RecordStore, Unit
from rig.runner import Runner
from rig.vocabulary import FinalState, Verdict
from rig.wiring import BenchHardware

CENSUS_S = 3.0


class QaBatchError(RuntimeError):
    """The batch cannot run at all (no password, a bench fault before anything moved)."""


def qa_bench(bench: Bench, password_env: str | None) -> Bench:
    """The bench with its hand-over set to leave every unit provisioned (activated with the
    bench's password, on its pool address where the bench has a pool)."""
    config = bench.handover
    secret = Secret(env=password_env) if password_env else config.password
    if secret is None:
        raise QaBatchError(f"{bench.path}: units must be activated for QA tests: name the "
                           "password's environment variable in [handover] password_env or "
                           "with --rig-password-env")
    return dataclasses.replace(bench, handover=dataclasses.replace(
        config, final_state=FinalState.PROVISIONED, password=secret))


def run(bench: Bench, store: RecordStore, slots: Sequence[str], *,
        password_env: str | None = None, method: str | None = None) -> dict[str, RigUnit]:
    """Reset, verify and activate ``slots``; returns each slot's unit as left."""
    bench = qa_bench(bench, password_env)
    try:
        guardian = Guardian.start(bench.path, store.path, "qa")
    except GuardianError as exc:
        raise QaBatchError(f"{exc}; nothing was moved") from None
    with guardian, OutputGuard() as guard:
        hardware = BenchHardware(bench, guard=guard)
        try:
            result = Runner(bench, store, hardware, method=method, slots=list(slots),
                            argv=["pytest", "--rig-bench", str(bench.path)]).run()
        except BenchError as exc:
            raise QaBatchError(str(exc)) from None
        finally:
            hardware.close()
    assert bench.handover.password is not None
    credentials = Credentials(bench.handover.user, bench.handover.password.get())
    record = store.runs.load_run(result.run_id)
    seen = _census(bench, [u for u in record.units if u.mac])
    return {u.slot: _unit(bench, u, credentials, seen) for u in record.units}


def _census(bench: Bench, units: Sequence[Unit]) -> dict[str, dict[str, Any]]:
    """MAC → the unit's SADP reply now (where it answers after the hand-over)."""
    links = sorted({link for u in units if (link := slot_interface(bench, bench.slot(u.slot)))})
    where: dict[str, Any] = ({"interfaces": links} if links else
                             {"bind": bench.network.address} if bench.network.address else
                             {"interface": bench.network.interface})
    try:
        found = run_discovery(CENSUS_S, expect=[u.mac for u in units if u.mac], **where)
    except DiscoveryError as exc:
        raise QaBatchError(f"the census after the batch failed: {exc}") from None
    return {d.mac: d.to_json() for d in found.devices}


def _unit(bench: Bench, unit: Unit, credentials: Credentials,
          seen: dict[str, dict[str, Any]]) -> RigUnit:
    sadp = seen.get(unit.mac or "", {})
    ready = unit.verdict is Verdict.PROVISIONED and bool(sadp)
    reason = unit.reason if unit.verdict is not Verdict.PROVISIONED or sadp else (
        "provisioned, but it did not answer the census after the batch")
    shared = [m for m, s in seen.items() if m != unit.mac and sadp
              and s.get("ipv4") == sadp.get("ipv4") and not slot_interface(
                  bench, bench.slot(unit.slot))]
    if ready and shared:
        ready, reason = False, (f"answers on {sadp.get('ipv4')}, shared with {shared[0]}: give "
                                "the bench a [handover] pool_start so each unit has its own "
                                "address")
    return RigUnit(
        slot=unit.slot, ready=ready, verdict=str(unit.verdict), reason=reason,
        run_id=unit.run_id, unit_id=unit.id, mac=unit.mac, serial=unit.serial,
        model=sadp.get("model"), firmware=sadp.get("firmware"), host=sadp.get("ipv4"),
        http_port=int(sadp.get("http_port") or bench.network.http_port),
        interface=slot_interface(bench, bench.slot(unit.slot)), credentials=credentials,
        sadp=sadp)
