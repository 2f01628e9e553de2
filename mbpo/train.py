"""The training loop of one run: act, step the env, store, (MBPO: fit the model and roll out),
update the policy, evaluate.

The loop streams its rows to a `RunWriter` and returns a summary for the metadata; it never
formats files itself. SAC and MBPO share it: MBPO is SAC plus a model phase every
`model_train_freq` steps and policy batches that mix real and model data.
"""

from __future__ import annotations

import copy
import math
import random
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import gymnasium as gym
import numpy as np
import torch

from mbpo.buffer import ReplayBuffer
from mbpo.checkpoint import Checkpointer, CheckpointError
from mbpo.config import TrainConfig
from mbpo.ensemble import GaussianEnsemble
from mbpo.envs import make_env
from mbpo.memory import is_allocation_failure
from mbpo.progress import Progress
from mbpo.record import PHASES, RunWriter
from mbpo.rollout import branched_rollout
from mbpo.sac import SAC
from mbpo.seeding import Generators
from mbpo.termination import termination_fn
from mbpo.transition import model_targets
from mbpo.usage import first_line


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


def record_evaluation(
    policy: Callable[[np.ndarray], np.ndarray], env: gym.Env, episodes: int, seed: int, step: int,
    writer: RunWriter, wall: Callable[[], float],
) -> float:  # fmt: skip
    """Evaluate `policy` (`evaluate`), refuse a non-finite return (`TrainingDiverged`), write one
    eval.csv row per episode at env step `step` with the clock reading `wall()` after the episodes;
    returns the mean return.
    Every trainer (this SAC and MBPO's, `mbpo.sb3`'s) evaluates through it."""
    results = evaluate(policy, env, episodes, seed)
    for ret, _ in results:
        if not math.isfinite(ret):
            raise TrainingDiverged(f"evaluation at env step {step} returned {ret}: training diverged")
    now = wall()
    writer.eval_rows((step, k, ret, length, now) for k, (ret, length) in enumerate(results))
    return float(np.mean([r for r, _ in results]))


class ModelPhase:
    """MBPO's model side: the ensemble, the model buffer, and one fit-then-rollout phase."""

    def __init__(self, cfg: TrainConfig, obs_dim: int, act_dim: int, device: torch.device, gens: Generators) -> None:
        self.cfg, self.obs_dim, self.gens = cfg.mbpo, obs_dim, gens
        self.model = GaussianEnsemble(obs_dim, act_dim, cfg.mbpo, device, gens.torch)
        self.buffer = ReplayBuffer(
            cfg.mbpo.model_buffer_size(), obs_dim, act_dim, device, name="model buffer (sized by rollout_batch_size)"
        )
        self.terminated = termination_fn(cfg.run.env)
        self.first_step = max(cfg.sac.random_steps, 2)  # the model needs data to fit and hold out
        self.random_steps = cfg.sac.random_steps  # the schedule's epochs begin after them

    def due(self, step: int) -> bool:
        return step >= self.first_step and (step - self.first_step) % self.cfg.model_train_freq == 0

    def fit(self, real: ReplayBuffer, step: int, writer: RunWriter) -> None:
        t = time.perf_counter()
        data = real.layout.split(real.data[: real.size])
        report = self.model.fit(data.obs_action, model_targets(data), self.gens.torch)
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
        length = self.cfg.rollout_length_at(step, self.random_steps)
        self.buffer.retain(self.cfg.model_buffer_retained(length))
        start = real.layout.split(real.sample(self.cfg.rollout_batch_size, self.gens.torch)).obs
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


class Timer:
    """Wall-clock seconds per phase: `with timer("update"): ...` adds the block's time."""

    def __init__(self, phases: tuple[str, ...]) -> None:
        self.seconds = dict.fromkeys(phases, 0.0)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - t


def _rng_state(gen: np.random.Generator) -> dict:
    return copy.deepcopy(gen.bit_generator.state)


