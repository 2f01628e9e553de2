"""Load run folders (written by `mbpo.record`) into one tidy, validated DataFrame.

Every reader of run folders goes through `metadata` and `load_eval`, so every reader verifies a
run's files the same way: a run whose metadata lists its files (`"files"`: rows, bytes, sha256
per file) must match that list exactly (`mbpo.record.verify_run_files`); an older run without
the list must at least have an `eval.csv` that parses, has the expected columns, finite numbers
and, where the metadata says how the run was evaluated, exactly the expected evaluations (so a
file truncated at a line boundary is caught there too).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from plan import identity as run_identity
from plan.identity import IDENTITY
from mbpo import record
from mbpo.record import EVAL_COLUMNS, EVAL_FILE, METADATA_FILE

_INTEGER_COLUMNS = ("env_step", "episode", "length")


class RunFolderError(ValueError):
    """A folder is not a complete run, or its files do not match its path or its metadata."""


def identity(run_dir: Path) -> dict:
    """(env, algo, variant, device, seed) from the folder's path, or from its metadata."""
    found = run_identity.parse(Path(run_dir).as_posix())
    meta = metadata(run_dir)
    if found is None or found["env"] != meta["env"]:  # a folder outside the pipeline's layout
        return {
            "env": meta["env"],
            "algo": meta["algo"],
            "variant": "-",
            "device": meta["device"],
            "seed": meta["seed"],
        }
    if meta["seed"] != found["seed"]:
        raise RunFolderError(f"{run_dir}: metadata says seed={meta['seed']!r}, the path says {found['seed']!r}")
    if not str(meta["device"]).startswith(found["device"]):
        raise RunFolderError(f"{run_dir}: metadata says device={meta['device']!r}, the path says {found['device']!r}")
    return found


def metadata(run_dir: Path) -> dict:
    """A complete run's metadata, checked for the fields every reader relies on."""
    run_dir = Path(run_dir)
    meta_path = run_dir / METADATA_FILE
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: no such run folder")
    if not meta_path.is_file():
        unfinished = sorted(p.name for p in run_dir.glob("*.part"))
        why = f"unfinished: {', '.join(unfinished)}" if unfinished else f"no {METADATA_FILE}"
        raise RunFolderError(f"{run_dir} is not a complete run ({why})")
    meta = read_json_object(meta_path)
    if meta.get("status") != "complete":
        raise RunFolderError(f"{run_dir} is not a complete run (status {meta.get('status')!r} in {METADATA_FILE})")
    for key, kind, what in (
        ("env", str, "a string"),
        ("algo", str, "a string"),
        ("device", str, "a string"),
        ("seed", int, "an integer"),
    ):
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise RunFolderError(f"{meta_path}: {key!r} is {meta.get(key)!r}, expected {what}")
    # the readers look inside the config's sections (`run`: the evaluations the run must hold)
    config = meta.get("config", {})
    if not isinstance(config, dict) or not all(isinstance(section, dict) for section in config.values()):
        raise RunFolderError(f"{meta_path}: 'config' is not an object of sections")
    return meta


def verify_files(run_dir: Path, meta: dict) -> None:
    """The run's files are the ones its metadata lists (rows, size, checksum), when it lists them."""
    if "files" not in meta:
        return  # a run from before the file list: load_eval checks eval.csv's content instead
    files = meta["files"]
    if not isinstance(files, dict) or EVAL_FILE not in files or not all(isinstance(v, dict) for v in files.values()):
        raise RunFolderError(
            f"{Path(run_dir) / METADATA_FILE}: 'files' is not a record of the run's files with {EVAL_FILE}"
        )
    try:
        record.verify_run_files(Path(run_dir), meta)
    except ValueError as exc:  # mbpo.record.RunFileError: names the file and what is wrong
        raise RunFolderError(str(exc)) from None


def _expected_evaluations(meta: dict) -> tuple[list[int], int] | None:
    """The env steps and episodes per evaluation that `mbpo.train` writes for this config."""
    run = meta.get("config", {}).get("run", {})
    total, every, episodes = run.get("total_steps"), run.get("eval_every"), run.get("eval_episodes")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (total, every, episodes)):
        return None
    return sorted({*range(0, total + 1, every), total}), episodes


