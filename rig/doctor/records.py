"""Record store: writable, room to grow, intact, and no dead run with outputs still engaged.

Why each check: the store is written before any output moves (the outputs ledger), so a store
that cannot be written stops a run at its first step; a full disk stops it mid-run; a damaged
file loses evidence. A dead run whose ledger still lists engaged outputs means a solenoid may
be energised or a port dark right now: the doctor does not recover (it never moves an
output), it names the run and the command that does (``rig safe``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from rig.doctor.findings import Finding, fail, ok, warn
from rig.vocabulary import DoctorArea, FindingLevel

if TYPE_CHECKING:
    from rig.doctor.runner import DoctorContext

#: Free space below which a run may not finish writing its evidence (snapshots included).
FAIL_FREE_BYTES = 64 * 2**20
WARN_FREE_BYTES = 512 * 2**20
_AREA = DoctorArea.RECORDS
_BUSY_MS = 2000


def probe(ctx: DoctorContext) -> list[Finding]:
    path = ctx.db_path
    if not path.exists():
        return _not_yet(path)
    findings = [_writable(path), _space(path.parent), _integrity(path)]
    if findings[-1].level is not FindingLevel.FAIL:
        findings += _dead_runs(ctx)
    return findings


def _not_yet(path: Path) -> list[Finding]:
    """No store yet: the first run creates it, if the nearest existing folder lets it."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return [fail(_AREA, str(path), f"no record store yet, and {folder} is not writable, so "
                     "the first run cannot create it",
                     "choose a writable place with --db or $RIG_DB (e.g. /var/lib/rig/"
                     "rig.sqlite owned by the service user)")]
    return [ok(_AREA, str(path), "no record store yet: the first run creates it here"),
            _space(folder)]


def _writable(path: Path) -> Finding:
    """Write permission on the file and its folder (WAL keeps -wal and -shm beside it), then
    a write lock taken and given back: proves the file system is not read-only."""
    for what in (path, path.parent):
        if not os.access(what, os.W_OK):
            return fail(_AREA, str(path), f"{what} is not writable by this user",
                        f"chown/chmod {what} for the user rig runs as")
    try:
        conn = sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return fail(_AREA, str(path), f"cannot take the write lock: {exc}",
                    "a read-only file system, or another process holds the lock: "
                    "check mount options and running rig processes")
    return ok(_AREA, str(path), "writable")


def _space(folder: Path) -> Finding:
    free = shutil.disk_usage(folder).free
    text = f"{free / 2**30:.1f} GiB free on {folder}"
    if free < FAIL_FREE_BYTES:
        return fail(_AREA, "free space", text, "free space on that file system (old reports, "
                    "logs) or move the store with --db / $RIG_DB")
    if free < WARN_FREE_BYTES:
        return warn(_AREA, "free space", text, "free space soon: snapshots and evidence grow "
                    "with every run")
    return ok(_AREA, "free space", text)


def _integrity(path: Path) -> Finding:
    """``PRAGMA integrity_check`` on a read-only connection: the doctor writes nothing."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_BUSY_MS / 1000)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return fail(_AREA, "integrity", f"{path} cannot be read as SQLite: {exc}",
                    "restore the store from a backup, or move it aside and start a new one")
    if rows != ["ok"]:
        return fail(_AREA, "integrity", f"integrity_check: {'; '.join(rows[:3])}",
                    "restore the store from a backup (sqlite3 .recover can save what is left)")
    return ok(_AREA, "integrity", "PRAGMA integrity_check: ok")


def _dead_runs(ctx: DoctorContext) -> list[Finding]:
    """Dead runs (process gone, run still marked running) and what their ledger holds."""
    from rig.records import RecordError, RecordStore

    bench = ctx.bench
    try:
        with RecordStore(ctx.db_path, create=False) as store:
            dead = [(run, store.outputs.open(run.id)) for run in store.runs.dead_runs()]
            dead_ids = {run.id for run, _ in dead}
            live = [r for r in store.runs.dead_runs(force=True) if r.id not in dead_ids]
    except RecordError as exc:
        return [fail(_AREA, "runs", str(exc), "move the file aside: it is not a rig record "
                     "store this version can use")]
    findings = []
    for run, outputs in dead:
        if not outputs:
            continue
        what = ", ".join(f"{e.kind} {e.target} (slot {e.slot})" for e in outputs)
        ours = run.bench_name == bench.name
        fix = (f"run `rig safe {bench.path}`: it rests them, then closes the run" if ours else
               f"run `rig safe` with bench {run.bench_name}'s file: it is not this bench's")
        findings.append(fail(_AREA, f"run {run.id}", f"died (pid {run.pid} on {run.hostname}) "
                             f"with outputs still engaged: {what}", fix))
    for run in live:
        findings.append(warn(_AREA, f"run {run.id}", f"in progress on bench {run.bench_name} "
                             f"(pid {run.pid} on {run.hostname})",
                             "wait for it: a second run on the same outputs is refused"))
    if not findings:
        idle = sum(1 for _, outputs in dead if not outputs)
        note = f"; {idle} dead run(s) with nothing engaged, closed by the next run" if idle else ""
        findings.append(ok(_AREA, "runs", f"no dead run with outputs engaged{note}"))
    return findings
