"""pytest plugin for QA teams: ``pytest --rig-bench bench.toml`` gives tests units that are reset,
verified and activated, and records each test's outcome beside the unit's reset.

A test asks for ``rig_unit`` and runs once per slot of the bench (``--rig-slots`` narrows it)::

    def test_the_unit_answers_with_its_own_serial(rig_unit):
        with rig_unit.isapi() as camera:
            info = camera.device_info(rig_unit.credentials)
        assert info.serial_number == rig_unit.serial

The first test that needs a unit runs ONE batch for the whole session: ``rig run``'s code path
(the guardian, the outputs guard, the runner), with the bench's hand-over forced to
``provisioned`` so every unit is activated with the bench's password (its ``[handover]``
``password_env``, or ``--rig-password-env``) and, where the bench has a pool, on its own
address. A unit the batch could not reset or hand over fails its tests with the verdict's
reason (never a skip: a unit that is not proven reset is a result). Where each unit answers
now comes from a census after the batch, by MAC.

Each test's outcome (passed, failed, error, skipped), its duration and the failure's first
lines are recorded as ``test-result`` evidence on that unit in rig's record store
(``--rig-db``, else $RIG_DB or the default), so ``rig report`` shows the QA run beside the
reset it ran on.

Why this module imports almost nothing at the top: with rig installed, pytest loads it for
every test session on the machine (entry point ``pytest11``); it must cost nothing and do
nothing unless ``--rig-bench`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rig.bench import Bench
    from rig.camera.isapi import IsapiClient
    from rig.camera.isapi_types import Credentials
    from rig.records import RecordStore

BENCH_KEY: pytest.StashKey[Any] = pytest.StashKey()
SESSION_KEY: pytest.StashKey[QaSession] = pytest.StashKey()
#: The first lines of a failure kept in the record (the whole report stays in pytest's output).
MESSAGE_LINES = 12


@dataclass(frozen=True)
class RigUnit:
    """One unit as the batch left it: reset, verified, activated, and where it answers now."""

    slot: str
    ready: bool                      # the batch proved it reset and handed over
    verdict: str
    reason: str
    run_id: int
    unit_id: int
    mac: str | None
    serial: str | None
    model: str | None
    firmware: str | None
    host: str | None                 # where the unit answered the census after the batch
    http_port: int
    interface: str | None            # the slot's own link on a VLAN bench
    credentials: Credentials = field(repr=False)
    sadp: dict[str, Any] = field(default_factory=dict, repr=False)

    def isapi(self, timeout: float = 10.0) -> IsapiClient:
        """An ISAPI client for this unit (log in with ``self.credentials``)."""
        from rig.camera.isapi import IsapiClient
        if self.host is None:
            raise RuntimeError(f"slot {self.slot}: the unit did not answer the census")
        return IsapiClient(self.host, self.http_port, timeout=timeout,
                           interface=self.interface)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rig", "rig: tests on units reset by the bench")
    group.addoption("--rig-bench", metavar="BENCH.toml",
                    help="reset, verify and activate the units of this bench once for the "
                         "session; tests asking for `rig_unit` run once per slot")
    group.addoption("--rig-slots", metavar="S,S", help="only these slots (comma-separated)")
    group.addoption("--rig-db", metavar="PATH",
                    help="rig's record store (default: $RIG_DB or rig's default)")
    group.addoption("--rig-password-env", metavar="VAR",
                    help="environment variable holding the password units are activated with "
                         "(default: the bench's [handover] password_env)")
    group.addoption("--rig-method", metavar="METHOD",
                    help="reset method (default: the bench's)")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--rig-bench")
    if not path:
        return
    from rig.bench import BenchError, load_bench
    try:
        bench = load_bench(path)
        slots = config.getoption("--rig-slots")
        chosen = bench.select([s.strip() for s in slots.split(",")] if slots else None)
    except BenchError as exc:
        raise pytest.UsageError(f"--rig-bench: {exc}") from None
    config.stash[BENCH_KEY] = (bench, [s.name for s in chosen])
    config.stash[SESSION_KEY] = QaSession(config, bench, [s.name for s in chosen])


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rig_unit" not in metafunc.fixturenames:
        return
    found = metafunc.config.stash.get(BENCH_KEY, None)
    if found is None:
        metafunc.parametrize("rig_unit", [pytest.param(
            None, marks=pytest.mark.skip(reason="needs a bench: pytest --rig-bench BENCH.toml"))],
            indirect=True, ids=["no-bench"])
        return
    slots = found[1]
    metafunc.parametrize("rig_unit", slots, indirect=True, ids=[f"slot-{s}" for s in slots])


@pytest.fixture
def rig_unit(request: pytest.FixtureRequest) -> Iterator[RigUnit]:
    """A unit of the bench (one per slot): reset, verified and activated by the session's
    batch. Fails (with the verdict's reason) when the batch could not prove that."""
    session: QaSession = request.config.stash[SESSION_KEY]
    unit = session.unit(request.param)
    request.node.stash[UNIT_KEY] = unit
    if not unit.ready:
        pytest.fail(f"slot {unit.slot}: the unit was not reset and handed over: "
                    f"{unit.verdict}: {unit.reason}", pytrace=False)
    yield unit


UNIT_KEY: pytest.StashKey[RigUnit] = pytest.StashKey()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    report = yield
    unit = item.stash.get(UNIT_KEY, None)
    session = item.config.stash.get(SESSION_KEY, None)
    if unit is None or session is None:
        return report
    if report.when == "call" or (report.when == "setup" and not report.passed):
        session.record(unit, item.nodeid, report)
    return report


class QaSession:
    """The session's one batch, its units, and the store their test results go to."""

    def __init__(self, config: pytest.Config, bench: Bench, slots: list[str]) -> None:
        self.config = config
        self.bench = bench
        self.slots = slots
        self._units: dict[str, RigUnit] | None = None
        self._store: RecordStore | None = None

    def unit(self, slot: str) -> RigUnit:
        if self._units is None:
            self._units = self._run_batch()
        return self._units[slot]

    def record(self, unit: RigUnit, nodeid: str, report: pytest.TestReport) -> None:
        """The test's outcome as evidence on the unit, written before the next test starts."""
        from rig.vocabulary import EvidenceKind
        outcome = ("error" if report.when == "setup" and report.failed and unit.ready
                   else report.outcome)
        text = str(report.longrepr or "")
        assert self._store is not None
        self._store.runs.add_evidence(unit.unit_id, EvidenceKind.TEST_RESULT, {
            "test": nodeid, "outcome": outcome, "duration_s": round(report.duration, 3),
            "message": "\n".join(text.splitlines()[-MESSAGE_LINES:])})

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _run_batch(self) -> dict[str, RigUnit]:
        from rig import qa_batch
        from rig.records import RecordStore
        try:
            self._store = RecordStore.open(self.config.getoption("--rig-db")
                                           or os.environ.get("RIG_DB") or None)
            return qa_batch.run(self.bench, self._store, self.slots,
                                password_env=self.config.getoption("--rig-password-env"),
                                method=self.config.getoption("--rig-method"))
        except qa_batch.QaBatchError as exc:      # nothing can be tested: stop the session
            pytest.exit(f"rig: {exc}", returncode=2)
