"""Shared by the fleet tests and the fleet benchmark: a throwaway PostgreSQL cluster of our
own, and benches' record stores filled quickly through the store's own API.

The cluster: Debian's ``postgresql`` binaries (initdb, pg_ctl, postgres; on $PATH or in
/usr/lib/postgresql/<version>/bin), a data directory in a fresh temporary directory, a free
loopback port, its unix socket in that directory. initdb refuses to run as root, so as root the
cluster runs as ``nobody``. Host connections need a password (scram), so the tests exercise the
URL-with-password path the way a real deployment does. One cluster per test process (started
on first use, stopped at exit); each test gets a database of its own.

Without the binaries the fleet tests skip on a workstation and FAIL in CI (CI=true): .ci/run
installs the package, so a missing server there is a broken CI, not a reason to pass.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from rig.records import RecordStore
from rig.vocabulary import Fault, OutputKind, StepOutcome, SyncedTable, Verdict

PG_BINARIES = ("initdb", "pg_ctl", "postgres")
PASSWORD = "fleet-test-secret"      # a throwaway cluster's; what the masking tests look for
_ORDINALS = itertools.count(1)


def pg_bindir() -> Path | None:
    """Where initdb and pg_ctl are: $PATH first, then Debian's versioned directories."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    for candidate in sorted(versions, key=lambda p: _version(Path(p).parent.name), reverse=True):
        if all((Path(candidate) / b).exists() for b in PG_BINARIES):
            return Path(candidate)
    return None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def need_postgres() -> Path:
    """The binaries' directory, or a skip (a failure when CI is set)."""
    bindir = pg_bindir()
    if bindir is None:
        why = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(why + " and CI is set: .ci/run should have installed postgresql")
        pytest.skip(why + " (apt-get install postgresql)")
    return bindir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    """One running (or stopped) throwaway cluster."""

    bindir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_owner(self, *argv: str) -> list[str]:
        exe = [str(self.bindir / argv[0]), *argv[1:]]
        return ["runuser", "-u", "nobody", "--", *exe] if os.geteuid() == 0 else exe

    def _run(self, *argv: str) -> None:
        result = subprocess.run(self._as_owner(*argv), capture_output=True, text=True,
                                timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}")

    def init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        self._run("initdb", "-D", str(self.data), "-U", "rig", f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8")
        pwfile.unlink()

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", opts,
                  "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://rig:{PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL (with the password, as $RIG_FLEET_URL holds it)."""
        import psycopg
        name = f"fleet_{os.getpid()}_{next(_ORDINALS)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


_CLUSTER: list[Cluster] = []


def cluster() -> Cluster:
    """The process's cluster, made and started on first use, stopped at exit."""
    if not _CLUSTER:
        bindir = need_postgres()
        root = Path(tempfile.mkdtemp(prefix="rig-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, "nobody", "nogroup")
        made = Cluster(bindir, root, free_port())
        made.init()
        made.start()
        _CLUSTER.append(made)
        atexit.register(_stop_and_remove, made)
    return _CLUSTER[0]


def _stop_and_remove(made: Cluster) -> None:
    try:
        made.stop("immediate")
    except (RuntimeError, subprocess.SubprocessError):
        pass
    shutil.rmtree(made.root, ignore_errors=True)


# --- benches' records -------------------------------------------------------------------------

def quick(store: RecordStore) -> RecordStore:
    """The store without a disk sync per commit: the fleet tests check what is pushed, not a
    bench's durability (tests/test_records_db.py does), and hundreds of fsyncs on a loaded CI
    machine are most of their time otherwise."""
    store.db.read("PRAGMA synchronous = OFF")
    return store


def fill(store: RecordStore, bench: str, runs: int = 2, units: int = 4,
         steps: int = 3) -> list[int]:
    """Record ``runs`` finished runs of ``units`` units each, with steps, evidence, an output,
    an attachment, a certificate and a pin, and a bench fault (so a slot event): every synced
    table gets rows. Returns the run ids."""
    ids = []
    for _ in range(runs):
        store.pins.pin(bench, "1", by="tester", serial="DS-PIN")
        run = store.runs.start_run(bench, method="hard", argv=["rig", "run"])
        for n in range(1, units + 1):
            unit = store.runs.start_unit(run, str(n), method="hard", profile="current")
            out = store.outputs.engaged(run, str(n), OutputKind.POWER_OFF, f"port {n}")
            for s in range(steps):
                step = store.runs.start_step(unit, f"step {s}")
                store.runs.add_evidence(unit, "sadp-after", {"n": n, "s": s}, step_id=step)
                store.runs.finish_step(step, StepOutcome.OK)
            store.outputs.cleared(out, "safe")
            _finish(store, run, unit, n)
        store.runs.finish_run(run, "passed")
        ids.append(run)
    return ids


def _finish(store: RecordStore, run: int, unit: int, n: int) -> None:
    if n == 2:
        store.runs.finish_unit(unit, Verdict.BENCH_FAULT, "relay did not switch", Fault.BENCH)
        return
    store.runs.finish_unit(unit, Verdict.FACTORY_DEFAULT, "inactive after reset",
                           mac=f"44:19:b6:00:{run % 256:02x}:{n:02x}", serial=f"DS-{run}-{n}")
    evidence = store.runs.add_evidence(unit, "snapshot", {"bytes": 3})
    store.attachments.add(unit, "snapshot.jpg", "image/jpeg", b"\xff\xd8\xff",
                          evidence_id=evidence)
    store.certificates.record(f"cert-{store.sync.bench_id()[:8]}-{unit}", unit, key_id="k1",
                              digest="d", evidence_digest="e",
                              issued_at=store.db.now(), signed="{}")


def local_counts(store: RecordStore) -> dict[str, int]:
    return {t.value: store.db.read(f"SELECT COUNT(*) FROM {t}")[0][0] for t in SyncedTable}


def fleet_counts(url: str, bench_id: str) -> dict[str, tuple[int, int]]:
    """Per table: (rows of the bench in PostgreSQL, distinct local ids among them)."""
    import psycopg
    with psycopg.connect(url) as conn:
        return {t.value: tuple(conn.execute(
                    f"SELECT COUNT(*), COUNT(DISTINCT id) FROM rig.{t} WHERE bench_id = %s",
                    (bench_id,)).fetchone()) for t in SyncedTable}


def assert_in_sync(store: RecordStore, url: str) -> None:
    """Every synced row of ``store`` is in PostgreSQL exactly once, and nothing else of its
    bench is there."""
    local = local_counts(store)
    remote = fleet_counts(url, store.sync.bench_id())
    assert {t: (n, n) for t, n in local.items()} == remote
