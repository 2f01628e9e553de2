"""Stable-Baselines3's SAC run with this harness's SAC config and evaluation protocol: the
independent baseline the cross-check compares this project's SAC with (`--algo sb3_sac`).

Installed with the `crosscheck` extra (`pip install -e '.[crosscheck]'`, a pinned SB3). The run
is `stable_baselines3.SAC` as published, configured from the same resolved `SACConfig` as
`--algo sac`:

| this harness (`SACConfig`) | SB3 `SAC(...)` |
|---|---|
| `actor_hidden`, `critic_hidden` (ReLU) | `policy_kwargs=dict(net_arch=dict(pi=..., qf=...))` (ReLU is its default) |
| `actor_lr` = `critic_lr` = `alpha_lr` | `learning_rate` (SB3 has one rate; different rates are refused) |
| `batch_size`, `gamma`, `tau`, `buffer_size` | the same names |
| `init_alpha`, `learn_alpha` | `ent_coef="auto_<init>"` (learned) or `<init>` (fixed) |
| `target_entropy` (None: -dim(A), of the squashed action) | `target_entropy` ("auto" is -dim(A)) |
| `random_steps` | `learning_starts` (uniform random actions until then, no update) |
| `updates_per_step` | `train_freq=1`, `gradient_steps=updates_per_step` |

and this harness's protocol: the same training env (`mbpo.envs.make_env`, time limits bootstrap
through: SB3's replay buffer handles `TimeLimit.truncated`), the same evaluation schedule (step 0,
every `eval_every` env steps after that step's updates, and the last step), the same episodes and
reset seeds (`mbpo.train.evaluate` on its own env, deterministic actions), the same run files.
SB3 keeps its own known differences (log-std clamped to [-20, 2], its own initialisation and
update order); `docs` lists them. Seeding: `SAC(seed=run seed)` seeds SB3's generators, the
training env's first reset and its action space; the same seed, device and thread count give the
same run files.

SB3 has no resumable state in this harness: an interrupted `sb3_sac` run starts over when the same
command runs again (these runs take minutes), and SIGTERM stops it at the next env-step chunk.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from mbpo.config import SB3_MISSING, TrainConfig
from mbpo.envs import make_env
from mbpo.progress import Progress
from mbpo.record import RunWriter
from mbpo.seeding import Generators
from mbpo.train import record_evaluation
from mbpo.usage import UsageError

SB3_VERSION = "2.9.2"  # the crosscheck extra's pin (pyproject.toml, constraints.txt)


class Stopped(Exception):
    """SIGTERM reached an SB3 run: it keeps no checkpoint, so the same command starts it over."""


def _import_sb3():
    try:
        import stable_baselines3
    except ImportError:
        raise UsageError(SB3_MISSING) from None
    return stable_baselines3


def sb3_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The keyword arguments of `stable_baselines3.SAC` for this run's SAC config (module doc)."""
    s = cfg.sac
    rates = {s.actor_lr, s.critic_lr, s.alpha_lr}
    if len(rates) != 1:
        raise UsageError(
            f"--algo sb3_sac: SB3 has one learning rate, this config has actor {s.actor_lr}, critic {s.critic_lr}, "
            f"alpha {s.alpha_lr}"
        )
    return {
        "learning_rate": s.actor_lr,
        "buffer_size": min(s.buffer_size, cfg.run.total_steps),
        "learning_starts": s.random_steps,
        "batch_size": s.batch_size,
        "tau": s.tau,
        "gamma": s.gamma,
        "train_freq": 1,
        "gradient_steps": s.updates_per_step,
        "ent_coef": f"auto_{s.init_alpha}" if s.learn_alpha else s.init_alpha,
        "target_entropy": "auto" if s.target_entropy is None else s.target_entropy,
        "policy_kwargs": {"net_arch": {"pi": list(s.actor_hidden), "qf": list(s.critic_hidden)}},
        "seed": cfg.run.seed,
        "device": cfg.run.device,
    }


def check_sb3(cfg: TrainConfig) -> None:
    """UsageError unless SB3 is installed and `cfg` can be expressed in it."""
    _import_sb3()
    sb3_kwargs(cfg)


