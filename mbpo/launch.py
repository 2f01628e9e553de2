"""The `train` command once its arguments are parsed and its config resolved (`mbpo.cli`): the
device, the memory check, a fresh start or a resume from the checkpoint, the training, the run
files, and one line for each way it can end. Kept apart from the parser so that `--help` and bad
flags are answered before torch and the training code are imported (seconds)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch

from mbpo import checkpoint, memory
from mbpo.buffer import AllocationError
from mbpo.checkpoint import Checkpointer, CheckpointError, Preempted
from mbpo.cli import reproduce_command
from mbpo.config import TrainConfig
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
from mbpo.train import Trainer, TrainingDiverged
from mbpo.usage import EXIT_USAGE, UsageError

EXIT_PREEMPTED = 143  # 128 + SIGTERM: stopped on request after saving a checkpoint


def train(
    prog: str, cfg: TrainConfig, env_sizes: tuple[int, int], args: argparse.Namespace, release: Callable[[], None]
) -> int:
    """Run `prog` (`python -m mbpo train`) with the resolved `cfg` (its env's observation and
    action sizes `env_sizes`, `mbpo.cli.check_env`) and return its exit status: 0 done,
    2 bad input, 143 stopped by SIGTERM after a checkpoint, 130 Ctrl-C, 1 any other failure
    (each reported as one line on stderr). `release` ends the start-up's hold on Ctrl-C
    (`mbpo.cli._StartUp`), raising KeyboardInterrupt if one came meanwhile."""
    started = False
    try:
        release()
        started = True  # nothing is written before this line
        return _train(cfg, env_sizes, args)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Preempted as exc:
        again = "the same command without --overwrite" if args.overwrite else "the same command again"
        print(f"{prog}: stopped: {exc}; run {again} to resume", file=sys.stderr)
        return EXIT_PREEMPTED
    except TrainingDiverged as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as exc:
        if not memory.is_allocation_failure(exc):
            raise
        print(
            f"{prog}: error: out of memory during the run ({memory.first_line(exc)}); "
            f"{rerun_hint(args.out, args.overwrite)}",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:  # a full disk, a folder removed under the run, ...
        where = exc.filename if exc.filename else f"the run folder {args.out}"
        print(f"{prog}: error: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if not started:
            print(f"{prog}: interrupted while starting; nothing was written", file=sys.stderr)
            return 130
        print(f"{prog}: interrupted; the run is incomplete: {rerun_hint(args.out, args.overwrite)}", file=sys.stderr)
        return 130


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("device 'cuda' requested but torch sees no CUDA device (use --device cpu or auto)")
    return torch.device(name)


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


def _train(cfg: TrainConfig, env_sizes: tuple[int, int], args: argparse.Namespace) -> int:
    obs_dim, act_dim = env_sizes
    device = resolve_device(cfg.run.device)
    try:
        memory.check(cfg, obs_dim, act_dim, device)  # before any run file is written
    except memory.NotEnoughMemory as exc:
        raise UsageError(str(exc)) from None
    out: Path = args.out
    try:
        folder = RunFolder(out)
    except (RunLockedError, RunFileError) as exc:
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


def rerun_hint(out: Path, overwrite: bool = False) -> str:
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
