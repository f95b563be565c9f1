"""The bench file's ``[certificate]`` table: who issues this bench's certificates, and the
defaults ``rig run`` records with a run when its command line names none.

    [certificate]
    organisation = "Example Refurb Ltd"   # the issuer printed and signed on every certificate
    operator = "A. Person"                # default for rig run --operator
    destination = "resale"                # default for rig run --destination

Read with the bench's own TomlTable (errors name the file and key); written back by
``certificate_lines`` so that ``rig.bench.dump`` keeps its round trip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rig.tomltable import TomlTable
from rig.vocabulary import Destination


@dataclass(frozen=True)
class CertificateConfig:
    """``[certificate]``; every field optional (empty: not said)."""

    organisation: str = ""
    operator: str = ""
    destination: Destination | None = None


def read_certificate_table(t: TomlTable) -> CertificateConfig:
    """``[certificate]`` from its TomlTable (refusing unknown keys, naming the allowed ones)."""
    organisation = t.get("organisation", str, "").strip()
    operator = t.get("operator", str, "").strip()
    destination = t.choice("destination", Destination, None)
    t.done()
    return CertificateConfig(organisation=organisation, operator=operator,
                             destination=None if destination is None else Destination(destination))


def certificate_lines(config: CertificateConfig) -> list[str]:
    """The ``[certificate]`` table as bench-file lines ([] when it says nothing)."""
    if config == CertificateConfig():
        return []
    lines = ["", "[certificate]"]
    for key in ("organisation", "operator"):
        if getattr(config, key):
            lines.append(f"{key} = {json.dumps(getattr(config, key))}")
    if config.destination is not None:
        lines.append(f"destination = {json.dumps(str(config.destination))}")
    return lines
