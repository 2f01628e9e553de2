"""Seeds in lockstep (`python -m mbpo train --seeds A,B,...`): one process trains several seeds as
one batched computation, and each seed's folder holds exactly what its run alone writes.

On the CPU with one thread (a run's default) a seed's run files are byte-identical whether it ran
alone or among others (clock columns aside): its generators draw the same streams, and the batched
kernels compute each seed's slice as they compute it alone. With more threads a kernel splits its
work by the size of the whole batch, so the last bits can differ (same seeds, same S stay equal). These tests hold that, from the batched update up to whole runs,
including a resume after SIGKILL, a seed that diverges and a seed already complete."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import runfiles
import torch
from runfiles import ROOT, assert_same_run, wait_for_checkpoint_past

from mbpo.config import MBPOConfig, SACConfig
from mbpo.ensemble import GaussianEnsemble
from mbpo.rollout import branched_rollouts
from mbpo.sac import SAC
from mbpo.transition import Layout

CPU = torch.device("cpu")
PENDULUM = [
    *("--env", "Pendulum-v1", "--algo", "mbpo", "--total-steps", "600", "--eval-every", "200"),
    *("--eval-episodes", "2", "--log-every", "100", "--quiet"),
]


@pytest.fixture(autouse=True)
def one_thread():
    """As a run by default: with several threads the batched kernels split their sums by the
    size of the whole batch, and a seed's last bits can depend on the others'."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def generators(seeds: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def assert_same_state(a: dict, b: dict, where: str = "") -> None:
    assert a.keys() == b.keys(), where
    for key in a:
        if isinstance(a[key], dict):
            assert_same_state(a[key], b[key], f"{where}.{key}")
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), f"{where}.{key} differs"
        else:
            assert a[key] == b[key], f"{where}.{key}"


# ---- the batched pieces, seed by seed against the same seed alone ---------------------------


@pytest.mark.parametrize("hidden", [(64, 64), (256, 256)])
def test_sac_updates_of_seeds_in_lockstep_are_each_seeds_alone(hidden):
    obs_dim, act_dim, seeds = 11, 3, [4, 5, 6]
    cfg = SACConfig(actor_hidden=hidden, critic_hidden=hidden, batch_size=64)
    low, high = -2 * np.ones(act_dim, np.float32), 2 * np.ones(act_dim, np.float32)
    group = SAC(obs_dim, low, high, cfg, CPU, generators(seeds))
    alone = [SAC(obs_dim, low, high, cfg, CPU, g) for g in generators(seeds)]
    layout, data = Layout(obs_dim, act_dim), torch.Generator().manual_seed(0)
    for _ in range(5):
        batches = torch.stack([layout.random_rows(64, data) for _ in seeds])
        stats = group.update(batches, stats=True)
        for i, agent in enumerate(alone):
            own = agent.update(batches[i], stats=True)
            for name, value in own.items():
                assert stats[name][i].item() == value.item(), name
    obs = torch.randn(len(seeds), obs_dim, generator=data).numpy()
    for deterministic in (True, False):
        acted = group.act(obs, deterministic)
        for i, agent in enumerate(alone):
            assert np.array_equal(acted[i], agent.act(obs[i], deterministic))
    for i, agent in enumerate(alone):
        assert_same_state(group.state_dict(i), agent.state_dict(), f"seed {seeds[i]}")


def test_a_seeds_state_moves_between_a_group_and_a_run_alone():
    cfg = SACConfig(actor_hidden=(16,), critic_hidden=(16,))
    low, high = -np.ones(2, np.float32), np.ones(2, np.float32)
    group = SAC(5, low, high, cfg, CPU, generators([1, 2]))
    alone = SAC(5, low, high, cfg, CPU, torch.Generator().manual_seed(9))
    alone.load_state_dict(group.state_dict(1))
    assert_same_state(alone.state_dict(), group.state_dict(1))
    other = SAC(5, low, high, cfg, CPU, generators([7, 8]))
    other.load_state_dict(alone.state_dict(), 0)
    assert_same_state(other.state_dict(0), group.state_dict(1))
    with pytest.raises(ValueError, match="name the seed"):
        group.state_dict()


def linear_data(n: int, seed: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=gen)
    y = torch.cat((x[:, :1] * 0.5, x[:, :3] @ torch.randn(3, 3, generator=gen)), dim=1)
    return x, y + noise * torch.randn(y.shape, generator=gen)