class Trainer:
    """One run's training state and loop. `state_dict`/`load_state_dict` capture all of it at an
    env-step boundary (see `mbpo.checkpoint`), so a resumed run continues bit for bit."""

    def __init__(
        self, cfg: TrainConfig, device: torch.device, gens: Generators, writer: RunWriter, progress: Progress
    ) -> None:
        self.cfg, self.device, self.gens, self.writer, self.progress = cfg, device, gens, writer, progress
        run, sac_cfg = cfg.run, cfg.sac
        self.env, self.eval_env = make_env(run.env, run.truncate_obs), make_env(run.env, run.truncate_obs)
        obs_dim = self.env.observation_space.shape[0]
        self.low = self.env.action_space.low.astype(np.float32)
        self.high = self.env.action_space.high.astype(np.float32)
        self.agent = SAC(obs_dim, self.low, self.high, sac_cfg, device, gens.torch)
        self.real = ReplayBuffer(
            min(sac_cfg.buffer_size, run.total_steps),
            obs_dim,
            len(self.low),
            device,
            name="replay buffer (buffer_size)",
        )
        self.model_phase = ModelPhase(cfg, obs_dim, len(self.low), device, gens) if run.algo == "mbpo" else None
        self.timer = Timer(PHASES)
        self.step = 0  # env steps completed
        self.last_eval = math.nan
        self.finished_returns: list[float] = []  # behaviour episodes ended since the last train.csv row
        # the current training episode: how it was reset and the actions since, so a resumed run
        # can rebuild the env's exact state by replaying them (no env has to be serialisable)
        self.obs: np.ndarray | None = None
        self.episode_return = 0.0
        self.episode_reset: dict | None = None  # env RNG state before reset; None: the seeded first reset
        self.episode_actions: list[np.ndarray] = []
        self._clock = time.perf_counter()  # wall() = seconds of training so far, across resumes
        self._wall_before = 0.0

    def wall(self) -> float:
        return self._wall_before + time.perf_counter() - self._clock

    # ---- the loop ----------------------------------------------------------------------------

    def evaluate(self) -> None:
        with self.timer("eval"):
            policy = lambda o: self.agent.act(o, deterministic=True)  # noqa: E731
            self.last_eval = record_evaluation(
                policy, self.eval_env, self.cfg.run.eval_episodes, self.gens.eval_seed, self.step, self.writer,
                self.wall,
            )  # fmt: skip
        self.progress.update(self.step, eval_return=f"{self.last_eval:.1f}")

    def _reset_env(self) -> None:
        if self.obs is None:
            self.episode_reset = None
            self.obs, _ = self.env.reset(seed=self.gens.env_seed)
        else:
            self.episode_reset = _rng_state(self.env.unwrapped.np_random)
            self.obs, _ = self.env.reset()
        self.episode_return, self.episode_actions = 0.0, []

    def begin(self) -> None:
        """Step 0 of a fresh run: the first evaluation and the first reset."""
        self.evaluate()
        self._reset_env()

    def env_step(self, step: int) -> None:
        sac_cfg = self.cfg.sac
        with self.timer("act"):
            if step <= sac_cfg.random_steps:
                action = self.gens.numpy.uniform(self.low, self.high).astype(np.float32)
            else:
                action = self.agent.act(self.obs, deterministic=False)
        with self.timer("env"):
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            # a time-limit truncation is not terminal: store terminated only, so the critic bootstraps
            self.real.add(self.obs, action, float(reward), next_obs, terminated)
            self.episode_return += float(reward)
            self.episode_actions.append(action)
            if terminated or truncated:
                self.finished_returns.append(self.episode_return)
                self._reset_env()
            else:
                self.obs = next_obs

    def policy_updates(self, log_now: bool) -> dict | None:
        sac_cfg, stats = self.cfg.sac, None
        with self.timer("update"):
            for i in range(sac_cfg.updates_per_step):
                if self.model_phase is None:
                    batch = self.real.sample(sac_cfg.batch_size, self.gens.torch)
                else:
                    batch = self.model_phase.policy_batch(self.real, sac_cfg.batch_size, self.cfg.mbpo.real_ratio)
                want = log_now and i == sac_cfg.updates_per_step - 1
                out = self.agent.update(batch, stats=want)
                stats = out if want else stats
        return stats

    def log_row(self, step: int, stats: dict | None) -> None:
        row = {
            "env_step": step,
            "wall_seconds": self.wall(),
            "updates": self.agent.updates,
            "behaviour_return": float(np.mean(self.finished_returns)) if self.finished_returns else math.nan,
            "behaviour_episodes": len(self.finished_returns),
        }
        if stats is not None:
            row.update({k: float(v) for k, v in stats.items()})
        self.writer.row("train", row)
        self.finished_returns = []

    def run(self, checkpointer: Checkpointer | None = None) -> dict:
        """Train from the current step to `total_steps`; returns a summary for the metadata."""
        run, mp = self.cfg.run, self.model_phase
        if self.step == 0:
            self.begin()
        for step in range(self.step + 1, run.total_steps + 1):
            self.env_step(step)
            if mp is not None and mp.due(step):
                with self.timer("model"):
                    mp.fit(self.real, step, self.writer)
                with self.timer("rollout"):
                    mp.rollout(self.real, self.agent, step, self.writer)
            log_now = step % run.log_every == 0
            stats = self.policy_updates(log_now) if step > self.cfg.sac.random_steps else None
            self.step = step
            if step % run.eval_every == 0 or step == run.total_steps:
                self.evaluate()
            if log_now:
                self.log_row(step, stats)
            self.progress.update(step)
            if checkpointer is not None and (
                checkpointer.due() if step < run.total_steps else checkpointer.interval > 0
            ):
                # and once at the last step: a crash while the run is committed then costs no training
                checkpointer.save(self.checkpoint_payload())
        self.env.close()
        self.eval_env.close()
        return self.summary()

    def summary(self) -> dict:
        run, seconds = self.cfg.run, self.timer.seconds
        wall = self.wall()
        train_seconds = wall - seconds["eval"]
        out = {
            "wall_seconds": wall,
            "env_steps_per_second": run.total_steps / train_seconds,
            "seconds_per_env_step": train_seconds / run.total_steps,
            "seconds": seconds
            if self.model_phase is not None
            else {k: seconds[k] for k in ("env", "act", "update", "eval")},
            "updates": self.agent.updates,
            "final_eval_return": self.last_eval,
            "target_entropy": self.agent.target_entropy,
        }
        if self.model_phase is not None:
            out["model_buffer_capacity"] = self.model_phase.buffer.capacity
        return out

    # ---- checkpoints -------------------------------------------------------------------------

    def state_dict(self) -> dict:
        gens = self.gens
        state = {
            "step": self.step,
            "agent": self.agent.state_dict(),
            "real": self.real.state_dict(),
            "torch_rng": gens.torch.get_state(),
            "numpy_rng": _rng_state(gens.numpy),
            "global_rng": global_rng_state(),
            "last_eval": self.last_eval,
            "finished_returns": list(self.finished_returns),
            "obs": torch.from_numpy(np.asarray(self.obs, dtype=np.float64)),
            "episode_return": self.episode_return,
            "episode_reset": self.episode_reset,
            "episode_actions": torch.from_numpy(
                np.asarray(self.episode_actions, dtype=np.float32).reshape(-1, len(self.low))
            ),
            "seconds": dict(self.timer.seconds),
            "wall": self.wall(),
        }
        if self.model_phase is not None:
            state["model"] = self.model_phase.model.state_dict()
            state["model_buffer"] = self.model_phase.buffer.state_dict()
        return state

    def checkpoint_payload(self) -> dict:
        return {"trainer": self.state_dict(), "offsets": self.writer.offsets()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a checkpoint's state (see `state_dict`), rebuilding the training env's state
        by replaying the current episode's actions from its reset. `CheckpointError` for a state
        that is not this run's shape (a missing part, a tensor of another size, a foreign value)."""
        try:
            self._load_state_dict(state)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            if is_allocation_failure(exc):
                raise
            first = first_line(exc)
            raise CheckpointError(f"its trainer state does not fit this run ({type(exc).__name__}: {first})") from None

    def _load_state_dict(self, state: dict) -> None:
        gens = self.gens
        self.step = state["step"]
        self.agent.load_state_dict(state["agent"])
        self.real.load_state_dict(state["real"])
        gens.torch.set_state(state["torch_rng"].cpu())
        gens.numpy.bit_generator.state = state["numpy_rng"]
        set_global_rng_state(state["global_rng"])
        self.last_eval = state["last_eval"]
        self.finished_returns = list(state["finished_returns"])
        self.timer.seconds.update(state["seconds"])
        self._wall_before, self._clock = state["wall"], time.perf_counter()
        if self.model_phase is not None:
            self.model_phase.model.load_state_dict(state["model"])
            self.model_phase.buffer.load_state_dict(state["model_buffer"])
        # the env: the same reset, then the same actions
        obs, _ = self.env.reset(seed=gens.env_seed)
        if state["episode_reset"] is not None:
            self.env.unwrapped.np_random.bit_generator.state = state["episode_reset"]
            obs, _ = self.env.reset()
        actions = state["episode_actions"].cpu().numpy()
        for action in actions:
            obs, _, terminated, truncated, _ = self.env.step(action)
            if terminated or truncated:
                raise CheckpointError(
                    "replaying the checkpoint's episode ended it early: the env is not the one the run used"
                )
        if not np.array_equal(np.asarray(obs, dtype=np.float64), state["obs"].cpu().numpy()):
            raise CheckpointError(
                "replaying the checkpoint's episode did not reproduce its observation (another env version?)"
            )
        self.obs, self.episode_return = obs, state["episode_return"]
        self.episode_reset, self.episode_actions = state["episode_reset"], list(actions)


def global_rng_state() -> dict:
    """Python's, numpy's legacy and torch's global RNG states (library code may draw from them)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }


def set_global_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, key.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())


class TrainingDiverged(RuntimeError):
    """A non-finite evaluation return: the run stops instead of recording it."""
