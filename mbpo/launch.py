"""The `train` command once its arguments are parsed and its config resolved (`mbpo.cli`): the
device, the memory check, a fresh start or a resume from the checkpoint, the training, the run
files, and one line for each way it can end. Kept apart from the parser so that `--help` and bad
flags are answered before torch and the training code are imported (seconds)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from mbpo import checkpoint, memory
from mbpo.buffer import AllocationError
from mbpo.checkpoint import CheckpointError, Checkpointer, CheckpointGroup, Preempted
from mbpo.config import TrainConfig
from mbpo.flags import reproduce_command
from mbpo.progress import Progress
from mbpo.record import (
    CHECKPOINT_FILE,
    FINISH_FILE,
    METADATA_FILE,
    OwnershipLost,
    RunFileError,
    RunFolder,
    RunLockedError,
    RunWriter,
    commit_pending,
    complete_finish,
    is_complete,
    now_iso,
    provenance,
    read_finish,
    read_history,
    resumes_from_history,
    streams,
    verify_run_files,
    write_atomic,
)
from mbpo.sb3 import Stopped
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
    except Stopped as exc:
        print(f"{prog}: stopped: {exc}; run the same command again to start it over", file=sys.stderr)
        return EXIT_PREEMPTED
    except Preempted as exc:
        again = "the same command without --overwrite" if args.overwrite else "the same command again"
        print(f"{prog}: stopped: {exc}; run {again} to resume", file=sys.stderr)
        return EXIT_PREEMPTED
    except (TrainingDiverged, OwnershipLost) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as exc:
        if not memory.is_allocation_failure(exc):
            raise
        print(
            f"{prog}: error: out of memory during the run ({memory.first_line(exc)}); {_rerun_hint(args)}",
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
        print(f"{prog}: interrupted; the run is incomplete: {_rerun_hint(args)}", file=sys.stderr)
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


def seed_folder(out: Path, seed: int) -> Path:
    """Seed `seed`'s folder of an `--out` pattern holding `{seed}` (`--seeds`)."""
    return Path(str(out).replace("{seed}", str(seed)))


def _train(cfg: TrainConfig, env_sizes: tuple[int, int], args: argparse.Namespace) -> int:
    obs_dim, act_dim = env_sizes
    device = resolve_device(cfg.run.device)
    if cfg.run.algo == "sb3_sac":  # SB3 installed and the config expressible in it, before any file is written
        from mbpo.sb3 import check_sb3

        check_sb3(cfg)
    seeds = getattr(args, "seeds", None)
    lockstep = seeds is not None
    cfgs = [with_seed(cfg, s) for s in seeds] if lockstep else [cfg]
    outs = [seed_folder(args.out, s) for s in seeds] if lockstep else [args.out]
    try:
        memory.check(cfg, obs_dim, act_dim, device, seeds=len(cfgs))  # before any run file is written
    except memory.NotEnoughMemory as exc:
        raise UsageError(str(exc)) from None
    folders: list[RunFolder] = []
    try:
        for out in outs:
            try:
                folders.append(RunFolder(out))
            except (RunLockedError, RunFileError) as exc:
                raise UsageError(str(exc)) from None
            except OSError as exc:
                raise UsageError(f"cannot use --out {out}: {exc.strerror or exc}") from None
        starts = [_prepare_seed(f, c, args) for f, c in zip(folders, cfgs)]
        todo = [start for start in starts if start is not None]
        if not todo:
            return 0
        torch.set_num_threads(cfg.run.threads)
        # Denormal floats (tiny temperatures, Adam moments late in training) make CPU arithmetic
        # many times slower: flushing them to zero cut SAC updates inside MBPO from 6.0 to 4.4 ms.
        torch.set_flush_denormal(True)
        if not lockstep:
            return _train_group(todo, device, args, lockstep=False)
        # seeds resume together from checkpoints at the same env step; seeds whose checkpoints
        # are at different steps (a process killed between two seeds' saves) train as groups
        by_step: dict[int, list[SeedStart]] = {}
        for start in todo:
            by_step.setdefault(start.step, []).append(start)
        status = 0
        for step in sorted(by_step):
            status = max(status, _train_group(by_step[step], device, args, lockstep=True))
        return status
    finally:
        for folder in folders:
            folder.release()


def with_seed(cfg: TrainConfig, seed: int) -> TrainConfig:
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, seed=seed))


@dataclass
class SeedStart:
    """A seed to train: its folder (locked), config, and the checkpoint it resumes from."""

    folder: RunFolder
    cfg: TrainConfig
    resume: dict | None

    @property
    def step(self) -> int:
        return 0 if self.resume is None else self.resume["trainer"]["step"]

    @property
    def label(self) -> str:
        return seed_label(self.cfg)


