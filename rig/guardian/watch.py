"""The guardian's side: wait for the command's pipe to close; if it closed without ``done``, put
the command's engaged outputs at rest and record it.

See rig.guardian for the design. Everything here is bounded in time: the wait for the command
to be gone, and each output (``output_timeout`` seconds, then a CRITICAL line naming it).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from rig.actuators.base import ActuatorError
from rig.bench import Bench, BenchError, load_bench
from rig.guardian.handle import GUARDIAN_NOTE
from rig.records import OutputEntry, RecordError, RecordStore
from rig.records.liveness import Host, process_start
from rig.vocabulary import GuardianWord, OutputKind
from rig.wiring import BenchHardware, SlotHardware, rest_button, rest_power

log = logging.getLogger("rig.guardian")

#: How long the command may take to be gone after its pipe closed (its files close first).
GONE_TIMEOUT_S = 5.0
#: How often a port still locked by the dying command is tried again.
RETRY_S = 0.02
POWER_KINDS = frozenset({OutputKind.POWER_OFF, OutputKind.POWER_ON, OutputKind.POE_PORT_OFF,
                         OutputKind.POE_PORT_ON})


@dataclass(frozen=True)
class Watch:
    """What the guardian watches: the command (pid and start time), its bench and store."""

    bench: Bench
    db: str
    parent: int
    parent_start: str
    command: str
    output_timeout: float

    @property
    def who(self) -> str:
        return f"rig {self.command} (pid {self.parent})"


def read_watch(line: bytes) -> Watch:
    """The command's one JSON line; ValueError or BenchError when it is not usable."""
    config = json.loads(line)
    parent = int(config["parent"])
    if parent != os.getppid():
        raise ValueError(f"started by pid {os.getppid()}, not by the pid {parent} it was given")
    start = process_start(parent)
    if start is None:
        raise ValueError(f"the command (pid {parent}) is already gone")
    return Watch(load_bench(config["bench"]), str(config["db"]), parent, start,
                 str(config["command"]), float(config["output_timeout"]))


def wait_for_eof(stdin: IO[bytes]) -> bool:
    """Block until the command's end of the pipe is closed; True if it said ``done`` first."""
    said_done = False
    for line in stdin:
        said_done = line.strip() == GuardianWord.DONE.encode()
    return said_done


def wait_gone(watch: Watch) -> bool:
    """Wait until the command is a zombie or gone: only then are all its files closed (the
    pipe may close before its serial port, and with it the port's exclusive lock)."""
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while time.monotonic() < deadline:
        start = process_start(watch.parent)
        if start is None or (start and watch.parent_start and start != watch.parent_start):
            return True
        time.sleep(0.005)
    return False


def parent_runs(store: RecordStore, watch: Watch) -> list[int]:
    """The runs the command recorded: this host, its pid, its start time. A pid alone is not
    an identity (another process may hold it after a reboot or a wrap-around)."""
    host = Host.here()
    rows = store.db.read("SELECT id FROM runs WHERE hostname = ? AND pid = ? AND "
                         "process_start = ? AND boot_id = ? ORDER BY id",
                         (host.hostname, watch.parent, watch.parent_start, host.boot_id))
    return [int(r["id"]) for r in rows]


def bounded(action: Callable[[], None], seconds: float) -> str | None:
    """Run ``action`` for at most ``seconds``; returns None when it worked, else why not. A hung
    driver is left behind in its daemon thread (the guardian exits soon after)."""
    outcome: list[str | None] = []

    def run() -> None:
        try:
            action()
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - reported, the next output still gets its turn
            outcome.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=run, name="guardian output", daemon=True)
    worker.start()
    worker.join(seconds)
    return outcome[0] if outcome else f"no answer within {seconds:g} s"


def open_slot(hardware: BenchHardware, slot: str, deadline: float) -> SlotHardware:
    """The slot's drivers; a serial port still locked by the dying command is tried again
    until ``deadline``."""
    while True:
        try:
            return hardware.slot(slot)
        except ActuatorError as exc:
            if "in use by another process" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(RETRY_S)


