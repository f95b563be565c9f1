"""Reset recipes as recorded steps: hard (button through power-up), poe-cycle, web-basic, web-full
and auto. Each step is written to the record store before it acts and closed after it (with
its outcome), so a crash leaves an honest trail and a report can draw every unit's timeline.

A procedure talks to the slot's hands through the PowerControl / CappedButton interfaces and to
the unit through SADP (the shared census) and ISAPI; it never knows whether they are simulated.
Every wait is interruptible (Ctrl-C, SIGTERM) and bounded, and every duration from a firmware
profile is divided by the bench's time_scale (1 on a real bench).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from rig.actuators.base import ActuatorError
from rig.bench import Bench, PoeOutput, Slot, describe_output
from rig.camera.factory_state import HttpState, check_http
from rig.camera.isapi import IsapiClient
from rig.camera.isapi_errors import IsapiError
from rig.camera.isapi_types import Credentials
from rig.camera.profiles import FirmwareProfile, ProfileSet
from rig.camera.sadp import SadpDevice
from rig.census import Census, Interrupted
from rig.identity import HttpRoute, NoRoute, http_route, slot_interface
from rig.limits import AddressSpoiled, Limits
from rig.records import Fault, RecordStore, StepOutcome, Verdict
from rig.verify import BASIC, FULL, Check, UnitVerdict, judge, sharing_address
from rig.wiring import BenchHardware, SlotHardware

#: Extra press time around power-on: the solenoid goes in before power and stays past the hold.
PRESS_MARGIN_S = 2.0
#: Unscaled headroom for the solenoid watchdog: the time from energising to power-on includes
#: commands (an SNMP SET queued behind others) that a simulated bench's time_scale does not
#: shrink. The step still releases the button once the hold has run from power-on; this only
#: keeps the safety net from firing first. Never past the bench's cap.
PRESS_SLACK_S = 2.0
#: A unit gets this many times its profile's boot time (plus a fixed margin) to answer again.
BOOT_TIMEOUT_FACTOR = 2.0
BOOT_TIMEOUT_MARGIN_S = 30.0
#: ISAPI request timeout (real seconds; not scaled: it is a network bound, not a device time).
HTTP_TIMEOUT_S = 5.0
#: A unit answers SADP before its web server is up: an unreachable HTTP check is tried again
#: (no login is spent on a refused connection), this many times, this far apart (scaled).
HTTP_ATTEMPTS = 5
HTTP_RETRY_S = 6.0


class BenchFault(Exception):
    """The bench, not the unit, failed: an actuator, the switch, a missing solenoid."""


class UnitFault(Exception):
    """The unit failed a step (never came back, refused a login): carries the verdict."""

    def __init__(self, verdict: UnitVerdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


@dataclass
class SlotJob:
    """Everything one slot's procedure needs. Built by the runner, one per slot per run."""

    bench: Bench
    slot: Slot
    hardware: BenchHardware
    profile: FirmwareProfile
    profiles: ProfileSet
    method: str
    store: RecordStore
    run_id: int
    unit_id: int
    census: Census
    limits: Limits
    cancel: threading.Event
    credentials: Credentials | None = None
    emit: Callable[[str, str, str], None] = lambda slot, kind, text: None
    mac: str | None = None
    before: SadpDevice | None = None
    notes: list[str] = field(default_factory=list)
    #: What the runner releases after the verdict (a serialised bench's address turn).
    held: ExitStack = field(default_factory=ExitStack)
    #: The outputs-ledger entry of a unit parked at the end of its turn (powered back on by
    #: the runner when the batch is done).
    parked: int | None = None
    verdict: UnitVerdict | None = None
    off_once: bool = False          # the unit was powered off by this run
    on_again: bool = False          # ... and powered on again since (not parked)

    @property
    def may_be_on(self) -> bool:
        """Whether the unit may be powered (and answering) now, as far as the rig knows."""
        return not self.off_once or self.on_again

    @property
    def hw(self) -> SlotHardware:
        """The slot's hands, opened on first use (a GPIO relay opens in its off state)."""
        try:
            return self.hardware.slot(self.slot.name)
        except (ActuatorError, ValueError) as exc:
            raise BenchFault(f"cannot open the slot's hardware: {exc}") from exc

    # --- time -------------------------------------------------------------------------------------

    def scaled(self, seconds: float) -> float:
        return seconds / self.bench.time_scale

    def sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Interrupted("run stopped")

    # --- records ----------------------------------------------------------------------------------

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[int]:
        """A recorded step: written before it acts, closed with its outcome after. Progress is
        shown once the step is on disk, so the screen never runs ahead of the records."""
        with self.store.step(self.unit_id, name, detail) as step_id:
            self.emit(self.slot.name, "step", name)
            yield step_id

    def evidence(self, kind: str, data: dict[str, Any], step_id: int | None = None) -> None:
        self.store.add_evidence(self.unit_id, kind, data, step_id)

    def engaged(self, kind: str, target: str, note: str = "") -> int:
        return self.store.output_engaged(self.run_id, self.slot.name, kind, target, note)

    def cleared(self, output_id: int, note: str = "") -> None:
        self.store.output_cleared(output_id, note)

    # --- the unit ---------------------------------------------------------------------------------

    def after_power_on(self) -> float:
        """How long the unit needs from power-on (its place in the power-on schedule)."""
        return self.scaled(max(self.profile.boot_seconds, self.profile.hold_seconds[1]))

    def route(self, device: SadpDevice) -> HttpRoute:
        """The HTTP route to this slot's unit by the bench's identity strategy (NoRoute)."""
        assert self.mac is not None
        sighting = self.census.last(self.mac)
        interface = slot_interface(self.bench, self.slot)
        return http_route(self.bench, self.slot, self.mac, device.ipv4,
                          device.http_port or 80,
                          shared=self.limits.turns.address_of(self.slot.name),
                          heard_on=sighting.heard_on if sighting else (),
                          neighbours=self.census.heard_on(interface) if interface else ())

    def client(self, route: HttpRoute) -> IsapiClient:
        return IsapiClient(route.host, route.port, timeout=HTTP_TIMEOUT_S,
                           interface=route.interface)

    def client_for(self, device: SadpDevice) -> IsapiClient:
        """A client for a web reset: over the identity route, so a login or a factoryReset
        sent to a shared address never reaches another slot's unit."""
        try:
            route = self.route(device)
        except NoRoute as exc:
            raise UnitFault(judge_not_default("http-attribution",
                                              f"no route to this unit: {exc}")) from exc
        sharing = sharing_address(device, self.census.present().values())
        if not route.exclusive and sharing:        # the bench's setup, not the unit's fault
            raise BenchFault(f"{len(sharing) + 1} units answer on {device.ipv4} "
                             f"({', '.join(sharing)} too): a web request there could reach "
                             "another unit; use the hard method, or identity ipv6-link-local "
                             "or vlan")
        return self.client(route)

    def boot_timeout(self) -> float:
        return self.scaled(self.profile.boot_seconds * BOOT_TIMEOUT_FACTOR + BOOT_TIMEOUT_MARGIN_S)

    def census_round(self) -> float:
        return self.census.interval + self.census.window


