"""The training loop of one run: act, step the env, store, update, evaluate.

The loop streams its rows to a `RunWriter` and returns a summary for the metadata; it never
formats files itself.
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
from mbpo.envs import make_env
from mbpo.progress import Progress
from mbpo.record import RunWriter
from mbpo.sac import SAC
from mbpo.seeding import Generators

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


def train_sac(
    cfg: TrainConfig, device: torch.device, gens: Generators, writer: RunWriter, progress: Progress
) -> dict:
    """Train SAC for `cfg.run.total_steps` env steps; returns a summary for the metadata."""
    run, sac_cfg = cfg.run, cfg.sac
    env, eval_env = make_env(run.env), make_env(run.env)
    obs_dim = env.observation_space.shape[0]
    low = env.action_space.low.astype(np.float32)
    high = env.action_space.high.astype(np.float32)
    agent = SAC(obs_dim, low, high, sac_cfg, device, gens.torch)
    buffer = ReplayBuffer(min(sac_cfg.buffer_size, run.total_steps), obs_dim, len(low), device)

    start = time.perf_counter()
    seconds = {"env": 0.0, "act": 0.0, "update": 0.0, "eval": 0.0}

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
        buffer.add(obs, action, float(reward), next_obs, terminated)
        episode_return += float(reward)
        if terminated or truncated:
            finished_returns.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()
        else:
            obs = next_obs
        t2 = time.perf_counter()
        log_now = step % run.log_every == 0
        if step > sac_cfg.random_steps:
            for i in range(sac_cfg.updates_per_step):
                want = log_now and i == sac_cfg.updates_per_step - 1
                out = agent.update(buffer.sample(sac_cfg.batch_size, gens.torch), stats=want)
                stats = out if want else stats
        t3 = time.perf_counter()
        seconds["act"] += t1 - t0
        seconds["env"] += t2 - t1
        seconds["update"] += t3 - t2

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
            writer.train_row(row)
            finished_returns = []
        progress.update(step)
    env.close()
    eval_env.close()
    wall = time.perf_counter() - start
    train_seconds = wall - seconds["eval"]
    return {
        "wall_seconds": wall,
        "env_steps_per_second": run.total_steps / train_seconds,
        "seconds_per_env_step": train_seconds / run.total_steps,
        "seconds": seconds,
        "updates": agent.updates,
        "final_eval_return": last_eval,
        "target_entropy": agent.target_entropy,
    }