def rest_entry(hardware: BenchHardware, entry: OutputEntry, seconds: float) -> None:
    """Put one ledger line's output at rest, by the rules of ``rig safe``."""
    hw = open_slot(hardware, entry.slot, time.monotonic() + seconds)
    if entry.kind == OutputKind.SOLENOID_ON:
        rest_button(hw)
    else:
        rest_power(hw)


def make_safe(watch: Watch) -> int:
    """Rest every output the command's runs left engaged, clear its ledger lines, log the rest
    at CRITICAL; returns how many outputs could not be made safe."""
    if not wait_gone(watch):
        log.critical("%s closed its pipe but is still running after %g s; acting anyway",
                     watch.who, GONE_TIMEOUT_S)
    with RecordStore.open(watch.db, create=False) as store:
        entries = [e for run in parent_runs(store, watch) for e in store.outputs.open(run)]
        if not entries:
            log.warning("%s died; its outputs ledger holds nothing engaged", watch.who)
            return 0
        # Coils first: they are what cooks.
        entries.sort(key=lambda e: (e.kind != OutputKind.SOLENOID_ON, e.id))
        hardware = BenchHardware(watch.bench)
        failed = 0
        try:
            for entry in entries:
                failed += not _rest_and_record(store, hardware, entry, watch)
        finally:
            # rest=False: the rest above is all the guardian does; solenoids are released by
            # closing anyway, and GPIO lines go back to inputs (the gate pull-down holds them).
            bounded(lambda: hardware.close(rest=False), watch.output_timeout)
    return failed


def _rest_and_record(store: RecordStore, hardware: BenchHardware, entry: OutputEntry,
                     watch: Watch) -> bool:
    what = f"slot {entry.slot} {entry.kind} {entry.target} (run {entry.run_id})"
    if entry.kind not in POWER_KINDS and entry.kind != OutputKind.SOLENOID_ON:
        log.critical("%s died and left %s: NOT touched (someone must look)", watch.who, what)
        return False
    if entry.slot not in {s.name for s in watch.bench.slots}:
        log.critical("%s died and left %s, a slot not in %s: NOT made safe", watch.who, what,
                     watch.bench.path)
        return False
    error = bounded(lambda: rest_entry(hardware, entry, watch.output_timeout),
                    watch.output_timeout)
    if error is not None:
        log.critical("%s died and left %s: NOT MADE SAFE: %s", watch.who, what, error)
        return False
    try:
        store.outputs.cleared(entry.id, GUARDIAN_NOTE)
    except RecordError as exc:
        log.error("%s: made safe, but not recorded: %s", what, exc)
    log.warning("%s died: %s made safe", watch.who, what)
    return True


def main(stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> int:
    """``python -m rig.guardian``: 0 after ``done`` or once every output is safe, 1 when one
    could not be made safe, 2 when the command's configuration was unusable."""
    # Its own session already keeps the command's group signals away; ignoring them too covers
    # a signal sent to the guardian by name. Only SIGKILL stops it before the pipe closes.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="rig guardian: %(levelname)s: %(message)s")
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    try:
        watch = read_watch(stdin.readline())
    except (ValueError, KeyError, TypeError, BenchError, OSError) as exc:
        log.critical("cannot guard the command: %s", exc)
        return 2
    stdout.write(GuardianWord.READY.encode() + b"\n")
    stdout.flush()
    stdout.close()
    if watch.bench.switches:
        import rig.actuators.poe  # noqa: F401 - pysnmp loads now, not after the command died
    if wait_for_eof(stdin):
        return 0
    try:
        failed = make_safe(watch)
    except (RecordError, OSError) as exc:
        log.critical("%s died; its outputs could NOT be made safe: record store %s: %s",
                     watch.who, watch.db, exc)
        return 1
    sys.stderr.flush()
    os._exit(1 if failed else 0)     # a driver hung past its bound must not hold the exit