# --- hands ---------------------------------------------------------------------------------------

def power_off(job: SlotJob) -> int:
    """Cut the slot's power (recorded in the outputs ledger first); learn the unit's identity on
    the way when the bench does not give it. Returns the ledger id to clear at power-on."""
    target = describe_output(job.slot.power)
    kind = "poe-port-off" if isinstance(job.slot.power, PoeOutput) else "power-off"
    with job.step("power off", target) as step_id:
        ledger = job.engaged(kind, target, "reset in progress")
        if job.mac is not None:
            _act(job, job.hw.power.off)
        else:
            with job.limits.roll_call:               # one slot at a time: who went quiet?
                # Two rounds each side: a unit is "there" if either round saw it, "gone" only
                # if neither did (one lost datagram must not name the wrong unit).
                wait = 6 * job.census_round()
                before = job.census.rounds_after(time.monotonic(), 2, wait, job.cancel)
                _act(job, job.hw.power.off)         # opening a GPIO relay already cuts power
                after = job.census.rounds_after(time.monotonic(), 2, wait, job.cancel)
                gone = (before[0] | before[1]) - after[0] - after[1] - _claimed(job) \
                    if before and after else frozenset()
                if len(gone) == 1:
                    job.mac = next(iter(gone))
                    job.limits.learned.add(job.mac)
                    job.before = job.census.last(job.mac).device  # type: ignore[union-attr]
                    job.notes.append(f"identity learned by power-off roll call: {job.mac}")
                    job.evidence("identity", {"mac": job.mac, "how": "power-off roll call"},
                                 step_id)
                else:
                    job.notes.append(f"identity not learned: {len(gone)} unit(s) went quiet")
    job.off_once = True
    job.limits.turns.off(job.slot.name)
    return ledger


