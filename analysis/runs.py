"""Load run folders (written by `mbpo.record`) into one tidy DataFrame."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mbpo.record import EVAL_COLUMNS, EVAL_FILE, METADATA_FILE


class RunFolderError(ValueError):
    """A folder is not a complete run."""


def load_eval(run_dir: Path) -> pd.DataFrame:
    """One complete run's evaluation episodes, with the run's identity as columns."""
    run_dir = Path(run_dir)
    meta_path = run_dir / METADATA_FILE
    if not meta_path.is_file():
        raise RunFolderError(f"{run_dir} is not a complete run (no {METADATA_FILE})")
    meta = json.loads(meta_path.read_text())
    frame = pd.read_csv(run_dir / EVAL_FILE)
    if tuple(frame.columns) != EVAL_COLUMNS:
        raise RunFolderError(f"{run_dir / EVAL_FILE} has columns {list(frame.columns)}, expected {list(EVAL_COLUMNS)}")
    return frame.assign(
        algo=meta["algo"],
        env=meta["env"],
        seed=meta["seed"],
        preset=meta["config"]["run"]["preset"],
        updates_per_step=meta["config"]["sac"]["updates_per_step"],
        device=meta["device"],
    )


def load_runs(run_dirs: list[Path]) -> pd.DataFrame:
    return pd.concat([load_eval(d) for d in run_dirs], ignore_index=True)