def seed_label(cfg: TrainConfig) -> str:
    """How progress and messages name one seed's run."""
    return f"{cfg.run.algo} {cfg.run.env} seed {cfg.run.seed}"


def _prepare_seed(folder: RunFolder, cfg: TrainConfig, args: argparse.Namespace) -> SeedStart | None:
    """What to do in `folder`: None when there is no training left (a killed commit completed,
    or a complete run of this config with --skip-complete), else where the seed starts."""
    out = folder.out
    label = seed_label(cfg)
    if not args.overwrite:
        try:
            journal = read_finish(out)
        except RunFileError as exc:
            raise UsageError(f"{exc}; pass --overwrite to replace it") from None
        if journal is not None and commit_pending(out):  # killed while committing: complete it
            _complete_finish(folder, cfg, journal, label, args)
            return None
        try:
            complete = is_complete(out)
        except RunFileError as exc:
            raise UsageError(f"{exc}; pass --overwrite to replace it") from None
        if complete:
            _already_complete(out, cfg, label, args)
            return None
    resume = None if args.overwrite else _load_resumable(out, cfg)
    return SeedStart(folder, cfg, resume)


def _train_group(starts: list[SeedStart], device: torch.device, args: argparse.Namespace, lockstep: bool) -> int:
    """Train the seeds of `starts` (all at the same env step) in one process, one batched
    computation in lockstep, and commit each seed's run; 1 if a seed failed, else 0."""
    cfg = starts[0].cfg
    gens = [make_generators(s.cfg.run.seed, device) for s in starts]
    prov = provenance(device)
    who = {"git_revision": prov["git_revision"], "host": prov["host"]}
    writers, headers, checkpointers = [], [], {}
    try:
        for position, start in enumerate(starts):
            folder, out, resume = start.folder, start.folder.out, start.resume
            if resume is None:
                folder.remove_owned()
                writers.append(RunWriter(out, streams(start.cfg), check=folder.check))
                folder.log_process("start", 0, who)
                started, resumes = now_iso(), []
            else:
                try:
                    writers.append(RunWriter(out, streams(start.cfg), offsets=resume["offsets"], check=folder.check))
                except RunFileError as exc:
                    raise UsageError(f"{exc}; pass --overwrite to start over") from None
                started = resume["start_time"]
                resumes = [*resume["resumes"], {"env_step": resume["trainer"]["step"], "time": now_iso(), **who}]
            header = {"config": start.cfg.to_dict(), "start_time": started, "resumes": resumes}
            headers.append(header)
            checkpointers[position] = Checkpointer(
                out,
                args.checkpoint_interval,
                header,
                resumed_from=resume,
                check=folder.check,
                catch_sigterm=not lockstep,
            )
    except BaseException:
        for writer in writers:
            writer.close()
        for member in checkpointers.values():
            member.close()
        raise
    if lockstep:
        label = f"{cfg.run.algo} {cfg.run.env} seeds {','.join(str(s.cfg.run.seed) for s in starts)}"
        checkpointer: Checkpointer | CheckpointGroup = CheckpointGroup(checkpointers)
    else:
        label, checkpointer = starts[0].label, checkpointers[0]
    progress = Progress(cfg.run.total_steps, label, cfg.run.log_every, quiet=args.quiet)
    try:
        try:
            if cfg.run.algo == "sb3_sac":
                from mbpo.sb3 import SB3Trainer

                trainer = SB3Trainer(cfg, device, gens[0], writers[0], progress)
            else:
                trainer = Trainer(
                    cfg, device, gens if lockstep else gens[0], writers if lockstep else writers[0], progress
                )
        except AllocationError as exc:  # the memory was there when checked, gone by now
            for writer, start in zip(writers, starts):
                writer.close()
                if start.resume is None:
                    start.folder.remove_owned()  # only the part files' headers: nothing of the run is lost
            raise UsageError(str(exc)) from None
        for position, start in enumerate(starts):
            if start.resume is None:
                continue
            try:
                if lockstep:
                    trainer.load_state_dict(start.resume["trainer"], position)
                else:
                    trainer.load_state_dict(start.resume["trainer"])
            except CheckpointError as exc:
                raise UsageError(
                    f"{start.folder.out / CHECKPOINT_FILE}: {exc}; if the checkpoint is damaged or from other code, "
                    "pass --overwrite to start over"
                ) from None
        for start in starts:
            if start.resume is not None:  # before any work: a kill from here on is counted
                start.folder.log_process("resume", start.step, who)
        if starts[0].resume is not None:
            progress.resumed(starts[0].step)
            if not args.quiet:
                print(f"[{label}] resuming from the checkpoint at env step {starts[0].step}", file=sys.stderr)
        summaries = trainer.run(checkpointer)
    except BaseException:
        for writer in writers:
            writer.close()
        raise
    finally:
        progress.close()
        checkpointer.close()
    if not lockstep:
        summaries = {0: summaries}
    group = [s.cfg.run.seed for s in starts]
    for position, start in enumerate(starts):
        if position not in summaries:
            continue
        summary, out = summaries[position], start.folder.out
        resumes = headers[position]["resumes"]
        history = read_history(out)
        if history and history[0]["event"] == "start":  # every process, checkpointed or not
            resumes = resumes_from_history(history)
        metadata = {
            "algo": start.cfg.run.algo,
            "env": start.cfg.run.env,
            "seed": start.cfg.run.seed,
            "config": start.cfg.to_dict(),
            **prov,
            "start_time": headers[position]["start_time"],
            "end_time": now_iso(),
            "resumes": resumes,
            "checkpoints": checkpointers[position].summary(),
            **summary,
            "command": reproduce_command(start.cfg, out),
        }
        if lockstep:  # how it was launched: the one field that tells
            metadata["lockstep"] = {"seeds": group, "device": str(device)}
        writers[position].finish(metadata)
        if not args.quiet:
            print(
                f"[{start.label}] done in {summary['wall_seconds']:.1f}s "
                f"({summary['env_steps_per_second']:.0f} env steps/s), "
                f"final eval return {summary['final_eval_return']:.1f} -> {out}",
                file=sys.stderr,
            )
    failures = getattr(trainer, "failures", {})
    for position, why in sorted(failures.items()):
        start = starts[position]
        print(
            f"python -m mbpo train: error: seed {start.cfg.run.seed}: {why}; its run in {start.folder.out} is "
            "incomplete (the other seeds went on)",
            file=sys.stderr,
        )
    return 1 if failures else 0