def test_model_fits_stop_per_seed_and_a_stopped_seed_is_frozen():
    """Seeds whose early stopping ends at different epochs: each seed's report and whole state
    (weights, Adam moments and step counts, bounds, normaliser, elites) are its fit alone's, so
    a seed that stopped was frozen while the others trained."""
    cfg = MBPOConfig(
        ensemble_size=3, num_elites=2, model_hidden=(16, 16), model_weight_decay=(1e-4, 2e-4, 3e-4),
        model_batch_size=32, model_patience=1, holdout_ratio=0.2,
    )  # fmt: skip
    seeds = [3, 4, 5]
    data = [linear_data(300, s, noise) for s, noise in zip(seeds, (0.5, 0.01, 0.1))]
    group = GaussianEnsemble(3, 2, cfg, CPU, generators(seeds))
    reports = group.fit(torch.stack([x for x, _ in data]), torch.stack([y for _, y in data]), generators(seeds))
    alone_reports = []
    for i, (seed, (x, y)) in enumerate(zip(seeds, data)):
        alone = GaussianEnsemble(3, 2, cfg, CPU, torch.Generator().manual_seed(seed))
        alone_reports.append(alone.fit(x, y, torch.Generator().manual_seed(seed)))
        assert reports[i] == alone_reports[-1], f"seed {seed}"
        assert_same_state(group.state_dict(i), alone.state_dict(), f"seed {seed}")
    assert len({r.epochs for r in reports}) > 1, "the seeds stopped at the same epoch: no mask was exercised"


def test_a_seed_whose_branches_all_terminated_stops_drawing():
    """Seed 0's branches all terminate at the first model step, seed 1's never: seed 0 takes one
    step and draws nothing after it (its run alone would stop there), seed 1 takes all four."""
    draws: list[list[bool]] = []

    def policy(obs, draw):
        draws.append(list(draw))
        return torch.zeros(obs.shape[0], obs.shape[1], 1)

    def model(obs, action, draw):
        return torch.zeros(obs.shape[:2]), obs + 1

    def terminated(obs, action, next_obs):
        return next_obs[:, 0] < 0  # seed 0 starts below -1

    start = torch.tensor([[[-5.0], [-6.0]], [[1.0], [2.0]]])
    results = branched_rollouts(start, 4, policy, model, terminated)
    assert [r.steps for r in results] == [1, 4]
    assert [r.rows.shape[0] for r in results] == [2, 8]
    assert [r.alive for r in results] == [0, 2]
    assert draws == [[True, True], [False, True], [False, True], [False, True]]


# ---- whole runs ---------------------------------------------------------------------------


def train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mbpo", "train", *args], capture_output=True, text=True, timeout=900, cwd=ROOT
    )


def fault(name: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "tests" / "faults.py"), name, "train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)


@pytest.fixture(scope="module")
def hopper_alone(tmp_path_factory) -> Path:
    """Seeds 3 and 4 of the short Hopper MBPO run, each alone."""
    root = tmp_path_factory.mktemp("alone")
    for seed in (3, 4):
        result = runfiles.finish(root / f"seed{seed}", *runfiles.HOPPER_SHORT, "--seed", str(seed))
        assert result.returncode == 0, result.stderr
    return root


def test_hopper_mbpo_seeds_in_lockstep_write_each_seeds_run_alone(hopper_alone, tmp_path):
    result = train(*runfiles.HOPPER_SHORT, "--seeds", "3,4", "--out", str(tmp_path / "seed{seed}"))
    assert result.returncode == 0, result.stderr
    for seed in (3, 4):
        ours, alone = tmp_path / f"seed{seed}", hopper_alone / f"seed{seed}"
        assert_same_run(ours, alone)
        meta, alone_meta = (json.loads((d / "metadata.json").read_text()) for d in (ours, alone))
        assert meta["lockstep"] == {"seeds": [3, 4], "device": "cpu"} and "lockstep" not in alone_meta
        assert meta["config"] == alone_meta["config"]
        assert meta["command"] == alone_meta["command"].replace(str(alone), str(ours))
        assert "--seeds" not in meta["command"] and f"--seed {seed}" in meta["command"]
    rollouts = (tmp_path / "seed3" / "rollouts.csv").read_text()
    assert rollouts.count("\n") > 5  # the model phase ran


