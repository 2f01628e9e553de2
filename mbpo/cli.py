"""`python -m mbpo train ...`: one command is one run.

The flags are generated from the config dataclasses, so `--help` lists every hyperparameter with
its default and the values of the named presets. Bad input ends with one line on stderr and
exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import typing
from pathlib import Path
from typing import Any, NoReturn, Sequence

import torch

from mbpo.config import PRESETS, SECTIONS, ConfigError, TrainConfig, build_config
from mbpo.envs import EnvError, make_env
from mbpo.progress import Progress
from mbpo.record import OutputExistsError, RunWriter, now_iso, provenance
from mbpo.seeding import make_generators
from mbpo.termination import termination_fn
from mbpo.train import streams, train

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


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
        description="Train one run and write eval.csv, train.csv and metadata.json to --out.",
    )
    train.add_argument("--out", type=Path, required=True, help="results folder of this run")
    train.add_argument("--overwrite", action="store_true", help="replace a complete run already in --out")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    _add_config_flags(train)
    return parser


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("device 'cuda' requested but torch sees no CUDA device (use --device cpu or auto)")
    return torch.device(name)


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


def train_command(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "out", "overwrite", "quiet")}
    try:
        cfg = build_config(overrides)
        make_env(cfg.run.env).close()  # unknown ids, missing extras, unusable spaces
        if cfg.run.algo == "mbpo":
            termination_fn(cfg.run.env)
    except (ConfigError, EnvError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    device = resolve_device(cfg.run.device)

    torch.set_num_threads(cfg.run.threads)
    # Denormal floats (tiny temperatures, Adam moments late in training) make CPU arithmetic
    # many times slower: flushing them to zero cut SAC updates inside MBPO from 6.0 to 4.4 ms.
    torch.set_flush_denormal(True)
    gens = make_generators(cfg.run.seed, device)
    label = f"{cfg.run.algo} {cfg.run.env} seed {cfg.run.seed}"
    started = now_iso()
    try:
        writer = RunWriter(args.out, args.overwrite, streams(cfg))
    except OutputExistsError as exc:
        raise UsageError(str(exc)) from None
    progress = Progress(cfg.run.total_steps, label, cfg.run.log_every, quiet=args.quiet)
    try:
        summary = train(cfg, device, gens, writer, progress)
    except BaseException:
        writer.close()
        progress.close()
        raise
    progress.close()
    metadata = {
        "algo": cfg.run.algo,
        "env": cfg.run.env,
        "seed": cfg.run.seed,
        "config": cfg.to_dict(),
        **provenance(device),
        "start_time": started,
        "end_time": now_iso(),
        **summary,
        "command": reproduce_command(cfg, args.out),
    }
    writer.finish(metadata)
    if not args.quiet:
        print(
            f"[{label}] done in {summary['wall_seconds']:.1f}s "
            f"({summary['env_steps_per_second']:.0f} env steps/s), "
            f"final eval return {summary['final_eval_return']:.1f} -> {args.out}",
            file=sys.stderr,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return train_command(args)
    except UsageError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; the run is incomplete (only *.part files were written)", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")
