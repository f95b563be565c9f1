"""The command's side of the guardian: start it, wait until it is ready, tell it ``done``.

See rig.guardian for the design. The command keeps the write end of the guardian's stdin open
and never hands it to another process (Python pipes are close-on-exec), so that only the
command's own death closes it.
"""

from __future__ import annotations

import json
import logging
import os
import select
import site
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import IO

from rig.vocabulary import GuardianWord

log = logging.getLogger(__name__)

#: The note a ledger line gets when the guardian put its output at rest.
GUARDIAN_NOTE = "made safe by the guardian after the rig process died"

#: How long a command waits for its guardian to load the bench and say ``ready``.
READY_TIMEOUT_S = 15.0
#: How long a guardian may take to stop after ``done`` (it has nothing to do by then).
DONE_TIMEOUT_S = 5.0
#: The guardian's bound per output after the command died; it logs loudly past it.
OUTPUT_TIMEOUT_S = 10.0


class GuardianError(RuntimeError):
    """The guardian could not be started: the command must not move any output."""


def _child_env() -> dict[str, str]:
    """The command's environment (the guardian reads the bench's ``*_env`` secrets from it),
    with this ``rig`` package's directory first on PYTHONPATH so the guardian runs the same
    code, unless that directory is a site-packages one (putting it before the standard library
    could shadow it)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    sites = {*site.getsitepackages(), site.getusersitepackages(),
             sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    if root not in {str(Path(p).resolve()) for p in sites}:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


class Guardian:
    """A started guardian process. Use as a context manager that encloses every output the
    command moves and its own clean-up: leaving it (normally, by an exception, by SIGINT or
    SIGTERM turned into exceptions) sends ``done``, because the command's own exit path has
    then run."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self._stdin: IO[bytes] | None = process.stdin

    @classmethod
    def start(cls, bench_path: str | os.PathLike[str], db_path: str, command: str, *,
              timeout: float = READY_TIMEOUT_S) -> Guardian:
        """Start the guardian for ``command`` (``run``, ``press``, ``power``) and return once it
        is ready; GuardianError if it is not within ``timeout`` seconds."""
        # stderr is inherited: the guardian's loud lines reach the operator's terminal or the
        # journal. A session of its own: a signal to the command's process group misses it.
        process = subprocess.Popen(
            [sys.executable, "-m", "rig.guardian"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=_child_env(), start_new_session=True, close_fds=True)
        guardian = cls(process)
        config = {"bench": str(Path(bench_path).resolve()), "db": str(db_path),
                  "parent": os.getpid(), "command": command, "output_timeout": OUTPUT_TIMEOUT_S}
        try:
            assert process.stdin is not None
            process.stdin.write(json.dumps(config).encode() + b"\n")
            process.stdin.flush()
            guardian._await_ready(timeout)
        except (OSError, GuardianError) as exc:
            guardian._abandon()
            raise GuardianError(f"the guardian process did not start: {exc}") from None
        return guardian

    def _await_ready(self, timeout: float) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuardianError(f"no '{GuardianWord.READY}' within {timeout:g} s")
            readable, _, _ = select.select([stdout], [], [], left)
            if readable:
                break
        line = stdout.readline().decode("utf-8", "replace").strip()
        stdout.close()
        if line != GuardianWord.READY:
            code = self.process.poll()
            raise GuardianError(f"it said {line!r} (exit status {code})" if line
                                else f"it exited (status {self.process.wait(2)})")

    def done(self) -> None:
        """A clean exit: the guardian stops without touching anything. Idempotent."""
        stdin, self._stdin = self._stdin, None
        if stdin is None:
            return
        try:
            stdin.write(GuardianWord.DONE.encode() + b"\n")
            stdin.close()
        except OSError:               # it died: nothing guarded us for a while; say so
            log.error("the guardian process (pid %d) had stopped before the command ended",
                      self.process.pid)
        try:
            self.process.wait(DONE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.error("the guardian process (pid %d) did not stop after 'done'; killing it",
                      self.process.pid)
            self.process.kill()
            self.process.wait()

    def _abandon(self) -> None:
        """A guardian that never became ready: stop it before it could act."""
        self._stdin = None
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass

    def __enter__(self) -> Guardian:
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()
