"""Audit sampling: a reproducible draw of certified units, re-verifications recorded against
their certificates, and the sampling rate achieved."""

from __future__ import annotations

import pytest

from rig.certificates.audit import draw, population, sample_size
from rig.certificates.config import CertificateConfig
from rig.certificates.content import Issuer
from rig.certificates.issue import issue
from rig.certificates.keys import BenchKeys
from rig.cli import main
from rig.records import RecordStore


@pytest.fixture()
def certified(tmp_path):
    """40 units certified in one run: (store path, certificate ids)."""
    db = tmp_path / "rig.sqlite"
    with RecordStore.open(db) as store:
        run = store.runs.start_run("bench-a", method="hard", argv=["rig"])
        for n in range(1, 41):
            unit = store.runs.start_unit(run, str(n), method="hard")
            store.runs.finish_unit(unit, "factory-default", "ok", mac=f"44:47:cc:00:01:{n:02x}",
                                   serial=f"SN{n:04d}")
        store.runs.finish_run(run, "passed")
        outcome = issue(store, run, Issuer("Org", "bench-a", CertificateConfig()),
                        BenchKeys(tmp_path / "keys").signing_key())
    return db, [i.certificate_id for i in outcome.issued]


def test_the_draw_is_reproducible_from_its_seed_and_rounds_up():
    ids = [f"id{n:02d}" for n in range(40)]
    assert sample_size(5, 40) == 2 and sample_size(5, 41) == 3 and sample_size(5, 1) == 1
    assert sample_size(5, 0) == 0
    assert draw(ids, 5, "abc") == draw(ids, 5, "abc")
    assert len(draw(ids, 12.5, "abc")) == 5
    with pytest.raises(ValueError, match="not in"):
        sample_size(0, 10)


def test_sample_record_and_report_show_the_rate_achieved(certified, capsys):
    db, ids = certified
    assert main(["audit", "sample", "--percent", "5", "--seed", "s1", "--db", str(db),
                 "--by", "QA"]) == 0
    out = capsys.readouterr().out
    assert "sample 1: 2 of 40 certified unit(s) (5 % asked), seed s1" in out
    with RecordStore.open(db) as store:
        sample = store.certificates.sample(1)
        expected = draw(population(store.certificates.issued_since()), 5, "s1")
    assert list(sample.certificate_ids) == expected and set(expected) <= set(ids)
    first, second = sample.certificate_ids
    assert main(["audit", "record", first, "--outcome", "confirmed", "--auditor", "I. Auditor",
                 "--db", str(db)]) == 0
    assert "(sample 1)" in capsys.readouterr().out
    assert main(["audit", "report", "--db", str(db)]) == 0
    report = capsys.readouterr().out
    assert "2.5%" in report and "confirmed 1" in report and "seed s1" in report
    assert main(["audit", "record", second, "--outcome", "discrepancy", "--auditor", "I. A.",
                 "--note", "still bound", "--db", str(db)]) == 0
    main(["audit", "report", "--db", str(db)])
    assert "5.0%" in capsys.readouterr().out
    assert main(["audit", "record", "no-such-id", "--outcome", "confirmed", "--auditor", "x",
                 "--db", str(db)]) == 2


def test_since_limits_the_population(certified, capsys):
    db, _ = certified
    assert main(["audit", "sample", "--since", "2999-01-01", "--db", str(db)]) == 0
    assert "0 of 0 certified unit(s)" in capsys.readouterr().out
