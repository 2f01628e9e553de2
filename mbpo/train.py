"""The training loop of one run, or of S seeds in lockstep: act, step the env, store, (MBPO: fit
the model and roll out), update the policy, evaluate.

The loop streams each seed's rows to its `RunWriter` and returns a summary per seed for its
metadata; it never formats files itself. SAC and MBPO share it: MBPO is SAC plus a model phase
every `model_train_freq` steps and policy batches that mix real and model data.

Seeds in lockstep: the networks, optimisers and model of all seeds are one batched computation
(`mbpo.sac`, `mbpo.ensemble`); each seed keeps its own env, evaluation env, replay and model
buffers, generators and run files, and draws exactly what its run alone draws, in the same
order. A seed whose evaluation diverges stops alone (`failures`); the others go on.
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
from mbpo.checkpoint import CheckpointError, Checkpointer, CheckpointGroup
from mbpo.config import TrainConfig
from mbpo.ensemble import GaussianEnsemble
from mbpo.envs import make_env
from mbpo.memory import is_allocation_failure
from mbpo.progress import Progress
from mbpo.record import PHASES, RunWriter
from mbpo.rollout import branched_rollouts
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
    return evaluate_seeds(lambda obs: policy(obs[0])[None], [env], episodes, [seed])[0]


def evaluate_seeds(
    policy: Callable[[np.ndarray], np.ndarray], envs: list[gym.Env], episodes: int, seeds: list[int]
) -> list[list[tuple[float, int]]]:
    """`evaluate` for S policies at once: `policy` maps `S x obs_dim` to `S x act_dim` (one
    forward for all seeds per step), env i runs episode k reset with `seeds[i] + k`. A seed's
    episodes run one after another as alone (a batch of one row per seed), so its returns are
    those of its run alone; a seed whose episode has ended waits, its action unused."""
    results: list[list[tuple[float, int]]] = [[] for _ in envs]
    for k in range(episodes):
        obs = [env.reset(seed=seed + k)[0] for env, seed in zip(envs, seeds)]
        totals, lengths, running = [0.0] * len(envs), [0] * len(envs), [True] * len(envs)
        while any(running):
            actions = policy(np.stack(obs))
            for i, env in enumerate(envs):
                if not running[i]:
                    continue
                obs[i], reward, terminated, truncated, _ = env.step(actions[i])
                totals[i] += float(reward)
                lengths[i] += 1
                running[i] = not (terminated or truncated)
        for i in range(len(envs)):
            results[i].append((totals[i], lengths[i]))
    return results


def record_evaluation(
    policy: Callable[[np.ndarray], np.ndarray], env: gym.Env, episodes: int, seed: int, step: int,
    writer: RunWriter, wall: Callable[[], float],
) -> float:  # fmt: skip
    """Evaluate `policy` (`evaluate`), refuse a non-finite return (`TrainingDiverged`), write one
    eval.csv row per episode at env step `step` with the clock reading `wall()` after the episodes;
    returns the mean return.
    Every trainer (this SAC and MBPO's, `mbpo.sb3`'s) evaluates through it."""
    return write_evaluation(evaluate(policy, env, episodes, seed), step, writer, wall())


def write_evaluation(results: list[tuple[float, int]], step: int, writer: RunWriter, now: float) -> float:
    """Refuse a non-finite return (`TrainingDiverged`), else write one eval.csv row per episode
    at env step `step` with the clock reading `now`; returns the mean return."""
    for ret, _ in results:
        if not math.isfinite(ret):
            raise TrainingDiverged(f"evaluation at env step {step} returned {ret}: training diverged")
    writer.eval_rows((step, k, ret, length, now) for k, (ret, length) in enumerate(results))
    return float(np.mean([r for r, _ in results]))


class ModelPhase:
    """MBPO's model side: the ensemble, each seed's model buffer, and one fit-then-rollout phase."""

    def __init__(
        self, cfg: TrainConfig, obs_dim: int, act_dim: int, device: torch.device, gens: list[Generators]
    ) -> None:
        self.cfg, self.obs_dim, self.gens = cfg.mbpo, obs_dim, gens
        self.torch_gens = [g.torch for g in gens]
        self.model = GaussianEnsemble(obs_dim, act_dim, cfg.mbpo, device, self.torch_gens)
        self.buffers = [
            ReplayBuffer(
                cfg.mbpo.model_buffer_size(),
                obs_dim,
                act_dim,
                device,
                name="model buffer (sized by rollout_batch_size)",
            )
            for _ in gens
        ]
        self.terminated = termination_fn(cfg.run.env)
        self.first_step = max(cfg.sac.random_steps, 2)  # the model needs data to fit and hold out
        self.random_steps = cfg.sac.random_steps  # the schedule's epochs begin after them

    def due(self, step: int) -> bool:
        return step >= self.first_step and (step - self.first_step) % self.cfg.model_train_freq == 0

    def fit(self, reals: list[ReplayBuffer], step: int, writers: list[RunWriter]) -> None:
        """Fit every seed's model to its real data; a seed's row records its own epochs and the
        fit's seconds (in lockstep: until the last seed's early stopping ended)."""
        t = time.perf_counter()
        data = [r.layout.split(r.data[: r.size]) for r in reals]
        inputs = torch.stack([d.obs_action for d in data])
        targets = torch.stack([model_targets(d) for d in data])
        reports = self.model.fit(inputs, targets, self.torch_gens)
        seconds = time.perf_counter() - t
        for report, writer in zip(reports, writers):
            row = {
                "env_step": step,
                "epochs": report.epochs,
                "train_size": report.train_size,
                "holdout_size": report.holdout_size,
                "train_loss": report.train_loss,
                "elites": ";".join(map(str, report.elites)),
                "seconds": seconds,
            }
            row.update({f"holdout_mse_{i}": v for i, v in enumerate(report.holdout_mse)})
            writer.row("model", row)

    def rollout(self, reals: list[ReplayBuffer], agent: SAC, step: int, writers: list[RunWriter]) -> None:
        t = time.perf_counter()
        length = self.cfg.rollout_length_at(step, self.random_steps)
        for buffer in self.buffers:
            buffer.retain(self.cfg.model_buffer_retained(length))
        starts = [r.layout.split(r.sample(self.cfg.rollout_batch_size, g)).obs for r, g in zip(reals, self.torch_gens)]
        results = branched_rollouts(
            torch.stack(starts),
            length,
            policy=lambda obs, draw: agent.sample(obs, "rollout", draw).tanh_u,  # normalised, as stored
            model=lambda obs, act, draw: self.model.sample_next(obs, act, self.torch_gens, draw),
            terminated=self.terminated,
        )
        seconds = time.perf_counter() - t
        for result, buffer, writer in zip(results, self.buffers, writers):
            buffer.add_batch(result.rows)
            writer.row(
                "rollouts",
                {
                    "env_step": step,
                    "rollout_length": length,
                    "steps": result.steps,
                    "started": result.started,
                    "kept": result.rows.shape[0],
                    "alive_at_end": result.alive,
                    "model_buffer_size": buffer.size,
                    "seconds": seconds,
                },
            )

    def policy_batch(self, seed: int, real: ReplayBuffer, batch_size: int, real_ratio: float) -> torch.Tensor:
        """Seed `seed`'s policy batch: `real_ratio` of it from real data, the rest from model data."""
        gen, buffer = self.torch_gens[seed], self.buffers[seed]
        if buffer.size == 0:
            return real.sample(batch_size, gen)
        n_real = int(batch_size * real_ratio)
        model_rows = buffer.sample(batch_size - n_real, gen)
        if n_real == 0:
            return model_rows
        return torch.cat((real.sample(n_real, gen), model_rows), dim=0)


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


