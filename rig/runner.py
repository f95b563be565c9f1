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
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from rig.actuators.base import ActuatorError
from rig.bench import Bench, PoeOutput, Slot
from rig.camera.isapi_types import Credentials
from rig.camera.profiles import ProfileSet
from rig.census import Census, Interrupted
from rig.identity import slot_interface
from rig.limits import AddressTurns, Limits
from rig.procedures import (
    PROCEDURES,
    BenchFault,
    SlotJob,
    UnitFault,
    verify,
)
from rig.records import Fault, RecordStore, RunStatus, Verdict, file_sha256
from rig.verify import UnitVerdict
from rig.wiring import BenchHardware

log = logging.getLogger(__name__)

#: Census cadence on a real bench (seconds); a simulated bench divides it by its time_scale.
CENSUS_WINDOW_S = 1.0
CENSUS_INTERVAL_S = 2.0

EventSink = Callable[[str, str, str], None]   # (slot, kind, text)


@dataclass(frozen=True)
class SlotResult:
    slot: str
    verdict: UnitVerdict
    mac: str | None
    serial: str | None
    notes: tuple[str, ...] = ()


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
                 on_event: EventSink | None = None, argv: list[str] | None = None) -> None:
        self.bench = bench
        self.store = store
        self.hardware = hardware
        self.method = method or bench.default_method
        if self.method not in PROCEDURES:
            raise ValueError(f"unknown method {self.method!r}; known: {', '.join(PROCEDURES)}")
        self.slots = bench.select(slots)
        self.credentials = credentials
        self.profiles = profiles or ProfileSet.load()
        self.emit: EventSink = on_event or (lambda slot, kind, text: None)
        self.argv = argv if argv is not None else sys.argv
        self.cancel = threading.Event()

    # --- recovery ---------------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Make safe what a dead earlier run left engaged on this bench; returns what was done."""
        done: list[str] = []
        names = {s.name for s in self.bench.slots}
        for recovered in self.store.recover_interrupted():
            if recovered.run.bench_name != self.bench.name:
                continue
            for entry in recovered.outputs:
                if entry.slot not in names:
                    continue
                try:
                    self._rest(self.bench.slot(entry.slot))
                    self.store.output_cleared(entry.id, "made safe after restart")
                    done.append(f"run {recovered.run.id}: {entry.kind} {entry.target} made safe")
                except ActuatorError as exc:
                    done.append(f"run {recovered.run.id}: {entry.target} NOT made safe: {exc}")
            if recovered.units:
                done.append(f"run {recovered.run.id} was interrupted; "
                            f"{len(recovered.units)} unit(s) marked interrupted")
        for line in done:
            self.emit("-", "recovery", line)
        return done

    def _rest(self, slot: Slot) -> None:
        hw = self.hardware.slot(slot.name)
        if hw.button is not None:
            hw.button.release()
        if isinstance(slot.power, PoeOutput):
            hw.power.on()

    # --- the batch --------------------------------------------------------------------------------

    def run(self) -> RunResult:
        # The switch connections open while the run is recorded and the first census taken.
        threading.Thread(target=self.hardware.connect_switches, args=(self.slots,),
                         name="connect-switches", daemon=True).start()
        self.recover()
        run_id = self.store.start_run(self.bench.name, method=self.method,
                                      bench_path=self.bench.path,
                                      bench_sha256=file_sha256(self.bench.path), argv=self.argv)
        units = {s.name: self.store.plan_unit(
            run_id, s.name, method=self.method, profile=s.profile or self.bench.default_profile,
            expected_mac=s.mac, expected_serial=s.serial) for s in self.slots}
        results: dict[str, SlotResult] = {}
        out = set(self.store.out_of_service_slots(self.bench.name))
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
                jobs = self._jobs(run_id, units, active, census, results, since)
                self._run_jobs(jobs, units, results)
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
            self.store.finish_run(run_id, status, note)
        return RunResult(run_id, status, results)

    def _census(self, slots: list[Slot]) -> Census:
        scale = self.bench.time_scale
        interval = max(CENSUS_INTERVAL_S / scale, 0.08)
        # When the bench file names every unit, the first round ends once all have answered.
        expect = [s.mac for s in slots if s.mac] if all(s.mac for s in slots) else []
        window = max(min(CENSUS_WINDOW_S / scale, interval * 0.6), 0.05)
        if self.bench.network.identity == "vlan":
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
              results: dict[str, SlotResult], since: float) -> list[SlotJob]:
        """One job per slot, with its 'before' evidence from the census round that started with
        the batch, before any output moves (hands open later, in the slot's own worker: a GPIO
        relay opens off)."""
        limits = Limits.for_bench(self.bench, AddressTurns.for_bench(
            self.bench, slots,
            lambda s: self.profiles.get(s.profile or self.bench.default_profile).default_ipv4))
        census.rounds_after(since, 1, 10 * census.interval + 5)
        jobs = []
        for slot in slots:
            unit_id = units[slot.name]
            profile = self.profiles.get(slot.profile or self.bench.default_profile)
            job = SlotJob(bench=self.bench, slot=slot, hardware=self.hardware, profile=profile,
                          profiles=self.profiles, method=self.method, store=self.store,
                          run_id=run_id, unit_id=unit_id, census=census, limits=limits,
                          cancel=self.cancel, credentials=self.credentials, emit=self.emit,
                          mac=slot.mac or self._mac_of_serial(census, slot.serial)
                          or self._mac_on_vlan(census, slot))
            if job.mac is not None:
                sighting = census.last(job.mac)
                job.before = sighting.device if sighting else None
                if job.before is not None:
                    self.store.add_evidence(unit_id, "sadp-before", job.before.to_json())
            jobs.append(job)
        return jobs

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

    def _run_jobs(self, jobs: list[SlotJob], units: dict[str, int],
                  results: dict[str, SlotResult]) -> None:
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
                            log.error("slot %s: worker failed: %r", futures[future].slot.name,
                                      future.exception())
            except BaseException:
                self.cancel.set()
                for future in futures:
                    future.cancel()
                wait(futures, timeout=30)
                raise

    def _run_slot(self, job: SlotJob, results: dict[str, SlotResult]) -> None:
        started = time.monotonic()
        verdict = UnitVerdict(Verdict.BENCH_FAULT, Fault.BENCH,
                              "internal error: the slot's worker ended without a verdict",
                              "internal")
        try:
            self._run_procedure(job)
        finally:
            verdict = job.verdict or verdict
            sighting = job.census.last(job.mac) if job.mac else None
            serial = sighting.device.serial if sighting else job.slot.serial
            self._finish(job.unit_id, job.slot.name, verdict, job.mac, serial, results,
                         tuple(job.notes))
            log.info("slot %s: %s in %.1f s", job.slot.name, verdict.verdict,
                     time.monotonic() - started)

    def _run_procedure(self, job: SlotJob) -> None:
        """The slot's procedure and verification; leaves its verdict in ``job.verdict``."""
        try:
            expect = PROCEDURES[self.method](job)
            verdict = verify(job, expect)
        except UnitFault as fault:
            verdict = fault.verdict
        except BenchFault as fault:
            verdict = UnitVerdict(Verdict.BENCH_FAULT, Fault.BENCH, str(fault), "bench")
        except Interrupted:
            verdict = UnitVerdict(Verdict.INTERRUPTED, Fault.NONE,
                                  "run stopped (Ctrl-C or SIGTERM) during this unit's reset")
        except Exception as exc:  # noqa: BLE001 - one slot's bug must not sink the batch
            log.exception("slot %s: unexpected error", job.slot.name)
            verdict = UnitVerdict(Verdict.BENCH_FAULT, Fault.BENCH,
                                  f"internal error: {type(exc).__name__}: {exc}", "internal")
        job.verdict = verdict
        self._release(job)

    @staticmethod
    def _release(job: SlotJob) -> None:
        """After the verdict: park the unit and end its address turn (serialised identity).
        The slot's group goes on without it only if its unit is known to be off; otherwise no
        later turn could make another unit the only one on the address. Never raises."""
        try:
            job.held.close()
        except Exception as exc:  # noqa: BLE001 - the verdict must still be recorded
            job.notes.append(f"could not park the unit: {exc}")
            log.error("slot %s: could not park the unit: %s", job.slot.name, exc)
        if job.may_be_on:
            job.limits.turns.spoil(job.slot.name, "its power-off or its parking did not "
                                                  "happen" if not job.off_once else
                                                  "it could not be parked")
        else:
            job.limits.turns.off(job.slot.name)

    def _unpark(self, jobs: list[SlotJob]) -> None:
        """Power parked units back on, spaced like any power-on (the batch is over: they may
        all answer on one address now)."""
        for job in jobs:
            if job.parked is None or self.cancel.is_set():
                continue
            try:
                at = job.limits.power_on.reserve(time.monotonic(), 0.0, 0.0, self.cancel)
                if self.cancel.wait(max(at - time.monotonic(), 0.0)):
                    return
                self.hardware.slot(job.slot.name).power.on()
                self.store.output_cleared(job.parked, "powered back on after the batch")
            except (ActuatorError, Interrupted) as exc:
                self.emit(job.slot.name, "warning", f"parked unit not powered back on: {exc}")
                log.error("slot %s: parked unit not powered back on: %s", job.slot.name, exc)

    def _finish(self, unit_id: int, slot: str, verdict: UnitVerdict, mac: str | None,
                serial: str | None, results: dict[str, SlotResult],
                notes: tuple[str, ...] = ()) -> None:
        reason = verdict.reason + (f" ({'; '.join(notes)})" if notes else "")
        self.store.finish_unit(unit_id, verdict.verdict, reason,
                               None if verdict.fault is Fault.NONE else verdict.fault,
                               check=verdict.check, mac=mac, serial=serial)
        results[slot] = SlotResult(slot, verdict, mac, serial, notes)
        self.emit(slot, "verdict", f"{verdict.verdict}: {reason}")
