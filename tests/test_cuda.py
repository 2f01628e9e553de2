"""The CUDA path: same code, data on the device. Skipped where torch sees no GPU."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import runfiles
import torch

from mbpo.config import SACConfig
from mbpo.sac import SAC

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def test_update_on_cuda_matches_cpu():
    cfg = SACConfig(actor_hidden=(32,), critic_hidden=(32,), batch_size=16)
    low, high = -np.ones(2, np.float32), np.ones(2, np.float32)
    cpu = SAC(3, low, high, cfg, torch.device("cpu"), torch.Generator().manual_seed(0))
    gpu = SAC(3, low, high, cfg, torch.device("cuda"), torch.Generator(device="cuda").manual_seed(0))
    for a, b in ((cpu.actor, gpu.actor), (cpu.critic, gpu.critic), (cpu.critic_target, gpu.critic_target)):
        b.params.copy_(a.params)
    batch = cpu.layout.random_rows(16, torch.Generator().manual_seed(1))
    # the same policy noise on both devices: drawn on the CPU, replayed through each update (one
    # actor pass per update, over the next and the current observations: 2 x 16 rows)
    noise = [torch.randn(32, 2, generator=torch.Generator().manual_seed(2))]
    for agent in (cpu, gpu):
        draws = iter(noise)
        agent._noise = lambda shape, d=draws, dev=agent.device: next(d).to(dev)
        agent.update(batch.to(agent.device))
    for a, b in ((cpu.actor, gpu.actor), (cpu.critic, gpu.critic), (cpu.critic_target, gpu.critic_target)):
        torch.testing.assert_close(b.params.cpu(), a.params, atol=1e-4, rtol=1e-4)
    assert gpu.critic.params.device.type == "cuda"


def test_cuda_run_writes_a_complete_record(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mbpo",
            "train",
            "--device",
            "cuda",
            "--preset",
            "seed",
            "--total-steps",
            "400",
            "--random-steps",
            "200",
            "--eval-every",
            "200",
            "--eval-episodes",
            "1",
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["device"].startswith("cuda") and meta["device_name"]


# a short MBPO run on a MuJoCo env: model fits, rollouts, mixed batches, terminations
IP_TINY = [
    "--device",
    "cuda",
    "--algo",
    "mbpo",
    "--preset",
    "paper",
    "--env",
    "InvertedPendulum-v5",
    "--seed",
    "1",
    "--total-steps",
    "1200",
    "--random-steps",
    "300",
    "--model-train-freq",
    "150",
    "--rollout-batch-size",
    "2000",
    "--updates-per-step",
    "3",
    "--eval-every",
    "300",
    "--eval-episodes",
    "2",
    "--model-max-epochs",
    "5",
    "--log-every",
    "100",
    "--quiet",
]


def test_cuda_runs_repeat_and_resume_exactly(tmp_path):
    """Same seed twice on CUDA, and once killed (SIGKILL) and resumed: the same run files."""
    pytest.importorskip("mujoco")
    first, again, killed = tmp_path / "first", tmp_path / "again", tmp_path / "killed"
    for out in (first, again):
        result = runfiles.finish(out, *IP_TINY, "--checkpoint-interval", "0")
        assert result.returncode == 0, result.stderr
    runfiles.assert_same_run(first, again)
    proc = runfiles.start(killed, *IP_TINY, "--checkpoint-interval", "0.3")
    runfiles.wait_for_checkpoint_past(killed, 500, proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    result = runfiles.finish(killed, *IP_TINY, "--checkpoint-interval", "0.3")
    assert result.returncode == 0, result.stderr
    runfiles.assert_same_run(first, killed)


def test_cuda_seeds_in_lockstep_repeat_and_say_how_far_they_match_alone(tmp_path):
    """Seeds 1 and 2 in lockstep on CUDA, twice: the same run files. Against each seed alone the
    files are compared and the outcome printed (cuBLAS may pick other kernels for another number
    of seeds, so equality is measured here, not promised)."""
    pytest.importorskip("mujoco")
    args = [a for a in IP_TINY if a not in ("--seed", "1")]
    for name in ("a", "b"):
        result = subprocess.run(
            [sys.executable, "-m", "mbpo", "train", *args, "--seeds", "1,2", "--out", str(tmp_path / name / "seed{seed}")],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    for seed in (1, 2):
        runfiles.assert_same_run(tmp_path / "a" / f"seed{seed}", tmp_path / "b" / f"seed{seed}")
    alone = tmp_path / "alone"
    assert runfiles.finish(alone, *args, "--seed", "1").returncode == 0
    try:
        runfiles.assert_same_run(alone, tmp_path / "a" / "seed1")
        print("CUDA: seed 1 alone and in lockstep: identical run files")
    except AssertionError as exc:
        print(f"CUDA: seed 1 alone and in lockstep differ ({exc})")
