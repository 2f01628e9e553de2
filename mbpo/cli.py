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
from typing import Any, Sequence

import torch

from mbpo import checkpoint, memory
from mbpo.buffer import AllocationError
from mbpo.checkpoint import Checkpointer, CheckpointError, Preempted
from mbpo.config import PRESETS, SECTIONS, ConfigError, TrainConfig, build_config, paper_table
from mbpo.envs import EnvError, make_env
from mbpo.progress import Progress
from mbpo.record import (
    CHECKPOINT_FILE,
    RunFileError,
    RunFolder,
    RunLockedError,
    RunWriter,
    is_complete,
    now_iso,
    provenance,
    streams,
)
from mbpo.seeding import make_generators
from mbpo.termination import termination_fn
from mbpo.train import Trainer, TrainingDiverged
from mbpo.usage import EXIT_USAGE, ArgumentError, UsageError
from mbpo.usage import OneLineParser as _Parser

NON_CONFIG_ARGS = ("command", "out", "overwrite", "quiet", "checkpoint_interval")
EXIT_PREEMPTED = 143  # 128 + SIGTERM: stopped on request after saving a checkpoint


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
    try:
        cfg = build_config(overrides)
        make_env(cfg.run.env, cfg.run.truncate_obs).close()
        if cfg.run.algo == "mbpo":
            termination_fn(cfg.run.env)
    except (ConfigError, EnvError, ValueError) as exc:
        raise ArgumentError(str(exc)) from None
    return cfg


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


def _load_resumable(out: Path, cfg: TrainConfig) -> dict | None:
    """The checkpoint to resume from, None for a fresh start; UsageError if it is not this run's."""
    path = out / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        payload = checkpoint.load(path, torch.device("cpu"))  # each part is copied to where it lives
    except CheckpointError as exc:
        raise UsageError(f"{exc}; pass --overwrite to discard it and start over") from None
    diff = checkpoint.config_difference(payload["config"], cfg.to_dict())
    if diff is not None:
        raise UsageError(f"{out} holds an interrupted run with another config ({diff}); pass --overwrite to discard it")
    files = sorted(["eval", *streams(cfg)])
    if sorted(payload["offsets"]) != files:
        raise UsageError(
            f"{path}: records the files {sorted(payload['offsets'])}, this run writes {files}; "
            "pass --overwrite to discard it and start over"
        )
    return payload


