"""The house formatter and linter (ruff, pinned in constraints.txt) hold for the whole tree, so a
change that is not formatted or trips a lint rule fails the test command, as in CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [["format", "--check", "--diff"], ["check"]], ids=["format", "lint"])
def test_ruff(command):
    result = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"ruff {' '.join(command)} (fix with `ruff format .` / `ruff check --fix .`):\n{result.stdout}{result.stderr}"
    )