class SeedRun:
    """What one seed owns in a (lockstep) training: its generators, run files, envs, replay
    buffer and current training episode."""

    def __init__(self, cfg: TrainConfig, device: torch.device, gens: Generators, writer: RunWriter) -> None:
        run = cfg.run
        self.gens, self.writer = gens, writer
        self.env, self.eval_env = make_env(run.env, run.truncate_obs), make_env(run.env, run.truncate_obs)
        obs_dim, act_dim = self.env.observation_space.shape[0], self.env.action_space.shape[0]
        self.real = ReplayBuffer(
            min(cfg.sac.buffer_size, run.total_steps), obs_dim, act_dim, device, name="replay buffer (buffer_size)"
        )
        self.last_eval = math.nan
        self.finished_returns: list[float] = []  # behaviour episodes ended since the last train.csv row
        # the current training episode: how it was reset and the actions since, so a resumed run
        # can rebuild the env's exact state by replaying them (no env has to be serialisable)
        self.obs: np.ndarray | None = None
        self.episode_return = 0.0
        self.episode_reset: dict | None = None  # env RNG state before reset; None: the seeded first reset
        self.episode_actions: list[np.ndarray] = []

    def reset_env(self) -> None:
        if self.obs is None:
            self.episode_reset = None
            self.obs, _ = self.env.reset(seed=self.gens.env_seed)
        else:
            self.episode_reset = _rng_state(self.env.unwrapped.np_random)
            self.obs, _ = self.env.reset()
        self.episode_return, self.episode_actions = 0.0, []

    def close(self) -> None:
        self.env.close()
        self.eval_env.close()


