"""Load run folders (written by `mbpo.record`) into one tidy, validated DataFrame."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from mbpo.record import EVAL_COLUMNS, EVAL_FILE, METADATA_FILE

GROUP = ["env", "algo", "variant", "device"]
IDENTITY = [*GROUP, "seed"]
# a run folder's path ends in {env}/{algo}/{variant}/{device}/seed{seed} (analysis.experiment.RUN_DIR)
_PATH = re.compile(r"(?P<env>[^/]+)/(?P<algo>[^/]+)/(?P<variant>[^/]+)/(?P<device>[^/]+)/seed(?P<seed>\d+)/?$")


class RunFolderError(ValueError):
    """A folder is not a complete run, or its files do not match its path."""


def identity(run_dir: Path) -> dict:
    """(env, algo, variant, device, seed) from the folder's path, or from its metadata."""
    match = _PATH.search(Path(run_dir).as_posix())
    meta = metadata(run_dir)
    if match is None or match["env"] != meta["env"]:  # a folder outside the pipeline's layout
        return {"env": meta["env"], "algo": meta["algo"], "variant": "-", "device": meta["device"], "seed": meta["seed"]}
    found = {**match.groupdict(), "seed": int(match["seed"])}
    if meta["seed"] != found["seed"]:
        raise RunFolderError(f"{run_dir}: metadata says seed={meta['seed']!r}, the path says {found['seed']!r}")
    if not str(meta["device"]).startswith(found["device"]):
        raise RunFolderError(f"{run_dir}: metadata says device={meta['device']!r}, the path says {found['device']!r}")
    return found


def metadata(run_dir: Path) -> dict:
    meta_path = Path(run_dir) / METADATA_FILE
    if not meta_path.is_file():
        raise RunFolderError(f"{run_dir} is not a complete run (no {METADATA_FILE})")
    meta = json.loads(meta_path.read_text())
    if meta.get("status") != "complete":
        raise RunFolderError(f"{run_dir} is not a complete run (status {meta.get('status')!r})")
    return meta


def load_eval(run_dir: Path) -> pd.DataFrame:
    """One complete run's evaluation episodes, with the run's identity as columns."""
    run_dir = Path(run_dir)
    ident = identity(run_dir)
    frame = pd.read_csv(run_dir / EVAL_FILE)
    if tuple(frame.columns) != EVAL_COLUMNS:
        raise RunFolderError(f"{run_dir / EVAL_FILE} has columns {list(frame.columns)}, expected {list(EVAL_COLUMNS)}")
    if frame.empty or frame["return"].isna().any():
        raise RunFolderError(f"{run_dir / EVAL_FILE} has no rows or missing returns")
    return frame.assign(**ident)[[*IDENTITY, *EVAL_COLUMNS]]


def load_runs(run_dirs: list[Path]) -> pd.DataFrame:
    """All evaluation episodes of the given runs: one row per episode, identity columns first."""
    if not run_dirs:
        raise RunFolderError("no runs given")
    frame = pd.concat([load_eval(d) for d in run_dirs], ignore_index=True)
    return frame.astype({"seed": int, "env_step": int, "episode": int, "length": int, "return": float})


def run_scores(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Each run's score per evaluation: the mean return over its evaluation episodes."""
    return evaluations.groupby([*IDENTITY, "env_step"], as_index=False).agg(
        score=("return", "mean"), wall_seconds=("wall_seconds", "first")
    )