class SB3Trainer:
    """Trains SB3's SAC in chunks between this harness's evaluations and log rows, and writes the
    same rows a `mbpo.train.Trainer` writes (train.csv's `q_mean` and `entropy` stay empty: SB3
    does not report them)."""

    def __init__(
        self, cfg: TrainConfig, device: torch.device, gens: Generators, writer: RunWriter, progress: Progress
    ) -> None:
        sb3 = _import_sb3()
        self.cfg, self.gens, self.writer, self.progress = cfg, gens, writer, progress
        self.env = make_env(cfg.run.env, cfg.run.truncate_obs)
        self.eval_env = make_env(cfg.run.env, cfg.run.truncate_obs)
        self.kwargs = sb3_kwargs(cfg)
        self.model = sb3.SAC("MlpPolicy", self.env, verbose=0, **self.kwargs)
        self.seconds = {"learn": 0.0, "eval": 0.0}
        self.step, self.last_eval, self.episodes_seen = 0, math.nan, 0
        self._start = time.perf_counter()

    def wall(self) -> float:
        return time.perf_counter() - self._start

    def evaluate(self) -> None:
        t = time.perf_counter()
        policy = lambda o: self.model.predict(o, deterministic=True)[0]  # noqa: E731
        self.last_eval = record_evaluation(
            policy, self.eval_env, self.cfg.run.eval_episodes, self.gens.eval_seed, self.step, self.writer,
            self.wall,
        )  # fmt: skip
        self.seconds["eval"] += time.perf_counter() - t
        self.progress.update(self.step, eval_return=f"{self.last_eval:.1f}")

    def log_row(self) -> None:
        total = self.model._episode_num  # behaviour episodes ended so far; SB3 keeps the last 100's returns
        count, self.episodes_seen = total - self.episodes_seen, total
        recent = list(self.model.ep_info_buffer)[-count:] if count > 0 else []
        values = self.model.logger.name_to_value
        row = {
            "env_step": self.step,
            "wall_seconds": self.wall(),
            "updates": self.model._n_updates,
            "behaviour_return": float(np.mean([e["r"] for e in recent])) if recent else math.nan,
            "behaviour_episodes": count,
        }
        if "train/critic_loss" in values:
            row.update(
                critic_loss=float(values["train/critic_loss"]),
                actor_loss=float(values["train/actor_loss"]),
                alpha=float(values["train/ent_coef"]),
            )
        self.writer.row("train", row)

    def run(self, checkpointer: Any = None) -> dict:
        run = self.cfg.run
        marks = sorted(
            {*range(run.eval_every, run.total_steps, run.eval_every)}
            | {*range(run.log_every, run.total_steps + 1, run.log_every)}
            | {run.total_steps}
        )
        self.evaluate()
        for mark in marks:
            t = time.perf_counter()
            self.model.learn(total_timesteps=mark - self.step, reset_num_timesteps=self.step == 0, progress_bar=False)
            self.seconds["learn"] += time.perf_counter() - t
            self.step = mark
            if mark % run.eval_every == 0 or mark == run.total_steps:
                self.evaluate()
            if mark % run.log_every == 0:
                self.log_row()
            self.progress.update(mark)
            if checkpointer is not None and checkpointer.terminate:
                raise Stopped(f"SIGTERM at env step {mark}; an sb3_sac run keeps no checkpoint")
        self.env.close()
        self.eval_env.close()
        wall = self.wall()
        train_seconds = wall - self.seconds["eval"]
        return {
            "wall_seconds": wall,
            "env_steps_per_second": run.total_steps / train_seconds,
            "seconds_per_env_step": train_seconds / run.total_steps,
            "seconds": dict(self.seconds),
            "updates": int(self.model._n_updates),
            "final_eval_return": self.last_eval,
            "target_entropy": float(self.model.target_entropy),
            "implementation": {
                "name": "stable-baselines3",
                "version": _import_sb3().__version__,
                "class": "stable_baselines3.SAC",
                "kwargs": {k: v for k, v in self.kwargs.items() if k != "device"},
            },
        }