class Trainer:
    """One run's training state and loop, or S seeds' in lockstep (`gens` and `writer` one per
    seed). `state_dict`/`load_state_dict` capture a seed's whole state at an env-step boundary
    (see `mbpo.checkpoint`), so a resumed run continues bit for bit, alone or in lockstep."""

    def __init__(
        self,
        cfg: TrainConfig,
        device: torch.device,
        gens: Generators | list[Generators],
        writer: RunWriter | list[RunWriter],
        progress: Progress,
    ) -> None:
        self.lockstep = isinstance(gens, list)  # failures recorded per seed, summaries per seed
        gens_list = gens if isinstance(gens, list) else [gens]
        writers = writer if isinstance(writer, list) else [writer]
        if len(gens_list) != len(writers):
            raise ValueError(f"{len(gens_list)} seeds' generators for {len(writers)} run writers")
        self.cfg, self.device, self.progress = cfg, device, progress
        self.runs = [SeedRun(cfg, device, g, w) for g, w in zip(gens_list, writers)]
        self.positions = list(range(len(self.runs)))  # each run's index among the seeds given
        first = self.runs[0].env
        self.obs_dim = first.observation_space.shape[0]
        self.low = first.action_space.low.astype(np.float32)
        self.high = first.action_space.high.astype(np.float32)
        self._build_learners()
        self.timer = Timer(PHASES)
        self.step = 0  # env steps completed
        self.failures: dict[int, str] = {}  # position -> why that seed stopped
        self._clock = time.perf_counter()  # wall() = seconds of training so far, across resumes
        self._wall_before = 0.0

    def _build_learners(self) -> None:
        torch_gens = [r.gens.torch for r in self.runs]
        self.agent = SAC(self.obs_dim, self.low, self.high, self.cfg.sac, self.device, torch_gens)
        self.model_phase = (
            ModelPhase(self.cfg, self.obs_dim, len(self.low), self.device, [r.gens for r in self.runs])
            if self.cfg.run.algo == "mbpo"
            else None
        )

    @property
    def seeds(self) -> int:
        return len(self.runs)

    def wall(self) -> float:
        return self._wall_before + time.perf_counter() - self._clock

    # ---- the loop ----------------------------------------------------------------------------

    def evaluate(self) -> None:
        """Evaluate every seed (one policy forward per env step for all); a seed whose return is
        not finite fails: alone, `TrainingDiverged`; in lockstep it stops and the others go on."""
        with self.timer("eval"):
            results = evaluate_seeds(
                lambda o: self.agent.act(o, deterministic=True),
                [r.eval_env for r in self.runs],
                self.cfg.run.eval_episodes,
                [r.gens.eval_seed for r in self.runs],
            )
            now = self.wall()
            diverged: list[int] = []
            for i, (run, result) in enumerate(zip(self.runs, results)):
                try:
                    run.last_eval = write_evaluation(result, self.step, run.writer, now)
                except TrainingDiverged as exc:
                    if not self.lockstep:
                        raise
                    self.failures[self.positions[i]] = str(exc)
                    diverged.append(i)
            if diverged:
                self._drop(diverged)
        if self.runs:
            self.progress.update(self.step, eval_return=" ".join(f"{r.last_eval:.1f}" for r in self.runs))

    def _drop(self, indices: list[int]) -> None:
        """Stop the seeds at `indices` (their writers are closed, their files left as they are):
        the others' state moves to learners without them, exactly."""
        for i in indices:
            self.runs[i].writer.close()
            self.runs[i].close()
        keep = [i for i in range(self.seeds) if i not in indices]
        if not keep:
            self.runs, self.positions = [], []
            return
        states = [self._learner_state(i) for i in keep]
        self.runs = [self.runs[i] for i in keep]
        self.positions = [self.positions[i] for i in keep]
        streams = [r.gens.torch.get_state() for r in self.runs]  # building draws initial weights
        self._build_learners()
        for run, stream in zip(self.runs, streams):
            run.gens.torch.set_state(stream)
        for i, state in enumerate(states):
            self._load_learner_state(state, i)

    def begin(self) -> None:
        """Step 0 of a fresh run: the first evaluation and the first reset."""
        self.evaluate()
        for run in self.runs:
            run.reset_env()

    def env_step(self, step: int) -> None:
        sac_cfg = self.cfg.sac
        with self.timer("act"):
            if step <= sac_cfg.random_steps:
                actions = [r.gens.numpy.uniform(self.low, self.high).astype(np.float32) for r in self.runs]
            else:
                actions = list(self.agent.act(np.stack([r.obs for r in self.runs]), deterministic=False))
        with self.timer("env"):
            for run, action in zip(self.runs, actions):
                next_obs, reward, terminated, truncated, _ = run.env.step(action)
                # a time-limit truncation is not terminal: store terminated only, so the critic bootstraps
                run.real.add(run.obs, self.agent.to_unit(action), float(reward), next_obs, terminated)
                run.episode_return += float(reward)
                run.episode_actions.append(action)
                if terminated or truncated:
                    run.finished_returns.append(run.episode_return)
                    run.reset_env()
                else:
                    run.obs = next_obs

    def _batch(self) -> torch.Tensor:
        """One policy batch per seed, `S x B x row_dim`, each from its seed's generator."""
        sac_cfg, mp = self.cfg.sac, self.model_phase
        if mp is None:
            rows = [r.real.sample(sac_cfg.batch_size, r.gens.torch) for r in self.runs]
        else:
            rows = [
                mp.policy_batch(i, r.real, sac_cfg.batch_size, self.cfg.mbpo.real_ratio)
                for i, r in enumerate(self.runs)
            ]
        return rows[0].unsqueeze(0) if len(rows) == 1 else torch.stack(rows)

    def policy_updates(self, log_now: bool) -> dict | None:
        sac_cfg, stats = self.cfg.sac, None
        with self.timer("update"):
            for i in range(sac_cfg.updates_per_step):
                want = log_now and i == sac_cfg.updates_per_step - 1
                out = self.agent.update(self._batch(), stats=want)
                stats = out if want else stats
        return stats

    def per_seed(self, stats: dict | None) -> dict[int, dict]:
        """Update statistics (one tensor of S values each) as a map from each seed's position to
        its values: taken before an evaluation may stop seeds."""
        values = {k: v.tolist() for k, v in stats.items()} if stats is not None else {}
        return {p: {k: float(v[i]) for k, v in values.items()} for i, p in enumerate(self.positions)}

    def log_row(self, step: int, stats: dict[int, dict]) -> None:
        wall = self.wall()
        for run, position in zip(self.runs, self.positions):
            row = {
                "env_step": step,
                "wall_seconds": wall,
                "updates": self.agent.updates,
                "behaviour_return": float(np.mean(run.finished_returns)) if run.finished_returns else math.nan,
                "behaviour_episodes": len(run.finished_returns),
            }
            row.update(stats[position])
            run.writer.row("train", row)
            run.finished_returns = []

    def run(self, checkpointer: Checkpointer | CheckpointGroup | None = None) -> dict | dict[int, dict]:
        """Train from the current step to `total_steps`. Returns the summary for the metadata:
        alone, the run's; in lockstep (a `CheckpointGroup`, or several seeds), a map from each
        finished seed's position to its summary (`failures` says why the others stopped)."""
        run = self.cfg.run
        group = checkpointer if isinstance(checkpointer, CheckpointGroup) else None
        if self.step == 0:
            self.begin()
        for step in range(self.step + 1, run.total_steps + 1):
            if not self.runs:  # every seed stopped
                break
            self.env_step(step)
            mp = self.model_phase  # rebuilt when a seed stops
            writers = [r.writer for r in self.runs]
            if mp is not None and mp.due(step):
                with self.timer("model"):
                    mp.fit([r.real for r in self.runs], step, writers)
                with self.timer("rollout"):
                    mp.rollout([r.real for r in self.runs], self.agent, step, writers)
            log_now = step % run.log_every == 0
            stats = self.policy_updates(log_now) if step > self.cfg.sac.random_steps else None
            stats_by_seed = self.per_seed(stats) if log_now else {}
            self.step = step
            if step % run.eval_every == 0 or step == run.total_steps:
                self.evaluate()
            if log_now:
                self.log_row(step, stats_by_seed)
            self.progress.update(step)
            if (
                checkpointer is not None
                and self.runs
                and (checkpointer.due() if step < run.total_steps else checkpointer.interval > 0)
            ):
                # and once at the last step: a crash while the run is committed then costs no training
                if group is None:
                    checkpointer.save(self.checkpoint_payload())
                else:
                    group.save({p: self.checkpoint_payload(i) for i, p in enumerate(self.positions)})
        for r in self.runs:
            r.close()
        if not self.lockstep:
            return self.summary(0)
        return {p: self.summary(i) for i, p in enumerate(self.positions)}

    def summary(self, index: int = 0) -> dict:
        """Seed `index`'s summary for its metadata (the clock and phases are the process's)."""
        run, seconds = self.cfg.run, self.timer.seconds
        wall = self.wall()
        train_seconds = wall - seconds["eval"]
        out = {
            "wall_seconds": wall,
            "env_steps_per_second": run.total_steps / train_seconds,
            "seconds_per_env_step": train_seconds / run.total_steps,
            "seconds": dict(seconds)
            if self.model_phase is not None
            else {k: seconds[k] for k in ("env", "act", "update", "eval")},
            "updates": self.agent.updates,
            "final_eval_return": self.runs[index].last_eval,
            "target_entropy": self.agent.target_entropy,
        }
        if self.model_phase is not None:
            out["model_buffer_capacity"] = self.model_phase.buffers[index].capacity
        return out

    # ---- checkpoints -------------------------------------------------------------------------

    def _learner_state(self, index: int) -> dict:
        state = {"agent": self.agent.state_dict(index)}
        if self.model_phase is not None:
            state["model"] = self.model_phase.model.state_dict(index)
            state["model_buffer"] = self.model_phase.buffers[index].state_dict()
        return state

    def _load_learner_state(self, state: dict, index: int) -> None:
        self.agent.load_state_dict(state["agent"], index)
        if self.model_phase is not None:
            self.model_phase.model.load_state_dict(state["model"], index)
            self.model_phase.buffers[index].load_state_dict(state["model_buffer"])

    def state_dict(self, index: int = 0) -> dict:
        """Seed `index`'s whole state, in the layout its run alone saves."""
        run = self.runs[index]
        gens = run.gens
        learner = self._learner_state(index)  # agent, and for MBPO the model and its buffer
        return {
            "step": self.step,
            "agent": learner.pop("agent"),
            "real": run.real.state_dict(),
            "torch_rng": gens.torch.get_state(),
            "numpy_rng": _rng_state(gens.numpy),
            "global_rng": global_rng_state(),
            "last_eval": run.last_eval,
            "finished_returns": list(run.finished_returns),
            "obs": torch.from_numpy(np.asarray(run.obs, dtype=np.float64)),
            "episode_return": run.episode_return,
            "episode_reset": run.episode_reset,
            "episode_actions": torch.from_numpy(
                np.asarray(run.episode_actions, dtype=np.float32).reshape(-1, len(self.low))
            ),
            "seconds": dict(self.timer.seconds),
            "wall": self.wall(),
            **learner,
        }

    def checkpoint_payload(self, index: int = 0) -> dict:
        return {"trainer": self.state_dict(index), "offsets": self.runs[index].writer.offsets()}

    def load_state_dict(self, state: dict, index: int = 0) -> None:
        """Restore a checkpoint's state (see `state_dict`) into seed `index`, rebuilding its
        training env's state by replaying the current episode's actions from its reset.
        `CheckpointError` for a state that is not this run's shape (a missing part, a tensor of
        another size, a foreign value). Seeds loaded into one trainer must be at the same step."""
        try:
            self._load_state_dict(state, index)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            if is_allocation_failure(exc):
                raise
            first = first_line(exc)
            raise CheckpointError(f"its trainer state does not fit this run ({type(exc).__name__}: {first})") from None

    def _load_state_dict(self, state: dict, index: int) -> None:
        run = self.runs[index]
        gens = run.gens
        if index > 0 and state["step"] != self.step:
            raise CheckpointError(f"its env step {state['step']} is not the other seeds' {self.step}")
        self.step = state["step"]
        self._load_learner_state(state, index)
        run.real.load_state_dict(state["real"])
        gens.torch.set_state(state["torch_rng"].cpu())
        gens.numpy.bit_generator.state = state["numpy_rng"]
        if index == 0:
            set_global_rng_state(state["global_rng"])
            self.timer.seconds.update(state["seconds"])
            self._wall_before, self._clock = state["wall"], time.perf_counter()
        run.last_eval = state["last_eval"]
        run.finished_returns = list(state["finished_returns"])
        # the env: the same reset, then the same actions
        obs, _ = run.env.reset(seed=gens.env_seed)
        if state["episode_reset"] is not None:
            run.env.unwrapped.np_random.bit_generator.state = state["episode_reset"]
            obs, _ = run.env.reset()
        actions = state["episode_actions"].cpu().numpy()
        for action in actions:
            obs, _, terminated, truncated, _ = run.env.step(action)
            if terminated or truncated:
                raise CheckpointError(
                    "replaying the checkpoint's episode ended it early: the env is not the one the run used"
                )
        if not np.array_equal(np.asarray(obs, dtype=np.float64), state["obs"].cpu().numpy()):
            raise CheckpointError(
                "replaying the checkpoint's episode did not reproduce its observation (another env version?)"
            )
        run.obs, run.episode_return = obs, state["episode_return"]
        run.episode_reset, run.episode_actions = state["episode_reset"], list(actions)


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
