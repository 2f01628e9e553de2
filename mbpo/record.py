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

EVAL_FILE, METADATA_FILE = "eval.csv", "metadata.json"
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
    """Streams a run's rows into `<name>.csv.part` files and commits them with the metadata.

    `streams` maps a file stem to its columns; `eval` is always one of them.
    """

    def __init__(self, out: Path, overwrite: bool, streams: dict[str, Iterable[str]]) -> None:
        self.out = Path(out)
        if is_complete(self.out) and not overwrite:
            raise OutputExistsError(f"{self.out} already holds a complete run (pass --overwrite to replace it)")
        self.out.mkdir(parents=True, exist_ok=True)
        # the completion marker goes first, so an interrupted overwrite never looks complete
        (self.out / METADATA_FILE).unlink(missing_ok=True)
        for old in self.out.glob("*.csv"):
            old.unlink()
        self.columns = {"eval": EVAL_COLUMNS, **{name: tuple(cols) for name, cols in streams.items()}}
        self._handles = {name: (self.out / f"{name}.csv.part").open("w", newline="") for name in self.columns}
        self._writers = {name: csv.writer(h, lineterminator="\n") for name, h in self._handles.items()}
        for name, columns in self.columns.items():
            self._writers[name].writerow(columns)

    def eval_rows(self, rows: Iterable[tuple]) -> None:
        self._writers["eval"].writerows([[_format(v) for v in row] for row in rows])
        self._handles["eval"].flush()

    def row(self, stream: str, row: dict[str, Any]) -> None:
        """Append one row to `stream`; keys not in its columns are an error, missing ones blank."""
        unknown = set(row) - set(self.columns[stream])
        if unknown:
            raise KeyError(f"{stream}.csv has no column(s) {sorted(unknown)}")
        self._writers[stream].writerow([_format(row.get(c, "")) for c in self.columns[stream]])
        self._handles[stream].flush()

    def finish(self, metadata: dict[str, Any]) -> None:
        """Commit the CSVs, then write `metadata.json` with `status: complete`."""
        for name, handle in self._handles.items():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(self.out / f"{name}.csv.part", self.out / f"{name}.csv")
        write_atomic(self.out / METADATA_FILE, json.dumps({**metadata, "status": "complete"}, indent=2) + "\n")

    def close(self) -> None:
        """Close without committing (after a failure): only `*.part` files remain."""
        for handle in self._handles.values():
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
