"""The one writer of a run's results folder.

A run folder holds, once complete:
- `eval.csv`: one row per evaluation episode (env_step, episode, return, length, wall_seconds);
- `train.csv`: training diagnostics every `log_every` env steps;
- `metadata.json`: resolved config, provenance, timings, and `"status": "complete"`.

While a run is in progress only `*.csv.part` files exist. On success they are renamed into
place (an atomic rename on one filesystem) and `metadata.json` is written last, atomically, so a
folder with a `metadata.json` is a complete run and a crash never leaves one that looks complete.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

import gymnasium
import numpy as np
import torch

EVAL_FILE, TRAIN_FILE, METADATA_FILE = "eval.csv", "train.csv", "metadata.json"
EVAL_COLUMNS = ("env_step", "episode", "return", "length", "wall_seconds")


class OutputExistsError(FileExistsError):
    """The output folder already holds a complete run."""


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_complete(out: Path) -> bool:
    meta = out / METADATA_FILE
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("status") == "complete"
    except (json.JSONDecodeError, OSError):
        return False


def _format(value: Any) -> Any:
    # repr keeps every bit of a float, so byte-identical files mean identical numbers
    if isinstance(value, float):
        return repr(value)
    return value


class RunWriter:
    """Streams a run's rows into `*.part` files and commits them with the metadata at the end."""

    def __init__(self, out: Path, overwrite: bool, train_columns: Iterable[str]) -> None:
        self.out = Path(out)
        if is_complete(self.out) and not overwrite:
            raise OutputExistsError(f"{self.out} already holds a complete run (pass --overwrite to replace it)")
        self.out.mkdir(parents=True, exist_ok=True)
        # the completion marker goes first, so an interrupted overwrite never looks complete
        for name in (METADATA_FILE, EVAL_FILE, TRAIN_FILE):
            (self.out / name).unlink(missing_ok=True)
        self._eval_part = self.out / f"{EVAL_FILE}.part"
        self._train_part = self.out / f"{TRAIN_FILE}.part"
        self._eval_handle = self._eval_part.open("w", newline="")
        self._train_handle = self._train_part.open("w", newline="")
        self._eval = csv.writer(self._eval_handle, lineterminator="\n")
        self._train = csv.writer(self._train_handle, lineterminator="\n")
        self.train_columns = tuple(train_columns)
        self._eval.writerow(EVAL_COLUMNS)
        self._train.writerow(self.train_columns)

    def eval_rows(self, rows: Iterable[tuple]) -> None:
        self._eval.writerows([[_format(v) for v in row] for row in rows])
        self._eval_handle.flush()

    def train_row(self, row: dict[str, Any]) -> None:
        self._train.writerow([_format(row.get(c, "")) for c in self.train_columns])
        self._train_handle.flush()

    def finish(self, metadata: dict[str, Any]) -> None:
        """Commit the CSVs, then write `metadata.json` with `status: complete`."""
        for handle, part, name in (
            (self._eval_handle, self._eval_part, EVAL_FILE),
            (self._train_handle, self._train_part, TRAIN_FILE),
        ):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(part, self.out / name)
        write_atomic(self.out / METADATA_FILE, json.dumps({**metadata, "status": "complete"}, indent=2) + "\n")

    def close(self) -> None:
        """Close without committing (after a failure): only `*.part` files remain."""
        for handle in (self._eval_handle, self._train_handle):
            if not handle.closed:
                handle.close()


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def provenance(device: torch.device) -> dict[str, Any]:
    """Where and with what a run was made: versions, git revision, host, device."""
    revision = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "gymnasium": gymnasium.__version__,
            "numpy": np.__version__,
        },
        "git_revision": revision,
        "git_dirty": None if status is None else bool(status),
        "argv": sys.argv,
    }


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
