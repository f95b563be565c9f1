"""Starting and stopping a batch from the dashboard.

A run started here is an ordinary ``rig run BENCH.toml`` child process, writing to the same
record store: the server never drives hardware itself, so a crash of the server cannot leave a
solenoid energised, and the run shows up on the page exactly as one started from a terminal.
Stopping sends SIGTERM to the running run's process (ours, or a ``rig run`` from a terminal on
this host): the same clean stop as Ctrl-C, because rig's OutputGuard turns either into releasing
every solenoid, restoring PoE ports and recording the run as interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from rig.bench import Bench
from rig.records import RecordStore, Run
from rig.records.models import run_from_row

#: Seconds a started ``rig run`` has to record its run before the start counts as failed.
START_TIMEOUT_S = 15.0


class ControlError(RuntimeError):
    """The action cannot be done; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Started:
    run_id: int
    pid: int


class RunControl:
    """Start a ``rig run`` of the served bench, or stop the bench's running run."""

    def __init__(self, store: RecordStore, bench: Bench | None) -> None:
        self.store = store
        self.bench = bench
        self.lock = threading.Lock()
        self.children: dict[int, subprocess.Popen[bytes]] = {}

    def running(self) -> Run | None:
        """The bench's run still in progress in a live process, if any."""
        if self.bench is None:
            return None
        rows = self.store.db.read("SELECT * FROM runs WHERE status = 'running' AND "
                                  "bench_name = ? ORDER BY id DESC", (self.bench.name,))
        live = [run for run in map(run_from_row, rows) if not self.store.runs.is_orphaned(run)]
        return live[0] if live else None

    def start(self, method: str | None, slots: list[str] | None) -> Started:
        """Start ``rig run`` on the bench and return once it has recorded its run."""
        if self.bench is None:
            raise ControlError(409, "no bench file: start rig serve with --bench to run batches")
        with self.lock:
            if (busy := self.running()) is not None:
                raise ControlError(409, f"run {busy.id} is still running (pid {busy.pid})")
            argv = [sys.executable, "-m", "rig.cli", "run", str(self.bench.path), "--quiet",
                    "--db", self.store.path]
            argv += ["--method", method] if method else []
            argv += ["--slots", ",".join(slots)] if slots else []
            errors = tempfile.TemporaryFile()
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=errors)
            self.children[child.pid] = child
            read = threading.Event()           # the reaper closes ``errors`` once we read it
            threading.Thread(target=self._reap, args=(child, errors, read), daemon=True).start()
            try:
                return Started(self._await_record(child, errors), child.pid)
            finally:
                read.set()

    def _await_record(self, child: subprocess.Popen[bytes], errors: tempfile._TemporaryFileWrapper
                      ) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            rows = self.store.db.read("SELECT id FROM runs WHERE pid = ? AND bench_name = ? "
                                      "ORDER BY id DESC LIMIT 1", (child.pid, self.bench.name))
            if rows:
                return int(rows[0][0])
            if child.poll() is not None:
                errors.seek(0)
                why = errors.read().decode("utf-8", "replace").strip()
                raise ControlError(400, why or f"rig run exited with status {child.returncode}")
            time.sleep(0.05)
        raise ControlError(504, f"rig run (pid {child.pid}) recorded no run in "
                                f"{START_TIMEOUT_S:g} s")

    def _reap(self, child: subprocess.Popen[bytes], errors: tempfile._TemporaryFileWrapper,
              read: threading.Event) -> None:
        """Wait for the child (no zombie), then close its stderr file once start() is done."""
        child.wait()
        read.wait()
        errors.close()
        self.children.pop(child.pid, None)

    def stop(self) -> Run:
        """SIGTERM to the running run's process: the clean stop of Ctrl-C."""
        run = self.running()
        if run is None:
            raise ControlError(404, "no run of this bench is running")
        if run.hostname != self.store.runs.host.hostname:
            raise ControlError(409, f"run {run.id} runs on {run.hostname}, not here")
        try:
            if run.pid in self.children:
                self.children[run.pid].send_signal(signal.SIGTERM)
            else:
                os.kill(run.pid, signal.SIGTERM)
        except PermissionError:
            raise ControlError(403, f"not allowed to signal pid {run.pid}") from None
        except ProcessLookupError:
            raise ControlError(404, f"run {run.id}'s process has just ended") from None
        return run