def _same_config(out: Path, recorded: dict, cfg: TrainConfig, what: str) -> None:
    """UsageError unless the config `recorded` in `out` is `cfg`."""
    diff = checkpoint.config_difference(recorded, cfg.to_dict()) if isinstance(recorded, dict) else "config: missing"
    if diff is not None:
        raise UsageError(
            f"{out} holds {what} of another config ({diff.replace('checkpoint', 'run')}); "
            "pass --overwrite to replace it"
        )


def _complete_finish(folder: RunFolder, cfg: TrainConfig, journal: dict, label: str, args: argparse.Namespace) -> None:
    """Complete the commit of a run that was killed while finishing: its training is done."""
    out = folder.out
    _same_config(out, journal.get("config"), cfg, "a finishing run")
    prov = provenance(resolve_device(cfg.run.device))
    entry = {
        "env_step": cfg.run.total_steps,
        "time": now_iso(),
        "git_revision": prov["git_revision"],
        "host": prov["host"],
        "finish_only": True,
    }
    folder.log_process("finish", cfg.run.total_steps, {k: v for k, v in entry.items() if k not in ("env_step", "time")})
    journal = {**journal, "resumes": [*journal.get("resumes", []), entry]}
    text = json.dumps({"metadata": journal}, indent=2, allow_nan=False) + "\n"
    write_atomic(out / FINISH_FILE, text, before_commit=folder.check)  # the record names this process too
    try:
        meta = complete_finish(out, folder.check)
    except RunFileError as exc:
        raise UsageError(str(exc)) from None
    if not args.quiet:
        print(
            f"[{label}] completed the commit of a run killed while finishing (no training needed), "
            f"final eval return {meta.get('final_eval_return')} -> {out}",
            file=sys.stderr,
        )


def _already_complete(out: Path, cfg: TrainConfig, label: str, args: argparse.Namespace) -> None:
    if not args.skip_complete:
        raise UsageError(f"{out} already holds a complete run (pass --overwrite to replace it)")
    meta = json.loads((out / METADATA_FILE).read_text(encoding="utf-8"))
    _same_config(out, meta.get("config"), cfg, "a complete run")
    try:
        verify_run_files(out, meta)
    except RunFileError as exc:
        raise UsageError(f"{exc}; pass --overwrite to replace it") from None
    if not args.quiet:
        print(f"[{label}] {out} already holds this complete run: nothing to do", file=sys.stderr)


def _rerun_hint(args: argparse.Namespace) -> str:
    seeds = getattr(args, "seeds", None)
    if seeds is None:
        return rerun_hint(args.out, args.overwrite)
    hints = {rerun_hint(seed_folder(args.out, s), args.overwrite) for s in seeds}
    return (
        hints.pop()
        if len(hints) == 1
        else "run the same command again: each seed resumes from its last checkpoint, if it has one"
    )


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
