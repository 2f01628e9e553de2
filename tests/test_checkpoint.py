"""Checkpoints and resumption: a run killed with SIGKILL (or stopped by SIGTERM) and launched
again writes the same bytes as one never interrupted, clock columns aside; and the run folder has
one owner at a time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import runfiles
from runfiles import assert_same_run, checkpoint_step, wait_for_checkpoint_past

pytest.importorskip("mujoco", reason="MuJoCo envs need gymnasium[mujoco]")

HOPPER = [*runfiles.HOPPER_SHORT, "--seed", "3"]


def start(out: Path, *extra: str) -> subprocess.Popen:
    return runfiles.start(out, *HOPPER, *extra)


def finish(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return runfiles.finish(out, *HOPPER, *extra)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "whole"
    result = finish(out, "--checkpoint-interval", "0")
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_writes_the_same_bytes(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    proc = start(out, "--checkpoint-interval", "0.5")
    killed_after = wait_for_checkpoint_past(out, 500, proc)
    time.sleep(0.7)  # let it run past the checkpoint, so rows after it must be dropped
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metadata.json").exists() and (out / "checkpoint.pt").exists()
    result = finish(out, "--checkpoint-interval", "0.5")
    assert result.returncode == 0, result.stderr
    assert_same_run(uninterrupted, out)
    meta = json.loads((out / "metadata.json").read_text())
    assert len(meta["resumes"]) == 1 and meta["resumes"][0]["env_step"] >= killed_after
    assert meta["checkpoints"]["saves"] >= 1
    assert not (out / "checkpoint.pt").exists(), "a complete run keeps no checkpoint"
    # complete now: launching it again is refused, as for any complete run
    again = finish(out)
    assert again.returncode == 2 and "already holds a complete run" in again.stderr


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_stops_then_resumes(uninterrupted, tmp_path):
    out = tmp_path / "preempted"
    proc = start(out, "--checkpoint-interval", "0")  # no periodic checkpoints: SIGTERM's alone
    deadline = time.monotonic() + 120
    while not (out / "eval.csv.part").exists() or (out / "eval.csv.part").stat().st_size < 200:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "run the same command again to resume" in stderr and len(stderr.strip().splitlines()) == 1
    step = checkpoint_step(out)
    assert step > 0
    result = finish(out, "--checkpoint-interval", "0")
    assert result.returncode == 0, result.stderr
    assert_same_run(uninterrupted, out)


def test_a_second_writer_is_refused_while_the_first_lives(tmp_path):
    out = tmp_path / "busy"
    proc = start(out)
    try:
        deadline = time.monotonic() + 120
        while not (out / "eval.csv.part").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        second = finish(out)
        assert second.returncode == 2
        assert f"is being written by pid {proc.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the holder died (SIGKILL): its lock died with it, so the folder is usable again
    assert "is being written" not in finish(out, "--total-steps", "5", "--overwrite").stderr


def test_resume_with_another_config_is_refused_naming_the_field(tmp_path):
    out = tmp_path / "changed"
    proc = start(out, "--checkpoint-interval", "0.2")
    wait_for_checkpoint_past(out, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    result = finish(out, "--batch-size", "128")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "another config (sac.batch_size: 256 in the checkpoint, 128 now)" in result.stderr
    assert "--overwrite" in result.stderr


def test_a_corrupt_checkpoint_is_one_line_naming_it(tmp_path):
    out = tmp_path / "corrupt"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    result = finish(out)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"{out / 'checkpoint.pt'}: unreadable checkpoint" in result.stderr and "--overwrite" in result.stderr


def test_checkpoint_holds_every_part_of_the_state(tmp_path):
    """The payload names the pieces the issue lists; a missing one would make resumption inexact."""
    import torch

    out = tmp_path / "state"
    proc = start(out, "--checkpoint-interval", "0.2")
    wait_for_checkpoint_past(out, 400, proc)  # past the first model fit
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    payload = torch.load(out / "checkpoint.pt", weights_only=True)
    trainer = payload["trainer"]
    assert set(trainer["agent"]) >= {
        "actor",
        "critic",
        "critic_target",
        "log_alpha",
        "actor_opt",
        "critic_opt",
        "alpha_opt",
    }
    assert set(trainer["model"]) >= {"params", "bounds", "opt", "bounds_opt", "input_mean", "input_std", "elites"}
    assert {"real", "model_buffer", "torch_rng", "numpy_rng", "global_rng", "seconds", "wall"} <= set(trainer)
    assert set(payload["offsets"]) == {"eval", "train", "model", "rollouts"}
    # only the filled rows are saved
    assert trainer["real"]["rows"].shape[0] == trainer["real"]["size"] == trainer["step"]
    assert os.path.getsize(out / "checkpoint.pt") < 50e6