def power_on(job: SlotJob, ledger: int, at: float | None = None) -> float:
    """Apply power at the instant the bench's schedule granted (asked for now when ``at`` is
    None); returns the monotonic time of power-on."""
    with job.step("power on", describe_output(job.slot.power)):
        if at is None:
            at = job.limits.power_on.reserve(time.monotonic(), job.after_power_on(), 0.0,
                                             job.cancel)
        job.sleep(max(at - time.monotonic(), 0.0))
        _act(job, job.hw.power.on)
        powered_at = time.monotonic()         # the hold runs from here, not from the records
        job.on_again = True
        job.cleared(ledger, "power back on")
        return powered_at


def wait_boot(job: SlotJob, since: float) -> SadpDevice:
    """Wait until the unit answers SADP in a round that started after ``since``."""
    timeout = job.boot_timeout()
    with job.step("wait for boot", f"up to {timeout:.1f} s") as step_id:
        if job.mac is None:
            found = _adopt_new_unit(job, since, timeout)
        else:
            found = job.census.seen_after(job.mac, since, timeout, job.cancel)
        if found is None:
            job.store.finish_step(step_id, StepOutcome.TIMEOUT,
                                  f"no SADP reply within {timeout:.1f} s")
            raise UnitFault(judge(mac=job.mac or "(unknown)", profile=job.profile,
                                  expect=FULL, after=None, http=None))
        job.evidence("sadp-after", found.to_json(), step_id)
        return found


def _adopt_new_unit(job: SlotJob, since: float, timeout: float) -> SadpDevice | None:
    """A slot whose unit could not be identified at power-off: the one unit that appears after
    power-on and belongs to no other slot, if there is exactly one."""
    def newcomer() -> SadpDevice | None:
        fresh = [s.device for s in (job.census.last(m) for m in job.census.present())
                 if s is not None and s.seen_at >= since and s.device.mac not in _claimed(job)]
        return fresh[0] if len(fresh) == 1 else None
    found = job.census.wait_for(newcomer, timeout, job.cancel)
    if isinstance(found, SadpDevice):
        job.mac = found.mac
        job.limits.learned.add(found.mac)
        job.notes.append(f"identity taken from the only new unit after power-on: {found.mac}")
        return found
    return None


def _claimed(job: SlotJob) -> set[str]:
    """Units that belong to some slot: from the bench file or learned during this run."""
    return {s.mac for s in job.bench.slots if s.mac} | job.limits.learned


def _act(job: SlotJob, action: Callable[[], None]) -> None:
    try:
        action()
    except (ActuatorError, ValueError) as exc:
        raise BenchFault(str(exc)) from exc


# --- recipes -------------------------------------------------------------------------------------

def hard(job: SlotJob) -> str:
    """Power off, settle, press, power on, hold for the profile's time, release, wait for boot.

    The solenoid goes in ``PRESS_MARGIN_S / 2`` before power-on, while the unit is still
    unpowered (as when a technician holds the button before plugging in): inside the settle,
    so the press costs the batch no time of its own. Waits for a free solenoid, a PoE boot
    place or a power-on instant come before the coil is energised: they lengthen the time off,
    never the press.
    """
    if job.slot.button is None:
        raise BenchFault(f"slot {job.slot.name} has no reset-button solenoid: "
                         "a hard reset is impossible")
    hold = job.scaled(job.profile.hold_seconds[1])
    lead = job.scaled(PRESS_MARGIN_S) / 2
    press = hold + job.scaled(PRESS_MARGIN_S)
    if press > job.bench.solenoid_max_on_seconds:     # refused before anything moves
        raise BenchFault(f"the {job.profile.name} profile needs a {press:g} s press; the "
                         f"bench caps solenoids at {job.bench.solenoid_max_on_seconds:g} s")
    ledger = power_off(job)          # opens the slot's hands (a GPIO relay opens off)
    off_at = time.monotonic()
    button = job.hw.button
    assert button is not None
    settle = job.bench.settle_seconds
    with job.step("settle", f"{settle:g} s off"):
        job.sleep(max(off_at + settle - lead - time.monotonic(), 0.0))
    address_turn(job)
    with ExitStack() as booting, ExitStack() as pressing:
        with job.step("press", f"{describe_output(job.slot.button)}, from "
                               f"{lead:.2f} s before power-on"):
            booting.enter_context(job.limits.boot_turn(job.slot, job.cancel))
            pressing.enter_context(job.limits.solenoid_turn(job.cancel))
            at = job.limits.power_on.reserve(off_at + settle, job.after_power_on(), lead,
                                             job.cancel)
            job.sleep(max(at - lead - time.monotonic(), 0.0))
            solenoid = job.engaged("solenoid-on", describe_output(job.slot.button),
                                   f"held {press:.2f} s through power-up")
            try:
                limit = min(press + PRESS_SLACK_S, job.bench.solenoid_max_on_seconds)
                pressing.enter_context(_energised(job, button, limit, solenoid))
            except (ActuatorError, ValueError) as exc:
                raise BenchFault(str(exc)) from exc
            job.sleep(max(at - time.monotonic(), 0.0))
        powered_at = power_on(job, ledger, at)
        with job.step("hold", f"{hold:.2f} s from power-on"):
            job.sleep(max(hold - (time.monotonic() - powered_at), 0))
            if button.watchdog_fired or not button.energised:
                raise BenchFault("the solenoid's watchdog released the button before the "
                                 f"{hold:.2f} s hold ended (power-on came too long after the "
                                 "coil went in); the unit may not have been reset")
        with job.step("release"):
            pressing.close()
        wait_boot(job, powered_at)
    return FULL


