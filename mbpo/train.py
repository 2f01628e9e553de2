"""The training loop of one run: act, step the env, store, (MBPO: fit the model and roll out),
update the policy, evaluate.

The loop streams its rows to a `RunWriter` and returns a summary for the metadata; it never
formats files itself. SAC and MBPO share it: MBPO is SAC plus a model phase every
`model_train_freq` steps and policy batches that mix real and model data.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import gymnasium as gym
import numpy as np
import torch

from mbpo.buffer import ReplayBuffer
from mbpo.config import TrainConfig
from mbpo.ensemble import GaussianEnsemble
from mbpo.envs import make_env
from mbpo.progress import Progress
from mbpo.record import RunWriter
from mbpo.rollout import branched_rollout
from mbpo.sac import SAC
from mbpo.seeding import Generators
from mbpo.termination import termination_fn

TRAIN_COLUMNS = (
    "env_step",
    "wall_seconds",
    "updates",
    "critic_loss",
    "actor_loss",
    "alpha",
    "q_mean",
    "entropy",
    "behaviour_return",
    "behaviour_episodes",
)
ROLLOUT_COLUMNS = (
    "env_step",
    "rollout_length",
    "steps",
    "started",
    "kept",
    "alive_at_end",
    "model_buffer_size",
    "seconds",
)
PHASES = ("env", "act", "update", "model", "rollout", "eval")


def model_columns(ensemble_size: int) -> tuple[str, ...]:
    return (
        "env_step",
        "epochs",
        "train_size",
        "holdout_size",
        "train_loss",
        *(f"holdout_mse_{i}" for i in range(ensemble_size)),
        "elites",
        "seconds",
    )


def streams(cfg: TrainConfig) -> dict[str, tuple[str, ...]]:
    """The CSV files a run writes besides eval.csv, with their columns."""
    out = {"train": TRAIN_COLUMNS}
    if cfg.run.algo == "mbpo":
        out["model"] = model_columns(cfg.mbpo.ensemble_size)
        out["rollouts"] = ROLLOUT_COLUMNS
    return out


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray], env: gym.Env, episodes: int, seed: int
) -> list[tuple[float, int]]:
    """Run `episodes` episodes, episode k reset with `seed + k` -> [(return, length)].

    Every evaluation sees the same start states, so curves compare policies, not luck.
    """
    results = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += float(reward)
            length += 1
            done = terminated or truncated
        results.append((total, length))
    return results


class ModelPhase:
    """MBPO's model side: the ensemble, the model buffer, and one fit-then-rollout phase."""

    def __init__(self, cfg: TrainConfig, obs_dim: int, act_dim: int, device: torch.device, gens: Generators) -> None:
        self.cfg, self.obs_dim, self.gens = cfg.mbpo, obs_dim, gens
        self.model = GaussianEnsemble(obs_dim, act_dim, cfg.mbpo, device, gens.torch)
        self.buffer = ReplayBuffer(cfg.mbpo.model_buffer_size(), obs_dim, act_dim, device)
        self.terminated = termination_fn(cfg.run.env)
        self.first_step = max(cfg.sac.random_steps, 2)  # the model needs data to fit and hold out

    def due(self, step: int) -> bool:
        return step >= self.first_step and (step - self.first_step) % self.cfg.model_train_freq == 0

    def fit(self, real: ReplayBuffer, step: int, writer: RunWriter) -> None:
        t = time.perf_counter()
        o, a = self.obs_dim, real.act_dim
        data = real.data[: real.size]
        inputs = data[:, : o + a]
        targets = torch.cat((data[:, o + a : o + a + 1], data[:, o + a + 1 : 2 * o + a + 1] - data[:, :o]), dim=1)
        report = self.model.train(inputs, targets, self.gens.torch)
        row = {
            "env_step": step,
            "epochs": report.epochs,
            "train_size": report.train_size,
            "holdout_size": report.holdout_size,
            "train_loss": report.train_loss,
            "elites": ";".join(map(str, report.elites)),
            "seconds": time.perf_counter() - t,
        }
        row.update({f"holdout_mse_{i}": v for i, v in enumerate(report.holdout_mse)})
        writer.row("model", row)

    def rollout(self, real: ReplayBuffer, agent: SAC, step: int, writer: RunWriter) -> None:
        t = time.perf_counter()
        length = self.cfg.rollout_length_at(step)
        start = real.sample(self.cfg.rollout_batch_size, self.gens.torch)[:, : self.obs_dim]
        result = branched_rollout(
            start,
            length,
            policy=lambda obs: agent.sample(obs, "rollout").action,
            model=lambda obs, act: self.model.sample_next(obs, act, self.gens.torch),
            terminated=self.terminated,
        )
        self.buffer.add_batch(result.rows)
        writer.row(
            "rollouts",
            {
                "env_step": step,
                "rollout_length": length,
                "steps": result.steps,
                "started": result.started,
                "kept": result.rows.shape[0],
                "alive_at_end": result.alive,
                "model_buffer_size": self.buffer.size,
                "seconds": time.perf_counter() - t,
            },
        )

    def policy_batch(self, real: ReplayBuffer, batch_size: int, real_ratio: float) -> torch.Tensor:
        """A policy batch: `real_ratio` of it from real data, the rest from model data."""
        if self.buffer.size == 0:
            return real.sample(batch_size, self.gens.torch)
        n_real = int(batch_size * real_ratio)
        model_rows = self.buffer.sample(batch_size - n_real, self.gens.torch)
        if n_real == 0:
            return model_rows
        return torch.cat((real.sample(n_real, self.gens.torch), model_rows), dim=0)


