"""Projected hours of every run of an experiment config on this device, from parts timed here.

    python benchmarks/experiment_cost.py [--configfile config/paper.yaml] [--device cpu]
        [--threads 1] [--seeds-per-job 1] [--model-csv RUN/model.csv ...] [--check RUN ...]

Each run of the config (the pipeline's own plan: `plan.experiment.runs`, resolved as
`python -m mbpo train` resolves it) is projected phase by phase, at its own sizes (observation and
action dims, network widths, batch, rollouts per phase), integrated over its env steps the way
`mbpo/train.py` takes them:

- env step + action: every env step;
- SAC updates: `updates_per_step` per env step after `random_steps`;
- model fit (MBPO): every `model_train_freq` steps from `random_steps` on, epochs x one epoch on
  the real data so far; an epoch's time is linear in the data (timed at `--sizes`, both above the
  25k rows where the holdout stops growing at its 5000 cap; shorter runs are projected a little
  high); the epochs per fit are those of real runs (`--model-csv`: the first fit, from scratch,
  and the later, warm-started ones' mean weighted by the data each fit ran on; by default the
  committed Hopper validation runs'), for every env: other envs and steps past 50k are untested;
- rollouts (MBPO): each phase at the schedule's length, the training loop's own phase timed at
  lengths 1 and 2 with no branch ever ending (every row stored);
- evaluation: `eval_episodes` episodes of the env's full length at step 0, every `eval_every`
  steps and at the end (an upper bound: episodes that fall early cost less).

With `--seeds-per-job S` every part is timed for S seeds in lockstep (`python -m mbpo train
--seeds`, the pipeline's `seeds_per_job`) and divided by S: the projection is per seed, and the
total counts the jobs of up to S seeds each group makes. Env steps are timed alone (in lockstep
the actions are batched, the env steps are not).

Checkpoint writes (0.1% of a Hopper run) and start-up are left out. `--check RUN ...` projects
finished runs the same way, each fit at the run's own epochs (its model.csv, so the check tests
the timings, not the epochs assumed), and prints projected against measured seconds per phase
(their `metadata.json`; for a run trained among S seeds in lockstep, its process's seconds / S):
how far the projection holds on this machine. Every run is projected on
`--device` at `--threads`, whatever its own device and threads; runs that share cores with other
work take longer than projected.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from common import check_device, env_step_seconds, epoch_seconds, require, threads_check, timed  # noqa: E402

from mbpo.config import TrainConfig  # noqa: E402
from mbpo.usage import OneLineParser  # noqa: E402

PHASES = ("update", "model", "rollout", "env", "eval")
DEFAULT_MODEL_CSVS = "results/validation/runs/Hopper-v5/mbpo/hpaper/cpu/seed*/model.csv"


def read_fits(path: Path) -> list[tuple[int, int, int]]:
    """(env step, epochs, rows fitted on) of each model fit in a run's model.csv; ValueError
    naming the file where it holds no column of epoch counts."""
    try:
        with path.open() as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "epochs" not in rows[0]:
            raise ValueError("not a model.csv (no rows with an 'epochs' column)")
        try:
            counts = [int(r["epochs"]) for r in rows]
        except (TypeError, ValueError):
            raise ValueError("its 'epochs' column holds a value that is not a count") from None
        if min(counts) < 1:
            raise ValueError("its 'epochs' column holds a count < 1")
        try:
            steps = [int(r.get("env_step") or 0) for r in rows]
            sizes = [int(r.get("train_size") or 0) + int(r.get("holdout_size") or 0) for r in rows]
        except (TypeError, ValueError):
            raise ValueError(
                "its 'env_step', 'train_size' or 'holdout_size' column holds a value that is not a count"
            ) from None
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise ValueError(f"{path}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    return list(zip(steps, counts, sizes))


def fit_epochs(paths: list[Path]) -> tuple[float, float]:
    """(epochs of the first fit, epochs of the later fits) over runs' model.csv files. The later
    fits' mean is weighted by the rows each fit ran on (what an epoch costs), where the files
    say: later fits stop sooner and fit more data. ValueError naming a file that is not one."""
    first, later, weights = [], [], []
    for path in paths:
        fits = read_fits(path)
        first.append(fits[0][1])
        later.extend(epochs for _, epochs, _ in fits[1:])
        weights.extend(size for _, _, size in fits[1:])
    if not later:
        return float(np.mean(first)), float(np.mean(first))
    return float(np.mean(first)), float(np.average(later, weights=weights if sum(weights) > 0 else None))


@dataclasses.dataclass(frozen=True)
class Dims:
    env: str
    truncate_obs: bool
    obs: int
    act: int
    episode_steps: int


@functools.cache
def dims_of(env_id: str, truncate_obs: bool) -> Dims:
    from mbpo.envs import make_env

    env = make_env(env_id, truncate_obs)
    try:
        return Dims(
            env_id, truncate_obs, env.observation_space.shape[0], env.action_space.shape[0], env.spec.max_episode_steps
        )
    finally:
        env.close()


def line_through(low: tuple[float, float], high: tuple[float, float]) -> tuple[float, float]:
    """(intercept, slope) of the line through two timings (x, seconds), neither below zero: where
    noise tilts the line below zero at x = 0 (or makes it fall), the line through the origin and
    the larger x's timing instead (what the cost at large x rests on)."""
    slope = (high[1] - low[1]) / (high[0] - low[0])
    intercept = low[1] - slope * low[0]
    if intercept < 0 or slope < 0:
        return 0.0, high[1] / high[0]
    return intercept, slope


