"""Checkpoints on a fast SAC Pendulum run: the counts of checkpoints cover every process of a
resumed run, a malformed checkpoint is one line suggesting --overwrite, and Ctrl-C says what a
re-run will do. (tests/test_checkpoint.py does the exactness tests on MuJoCo.)"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import runfiles
import torch
from runfiles import assert_same_run, checkpoint_step

ARGS = [
    "--env",
    "Pendulum-v1",
    "--preset",
    "seed",
    "--seed",
    "2",
    "--total-steps",
    "3000",
    "--random-steps",
    "200",
    "--eval-every",
    "500",
    "--eval-episodes",
    "1",
    "--log-every",
    "100",
    "--quiet",
    "--checkpoint-interval",
    "0",  # checkpoints on SIGTERM only
]


def wait_for_progress(out: Path, proc: subprocess.Popen, past: int) -> None:
    """Wait until train.csv.part is longer than `past` bytes (the run is training, its SIGTERM
    handler installed)."""
    part = out / "train.csv.part"
    deadline = time.monotonic() + 120
    while not part.exists() or part.stat().st_size <= past:
        assert time.monotonic() < deadline and proc.poll() is None, "the run ended or stalled"
        time.sleep(0.05)


def preempt(out: Path) -> subprocess.CompletedProcess:
    """Start (or resume) the run in `out`, let it train past its checkpoint, stop it with SIGTERM."""
    past = 0
    if (out / "checkpoint.pt").exists():
        past = torch.load(out / "checkpoint.pt", weights_only=True)["offsets"]["train"]
    proc = runfiles.start(out, *ARGS)
    wait_for_progress(out, proc, max(past, 100))
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    result = runfiles.finish(out, *ARGS)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def preempted(tmp_path_factory) -> Path:
    """A run stopped by SIGTERM once: its part files and checkpoint (copy it before changing it)."""
    out = tmp_path_factory.mktemp("preempted") / "run"
    preempt(out)
    return out


def copy_of(folder: Path, where: Path) -> Path:
    shutil.copytree(folder, where)
    (where / ".lock").unlink(missing_ok=True)
    return where


def test_checkpoint_counts_cover_every_process_of_the_run(uninterrupted, tmp_path):
    out = tmp_path / "run"
    preempt(out)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["checkpoints"]["saves"] == 1
    first = checkpoint_step(out)
    preempt(out)  # resumed, then stopped again: a second process, a second save
    assert checkpoint_step(out) > first
    assert torch.load(out / "checkpoint.pt", weights_only=True)["checkpoints"]["saves"] == 2
    result = runfiles.finish(out, *ARGS)  # the third process saves nothing
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert len(meta["resumes"]) == 2
    assert meta["checkpoints"]["saves"] == 2 and meta["checkpoints"]["last_bytes"] > 0
    assert "saves_before_resume_unknown" not in meta["checkpoints"]
    assert_same_run(uninterrupted, out)  # carrying the counts changes no run file


def test_a_checkpoint_without_counts_is_resumed_and_says_so(preempted, tmp_path):
    """Checkpoints written before the counts were carried still resume."""
    out = copy_of(preempted, tmp_path / "run")
    payload = torch.load(out / "checkpoint.pt", weights_only=True)
    del payload["checkpoints"]
    torch.save(payload, out / "checkpoint.pt")
    result = runfiles.finish(out, *ARGS)
    assert result.returncode == 0, result.stderr
    counts = json.loads((out / "metadata.json").read_text())["checkpoints"]
    assert counts["saves"] == 1 and counts["saves_before_resume_unknown"] is True


def _drop(key: str):
    def change(payload):
        del payload[key]
        return payload

    return change


def _set(change_fn):
    def change(payload):
        change_fn(payload)
        return payload

    return change


MALFORMED = {
    "a-list": (lambda payload: [1, 2], "not a checkpoint of this version of mbpo (a list, not a dict)"),
    "format-only": (lambda payload: {"format": 1}, "not a checkpoint of this version of mbpo (no 'config')"),
    "no-trainer": (_drop("trainer"), "(no 'trainer')"),
    "no-offsets": (_drop("offsets"), "(no 'offsets')"),
    "resumes-not-a-list": (_set(lambda p: p.update(resumes="x")), "('resumes' is a str, not a list)"),
    "negative-offset": (
        _set(lambda p: p["offsets"].update(train=-1)),
        "('offsets' is not a map of file names to byte lengths)",
    ),
    "offsets-of-other-files": (_set(lambda p: p["offsets"].pop("train")), "records the files ['eval'], this run"),
    "bad-counts": (_set(lambda p: p.update(checkpoints="x")), "('checkpoints' is 'x')"),
    "step-not-int": (_set(lambda p: p["trainer"].update(step="ten")), "(the trainer's step is 'ten')"),
    "trainer-part-missing": (
        _set(lambda p: p["trainer"].pop("agent")),
        "its trainer state does not fit this run (KeyError: 'agent')",
    ),
    "buffer-of-another-shape": (
        _set(lambda p: p["trainer"]["real"].update(rows=torch.zeros(3, 2))),
        "its trainer state does not fit this run (ValueError: buffer state of (3, 2) rows",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_checkpoint_is_one_line_suggesting_overwrite(preempted, tmp_path, name):
    change, message = MALFORMED[name]
    out = copy_of(preempted, tmp_path / "run")
    torch.save(change(torch.load(out / "checkpoint.pt", weights_only=True)), out / "checkpoint.pt")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = runfiles.finish(out, *ARGS)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(out / "checkpoint.pt") in lines[0] and message in lines[0]
    assert "pass --overwrite to" in lines[0]
    # refused: the interrupted run's files are as they were
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"} == {
        k: v for k, v in before.items() if k != ".lock"
    }


def test_ctrl_c_with_a_checkpoint_says_a_rerun_resumes(preempted, tmp_path):
    out = copy_of(preempted, tmp_path / "run")
    past = torch.load(out / "checkpoint.pt", weights_only=True)["offsets"]["train"]
    proc = runfiles.start(out, *ARGS)
    wait_for_progress(out, proc, past)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip() == (
        "python -m mbpo train: interrupted; the run is incomplete: run the same command again to resume from its last "
        "checkpoint"
    )
