"""`python -m mbpo train ...`: one command is one run.

The flags are generated from the config dataclasses, so `--help` lists every hyperparameter with
its default and the values of the named presets. Bad input ends with one line on stderr and
exit status 2. This module imports no torch: `--help`, bad flags and bad settings are answered in a
fraction of a second, and the run itself (`mbpo.launch`) is imported only once they pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import signal
import sys
import threading
import typing
from pathlib import Path
from typing import Any, Sequence

from mbpo.config import PRESETS, SB3_MISSING, SECTIONS, TrainConfig, build_config, paper_table
from mbpo.flags import flag, show
from mbpo.usage import EXIT_USAGE, ArgumentError
from mbpo.usage import OneLineParser as _Parser

NON_CONFIG_ARGS = ("command", "out", "overwrite", "skip_complete", "quiet", "checkpoint_interval", "seeds")
SEED_FIELD = "{seed}"  # in --out with --seeds: each seed's folder


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _float_tuple(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _optional_float(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"seed {repeated[0]} is listed twice")
    return seeds


def _out_folder(text: str) -> Path:
    if not text:  # Path("") is ".": the run would land in the current folder
        raise argparse.ArgumentTypeError("expected a folder, got an empty string")
    return Path(text)


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} options" if section != "run" else "run options")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            preset_notes = [
                f"{algo} {p}: {show(v[section][f.name])}"
                for algo, presets in PRESETS.items()
                for p, v in presets.items()
                if f.name in v.get(section, {})
            ]
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            help_text = f"{f.metadata['help']} (default: {show(default)}"
            help_text += f"; preset {', '.join(preset_notes)})" if preset_notes else ")"
            kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
            if hint is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif hint == tuple[int, ...]:
                kwargs.update(type=_int_tuple, metavar="W[,W...]")
            elif hint == tuple[float, ...]:
                kwargs.update(type=_float_tuple, metavar="X[,X...]")
            elif hint == (float | None):
                kwargs.update(type=_optional_float, metavar="X|auto")
            else:
                kwargs["type"] = hint
                if "choices" in f.metadata:
                    kwargs["choices"] = f.metadata["choices"]
            if f.name == "preset":
                kwargs["choices"] = sorted({p for presets in PRESETS.values() for p in presets})
            group.add_argument(flag(f.name), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mbpo", description="MBPO / SAC benchmark harness: one command is one run.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = sub.add_parser(
        "train",
        help="train one run and write its results folder",
        description=(
            "Train one run and write eval.csv, train.csv and metadata.json to --out. Running the same "
            "command again after an interruption resumes from the run's last checkpoint."
        ),
        epilog="--preset paper also applies the MBPO paper's per-environment settings (SAC takes "
        "total_steps, random_steps and truncate_obs only; eval_every = epoch_length):\n\n" + paper_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--out",
        type=_out_folder,
        required=True,
        help=f"results folder of this run; with --seeds a pattern holding {SEED_FIELD}, e.g. runs/seed{SEED_FIELD}",
    )
    train.add_argument(
        "--seeds",
        type=_seed_list,
        metavar="S[,S...]",
        help="train these seeds in lockstep in one process, one batched computation (instead of --seed): each "
        "seed's folder holds exactly what its run alone writes, with the command that repeats it alone",
    )
    train.add_argument(
        "--overwrite", action="store_true", help="discard a complete or interrupted run in --out and start over"
    )
    train.add_argument(
        "--skip-complete",
        action="store_true",
        help="succeed without training when --out already holds a complete run of this config (a pipeline "
        "re-running a job whose process was killed after the run was committed); a complete run of another "
        "config is still refused",
    )
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument(
        "--checkpoint-interval",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="save a checkpoint every SECONDS of training (and on SIGTERM); 0 saves only on SIGTERM (default: 300)",
    )
    _add_config_flags(train)
    return parser


def config_from_args(args: Sequence[str]) -> TrainConfig:
    """The resolved config of `python -m mbpo train ARGS` (no --out needed), or ArgumentError
    with the message the command would print."""
    return resolve_args(args)[0]


def resolve_args(args: Sequence[str]) -> tuple[TrainConfig, tuple[int, int]]:
    """`config_from_args` and the env's observation and action sizes: the pipeline's plan resolves
    every planned run with it."""
    parser = build_parser()
    for action in parser._subparsers._group_actions:  # the subcommand parsers
        for sub in action.choices.values():
            sub.raise_errors = True
    parser.raise_errors = True
    namespace = parser.parse_args(["train", "--out", "-", *args])
    try:
        return _resolve(namespace)
    except ValueError as exc:  # ConfigError, EnvError, no termination function
        raise ArgumentError(str(exc)) from None


def _resolve(namespace: argparse.Namespace) -> tuple[TrainConfig, tuple[int, int]]:
    """The config of parsed `train` arguments and its env's sizes (`check_env`), or ValueError."""
    overrides = {k: v for k, v in vars(namespace).items() if k not in NON_CONFIG_ARGS}
    seeds = getattr(namespace, "seeds", None)
    if seeds is not None:
        if "seed" in overrides:
            raise ValueError("--seed and --seeds both given: use --seed N for one run, --seeds A,B,... for several")
        if "{seed}" not in str(getattr(namespace, "out", "")) and str(getattr(namespace, "out", "-")) != "-":
            raise ValueError(
                f"--out must hold {SEED_FIELD} with --seeds (each seed has its own folder), got {namespace.out}"
            )
        if overrides.get("algo") == "sb3_sac":
            raise ValueError("--seeds trains this harness's algorithms; sb3_sac trains one seed per process (--seed)")
        for seed in seeds:  # each seed's config must be valid, not only the first's
            build_config({**overrides, "seed": seed})
        overrides["seed"] = seeds[0]
    cfg = build_config(overrides)
    # found, not imported (SB3 imports torch): the plan of a pipeline refuses its runs up front
    if cfg.run.algo == "sb3_sac" and importlib.util.find_spec("stable_baselines3") is None:
        raise ValueError(SB3_MISSING)
    return cfg, check_env(cfg)