class Timer:
    """Seconds of each part at one set of sizes, timed once and kept (runs share envs and sizes)."""

    def __init__(self, device: torch.device, repeat: int, sizes: tuple[int, int], say, seeds: int = 1) -> None:
        """`seeds`: time each part for that many seeds in lockstep and keep the time per seed."""
        self.device, self.repeat, self.sizes, self.say, self.seeds = device, repeat, sizes, say, seeds
        self.gen = torch.Generator(device=device).manual_seed(0)
        self.cache: dict[tuple, object] = {}

    def _once(self, key: tuple, measure):
        if key not in self.cache:
            t = time.perf_counter()
            self.cache[key] = measure()
            self.say(f"timed {key[0]} of {key[1]} ({time.perf_counter() - t:.0f} s)")
        return self.cache[key]

    def _agent(self, dims: Dims, cfg: TrainConfig, seeds: int | None = None):
        """An agent of `seeds` seeds (default: the timer's) in lockstep."""
        from mbpo.sac import SAC

        low, high = -np.ones(dims.act, np.float32), np.ones(dims.act, np.float32)
        return SAC(dims.obs, low, high, cfg.sac, self.device, [self.gen] * (seeds or self.seeds))

    def _timed(self, fn, number: int, repeat: int | None = None) -> float:
        return timed(fn, self.device, repeat or self.repeat, number)

    def update(self, dims: Dims, cfg: TrainConfig) -> float:
        """Seconds per SAC update (the run's widths and batch)."""
        key = (
            "sac update",
            dims.env,
            dims.obs,
            dims.act,
            cfg.sac.actor_hidden,
            cfg.sac.critic_hidden,
            cfg.sac.batch_size,
        )

        def measure() -> float:
            agent = self._agent(dims, cfg)
            batch = torch.stack(
                [agent.layout.random_rows(cfg.sac.batch_size, self.gen, self.device) for _ in range(self.seeds)]
            )
            return self._timed(lambda: agent.update(batch), 30) / self.seeds

        return self._once(key, measure)

    def env_step(self, dims: Dims, cfg: TrainConfig) -> float:
        """Seconds per env step with the policy's action (random actions cost less)."""
        key = ("env step + action", dims.env, dims.truncate_obs, cfg.sac.actor_hidden)

        def measure() -> float:
            from mbpo.envs import make_env

            env = make_env(dims.env, dims.truncate_obs)
            try:  # an action alone: in lockstep actions are batched, but the env steps are not
                return env_step_seconds(env, self._agent(dims, cfg, seeds=1), self.repeat)
            finally:
                env.close()

        return self._once(key, measure)

    def epoch(self, dims: Dims, cfg: TrainConfig) -> tuple[float, float]:
        """(intercept s, slope s per sample) of one model epoch against the real data's size."""
        mb = cfg.mbpo
        key = (
            "model epoch",
            dims.env,
            dims.obs,
            dims.act,
            mb.ensemble_size,
            mb.model_hidden,
            mb.model_batch_size,
            mb.holdout_ratio,
            mb.max_holdout,
        )

        def measure() -> tuple[float, float]:
            from mbpo.ensemble import GaussianEnsemble

            model_cfg = dataclasses.replace(mb, model_max_epochs=2, model_patience=1000)
            model = GaussianEnsemble(dims.obs, dims.act, model_cfg, self.device, [self.gen] * self.seeds)
            # the first: warm-up (slots, allocator)
            seconds = [
                epoch_seconds(model, n, dims.obs, self.device, self.gen, self.seeds) / self.seeds
                for n in (1000, *self.sizes)
            ]
            return line_through((self.sizes[0], seconds[1]), (self.sizes[1], seconds[2]))

        return self._once(key, measure)

    def rollout(self, dims: Dims, cfg: TrainConfig) -> tuple[float, float]:
        """(intercept s, s per model step) of a rollout phase: the training loop's own
        (`mbpo.train.ModelPhase.rollout`: start states drawn from real data, the branches rolled
        through the elites and the env's termination function, the rows stored in the model
        buffer), timed at lengths 1 and 2 with no branch ever ending, so every row is stored."""
        mb = cfg.mbpo
        key = (
            "rollout phase",
            dims.env,
            dims.obs,
            dims.act,
            cfg.sac.actor_hidden,
            mb.ensemble_size,
            mb.num_elites,
            mb.model_hidden,
            mb.rollout_batch_size,
        )

        def measure() -> tuple[float, float]:
            from mbpo.buffer import ReplayBuffer
            from mbpo.seeding import Generators
            from mbpo.train import ModelPhase

            class Discard:
                def row(self, name: str, row: dict) -> None:
                    pass

            # the model buffer sized for the lengths timed (the run's may be far larger)
            short = dataclasses.replace(cfg, mbpo=dataclasses.replace(mb, rollout_length=(2,)))
            gens = Generators(self.gen, np.random.default_rng(0), 0, 0)
            phase = ModelPhase(short, dims.obs, dims.act, self.device, [gens] * self.seeds)
            ends = phase.terminated
            phase.terminated = lambda obs, act, next_obs: ends(obs, act, next_obs) & False
            real = ReplayBuffer(mb.rollout_batch_size, dims.obs, dims.act, self.device)
            real.add_batch(real.layout.random_rows(mb.rollout_batch_size, self.gen, self.device))
            agent = self._agent(dims, cfg)

            def at(length: int) -> float:
                phase.cfg = dataclasses.replace(short.mbpo, rollout_length=(length,))
                reals, writers = [real] * self.seeds, [Discard()] * self.seeds
                seconds = self._timed(lambda: phase.rollout(reals, agent, 0, writers), 1, max(self.repeat - 1, 1))
                return seconds / self.seeds

            return line_through((1, at(1)), (2, at(2)))

        return self._once(key, measure)


