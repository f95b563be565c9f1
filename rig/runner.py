"""A batch: every selected slot reset and verified in parallel, within the bench's limits.

The runner owns the order of things a crash must not scramble: recover what an earlier run left
(outputs made safe, its units marked interrupted), record the run and every unit before any
output moves, run each slot's procedure in its own thread, and record each verdict before the
slot is considered done. Ctrl-C and SIGTERM stop it cleanly: waits are cancelled, solenoids
released, PoE ports restored, and the run is recorded as interrupted.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from rig.bench import Bench, Slot
from rig.camera.isapi_types import Credentials
from rig.camera.profiles import ProfileSet
from rig.census import Census, Interrupted
from rig.context import SlotContext, Unit
from rig.faults import BenchFault, UnitFault
from rig.handover import HandoverPlan, hand_over
from rig.hands import SlotHands
from rig.identity import slot_interface
from rig.limits import Limits
from rig.logins import LoginAllowance
from rig.procedures import PROCEDURES
from rig.recorder import EventSink, Recorder
from rig.records import RecordStore, file_sha256
from rig.recovery import RecoveryReport, emit_report, recover
from rig.rollcall import roll_call
from rig.serialised import AddressTurns, SlotTurn
from rig.verification import verify_unit
from rig.verify import UnitVerdict
from rig.vocabulary import (
    BenchFaultKind,
    EvidenceKind,
    Fault,
    FinalState,
    Grade,
    IdentityStrategy,
    Method,
    RunStatus,
    Verdict,
)
from rig.wiring import BenchHardware

log = logging.getLogger(__name__)

#: The check a unit fails when it is not the one the slot expects (``identity_mismatch``).
IDENTITY_MISMATCH = "identity-mismatch"
#: Census cadence on a real bench (seconds); a simulated bench divides it by its time_scale.
CENSUS_WINDOW_S = 1.0
CENSUS_INTERVAL_S = 2.0


@dataclass(frozen=True)
class SlotResult:
    slot: str
    verdict: UnitVerdict
    mac: str | None
    serial: str | None
    notes: tuple[str, ...] = ()
    final_state: FinalState | None = None      # the state the unit was proven left in
    grade: Grade | None = None                 # functional grade, where checks ran


@dataclass(frozen=True)
class SlotJob:
    """One slot's work in a batch: its context, its recorder, and its unit as first known."""

    ctx: SlotContext
    rec: Recorder
    unit: Unit


@dataclass(frozen=True)
class RunResult:
    run_id: int
    status: RunStatus
    results: dict[str, SlotResult] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status is RunStatus.PASSED


