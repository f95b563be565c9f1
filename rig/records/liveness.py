"""Is the process that owns a ``running`` run still alive? A run says which host, boot and
process wrote it; this module reads the same facts about the host we are on and compares.

``is_orphaned`` is a plain function of the run and a ``Host``, so the decision can be tested
with made-up facts; ``Host.here()`` reads the real ones.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rig.records.models import Run
from rig.vocabulary import RunStatus


def boot_id() -> str:
    """Changes at every boot (Linux): a run from an earlier boot is dead whatever its pid says."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """The start time of a live process ('' where the platform cannot tell), None if none.

    A pid alone is not an identity: after a restart another process may hold it. Linux gives
    the start time in /proc/PID/stat (field 22, clock ticks since boot); a zombie (killed, not yet
    reaped) counts as dead.
    """
    if pid <= 0:
        return None
    if Path("/proc/self/stat").exists():
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = text.rpartition(")")[2].split()   # the command name may hold spaces or ')'
        if len(fields) < 20 or fields[0] in ("Z", "X"):
            return None
        return fields[19]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


@dataclass(frozen=True)
class Host:
    """The facts about this host that tell a live run from a dead one."""

    hostname: str
    boot_id: str
    #: pid → its start time; '' when the platform cannot tell, None when no such process.
    process_start: Callable[[int], str | None] = process_start

    @classmethod
    def here(cls) -> Host:
        """This host, read now (the boot id does not change while we run)."""
        return cls(hostname=socket.gethostname(), boot_id=boot_id())


def is_orphaned(run: Run, host: Host) -> bool:
    """True for a run still marked running whose process is gone from ``host`` (it crashed, was
    killed, or the machine lost power). Runs of other hosts are never orphaned here."""
    if run.status is not RunStatus.RUNNING or run.hostname != host.hostname:
        return False
    if run.boot_id and host.boot_id and run.boot_id != host.boot_id:
        return True
    start = host.process_start(run.pid)
    if start is None:
        return True
    return bool(run.process_start and start and start != run.process_start)