def project(
    cfg: TrainConfig, timer: Timer, epochs: tuple[float, float], fits: dict[int, int] | None = None
) -> dict[str, float]:
    """Projected seconds of each phase (`PHASES`) of the run `cfg` describes: `epochs` is (the
    first fit's, every later fit's); `fits` (env step -> epochs), where given, overrides them."""
    run, sac = cfg.run, cfg.sac
    dims = dims_of(run.env, run.truncate_obs)
    steps = run.total_steps
    env_step = timer.env_step(dims, cfg)
    evaluations = 1 + steps // run.eval_every + (steps % run.eval_every != 0)  # at step 0, every eval_every, the end
    out = dict.fromkeys(PHASES, 0.0)
    out["env"] = steps * env_step
    out["eval"] = evaluations * run.eval_episodes * dims.episode_steps * env_step
    out["update"] = max(steps - sac.random_steps, 0) * sac.updates_per_step * timer.update(dims, cfg)
    if run.algo == "mbpo":
        mb = cfg.mbpo
        e0, e1 = timer.epoch(dims, cfg)
        r0, r1 = timer.rollout(dims, cfg)
        first = max(sac.random_steps, 2)  # mbpo.train.ModelPhase.due
        for k, step in enumerate(range(first, steps + 1, mb.model_train_freq)):
            # every epoch trains on the split and scores the holdout: linear in all `step` rows
            per_fit = (fits or {}).get(step, epochs[0] if k == 0 else epochs[1])
            out["model"] += per_fit * (e0 + e1 * step)
            out["rollout"] += r0 + r1 * mb.rollout_length_at(step, sac.random_steps)
    return out


def load_plan(path: Path) -> dict[tuple[str, str, str], tuple[TrainConfig, int]]:
    """The config's runs as the pipeline plans them: (env, algo, variant) -> (the resolved config
    of its first seed, the number of runs: seeds x devices); ValueError with one line on bad input."""
    from plan.experiment import load_experiment, runs

    try:
        planned = runs(load_experiment(path))  # its one line names the file or the field
    except ValueError as exc:  # ExperimentError is one
        message = str(exc)
        raise ValueError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    plan: dict[tuple[str, str, str], tuple[TrainConfig, int]] = {}
    for run in planned:
        key = (run.env, run.algo, run.variant)
        config, count = plan.get(key, (run.config, 0))
        plan[key] = (config, count + 1)
    return plan