def poe_cycle(job: SlotJob) -> str:
    """Power off, settle, power on, wait for boot: a reboot (and the rest state of a PoE port)."""
    ledger = power_off(job)
    with job.step("settle", f"{job.bench.settle_seconds:g} s off"):
        job.sleep(job.bench.settle_seconds)
    address_turn(job)
    with job.limits.boot_turn(job.slot, job.cancel):
        wait_boot(job, power_on(job, ledger))
    return FULL


@contextmanager
def _energised(job: SlotJob, button: Any, limit: float, ledger: int) -> Iterator[None]:
    """The coil on for at most ``limit``; its ledger entry is cleared only once the release
    succeeded (a failed release leaves it for make_safe and for recovery after a crash)."""
    try:
        with button.hold(limit):
            yield
    finally:
        if not button.energised:
            job.cleared(ledger, "released")


def address_turn(job: SlotJob) -> None:
    """Serialised identity: wait until this unit may be the only one on its shared address,
    and hold that until the runner has the verdict; then the unit is parked (powered off)
    before the next one's turn. A no-op for a unit alone on its address."""
    address = job.limits.turns.address_of(job.slot.name)
    if address is None:
        return
    with job.step("address turn", f"one unit at a time on {address}") as step_id:
        try:
            job.held.enter_context(job.limits.turns.turn(job.slot.name, job.cancel))
        except AddressSpoiled as exc:
            raise BenchFault(str(exc)) from exc
        job.held.callback(park, job, address)
        job.evidence("identity-strategy", {"strategy": "serialised", "address": address},
                     step_id)


def park(job: SlotJob, address: str) -> None:
    """Power the unit off at the end of its turn, so the next unit on ``address`` is alone
    (the runner powers parked units back on when the batch is done)."""
    target = describe_output(job.slot.power)
    kind = "poe-port-off" if isinstance(job.slot.power, PoeOutput) else "power-off"
    with job.step("park", f"{target} off: the next unit on {address} must answer alone"):
        ledger = job.engaged(kind, target, "parked: serialised identity")
        _act(job, job.hw.power.off)
        job.parked = ledger
        job.on_again = False


def web_basic(job: SlotJob) -> str:
    _web_reset(job, "basic")
    return BASIC


def web_full(job: SlotJob) -> str:
    _web_reset(job, "full")
    return FULL


def auto(job: SlotJob) -> str:
    """The network reset where credentials work, else the button. At most one login is spent
    deciding, and none when SADP says the unit is in its login lock."""
    device = job.before
    shared = job.limits.turns.address_of(job.slot.name)
    if job.credentials is not None and device is not None and shared is not None:
        job.notes.append(f"auto: units share {shared} after a full reset (serialised bench), "
                         "hard reset one at a time")
    elif job.credentials is not None and device is not None and not device.device_lock:
        try:
            client = job.client_for(device)
        except (BenchFault, UnitFault) as exc:
            job.notes.append(f"auto: no web route to this unit ({exc}), hard reset")
            return hard(job)
        with job.step("login check", f"as {job.credentials.user}") as step_id:
            try:
                result = client.user_check(job.credentials)
            except IsapiError as exc:
                result = None
                job.notes.append(f"web login check failed: {exc}")
            finally:
                client.close()
            if result is not None:
                job.evidence("user-check", result.to_json(), step_id)
        if result is not None and result.ok:
            job.notes.append("auto: credentials work, web-full reset")
            _web_reset(job, "full", login_checked=True)
            return FULL
        job.notes.append("auto: no working web login, hard reset")
    elif job.credentials is not None and device is not None:
        job.notes.append("auto: SADP reports the login lock, hard reset")
    return hard(job)


