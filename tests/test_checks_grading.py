"""The functional grade from check results: skipped (the unit lacks the function) never blocks,
unknown blocks exactly as failed does, key checks decide the middle grade."""

from __future__ import annotations

import pytest

from rig.checks.config import ChecksConfig
from rig.checks.results import CheckResult, grade
from rig.vocabulary import CheckName, CheckOutcome, Grade

C = CheckName
P, F, U, S = (CheckOutcome.PASSED, CheckOutcome.FAILED, CheckOutcome.UNKNOWN,
              CheckOutcome.SKIPPED)
CONFIG = ChecksConfig(run=tuple(CheckName), key=(C.DEVICE_INFO, C.SNAPSHOT))


def results(**outcomes: CheckOutcome) -> list[CheckResult]:
    return [CheckResult(CheckName(name.replace("_", "-")), outcome, "why",
                        CheckName(name.replace("_", "-")) in CONFIG.key)
            for name, outcome in outcomes.items()]


@pytest.mark.parametrize(("outcomes", "expected"), [
    (dict(device_info=P, snapshot=P, rtsp=P, ir_cut=P), Grade.FULLY_FUNCTIONAL),
    (dict(device_info=P, snapshot=P, ir_cut=S, cloud=S), Grade.FULLY_FUNCTIONAL),
    (dict(device_info=P, snapshot=P, rtsp=F), Grade.KEY_FUNCTIONS_TESTED),
    (dict(device_info=P, snapshot=P, cloud=U), Grade.KEY_FUNCTIONS_TESTED),
    (dict(device_info=P, snapshot=S, storage=F), Grade.KEY_FUNCTIONS_TESTED),
    (dict(device_info=P, snapshot=F, rtsp=P), Grade.NOT_FUNCTIONAL),
    (dict(device_info=P, snapshot=U, rtsp=P), Grade.NOT_FUNCTIONAL),
    (dict(device_info=S, snapshot=S, rtsp=F), Grade.NOT_FUNCTIONAL),
    (dict(ir_cut=S, cloud=S), Grade.NOT_FUNCTIONAL),          # nothing shown to work
    ({}, Grade.NOT_FUNCTIONAL),
])
def test_grade(outcomes, expected):
    assert grade(results(**outcomes), CONFIG) is expected


def test_without_key_checks_a_failure_is_not_functional():
    plain = ChecksConfig(run=(C.RTSP, C.CLOUD))
    assert grade(results(rtsp=P, cloud=F), plain) is Grade.NOT_FUNCTIONAL
    assert grade(results(rtsp=P, cloud=P), plain) is Grade.FULLY_FUNCTIONAL


def test_the_record_keeps_the_contracts_keys():
    [result] = results(snapshot=F)
    assert result.to_json() == {"check": "snapshot", "outcome": "failed", "reason": "why",
                                "key": True, "details": {}}