def train(cfg: TrainConfig, device: torch.device, gens: Generators, writer: RunWriter, progress: Progress) -> dict:
    """Train for `cfg.run.total_steps` env steps; returns a summary for the metadata."""
    run, sac_cfg = cfg.run, cfg.sac
    env, eval_env = make_env(run.env), make_env(run.env)
    obs_dim = env.observation_space.shape[0]
    low = env.action_space.low.astype(np.float32)
    high = env.action_space.high.astype(np.float32)
    agent = SAC(obs_dim, low, high, sac_cfg, device, gens.torch)
    real = ReplayBuffer(min(sac_cfg.buffer_size, run.total_steps), obs_dim, len(low), device)
    mbpo = ModelPhase(cfg, obs_dim, len(low), device, gens) if run.algo == "mbpo" else None

    start = time.perf_counter()
    seconds = dict.fromkeys(PHASES, 0.0)

    def run_eval(step: int) -> float:
        t = time.perf_counter()
        results = evaluate(lambda o: agent.act(o, deterministic=True), eval_env, run.eval_episodes, gens.eval_seed)
        wall = time.perf_counter() - start
        writer.eval_rows((step, k, ret, length, wall) for k, (ret, length) in enumerate(results))
        seconds["eval"] += time.perf_counter() - t
        return float(np.mean([r for r, _ in results]))

    last_eval = run_eval(0)
    progress.update(0, eval_return=f"{last_eval:.1f}")
    obs, _ = env.reset(seed=gens.env_seed)
    episode_return, finished_returns = 0.0, []
    stats = None
    for step in range(1, run.total_steps + 1):
        t0 = time.perf_counter()
        if step <= sac_cfg.random_steps:
            action = gens.numpy.uniform(low, high).astype(np.float32)
        else:
            action = agent.act(obs, deterministic=False)
        t1 = time.perf_counter()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        # a time-limit truncation is not terminal: store terminated only, so the critic bootstraps
        real.add(obs, action, float(reward), next_obs, terminated)
        episode_return += float(reward)
        if terminated or truncated:
            finished_returns.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()
        else:
            obs = next_obs
        t2 = time.perf_counter()
        seconds["act"] += t1 - t0
        seconds["env"] += t2 - t1

        if mbpo is not None and mbpo.due(step):
            t = time.perf_counter()
            mbpo.fit(real, step, writer)
            seconds["model"] += time.perf_counter() - t
            t = time.perf_counter()
            mbpo.rollout(real, agent, step, writer)
            seconds["rollout"] += time.perf_counter() - t

        t3 = time.perf_counter()
        log_now = step % run.log_every == 0
        if step > sac_cfg.random_steps:
            for i in range(sac_cfg.updates_per_step):
                if mbpo is None:
                    batch = real.sample(sac_cfg.batch_size, gens.torch)
                else:
                    batch = mbpo.policy_batch(real, sac_cfg.batch_size, cfg.mbpo.real_ratio)
                want = log_now and i == sac_cfg.updates_per_step - 1
                out = agent.update(batch, stats=want)
                stats = out if want else stats
        seconds["update"] += time.perf_counter() - t3

        if step % run.eval_every == 0 or step == run.total_steps:
            last_eval = run_eval(step)
            progress.update(step, eval_return=f"{last_eval:.1f}")
        if log_now:
            row = {
                "env_step": step,
                "wall_seconds": time.perf_counter() - start,
                "updates": agent.updates,
                "behaviour_return": float(np.mean(finished_returns)) if finished_returns else math.nan,
                "behaviour_episodes": len(finished_returns),
            }
            if stats is not None:
                row.update({k: float(v) for k, v in stats.items()})
                stats = None
            writer.row("train", row)
            finished_returns = []
        progress.update(step)
    env.close()
    eval_env.close()
    wall = time.perf_counter() - start
    train_seconds = wall - seconds["eval"]
    summary = {
        "wall_seconds": wall,
        "env_steps_per_second": run.total_steps / train_seconds,
        "seconds_per_env_step": train_seconds / run.total_steps,
        "seconds": seconds if mbpo is not None else {k: seconds[k] for k in ("env", "act", "update", "eval")},
        "updates": agent.updates,
        "final_eval_return": last_eval,
        "target_entropy": agent.target_entropy,
    }
    if mbpo is not None:
        summary["model_buffer_capacity"] = mbpo.buffer.capacity
    return summary