def train_command(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in vars(args).items() if k not in NON_CONFIG_ARGS}
    try:
        cfg = build_config(overrides)
        env = make_env(cfg.run.env, cfg.run.truncate_obs)  # unknown ids, missing extras, unusable spaces
        obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
        env.close()
        if cfg.run.algo == "mbpo":
            termination_fn(cfg.run.env)
    except (ConfigError, EnvError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if not (args.checkpoint_interval >= 0 and args.checkpoint_interval < float("inf")):
        raise UsageError(f"--checkpoint-interval must be a finite number >= 0, got {args.checkpoint_interval}")
    device = resolve_device(cfg.run.device)
    try:
        memory.check(cfg, obs_dim, act_dim, device)  # before any run file is written
    except memory.NotEnoughMemory as exc:
        raise UsageError(str(exc)) from None
    out: Path = args.out
    try:
        folder = RunFolder(out)
    except RunLockedError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot use --out {out}: {exc.strerror or exc}") from None
    try:
        return _train_in(folder, cfg, device, args)
    finally:
        folder.release()


def _train_in(folder: RunFolder, cfg: TrainConfig, device: torch.device, args: argparse.Namespace) -> int:
    out = folder.out
    if not args.overwrite:
        try:
            complete = is_complete(out)
        except RunFileError as exc:
            raise UsageError(f"{exc}; pass --overwrite to replace it") from None
        if complete:
            raise UsageError(f"{out} already holds a complete run (pass --overwrite to replace it)")
    resume = None if args.overwrite else _load_resumable(out, cfg)
    torch.set_num_threads(cfg.run.threads)
    # Denormal floats (tiny temperatures, Adam moments late in training) make CPU arithmetic
    # many times slower: flushing them to zero cut SAC updates inside MBPO from 6.0 to 4.4 ms.
    torch.set_flush_denormal(True)
    gens = make_generators(cfg.run.seed, device)
    label = f"{cfg.run.algo} {cfg.run.env} seed {cfg.run.seed}"
    prov = provenance(device)
    if resume is None:
        folder.remove_owned()
        writer = RunWriter(out, streams(cfg))
        started, resumes = now_iso(), []
    else:
        try:
            writer = RunWriter(out, streams(cfg), offsets=resume["offsets"])
        except RunFileError as exc:
            raise UsageError(f"{exc}; pass --overwrite to start over") from None
        started = resume["start_time"]
        resumes = [
            *resume["resumes"],
            {
                "env_step": resume["trainer"]["step"],
                "time": now_iso(),
                "git_revision": prov["git_revision"],
                "host": prov["host"],
            },
        ]
    progress = Progress(cfg.run.total_steps, label, cfg.run.log_every, quiet=args.quiet)
    header = {"config": cfg.to_dict(), "start_time": started, "resumes": resumes}
    checkpointer = Checkpointer(out, args.checkpoint_interval, header, resumed_from=resume)
    try:
        try:
            trainer = Trainer(cfg, device, gens, writer, progress)
        except AllocationError as exc:  # the memory was there when checked, gone by now
            writer.close()
            if resume is None:
                folder.remove_owned()  # only the part files' headers: nothing of the run is lost
            raise UsageError(str(exc)) from None
        if resume is not None:
            try:
                trainer.load_state_dict(resume["trainer"])
            except CheckpointError as exc:
                raise UsageError(
                    f"{out / CHECKPOINT_FILE}: {exc}; if the checkpoint is damaged or from other code, "
                    "pass --overwrite to start over"
                ) from None
            progress.resumed(trainer.step)
            if not args.quiet:
                print(f"[{label}] resuming from the checkpoint at env step {trainer.step}", file=sys.stderr)
        summary = trainer.run(checkpointer)
    except BaseException:
        writer.close()
        raise
    finally:
        progress.close()
        checkpointer.close()
    metadata = {
        "algo": cfg.run.algo,
        "env": cfg.run.env,
        "seed": cfg.run.seed,
        "config": cfg.to_dict(),
        **prov,
        "start_time": started,
        "end_time": now_iso(),
        "resumes": resumes,
        "checkpoints": checkpointer.summary(),
        **summary,
        "command": reproduce_command(cfg, out),
    }
    writer.finish(metadata)
    if not args.quiet:
        print(
            f"[{label}] done in {summary['wall_seconds']:.1f}s "
            f"({summary['env_steps_per_second']:.0f} env steps/s), "
            f"final eval return {summary['final_eval_return']:.1f} -> {out}",
            file=sys.stderr,
        )
    return 0


def _rerun_hint(out: Path, overwrite: bool = False) -> str:
    """What running the same command again does with the incomplete run in `out` (with
    `--overwrite` it would discard the checkpoint: resuming is the command without it)."""
    try:
        saved = (out / CHECKPOINT_FILE).is_file()
    except OSError:
        saved = False
    if saved:
        if overwrite:
            return "run the same command without --overwrite to resume from its last checkpoint"
        return "run the same command again to resume from its last checkpoint"
    return "no checkpoint was written yet, so running the same command again starts over"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return train_command(args)
    except UsageError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Preempted as exc:
        again = "the same command without --overwrite" if args.overwrite else "the same command again"
        print(f"{parser.prog} {args.command}: stopped: {exc}; run {again} to resume", file=sys.stderr)
        return EXIT_PREEMPTED
    except TrainingDiverged as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as exc:
        if not memory.is_allocation_failure(exc):
            raise
        print(
            f"{parser.prog} {args.command}: error: out of memory during the run ({memory.first_line(exc)}); "
            f"{_rerun_hint(args.out, args.overwrite)}",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:  # a full disk, a folder removed under the run, ...
        where = exc.filename if exc.filename else f"the run folder {args.out}"
        print(f"{parser.prog} {args.command}: error: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: interrupted; the run is incomplete: {_rerun_hint(args.out, args.overwrite)}",
            file=sys.stderr,
        )
        return 130
    raise AssertionError(f"unhandled command {args.command}")