def test_a_seed_killed_in_lockstep_resumes_per_seed_to_the_same_bytes(hopper_alone, tmp_path):
    """SIGKILL after both seeds checkpointed, then the same command: both complete, each
    identical to its run alone."""
    args = [
        *runfiles.HOPPER_SHORT,
        "--seeds",
        "3,4",
        "--checkpoint-interval",
        "0.5",
        "--out",
        str(tmp_path / "seed{seed}"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mbpo", "train", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        step = wait_for_checkpoint_past(tmp_path / "seed4", 500, proc)
        wait_for_checkpoint_past(tmp_path / "seed3", step, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert not (tmp_path / "seed3" / "metadata.json").exists()
    result = train(*args)
    assert result.returncode == 0, result.stderr
    for seed in (3, 4):
        assert_same_run(tmp_path / f"seed{seed}", hopper_alone / f"seed{seed}")
        meta = json.loads((tmp_path / f"seed{seed}" / "metadata.json").read_text())
        assert len(meta["resumes"]) == 1


def test_same_seeds_in_lockstep_twice_give_the_same_bytes(tmp_path):
    for name in ("a", "b"):
        result = train(*PENDULUM, "--seeds", "0,1", "--out", str(tmp_path / name / "seed{seed}"))
        assert result.returncode == 0, result.stderr
    for seed in (0, 1):
        assert_same_run(tmp_path / "a" / f"seed{seed}", tmp_path / "b" / f"seed{seed}")


def test_a_diverging_seed_stops_alone_and_the_others_finish(tmp_path):
    out = str(tmp_path / "group" / "seed{seed}")
    result = fault("seed_1_diverges", *PENDULUM, "--seeds", "0,1,2", "--out", out)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "seed 1:" in errors[0] and "diverged" in errors[0], result.stderr
    assert not (tmp_path / "group" / "seed1" / "metadata.json").exists()
    for seed in (0, 2):
        alone = tmp_path / f"alone{seed}"
        assert train(*PENDULUM, "--seed", str(seed), "--out", str(alone)).returncode == 0
        assert_same_run(tmp_path / "group" / f"seed{seed}", alone)
    # the failed seed's files stop where its run alone would have stopped: the first evaluation
    alone = fault("seed_1_diverges", *PENDULUM, "--seed", "1", "--out", str(tmp_path / "alone1"))
    assert alone.returncode == 1
    for name in ("eval.csv.part", "train.csv.part", "model.csv.part", "rollouts.csv.part"):
        assert (tmp_path / "group" / "seed1" / name).read_text().count("\n") == (
            tmp_path / "alone1" / name
        ).read_text().count("\n"), name


def test_a_complete_seed_is_never_trained_again(tmp_path):
    first = train(*PENDULUM, "--seed", "0", "--out", str(tmp_path / "seed0"))
    assert first.returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "seed0").iterdir() if p.name != ".lock"}
    out = str(tmp_path / "seed{seed}")
    refused = train(*PENDULUM, "--seeds", "0,1", "--out", out)
    assert refused.returncode == 2 and "already holds a complete run" in refused.stderr
    assert not (tmp_path / "seed1").exists() or not list((tmp_path / "seed1").glob("*.csv*"))
    result = train(*PENDULUM, "--seeds", "0,1", "--skip-complete", "--out", out)
    assert result.returncode == 0, result.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "seed0").iterdir() if p.name != ".lock"} == before
    assert (tmp_path / "seed1" / "metadata.json").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0,1", "--seed", "2", "--out", "x/seed{seed}"], "--seed and --seeds both given"),
        (["--seeds", "0,1", "--out", "x/run"], "--out must hold {seed} with --seeds"),
        (["--seeds", "0,0", "--out", "x/seed{seed}"], "seed 0 is listed twice"),
        (["--seeds", "0,a", "--out", "x/seed{seed}"], "expected comma-separated integers"),
        (["--seeds", "0,-1", "--out", "x/seed{seed}"], "seed must be in"),
        (["--seeds", "0,1", "--algo", "sb3_sac", "--out", "x/seed{seed}"], "sb3_sac trains one seed per process"),
    ],
)
def test_bad_seed_lists_are_one_line(args, message, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mbpo", "train", "--env", "Pendulum-v1", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "x").exists()