def _web_reset(job: SlotJob, mode: str, login_checked: bool = False) -> None:
    """ISAPI factoryReset, a reboot when the firmware asks for one, then wait for the unit."""
    if job.credentials is None:
        raise BenchFault(f"web-{mode} needs the admin password: give --password-env or "
                         "[defaults] password_env in the bench file")
    shared = job.limits.turns.address_of(job.slot.name)
    if mode == "full" and shared is not None:
        raise BenchFault(f"web-full would leave every unit of this serialised bench on "
                         f"{shared}, where they cannot be checked one at a time: use the hard "
                         "method (or identity ipv6-link-local or vlan)")
    device = job.before
    if device is None or not device.ipv4:
        raise UnitFault(judge(mac=job.mac or "(unknown)", profile=job.profile, expect=FULL,
                              after=None, http=None))
    client = job.client_for(device)
    try:
        if not login_checked:
            with job.step("login check", f"as {job.credentials.user}") as step_id:
                check = _isapi(job, lambda: client.user_check(job.credentials))
                job.evidence("user-check", check.to_json(), step_id)
                if not check.ok:
                    job.store.finish_step(step_id, StepOutcome.FAILED, "login refused")
                    raise UnitFault(judge_not_default(
                        "web-login", f"login refused: {check.retry_login_time} attempt(s) left"))
        with job.step(f"factoryReset {mode}") as step_id:
            status = _isapi(job, lambda: client.factory_reset(job.credentials, mode))
            job.evidence("factory-reset", status.to_json(), step_id)
            started = time.monotonic()
        if status.reboot_required:
            with job.step("reboot", "the firmware answered rebootRequired") as step_id:
                reply = _isapi(job, lambda: client.reboot(job.credentials))
                job.evidence("reboot", reply.to_json(), step_id)
    finally:
        client.close()
    assert job.mac is not None
    with job.step("wait for reboot") as step_id:
        if not job.census.gone_after(job.mac, started, job.boot_timeout(), job.cancel):
            job.store.finish_step(step_id, StepOutcome.TIMEOUT, "the unit never went down")
            raise UnitFault(judge_not_default(
                "reboot", "the unit never rebooted after factoryReset"))
    wait_boot(job, time.monotonic())


def judge_not_default(check: str, detail: str) -> UnitVerdict:
    """A not-default verdict for a step that failed before verification could run."""
    return UnitVerdict(Verdict.NOT_DEFAULT, Fault.UNIT, f"{check}: {detail}", check,
                       (Check(check, False, detail),))


def _isapi(job: SlotJob, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except IsapiError as exc:
        raise UnitFault(judge_not_default("web-request", str(exc))) from exc


PROCEDURES: dict[str, Callable[[SlotJob], str]] = {
    "hard": hard, "poe-cycle": poe_cycle, "web-basic": web_basic, "web-full": web_full,
    "auto": auto,
}


def verify(job: SlotJob, expect: str) -> UnitVerdict:
    """Collect the HTTP evidence at the unit's own address and judge it with SADP."""
    assert job.mac is not None
    sighting = job.census.last(job.mac)
    after = sighting.device if sighting else None
    with job.step("verify") as step_id:
        http = None
        route = None
        profile = job.profile
        if after is not None:
            detected = job.profiles.for_firmware(after.firmware or "")
            if detected is not None and detected.name != profile.name:
                job.notes.append(f"firmware {after.firmware} is family {detected.name}, "
                                 f"the bench says {profile.name}: judged as {detected.name}")
                profile = detected
            try:
                route = job.route(after)
            except NoRoute as exc:
                job.store.finish_step(step_id, StepOutcome.FAILED, str(exc))
                return judge_not_default("http-attribution", f"no route to this unit: {exc}")
            job.evidence("http-route", {"mac": job.mac, **route.to_json()}, step_id)
            for attempt in range(1, HTTP_ATTEMPTS + 1):
                client = job.client(route)
                try:
                    http = check_http(client, job.profiles,
                                      credentials=job.credentials if expect == BASIC else None,
                                      try_default=expect == FULL)
                finally:
                    client.close()
                job.evidence("http", {"attempt": attempt, **http.to_json()}, step_id)
                if http.state is not HttpState.UNREACHABLE or http.login_attempts:
                    break
                if attempt < HTTP_ATTEMPTS:
                    job.sleep(job.scaled(HTTP_RETRY_S))
        others = [d for m, d in job.census.present().items() if m != job.mac]
        verdict = judge(mac=job.mac, profile=profile, expect=expect, after=after, http=http,
                        before=job.before, expected_ipv4=job.slot.address, others=others,
                        route=route)
        job.evidence("verdict", verdict.to_json(), step_id)
        if not verdict.passed:
            job.store.finish_step(step_id, StepOutcome.FAILED, verdict.reason)
        return verdict
