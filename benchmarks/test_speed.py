"""Speed of the hot paths, each next to its naive or seed counterpart (see conftest.py).

    pytest benchmarks/ --benchmark-only                   # run and compare in one table
    pytest benchmarks/ --benchmark-only --benchmark-autosave
    pytest benchmarks/ --benchmark-only --benchmark-compare --benchmark-compare-fail=median:10%

Groups (the unit of the printed ratios is one call unless stated):
- sac-update-paper: one SAC update at the paper's sizes (HalfCheetah dims, batch 256, 2 x 256)
  against a conventional autograd/nn.Module/torch.optim update, eager (`autograd`) and under
  `torch.compile` (`compiled`: Inductor, compiled once before timing, which takes one to two
  minutes and needs a C++ compiler), so the choice of hand-written backward passes stays measured;
- sac-update-seed: one update at the seed's sizes (Pendulum, batch 64, 1 x 128) against the
  seed's SAC.update;
- ensemble-step-seed / ensemble-step-paper: one model training step (forward, backward, Adam) of
  the dynamics ensemble, at the seed's shapes against the seed's EnsembleModel, and at the
  paper's (7 x 4 x 200, batch 256, HalfCheetah dims);
- rollouts-seed: one rollout phase at the seed's settings (1000 one-step branches) against the
  seed's per-sample MBPO.rollout_model; rollouts-paper: 100k branches of length 5;
- env-step-sac / env-step-mbpo: whole training runs at the seed's settings on Pendulum-v1
  (exploration, updates, model fits and rollouts, run files), unit = one env step, against the
  seed's scripts run in the same process for the same number of env steps.
"""

from __future__ import annotations

import runpy
import sys

import numpy as np
import pytest
import torch
from sac_update_flops import naive_update_fn

from mbpo import cli
from mbpo.config import PRESETS, MBPOConfig, SACConfig
from mbpo.ensemble import GaussianEnsemble
from mbpo.rollout import branched_rollout
from mbpo.sac import SAC
from mbpo.termination import never

CPU = torch.device("cpu")
SEED_SAC = SACConfig(**PRESETS["sac"]["seed"]["sac"])
SEED_MBPO = MBPOConfig(**PRESETS["mbpo"]["seed"]["mbpo"])