def load_finished(folder: Path) -> tuple[TrainConfig, dict[str, float], dict, dict[int, int] | None]:
    """A finished run's resolved config, its measured seconds per phase, its metadata, and for
    MBPO its model fits' epochs (env step -> epochs, from its model.csv)."""
    import shlex

    from analysis.runs import RunFolderError, lockstep_share, metadata
    from mbpo.cli import ArgumentError, config_from_args

    try:
        meta = metadata(folder)
    except RunFolderError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(meta.get("seconds"), dict):
        raise ValueError(f"{folder}/metadata.json: no 'seconds' object of phase timings")
    try:
        words = shlex.split(str(meta.get("command", "")))
    except ValueError as exc:
        raise ValueError(f"{folder}/metadata.json: its 'command' does not parse ({exc})") from None
    if words[:4] != ["python", "-m", "mbpo", "train"]:
        raise ValueError(f"{folder}/metadata.json: its 'command' is not a `python -m mbpo train` command")
    try:
        cfg = config_from_args(words[4:])
    except ArgumentError as exc:
        raise ValueError(f"{folder}/metadata.json: its command: {exc}") from None
    seconds = meta["seconds"]
    try:
        measured = {phase: float(seconds.get(phase, 0.0)) for phase in PHASES}
        measured["env"] += float(seconds.get("act", 0.0))  # the run times the action apart
    except (TypeError, ValueError):
        raise ValueError(f"{folder}/metadata.json: its 'seconds' hold a value that is not a number") from None
    if not 0 < sum(measured.values()) < np.inf:
        raise ValueError(f"{folder}/metadata.json: its 'seconds' do not add up to a time > 0")
    try:
        group = lockstep_share(meta, folder / "metadata.json")
    except RunFolderError as exc:
        raise ValueError(str(exc)) from None
    if group > 1:  # the seconds are its process's, shared by the seeds it trained in lockstep
        measured = {phase: value / group for phase, value in measured.items()}
    fits = None
    if cfg.run.algo == "mbpo":
        fits = {step: epochs for step, epochs, _ in read_fits(folder / "model.csv")}
    return cfg, measured, meta, fits


