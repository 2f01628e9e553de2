"""Helpers shared by the tests that launch training runs and compare their files."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCK_COLUMNS = {"wall_seconds", "seconds"}  # clock readings: the only columns allowed to differ
RUN_FILES = ("eval.csv", "train.csv", "model.csv", "rollouts.csv")

# a short MBPO run on Hopper with every part of the state in play: a fitted ensemble with elites,
# a model buffer, rollouts with a growing length, policy updates on mixed batches, episodes
# that end by termination (so resets happen between checkpoints); no seed given
HOPPER_SHORT = [
    *("--algo", "mbpo", "--preset", "paper", "--env", "Hopper-v5"),
    *("--total-steps", "1400", "--random-steps", "300", "--model-train-freq", "100"),
    *("--rollout-batch-size", "500", "--updates-per-step", "2", "--eval-every", "350", "--eval-episodes", "2"),
    *("--rollout-length", "1,4,1,4", "--epoch-length", "200"),
    *("--model-hidden", "48,48", "--model-weight-decay", "0,0,0", "--model-max-epochs", "4"),
    *("--actor-hidden", "48,48", "--critic-hidden", "48,48", "--log-every", "100", "--quiet"),
]


def snakemake_command(workdir: Path, config: Path | None, *args: str) -> list[str]:
    """This project's workflow run in `workdir` (as `--directory`), with `config` replacing the default."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    if config is not None:
        cmd += ["--configfile", str(config), "--replace-workflow-config"]
    return [*cmd, *args]


def start_workflow_until_a_run_writes(workdir: Path, config: Path, cores: int) -> subprocess.Popen:
    """Start the workflow in its own process group and return once a training run has written
    part files (or after two minutes), for tests that interrupt it."""
    cmd = snakemake_command(workdir, config, "--cores", str(cores))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((workdir / "results" / "runs").rglob("*.csv.part")):
        time.sleep(0.2)
    return proc


def train_command(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mbpo", "train", *args, "--out", str(out)]


def start(out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(train_command(out, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(train_command(out, *args), capture_output=True, text=True, timeout=600)


def without_clocks(path: Path) -> list[list[str]]:
    rows = list(csv.reader(path.open()))
    keep = [i for i, name in enumerate(rows[0]) if name not in CLOCK_COLUMNS]
    return [[row[i] for i in keep] for row in rows]


def assert_same_run(a: Path, b: Path) -> None:
    """Every run file of `a` equals `b`'s, clock columns aside."""
    for name in RUN_FILES:
        if (a / name).exists() or (b / name).exists():
            assert without_clocks(a / name) == without_clocks(b / name), f"{name} differs"


def checkpoint_step(out: Path) -> int:
    import torch

    return torch.load(out / "checkpoint.pt", weights_only=True, map_location="cpu")["trainer"]["step"]


def checkpoint_offsets(out: Path) -> dict[str, int]:
    """The length of each part file that the checkpoint in `out` records."""
    import torch

    return torch.load(out / "checkpoint.pt", weights_only=True, map_location="cpu")["offsets"]


def wait_for_checkpoint_past(out: Path, step: int, proc: subprocess.Popen, timeout: float = 300) -> int:
    """Poll until a checkpoint of at least `step` env steps exists; returns its step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before a checkpoint past step {step}: {proc.stderr.read()}"
        if (out / "checkpoint.pt").exists():
            try:
                found = checkpoint_step(out)
            except Exception:  # being replaced right now
                found = -1
            if found >= step:
                return found
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint past step {step} within {timeout} s")
