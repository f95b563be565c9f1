"""Failed logins across runs: the budget policy (pure), its ledger, the per-run allowance, and
whole runs on the simulated bench that must never lock a unit (issue 16, defect 4)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from records_support import T0, FakeClock

from rig.camera.isapi_types import Credentials, UserCheck
from rig.camera.profiles import ProfileSet
from rig.logins import LoginAllowance, budget_for
from rig.records import LoginBudget, RecordStore
from rig.records.logins import LoginRecord, unknown_unit
from rig.runner import Runner
from rig.sim.bench import SimBench, SimSlot
from rig.sim.camera import SimFaults
from rig.vocabulary import Verdict
from rig.wiring import BenchHardware

MAC = "44:47:cc:00:00:01"
PROFILES = ProfileSet.load()


def record(count: int, locked_until=None) -> LoginRecord:
    return dataclasses.replace(unknown_unit(MAC), count=count, locked_until=locked_until)


# --- the policy ------------------------------------------------------------------------------

def test_the_budget_allows_failures_up_to_the_lockout_minus_one():
    budget = LoginBudget(lockout_attempts=5, lockout_seconds=1800)
    assert budget.allowed == 4
    for count in range(4):                      # a failure now leaves the unit at most at 4
        assert budget.refusal(record(count), T0) is None
    why = budget.refusal(record(4), T0)
    assert why is not None and "nearly locked" in why and MAC in why
    assert "4 failed login(s) of the 5" in why and "30 min" in why


def test_a_lockout_of_one_never_allows_a_login():
    assert LoginBudget(1, 60).refusal(record(0), T0) is not None


def test_device_lock_refuses_any_login_and_says_how_long_to_wait():
    why = LoginBudget(7, 1800).refusal(record(0), T0, device_lock=True)
    assert why is not None and "DeviceLock=true" in why and "locked" in why
    assert "12:30 UTC" in why                    # T0 is 12:00; a lock lasts 30 min at most


def test_a_reported_lock_refuses_until_it_ends_then_the_count_is_gone():
    budget = LoginBudget(5, 1800)
    locked = record(5, locked_until=T0 + timedelta(minutes=20))
    why = budget.refusal(locked, T0)
    assert why is not None and "locked" in why and "12:20 UTC" in why
    assert budget.refusal(locked, T0 + timedelta(minutes=21)) is None
    assert budget.count(locked, T0 + timedelta(minutes=21)) == 0


def test_the_budget_follows_the_profile():
    g5 = PROFILES.get("g5")
    budget = budget_for(g5)
    assert (budget.lockout_attempts, budget.lockout_seconds) == (5, 1800.0)
    assert budget.cleared_by_power_cycle is g5.lock_cleared_by_power_cycle is False


# --- the ledger ------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    with RecordStore.open(tmp_path / "records.sqlite", clock=FakeClock()) as s:
        yield s


def test_the_ledger_counts_failures_and_a_success_clears_them(store):
    assert store.logins.get(MAC).count == 0 and store.logins.get(MAC).updated_at is None
    store.logins.failed(MAC)
    second = store.logins.failed(MAC, note="web-full")
    assert second.count == 2 and second.first_failure < second.last_failure
    assert store.logins.failed(MAC, camera_count=5).count == 5     # the camera knows better
    store.logins.succeeded(MAC)
    assert store.logins.get(MAC).count == 0 and store.logins.get(MAC).last_failure is None


def test_the_ledger_outlives_the_process(tmp_path):
    with RecordStore.open(tmp_path / "r.sqlite") as first:
        first.logins.failed(MAC)
    with RecordStore.open(tmp_path / "r.sqlite") as again:
        assert again.logins.get(MAC).count == 1


def test_a_reported_lock_is_kept_and_a_failure_after_it_starts_again(store):
    locked = store.logins.failed(MAC, camera_count=5, locked_for=0.5)
    assert locked.locked_until is not None and locked.count == 5
    later = store.logins.failed(MAC)              # the fake clock has moved past the lock
    assert later.count == 1 and later.locked_until is None


def test_an_operator_clear_says_who(store):
    store.logins.failed(MAC)
    with pytest.raises(ValueError, match="who"):
        store.logins.clear(MAC, by="")
    cleared = store.logins.clear(MAC, by="ana", note="password fixed")
    assert cleared.count == 0 and cleared.note == "cleared by ana: password fixed"


def test_rig_logins_lists_and_clears_a_count(tmp_path, capsys):
    from rig.cli import main
    db = tmp_path / "r.sqlite"
    with RecordStore.open(db) as store:
        store.logins.failed(MAC)
    assert main(["logins", "--db", str(db)]) == 0
    assert f"{MAC}  1 failed" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["logins", "--db", str(db), "clear", MAC])            # who clears it?
    assert main(["logins", "--db", str(db), "clear", MAC.upper().replace(":", "-"),
                 "--by", "ana"]) == 0
    assert "cleared by ana" in capsys.readouterr().out
    assert main(["logins", "--db", str(db), "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


# --- the allowance -----------------------------------------------------------------------------

def failed_check(left: int) -> UserCheck:
    return UserCheck(ok=False, http_status=401, lock_status="unlock", unlock_time=0,
                     retry_login_time=left)


def test_one_failed_login_per_unit_per_run_and_the_count_carries_to_the_next(store):
    g5 = PROFILES.get("g5")
    run = LoginAllowance(store.logins, PROFILES, g5)
    assert run.refusal(MAC, None) is None
    run.spent(MAC, None, UserCheck(ok=True, http_status=200), "a check")
    assert run.refusal(MAC, None) is None               # a login that works costs nothing
    run.spent(MAC, None, failed_check(4), "auto's login check")
    why = run.refusal(MAC, None)
    assert why is not None and "auto's login check" in why and "one per unit per run" in why
    assert run.refusal("44:47:cc:00:00:02", None) is None      # another unit: its own
    for _ in range(3):
        next_run = LoginAllowance(store.logins, PROFILES, g5)
        assert next_run.refusal(MAC, None) is None
        next_run.spent(MAC, None, None, "verification's login")   # no answer: counted
    assert store.logins.get(MAC).count == 4
    assert "nearly locked" in (LoginAllowance(store.logins, PROFILES, g5).refusal(MAC, None)
                               or "")


def test_a_power_cycle_clears_the_count_only_when_the_profile_says_so(store):
    g5 = PROFILES.get("g5")
    store.logins.failed(MAC)
    assert not LoginAllowance(store.logins, PROFILES, g5).power_cycled(MAC, None)
    assert store.logins.get(MAC).count == 1
    trusting = ProfileSet(tuple(dataclasses.replace(p, lock_cleared_by_power_cycle=True)
                                for p in PROFILES.profiles))
    allowance = LoginAllowance(store.logins, trusting, trusting.get("g5"))
    assert allowance.power_cycled(MAC, None)
    assert store.logins.get(MAC).count == 0


def test_a_locked_answer_records_the_lock(store):
    run = LoginAllowance(store.logins, PROFILES, PROFILES.get("current"))
    run.spent(MAC, None, UserCheck(ok=False, http_status=401, lock_status="lock",
                                   unlock_time=600, retry_login_time=0), "a check")
    stored = store.logins.get(MAC)
    assert stored.count == 7 and stored.locked_until is not None
    why = LoginAllowance(store.logins, PROFILES, PROFILES.get("current")).refusal(MAC, None)
    assert why is not None and "is locked" in why




# --- whole runs on the simulated bench -----------------------------------------------------------

SCALE = 100.0
PASSWORD = "Secret123!"
WRONG = Credentials("admin", "Wrong-pass1")


def run(sim, store, **kwargs):
    hardware = BenchHardware(sim.bench, pin_factory=sim.pin_factory)
    try:
        return Runner(sim.bench, store, hardware, argv=["test"], **kwargs).run()
    finally:
        hardware.close()


def test_repeated_web_full_runs_with_a_wrong_password_never_lock_the_unit(tmp_path):
    with SimBench.start([SimSlot("poe", "g5")], directory=tmp_path, time_scale=SCALE,
                        first=220, provision=PASSWORD) as sim, \
            RecordStore.open(tmp_path / "records.sqlite") as store:
        camera = sim.cameras["1"]
        checks = []
        for _ in range(6):                   # g5 locks at the 5th failure
            verdict = run(sim, store, method="web-full", credentials=WRONG).results["1"].verdict
            checks.append(verdict.check)
        assert not camera.is_locked()
        assert camera.failed_logins() == 4 == store.logins.get(camera.mac).count
    assert checks == ["web-login"] * 4 + ["login-budget"] * 2
    assert "nearly locked" in verdict.reason and "4 failed login(s) of the 5" in verdict.reason
    assert "30 min" in verdict.reason


def test_a_login_that_works_clears_the_count(tmp_path):
    with SimBench.start([SimSlot("poe", "current")], directory=tmp_path, time_scale=SCALE,
                        first=222, provision=PASSWORD) as sim, \
            RecordStore.open(tmp_path / "records.sqlite") as store:
        mac = sim.cameras["1"].mac
        for _ in range(2):
            run(sim, store, method="web-basic", credentials=WRONG)
        assert store.logins.get(mac).count == 2
        good = run(sim, store, method="web-basic", credentials=Credentials("admin", PASSWORD))
        assert good.passed, good.results["1"].verdict.reason
        assert store.logins.get(mac).count == 0


def test_a_unit_in_its_login_lock_gets_no_login_from_any_method(tmp_path):
    with SimBench.start([SimSlot("gpio", "current")], directory=tmp_path, time_scale=SCALE,
                        first=224, provision=PASSWORD) as sim, \
            RecordStore.open(tmp_path / "records.sqlite") as store:
        camera = sim.cameras["1"]
        camera.update_settings(login_lock_seconds=10 * 24 * 3600.0)   # outlasts the test
        for _ in range(camera.profile.lockout_attempts):               # someone else locked it
            camera.check_login("10.9.9.9", "admin", None)
        assert camera.is_locked()                                     # SADP: DeviceLock=true
        locked_out = camera.failed_logins()
        right = Credentials("admin", PASSWORD)
        verdicts, logins = {}, []
        for method in ("web-full", "web-basic", "auto", "poe-cycle", "hard"):
            result = run(sim, store, method=method, credentials=right)
            verdicts[method] = result.results["1"]
            evidence = store.runs.load_run(result.run_id).units[0].evidence
            logins += [(method, e.kind) for e in evidence if e.kind == "user-check"
                       or (e.kind == "http" and e.data["login_attempts"])]
        assert logins == []                              # not one login from the rig
        assert camera.failed_logins() == locked_out
    for method in ("web-full", "web-basic"):
        verdict = verdicts[method].verdict
        assert verdict.check == "login-budget" and "DeviceLock=true" in verdict.reason
        assert "wait until" in verdict.reason
    assert any("SADP reports the login lock" in n for n in verdicts["auto"].notes)


def test_auto_on_a_jammed_legacy_unit_spends_at_most_one_failed_login_per_run(tmp_path):
    spec = [SimSlot("relay", "legacy", SimFaults(jammed_button=True))]
    with SimBench.start(spec, directory=tmp_path, time_scale=SCALE, first=226,
                        provision=PASSWORD) as sim, \
            RecordStore.open(tmp_path / "records.sqlite") as store:
        camera = sim.cameras["1"]
        spent = []
        for _ in range(3):
            before = camera.failed_logins()
            result = run(sim, store, method="auto", credentials=WRONG).results["1"]
            spent.append(camera.failed_logins() - before)
        assert spent == [1, 1, 1]              # auto's check; verification's login refused
        assert store.logins.get(camera.mac).count == 3 and not camera.is_locked()
    assert result.verdict.verdict is Verdict.NOT_DEFAULT
    assert any("no login in verification" in n and "auto's login check" in n
               for n in result.notes), result.notes