def elsewhere(meta: dict, device: torch.device, threads: int, seeds_per_job: int = 1) -> str:
    """How a finished run's machine differed from this one (device, CPU, threads): its times
    compare with this projection only where it ran here, alone on its core, at as many seeds per
    process as projected."""
    from analysis.runs import lockstep_share

    notes = []
    group = lockstep_share(meta, "metadata.json")  # load_finished has checked it
    if group != seeds_per_job:
        notes.append(f"trained {group} seed(s) per process, projected at {seeds_per_job}")
    if meta.get("device") != device.type:
        notes.append(f"ran on {meta.get('device')}")
    elif device.type == "cpu":
        from mbpo.record import cpu_info

        here, there = cpu_info(), meta.get("cpu") if isinstance(meta.get("cpu"), dict) else {}
        differ = [key for key in there if key in here and there[key] != here[key]]
        if differ:
            notes.append("another CPU: " + ", ".join(f"{key} {there[key]}" for key in differ))
    if meta.get("threads") != threads:
        notes.append(f"{meta.get('threads')} thread(s)")
    return f"  ({'; '.join(notes)})" if notes else ""


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}" if seconds < 36_000 else f"{seconds / 3600:.0f}"


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--configfile",
        type=Path,
        default=ROOT / "config/paper.yaml",
        help="the experiment (default: config/paper.yaml)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where the parts are timed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the runs' own default: 1)")
    parser.add_argument(
        "--model-csv", type=Path, nargs="+", help=f"runs' model.csv: epochs per fit (default: {DEFAULT_MODEL_CSVS})"
    )
    parser.add_argument("--epochs", type=float, help="epochs of every model fit, instead of --model-csv")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs=2,
        default=(30_000, 60_000),  # above 25k rows the holdout stops growing (max_holdout 5000)
        metavar=("N1", "N2"),
        help="real-data sizes an epoch is timed at",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds per timing (the median is kept)")
    parser.add_argument(
        "--seeds-per-job",
        type=int,
        default=1,
        help="seeds trained in lockstep per process: every part is timed for that many seeds and "
        "projected per seed (default: 1, one process per run)",
    )
    parser.add_argument(
        "--check", type=Path, nargs="+", default=[], metavar="RUN", help="finished runs to compare against"
    )
    args = parser.parse_args()
    require(
        parser,
        threads_check(args.threads),
        ("--epochs", args.epochs is None or 0 < args.epochs < np.inf, "a finite number > 0", args.epochs),
        (
            "--sizes",
            1000 < args.sizes[0] and 2 * args.sizes[0] <= args.sizes[1] <= 2_000_000,
            "two sizes with 1000 < N1 and 2 x N1 <= N2 <= 2000000",
            args.sizes,
        ),
        ("--repeat", args.repeat >= 1, ">= 1", args.repeat),
        ("--seeds-per-job", 1 <= args.seeds_per_job <= 64, "in 1..64", args.seeds_per_job),
    )
    check_device(parser, args.device)
    if args.epochs is not None:
        epochs = (args.epochs, args.epochs)
    else:
        paths = args.model_csv or sorted(ROOT.glob(DEFAULT_MODEL_CSVS))
        if not paths:
            parser.error(f"--model-csv: no runs' model.csv given and none at {DEFAULT_MODEL_CSVS} (or give --epochs)")
        try:
            epochs = fit_epochs(paths)
        except ValueError as exc:
            parser.error(f"--model-csv {exc}")
    try:
        finished = [load_finished(folder) for folder in args.check]
    except ValueError as exc:
        parser.error(f"--check {exc}")
    try:
        plan = load_plan(args.configfile)
    except OSError as exc:
        parser.error(f"--configfile {args.configfile}: {exc.strerror}")
    except ValueError as exc:  # names the file
        parser.error(f"--configfile {exc}")

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {device} ({name}), {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    print(f"model epochs per fit: {epochs[0]:.1f} for the first (from scratch), {epochs[1]:.1f} for the later ones")
    timer = Timer(
        device,
        args.repeat,
        tuple(args.sizes),
        lambda line: print(line, file=sys.stderr, flush=True),
        args.seeds_per_job,
    )

    if finished:
        print(
            "\nfinished runs, projected / measured seconds per phase (env: env steps and actions; "
            "model fits at each run's own epochs, from its model.csv):"
        )
        print(f"{'run':<42} " + " ".join(f"{p:>15}" for p in PHASES) + f" {'total':>15}  ratio")
        for (cfg, measured, meta, fits), folder in zip(finished, args.check):
            projected = project(cfg, timer, epochs, fits)
            cells = [f"{projected[p]:>7.0f}/{measured[p]:<7.0f}" for p in PHASES]
            total_p, total_m = sum(projected.values()), sum(measured.values())
            note = elsewhere(meta, device, args.threads, args.seeds_per_job)
            label = "/".join(folder.resolve().parts[-5:])  # env/algo/variant/device/seed
            print(
                f"{label:<42} " + " ".join(cells) + f" {total_p:>7.0f}/{total_m:<7.0f}  {total_p / total_m:.2f}{note}"
            )

    shown = (
        os.path.relpath(args.configfile) if args.configfile.resolve().is_relative_to(Path.cwd()) else args.configfile
    )
    lockstep = f", {args.seeds_per_job} seeds per process in lockstep" if args.seeds_per_job > 1 else ""
    print(f"\n{shown}: projected hours per run on this device, one run per {args.threads} thread(s){lockstep}:")
    header = f"{'env':<28} {'algo':<15} {'variant':<8} {'steps':>8} {'runs':>5} " + " ".join(f"{p:>7}" for p in PHASES)
    print(header + f" {'per run':>8} {'all runs':>9}")
    grand, count = 0.0, 0
    for (env, algo, variant), (cfg, n) in plan.items():
        parts = project(cfg, timer, epochs)
        per_run = sum(parts.values())
        grand += per_run * n
        count += n
        split = " ".join(f"{hours(parts[p]):>7}" for p in PHASES)
        print(
            f"{env:<28} {algo:<15} {variant:<8} {cfg.run.total_steps:>8} {n:>5} {split} {hours(per_run):>8} {hours(per_run * n):>9}"
        )
    if args.seeds_per_job > 1:
        jobs = sum(-(-n // args.seeds_per_job) for _, n in plan.values())
        print(
            f"all {count} runs in {jobs} jobs of up to {args.seeds_per_job} seeds: {grand / 3600:,.0f} hours of this "
            f"device at {args.threads} thread(s) per job"
        )
    else:
        print(f"all {count} runs: {grand / 3600:,.0f} hours of this device at {args.threads} thread(s) per run")


if __name__ == "__main__":
    main()