def read_eval(run_dir: Path, meta: dict) -> pd.DataFrame:
    """A run's `eval.csv`, parsed and checked: the columns, integers where integers belong,
    finite numbers, one row per (evaluation, episode), and the evaluations the config implies."""
    path = Path(run_dir) / EVAL_FILE
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing") from None
    except pd.errors.EmptyDataError:
        raise RunFolderError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path} is not a valid CSV file ({str(exc).strip().splitlines()[-1]})") from None
    except OSError as exc:
        raise RunFolderError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if tuple(frame.columns) != EVAL_COLUMNS:
        raise RunFolderError(f"{path} has columns {list(frame.columns)}, expected {list(EVAL_COLUMNS)}")
    if frame.empty:
        raise RunFolderError(f"{path} has a header but no rows")
    numbers = frame.apply(pd.to_numeric, errors="coerce").astype(float)
    bad = ~np.isfinite(numbers.to_numpy())
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise RunFolderError(
            f"{path} line {row + 2}: {EVAL_COLUMNS[col]} = {frame.iat[row, col]!r} is not a finite number"
            f" ({int(bad.any(axis=1).sum())} such row(s))"
        )
    for column in _INTEGER_COLUMNS:
        values = numbers[column].to_numpy()
        wrong = (values != np.round(values)) | (values < 0)
        if wrong.any():
            row = int(np.argmax(wrong))
            raise RunFolderError(f"{path} line {row + 2}: {column} = {frame.at[row, column]!r} is not a count")
    numbers = numbers.astype({c: int for c in _INTEGER_COLUMNS})
    duplicated = numbers.duplicated(["env_step", "episode"])
    if duplicated.any():
        row = int(np.argmax(duplicated.to_numpy()))
        raise RunFolderError(
            f"{path} line {row + 2}: a second row for env_step {numbers.env_step[row]}, episode {numbers.episode[row]}"
        )
    expected = _expected_evaluations(meta)
    per_step = numbers.groupby("env_step").episode.agg(["count", "min", "max"])
    if expected is not None:
        steps, episodes = expected
        if list(per_step.index) != steps or ((per_step["count"] != episodes) | (per_step["max"] != episodes - 1)).any():
            found = f"{len(numbers)} rows, evaluations at {_span(list(per_step.index))}"
            raise RunFolderError(
                f"{path} does not hold the run's evaluations ({found}; the config implies {len(steps) * episodes} rows, "
                f"{episodes} episode(s) at each of {_span(steps)}): truncated or edited?"
            )
    elif per_step["count"].nunique() > 1:
        step = int(per_step["count"].idxmin())
        raise RunFolderError(
            f"{path}: the evaluation at env step {step} has {per_step['count'][step]} episode(s), others more: truncated?"
        )
    return numbers


def _span(steps: list[int]) -> str:
    if len(steps) <= 3:
        return ", ".join(map(str, steps)) or "none"
    return f"{steps[0]}, {steps[1]}, ..., {steps[-1]}"


def load_eval(run_dir: Path) -> pd.DataFrame:
    """One complete, verified run's evaluation episodes, with the run's identity as columns."""
    run_dir = Path(run_dir)
    meta = metadata(run_dir)
    ident = identity(run_dir)
    verify_files(run_dir, meta)
    frame = read_eval(run_dir, meta)
    return frame.assign(**ident)[[*IDENTITY, *EVAL_COLUMNS]]


def load_runs(run_dirs: list[Path]) -> pd.DataFrame:
    """All evaluation episodes of the given runs: one row per episode, identity columns first."""
    if not run_dirs:
        raise RunFolderError("no runs given")
    frames, seen = [], {}
    for run_dir in run_dirs:
        frame = load_eval(run_dir)
        key = tuple(frame.iloc[0][IDENTITY])
        if key in seen:
            raise RunFolderError(
                f"{run_dir} and {seen[key]} are both run {run_identity.name(key)}: one run would count twice"
                " (runs outside the pipeline's {env}/{algo}/{variant}/{device}/seed{seed} layout are told apart"
                " only by env, algo, device and seed)"
            )
        seen[key] = run_dir
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    return frame.astype({"seed": int, "env_step": int, "episode": int, "length": int, "return": float})


def run_scores(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Each run's score per evaluation: the mean return over its evaluation episodes."""
    return evaluations.groupby([*IDENTITY, "env_step"], as_index=False).agg(
        score=("return", "mean"), wall_seconds=("wall_seconds", "first")
    )


def lockstep_share(meta: dict, source: Path | str) -> int:
    """How many seeds shared the process that trained a run (its metadata's `lockstep.seeds`; 1
    for a run trained alone): its clock and phase seconds are that process's, for all of them."""
    lockstep = meta.get("lockstep")
    if lockstep is None:
        return 1
    seeds = lockstep.get("seeds") if isinstance(lockstep, dict) else None
    if not isinstance(seeds, list) or not seeds:
        raise RunFolderError(f"{source}: its 'lockstep' names no list of seeds")
    return len(seeds)


def train_seconds_per_env_step(run_dir: Path) -> float:
    """The training loop's own seconds per env step and seed (evaluation excluded), from the
    metadata: a seed trained in lockstep counts its process's time divided by the seeds it
    trained; NaN where the run did not record it."""
    meta = metadata(run_dir)
    value = meta.get("seconds_per_env_step")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return float(value) / lockstep_share(meta, Path(run_dir) / METADATA_FILE) if ok else math.nan


def read_json_object(path: Path, error: type[Exception] = RunFolderError) -> dict:
    """A JSON file that must hold an object; `error` (one line naming the file) if it cannot be
    read, is not JSON or holds something else."""
    try:
        info = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise error(f"{path} cannot be read ({exc.strerror or exc})") from None
    if not isinstance(info, dict):
        raise error(f"{path} is not a JSON object (a {type(info).__name__})")
    return info


def error_line(exc: BaseException) -> str:
    """One line for an error: an OSError names its file and says what went wrong; where a file
    stands in the way of a folder to be made or entered, it names that file."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename is not None:
        blocker = _file_in_the_way(Path(exc.filename))
        if blocker is not None:
            return f"{blocker}: is a file, not a directory"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _file_in_the_way(path: Path) -> Path | None:
    """The first component of `path` (itself included) that exists and is not a directory."""
    for part in (*reversed(path.parents), path):
        if part.exists() and not part.is_dir():
            return part
    return None