def check_env(cfg: TrainConfig) -> tuple[int, int]:
    """The observation and action sizes of the run's env; EnvError (a ValueError) for an unknown id,
    a missing extra or an unusable space, ValueError for MBPO on an env without a termination
    function. Imports gymnasium (a quarter second), not torch."""
    from mbpo.envs import make_env
    from mbpo.termination import termination_fn

    env = make_env(cfg.run.env, cfg.run.truncate_obs)
    try:
        sizes = env.observation_space.shape[0], env.action_space.shape[0]
    finally:
        env.close()
    if cfg.run.algo == "mbpo":
        termination_fn(cfg.run.env)
    return sizes


class _StartUp:
    """Ctrl-C held from the start of the command until its run begins (`release`): meanwhile it
    parses, checks and imports gymnasium, torch and the training code, and a KeyboardInterrupt in
    the middle of an import can leave a library half-initialised (numpy without `logical_or`) or be
    swallowed by one, after which the run would go on or fail with a traceback.

    `pending` is the list `python -m mbpo` has held Ctrl-C in since the interpreter started: its
    handler stays, so no interrupt falls between the two, and Python's own handler
    (KeyboardInterrupt) follows. Called in-process (`pending` None), the caller's handler is
    installed again at `release`; outside the main thread, which never receives signals, nothing
    is held."""

    def __init__(self, pending: list[int] | None) -> None:
        self.arrived: list[int] = [] if pending is None else pending
        self._after: Any = signal.default_int_handler
        self._holding = pending is not None
        if pending is None and threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, lambda signum, frame: self.arrived.append(signum))
            self._after = previous if previous is not None else signal.default_int_handler
            self._holding = True

    def release(self) -> None:
        """Ctrl-C is a KeyboardInterrupt from now on, and one is raised here if Ctrl-C came while
        it was held."""
        self.close()
        if self.arrived:
            raise KeyboardInterrupt

    def close(self) -> None:
        """The handler that follows the hold, installed (once)."""
        if self._holding:
            self._holding = False
            signal.signal(signal.SIGINT, self._after)


def main(argv: Sequence[str] | None = None, pending: list[int] | None = None) -> int:
    """`python -m mbpo ARGV`: its exit status (see `mbpo.launch.train`). Until the run starts
    nothing is written, and a Ctrl-C held meanwhile (`pending`: see `_StartUp`) ends the command
    with one line and status 130, even when its arguments were bad."""
    prog = "python -m mbpo train"
    start_up = _StartUp(pending)
    try:
        try:
            start = _prepare(argv)
        except SystemExit as exc:  # --help (printed, status 0), or argparse's own error line (status 2)
            if exc.code not in (0, None) or not start_up.arrived:
                raise  # an error line is out: it stays the only one
            start = None
        if start_up.arrived:
            print(f"{prog}: interrupted while starting; nothing was written", file=sys.stderr)
            return 130
        if isinstance(start, str):
            print(f"{prog}: error: {start}", file=sys.stderr)
            return EXIT_USAGE
        cfg, sizes, args, launch = start
        return launch.train(prog, cfg, sizes, args, start_up.release)
    finally:
        start_up.close()  # when the command ended before its run (bad input, --help)


def _prepare(argv: Sequence[str] | None) -> str | tuple[TrainConfig, tuple[int, int], argparse.Namespace, Any]:
    """Parse, resolve the config, check the env and import the training code (`mbpo.launch`); the
    error line instead when the input is bad."""
    args = build_parser().parse_args(argv)
    try:
        cfg, sizes = _resolve(args)
    except ValueError as exc:  # ConfigError, EnvError, no termination function
        return str(exc)
    if not (args.checkpoint_interval >= 0 and args.checkpoint_interval < float("inf")):
        return f"--checkpoint-interval must be a finite number >= 0, got {args.checkpoint_interval}"
    from mbpo import launch  # torch and the training code: seconds

    return cfg, sizes, args, launch
