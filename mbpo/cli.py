"""`python -m mbpo train ...`: one command is one run.

The flags are generated from the config dataclasses, so `--help` lists every hyperparameter with
its default and the values of the named presets. Bad input ends with one line on stderr and
exit status 2. This module imports no torch: `--help`, bad flags and bad settings are answered in a
fraction of a second, and the run itself (`mbpo.launch`) is imported only once they pass.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import signal
import sys
import typing
from pathlib import Path
from typing import Any, Iterator, Sequence

from mbpo.config import PRESETS, SECTIONS, TrainConfig, build_config, paper_table
from mbpo.usage import EXIT_USAGE, ArgumentError
from mbpo.usage import OneLineParser as _Parser

NON_CONFIG_ARGS = ("command", "out", "overwrite", "quiet", "checkpoint_interval")


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


def _out_folder(text: str) -> Path:
    if not text:  # Path("") is ".": the run would land in the current folder
        raise argparse.ArgumentTypeError("expected a folder, got an empty string")
    return Path(text)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if value is None:
        return "auto"
    return str(value)


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} options" if section != "run" else "run options")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            preset_notes = [
                f"{algo} {p}: {_show(v[section][f.name])}"
                for algo, presets in PRESETS.items()
                for p, v in presets.items()
                if f.name in v.get(section, {})
            ]
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            help_text = f"{f.metadata['help']} (default: {_show(default)}"
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
            group.add_argument(_flag(f.name), **kwargs)


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
    train.add_argument("--out", type=_out_folder, required=True, help="results folder of this run")
    train.add_argument(
        "--overwrite", action="store_true", help="discard a complete or interrupted run in --out and start over"
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
    with the message the command would print: the pipeline checks every planned run with it."""
    parser = build_parser()
    for action in parser._subparsers._group_actions:  # the subcommand parsers
        for sub in action.choices.values():
            sub.raise_errors = True
    parser.raise_errors = True
    namespace = parser.parse_args(["train", "--out", "-", *args])
    overrides = {k: v for k, v in vars(namespace).items() if k not in NON_CONFIG_ARGS}
    from mbpo.termination import termination_fn  # imports torch: only the pipeline's planner calls this

    try:
        cfg = build_config(overrides)
        env_sizes(cfg)
        if cfg.run.algo == "mbpo":
            termination_fn(cfg.run.env)
    except ValueError as exc:  # ConfigError, EnvError
        raise ArgumentError(str(exc)) from None
    return cfg


def env_sizes(cfg: TrainConfig) -> tuple[int, int]:
    """The observation and action sizes of the run's env; EnvError (a ValueError) for an unknown id,
    a missing extra or an unusable space. Imports gymnasium (a quarter second), not torch."""
    from mbpo.envs import make_env

    env = make_env(cfg.run.env, cfg.run.truncate_obs)
    try:
        return env.observation_space.shape[0], env.action_space.shape[0]
    finally:
        env.close()


def reproduce_command(cfg: TrainConfig, out: Path) -> str:
    """The command that repeats this run with every hyperparameter spelled out."""
    words = ["python", "-m", "mbpo", "train"]
    for section in SECTIONS:
        if section == "mbpo" and cfg.run.algo != "mbpo":
            continue
        for name, value in getattr(cfg, section).__dict__.items():
            if isinstance(value, bool):
                words.append(_flag(name) if value else "--no-" + name.replace("_", "-"))
            else:
                words += [_flag(name), _show(value)]
    words += ["--out", str(out)]
    return shlex.join(words)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[list[int]]:
    """Ctrl-C held while the block runs, then Python's default handler (KeyboardInterrupt) for the
    run. The block imports torch, gymnasium and the training code: a KeyboardInterrupt in the
    middle of an import can leave a library half-initialised (numpy without `logical_or`) or be
    swallowed by one, after which the run would go on or fail with a traceback. The list records
    the interrupts that arrived."""
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    with _interrupts_held() as held:  # nothing is written before the run starts
        parser = build_parser()
        args = parser.parse_args(argv)
        prog = f"{parser.prog} {args.command}"
        overrides = {k: v for k, v in vars(args).items() if k not in NON_CONFIG_ARGS}
        try:
            cfg = build_config(overrides)
            sizes = env_sizes(cfg)
        except ValueError as exc:  # ConfigError, EnvError
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not (args.checkpoint_interval >= 0 and args.checkpoint_interval < float("inf")):
            print(
                f"{prog}: error: --checkpoint-interval must be a finite number >= 0, got {args.checkpoint_interval}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        from mbpo import launch  # torch and the training code: seconds
    if held:
        print(f"{prog}: interrupted while starting; nothing was written", file=sys.stderr)
        return 130
    return launch.train(prog, cfg, sizes, args)
