"""Sampling certified units for independent re-verification (R2v3 asks for at least 5 % of
logically sanitized devices), and what a sample achieved.

The draw is reproducible by anyone holding the record: the population is the latest
certificate of each certified unit issued since a date, sorted by certificate id; the sample
is ``random.Random(seed).sample(population, k)`` with ``k = ceil(percent × population / 100)``
(at least one when there is any). The seed is recorded with the sample, so an auditor can
redraw it and see that nobody picked the easy units.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rig.records.certificates import AuditResult, AuditSample, IssuedCertificate


def population(certificates: Sequence[IssuedCertificate]) -> list[str]:
    """The certificate ids a sample is drawn from: each unit's latest, sorted by id."""
    latest: dict[int, IssuedCertificate] = {}
    for cert in certificates:
        if cert.unit_id not in latest or cert.issued_at >= latest[cert.unit_id].issued_at:
            latest[cert.unit_id] = cert
    return sorted(c.id for c in latest.values())


def sample_size(percent: float, size: int) -> int:
    """How many to draw: ``percent`` of ``size`` rounded up (never fewer than asked)."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent {percent:g} is not in (0, 100]")
    return 0 if size == 0 else max(1, math.ceil(percent * size / 100))


def draw(ids: Sequence[str], percent: float, seed: str) -> list[str]:
    """The sample from ``ids`` (already in population order), reproducible from ``seed``."""
    chosen = random.Random(seed).sample(list(ids), sample_size(percent, len(ids)))
    return sorted(chosen)


@dataclass(frozen=True)
class SampleStatus:
    """What one sample achieved: how many of its units were re-verified, with what outcome."""

    sample: AuditSample
    verified: int
    outcomes: dict[str, int]

    @property
    def drawn_rate(self) -> float:
        """Percent of the population drawn."""
        pop = self.sample.population
        return 0.0 if pop == 0 else 100 * len(self.sample.certificate_ids) / pop

    @property
    def achieved_rate(self) -> float:
        """Percent of the population actually re-verified (what an audit counts)."""
        pop = self.sample.population
        return 0.0 if pop == 0 else 100 * self.verified / pop


def status(sample: AuditSample, results: Sequence[AuditResult]) -> SampleStatus:
    """The sample's status from the results recorded against it (the latest per certificate)."""
    latest = {r.certificate_id: r for r in sorted(results, key=lambda r: r.id)
              if r.sample_id == sample.id and r.certificate_id in sample.certificate_ids}
    return SampleStatus(sample, len(latest), dict(Counter(r.outcome for r in latest.values())))