def our_sac(obs: int, act: int, cfg: SACConfig) -> tuple[SAC, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    agent = SAC(obs, -np.ones(act, np.float32), np.ones(act, np.float32), cfg, CPU, gen)
    rows = agent.layout.random_rows(cfg.batch_size, gen)
    return agent, rows


# ---- SAC update ------------------------------------------------------------------------------


@pytest.mark.benchmark(group="sac-update-paper")
def test_sac_update_paper_ours(benchmark, record):
    agent, rows = our_sac(17, 6, SACConfig())
    benchmark(agent.update, rows)
    record("ours")


@pytest.mark.benchmark(group="sac-update-paper")
def test_sac_update_paper_autograd(benchmark, record):
    benchmark(naive_update_fn(17, 6, [256, 256], 256))
    record("autograd")


@pytest.mark.benchmark(group="sac-update-paper")
def test_sac_update_paper_compiled(benchmark, record):
    update = torch.compile(naive_update_fn(17, 6, [256, 256], 256))
    update()  # compiles (graph breaks at backward and the optimiser steps are compiled separately)
    benchmark(update)
    record("compiled")


@pytest.mark.benchmark(group="sac-update-seed")
def test_sac_update_seed_ours(benchmark, record):
    agent, rows = our_sac(3, 1, SEED_SAC)
    benchmark(agent.update, rows)
    record("ours")


@pytest.mark.benchmark(group="sac-update-seed")
def test_sac_update_seed_seed(benchmark, record, seed_module):
    torch.manual_seed(0)
    agent = seed_module.SAC(3, 128, 1, 2.0, 5e-4, 5e-3, 1e-3, -1, 0.005, 0.98)
    rng = np.random.default_rng(0)
    batch = {  # the seed's update takes numpy arrays and tuples, as its replay buffer returns
        "states": rng.normal(size=(64, 3)),
        "actions": tuple(rng.uniform(-2, 2, size=(64, 1))),
        "rewards": tuple(rng.normal(size=64)),
        "next_states": rng.normal(size=(64, 3)),
        "dones": tuple(np.zeros(64)),
    }
    benchmark(agent.update, batch)
    record("seed")


# ---- ensemble training step ------------------------------------------------------------------


def our_ensemble_step(obs: int, act: int, cfg: MBPOConfig):
    gen = torch.Generator().manual_seed(0)
    model = GaussianEnsemble(obs, act, cfg, CPU, gen)
    x = torch.randn(cfg.ensemble_size, cfg.model_batch_size, obs + act, generator=gen)
    y = torch.randn(cfg.ensemble_size, cfg.model_batch_size, 1 + obs, generator=gen)
    return lambda: model.step(x, y)


@pytest.mark.benchmark(group="ensemble-step-seed")
def test_ensemble_step_seed_ours(benchmark, record):
    benchmark(our_ensemble_step(3, 1, SEED_MBPO))
    record("ours")


@pytest.mark.benchmark(group="ensemble-step-seed")
def test_ensemble_step_seed_seed(benchmark, record, seed_module):
    torch.manual_seed(0)
    model = seed_module.EnsembleModel(3, 1, 0.01, ensemble_size=5)
    x, y = torch.randn(5, 64, 4), torch.randn(5, 64, 4)

    def step():  # one minibatch step of the seed's EnsembleDynamicsModel.train
        mean, logvar = model(x, return_log_var=True)
        loss, _ = model.loss(mean, logvar, y)
        model.train(loss)

    benchmark(step)
    record("seed")


@pytest.mark.benchmark(group="ensemble-step-paper")
def test_ensemble_step_paper_ours(benchmark, record):
    benchmark(our_ensemble_step(17, 6, MBPOConfig()))
    record("ours")


# ---- rollouts --------------------------------------------------------------------------------


def our_rollout(obs: int, act: int, cfg: MBPOConfig, sac_cfg: SACConfig, starts: int, length: int):
    gen = torch.Generator().manual_seed(0)
    model = GaussianEnsemble(obs, act, cfg, CPU, gen)
    agent = SAC(obs, -np.ones(act, np.float32), np.ones(act, np.float32), sac_cfg, CPU, gen)
    start = torch.randn(starts, obs, generator=gen)
    return lambda: branched_rollout(
        start, length, lambda o: agent.sample(o, "rollout").action, lambda o, a: model.sample_next(o, a, gen), never
    )


@pytest.mark.benchmark(group="rollouts-seed")
def test_rollouts_seed_ours(benchmark, record):
    benchmark(our_rollout(3, 1, SEED_MBPO, SEED_SAC, 1000, 1))
    record("ours")


@pytest.mark.benchmark(group="rollouts-seed")
def test_rollouts_seed_seed(benchmark, record, seed_module):
    torch.manual_seed(0)
    np.random.seed(0)
    s = seed_module
    agent = s.SAC(3, 128, 1, 2.0, 5e-4, 5e-3, 1e-3, -1, 0.005, 0.98)
    model = s.EnsembleDynamicsModel(3, 1, 0.01)
    env_pool, model_pool = s.ReplayBuffer(10000), s.ReplayBuffer(1000)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        env_pool.add(rng.normal(size=3), [rng.uniform(-2, 2)], rng.normal(), rng.normal(size=3), False)
    mbpo = s.MBPO(None, agent, s.FakeEnv(model), env_pool, model_pool, 1, 1000, 0.5, 1)
    benchmark.pedantic(mbpo.rollout_model, rounds=5, iterations=1, warmup_rounds=1)
    record("seed")


@pytest.mark.benchmark(group="rollouts-paper")
def test_rollouts_paper_ours(benchmark, record):
    benchmark.pedantic(
        our_rollout(17, 6, MBPOConfig(), SACConfig(), 100_000, 5), rounds=3, iterations=1, warmup_rounds=1
    )
    record("ours", per=1.0)
    benchmark.extra_info["model_transitions_per_second"] = 5 * 100_000 / benchmark.stats.stats.median


# ---- whole env steps -------------------------------------------------------------------------

ENV_STEPS = {"sac": 2000, "mbpo": 600}  # 10 and 3 Pendulum episodes
ROUNDS = {"sac": 3, "mbpo": 1}
SEED_RUNS = {  # the seed's scripts and their arguments for the same env steps
    "sac": ("seed_sac.py", ["--seed", "0", "--episodes", str(ENV_STEPS["sac"] // 200), "--utd", "1"]),
    "mbpo": ("seed_mbpo.py", ["--seed", "0", "--max_episodes", str(ENV_STEPS["mbpo"] // 200)]),
}


def run_ours(algo: str, out, steps: int) -> None:
    args = [
        "train",
        "--algo",
        algo,
        "--preset",
        "seed",
        "--seed",
        "0",
        "--total-steps",
        str(steps),
        "--eval-every",
        str(steps),
        "--eval-episodes",
        "1",
        "--quiet",
        "--overwrite",
        "--out",
        str(out),
    ]
    if algo == "sac":
        args += ["--updates-per-step", "1"]
    assert cli.main(args) == 0


def run_seed(script: str, argv: list[str], monkeypatch, tmp_path) -> None:
    from conftest import SEED_DIR

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [script, *argv])
    runpy.run_path(str(SEED_DIR / script), run_name="__main__")


@pytest.mark.parametrize("algo", ["sac", "mbpo"])
def test_env_step_ours(benchmark, record, tmp_path, algo):
    benchmark.group = f"env-step-{algo}"
    benchmark.pedantic(run_ours, args=(algo, tmp_path / "run", ENV_STEPS[algo]), rounds=ROUNDS[algo], iterations=1)
    record("ours", per=ENV_STEPS[algo])


@pytest.mark.parametrize("algo", ["sac", "mbpo"])
def test_env_step_seed(benchmark, record, seed_module, monkeypatch, tmp_path, algo):
    benchmark.group = f"env-step-{algo}"
    script, argv = SEED_RUNS[algo]
    benchmark.pedantic(run_seed, args=(script, argv, monkeypatch, tmp_path), rounds=ROUNDS[algo], iterations=1)
    record("seed", per=ENV_STEPS[algo])
