"""The code base stays ruff-clean (the rules are in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the test extra; not installed")
def test_ruff_finds_nothing():
    folders = [d for d in ("rig", "tests", "benchmarks", "hardware") if (ROOT / d).is_dir()]
    result = subprocess.run(["ruff", "check", *folders], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