class Runner:
    """Run one batch on ``bench``. The caller owns ``store`` and ``hardware`` (and installs the
    OutputGuard that registers with the hardware)."""

    def __init__(self, bench: Bench, store: RecordStore, hardware: BenchHardware, *,
                 method: str | None = None, slots: list[str] | None = None,
                 credentials: Credentials | None = None, profiles: ProfileSet | None = None,
                 on_event: EventSink | None = None, argv: list[str] | None = None,
                 operator: str | None = None, destination: str | None = None) -> None:
        self.bench = bench
        self.store = store
        self.hardware = hardware
        try:
            self.method = Method(method or bench.default_method)
        except ValueError:
            raise ValueError(f"unknown method {method!r}; known: "
                             f"{', '.join(PROCEDURES)}") from None
        self.slots = bench.select(slots)
        self.credentials = credentials
        self.handover = HandoverPlan.for_bench(bench)     # BenchError before anything moves
        self.profiles = profiles or ProfileSet.load()
        self.emit: EventSink = on_event or (lambda slot, kind, text: None)
        self.argv = argv if argv is not None else sys.argv
        # who runs the batch and where its units go, for certificates: the bench file's
        # [certificate] defaults unless the command line said
        self.operator = operator or bench.certificate.operator
        self.destination = destination or str(bench.certificate.destination or "")
        self.cancel = threading.Event()

    # --- recovery ---------------------------------------------------------------------------------

    def recover(self) -> RecoveryReport:
        """Make safe what dead earlier runs left engaged on this bench, closing each only once
        all of its outputs are safe; outputs still engaged are shown as warnings."""
        report = recover(self.store, self.bench, self.hardware)
        emit_report(report, self.emit)
        for line in report.engaged:
            log.error("%s", line)
        return report

    # --- the batch --------------------------------------------------------------------------------

    def run(self) -> RunResult:
        # The switch connections open while the run is recorded and the first census taken.
        threading.Thread(target=self.hardware.connect_switches, args=(self.slots,),
                         name="connect-switches", daemon=True).start()
        self.recover()
        run_id = self.store.runs.start_run(self.bench.name, method=self.method,
                                      bench_path=self.bench.path,
                                      bench_sha256=file_sha256(self.bench.path), argv=self.argv,
                                      operator=self.operator, destination=self.destination)
        self.slots = self._pinned(run_id)
        units = {s.name: self.store.runs.plan_unit(
            run_id, s.name, method=self.method, profile=s.profile.name,
            expected_mac=s.mac, expected_serial=s.serial) for s in self.slots}
        results: dict[str, SlotResult] = {}
        out = {s.slot for s in self.store.slots.out_of_service(self.bench.name)}
        for slot in self.slots:
            if slot.name in out:
                verdict = UnitVerdict(Verdict.OUT_OF_SERVICE, Fault.BENCH,
                                      "slot out of service after repeated bench faults; "
                                      "clear it when the bench is fixed")
                self._finish(units[slot.name], slot.name, verdict, None, None, results)
        active = [s for s in self.slots if s.name not in out]
        status = RunStatus.INTERRUPTED
        try:
            since = time.monotonic()       # the census's first round counts as "before"
            with self._census(active) as census:
                jobs = self._jobs(run_id, units, active, census, since)
                self._run_jobs(jobs, results)
                self._unpark(jobs)
            complete = {s.name for s in self.slots} <= results.keys()
            status = (RunStatus.PASSED if complete and all(r.verdict.passed
                                                           for r in results.values())
                      else RunStatus.FAILED)
        except (KeyboardInterrupt, SystemExit):
            self.cancel.set()
            self.emit("-", "interrupted", "stopping: releasing solenoids, restoring power")
            raise
        finally:
            errors = self.hardware.make_safe()
            note = "; ".join(errors)
            self.store.runs.finish_run(run_id, status, note)
        return RunResult(run_id, status, results)

    def _pinned(self, run_id: int) -> tuple[Slot, ...]:
        """The slots with the identities pinned for this run on the dashboard (a scanned serial
        or MAC, rig.records.pins) in place of the bench file's ``mac``/``serial``: from here on
        a pin is the slot's expected identity exactly as if the file had said it."""
        pins = self.store.pins.take(self.bench.name, [s.name for s in self.slots], run_id)
        for name, pin in pins.items():
            self.emit(name, "step", f"expects {pin.mac or pin.serial}, pinned by "
                                    f"{pin.pinned_by}")
        return tuple(replace(slot, mac=pin.mac, serial=pin.serial)
                     if (pin := pins.get(slot.name)) else slot for slot in self.slots)

    def _census(self, slots: list[Slot]) -> Census:
        scale = self.bench.time_scale
        interval = max(CENSUS_INTERVAL_S / scale, 0.08)
        # When the bench file names every unit, the first round ends once all have answered.
        expect = [s.mac for s in slots if s.mac] if all(s.mac for s in slots) else []
        window = max(min(CENSUS_WINDOW_S / scale, interval * 0.6), 0.05)
        if self.bench.network.identity == IdentityStrategy.VLAN:
            # Every slot's own VLAN sub-interface, probed in the same window: a unit is the
            # slot's because it answers there. They all carry the bench address, so the
            # interface (not the address) pins each probe.
            interfaces = sorted({i for i in (slot_interface(self.bench, s) for s in slots) if i})
            return Census(interfaces=interfaces, window=window, interval=interval,
                          expect=expect)
        return Census(bind=self.bench.network.address, interface=None
                      if self.bench.network.address else self.bench.network.interface,
                      window=window, interval=interval, expect=expect)

    def _jobs(self, run_id: int, units: dict[str, int], slots: list[Slot], census: Census,
              since: float) -> list[SlotJob]:
        """One job per slot, with its 'before' evidence from the census round that started with
        the batch, before any output moves (hands open later, in the slot's own worker: a GPIO
        relay opens off)."""
        limits = Limits.for_bench(self.bench)
        turns = AddressTurns.for_bench(
            self.bench, slots,
            lambda s: s.profile.default_ipv4)
        census.rounds_after(since, 1, 10 * census.interval + 5)
        jobs = []
        for slot in slots:
            rec = Recorder(self.store, run_id, units[slot.name], slot.name, self.emit)
            hands = SlotHands(self.hardware, slot, rec)
            ctx = SlotContext(
                bench=self.bench, slot=slot,
                profile=slot.profile,
                profiles=self.profiles, hands=hands,
                turn=SlotTurn(turns, hands, rec, self.cancel), limits=limits, census=census,
                cancel=self.cancel, credentials=self.credentials,
                logins=LoginAllowance(self.store.logins, self.profiles, slot.profile))
            jobs.append(SlotJob(ctx, rec, self._known_unit(census, slot, rec)))
        return jobs

    def _known_unit(self, census: Census, slot: Slot, rec: Recorder) -> Unit:
        """The slot's unit as the bench file and the first census round tell it."""
        mac = (slot.mac or self._mac_of_serial(census, slot.serial)
               or self._mac_on_vlan(census, slot))
        sighting = census.last(mac) if mac else None
        if sighting is not None:
            rec.evidence(EvidenceKind.SADP_BEFORE, sighting.device.to_json())
        return Unit(mac, sighting.device if sighting else None)

    def _mac_on_vlan(self, census: Census, slot: Slot) -> str | None:
        """On a VLAN bench, the one unit that answered on the slot's own interface."""
        interface = slot_interface(self.bench, slot)
        if interface is None:
            return None
        heard = census.heard_on(interface)
        return next(iter(heard)) if len(heard) == 1 else None

    @staticmethod
    def _mac_of_serial(census: Census, serial: str | None) -> str | None:
        if not serial:
            return None
        return next((d.mac for d in census.present().values() if d.serial == serial), None)

    def _run_jobs(self, jobs: list[SlotJob], results: dict[str, SlotResult]) -> None:
        if not jobs:
            return
        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="slot") as pool:
            futures: dict[Future[None], SlotJob] = {
                pool.submit(self._run_slot, job, results): job for job in jobs}
            try:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in done:
                        if future.exception() is not None:     # _run_slot's own failure
                            log.error("slot %s: worker failed: %r",
                                      futures[future].ctx.slot.name, future.exception())
            except BaseException:
                self.cancel.set()
                for future in futures:
                    future.cancel()
                wait(futures, timeout=30)
                raise

    def _run_slot(self, job: SlotJob, results: dict[str, SlotResult]) -> None:
        """The slot's stages, then its verdict recorded whatever happened."""
        started = time.monotonic()
        verdict = UnitVerdict(Verdict.BENCH_FAULT, Fault.BENCH,
                              "internal error: the slot's worker ended without a verdict",
                              BenchFaultKind.INTERNAL)
        unit = job.unit
        try:
            verdict, unit = self._stages(job)
        finally:
            sighting = job.ctx.census.last(unit.mac) if unit.mac else None
            serial = sighting.device.serial if sighting else job.ctx.slot.serial
            self._finish(job.rec.unit_id, job.ctx.slot.name, verdict, unit.mac, serial,
                         results, job.rec.notes, job.rec.grade)
            log.info("slot %s: %s in %.1f s", job.ctx.slot.name, verdict.verdict,
                     time.monotonic() - started)

    def _stages(self, job: SlotJob) -> tuple[UnitVerdict, Unit]:
        """Identity, the procedure and verification inside the slot's serialised turn (which
        parks the unit, or spoils its group, on the way out); returns the verdict and the unit
        as it came to be known."""
        ctx, rec, unit = job.ctx, job.rec, job.unit
        try:
            with ctx.turn:
                if unit.mac is None:
                    unit = roll_call(ctx, rec)
                mismatch = identity_mismatch(ctx.slot, unit)
                if mismatch is not None:
                    return mismatch, unit          # not the unit expected: not reset
                procedure = PROCEDURES[self.method]
                outcome = procedure(ctx, rec, unit)
                unit = outcome.unit
                verdict = verify_unit(ctx, rec, outcome)
                if verdict.passed and self.handover is not None:
                    verdict = hand_over(ctx, rec, unit, verdict, self.handover, procedure)
                return verdict, unit
        except UnitFault as fault:
            return fault.verdict, unit
        except BenchFault as fault:       # the check says what failed: snmp, serial, setup…
            return UnitVerdict(Verdict.BENCH_FAULT, Fault.BENCH, str(fault), fault.kind), unit
        except Interrupted:
            return UnitVerdict(Verdict.INTERRUPTED, Fault.NONE, "run stopped (Ctrl-C or "
                               "SIGTERM) during this unit's reset"), unit
        except Exception as exc:  # noqa: BLE001 - one slot's bug must not sink the batch
            log.exception("slot %s: unexpected error", ctx.slot.name)
            return UnitVerdict(Verdict.BENCH_FAULT, Fault.BENCH,
                               f"internal error: {type(exc).__name__}: {exc}",
                               BenchFaultKind.INTERNAL), unit

    def _unpark(self, jobs: list[SlotJob]) -> None:
        """Power parked units back on, spaced like any power-on (the batch is over: they may
        all answer on one address now)."""
        for job in jobs:
            if self.cancel.is_set():
                return
            try:
                job.ctx.turn.unpark(job.ctx.limits.power_on, self.cancel)
            except (BenchFault, Interrupted) as exc:
                name = job.ctx.slot.name
                self.emit(name, "warning", f"parked unit not powered back on: {exc}")
                log.error("slot %s: parked unit not powered back on: %s", name, exc)

    def _final_state(self, verdict: UnitVerdict) -> FinalState | None:
        """The state a verdict proves the unit was left in (None: none was proven)."""
        if verdict.verdict is Verdict.PROVISIONED:
            return FinalState.PROVISIONED
        if verdict.verdict is not Verdict.FACTORY_DEFAULT:
            return None
        return self.handover.final_state if self.handover else FinalState.FACTORY

    def _finish(self, unit_id: int, slot: str, verdict: UnitVerdict, mac: str | None,
                serial: str | None, results: dict[str, SlotResult],
                notes: tuple[str, ...] = (), grade: Grade | None = None) -> None:
        reason = verdict.reason + (f" ({'; '.join(notes)})" if notes else "")
        final = self._final_state(verdict)
        self.store.runs.finish_unit(unit_id, verdict.verdict, reason,
                                    None if verdict.fault is Fault.NONE else verdict.fault,
                                    check=verdict.check, mac=mac, serial=serial,
                                    final_state=final, grade=grade)
        results[slot] = SlotResult(slot, verdict, mac, serial, notes, final, grade)
        self.emit(slot, "verdict", f"{verdict.verdict}: {reason}")


def identity_mismatch(slot: Slot, unit: Unit) -> UnitVerdict | None:
    """The verdict for a slot whose unit, as SADP showed it before the reset, is not the one
    the bench file or a pin expects (None when it is, or when nothing was seen to compare):
    skipped, not reset, so a unit nobody asked for is never wiped."""
    seen = unit.before
    if seen is None:
        return None
    wrong = [f"expected {what} {want}, found {got}"
             for what, want, got in (("MAC", slot.mac, seen.mac),
                                     ("serial", slot.serial, seen.serial))
             if want and got and want.lower() != got.lower()]
    if not wrong:
        return None
    return UnitVerdict(Verdict.SKIPPED, Fault.NONE,
                       f"identity mismatch: {'; '.join(wrong)}; the unit was not reset",
                       IDENTITY_MISMATCH)
