"""Size and write time of a checkpoint at the paper's Hopper settings.

    python benchmarks/checkpoint_cost.py [--folder /path/on/the/runs/disk]

Builds a Hopper MBPO trainer at `--preset paper` (networks, optimisers, the ensemble) with its
buffers filled as they are at 10k, 50k and 125k env steps (real buffer: every transition so far;
model buffer: retain epochs x 4 rollout phases x 100k branches x the schedule's rollout length
at that step, capped at its capacity), then times `mbpo.checkpoint.save` (torch.save to a temp
file, fsync, rename) and reports the file size. The model buffer dominates: only its filled rows
are saved, so a young run's checkpoint is small.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from mbpo import checkpoint
from mbpo.config import build_config
from mbpo.progress import Progress
from mbpo.record import RunWriter, streams
from mbpo.seeding import make_generators
from mbpo.train import Trainer
from mbpo.usage import OneLineParser


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=None, help="where to write (default: a temp folder)")
    args = parser.parse_args()
    if args.folder is not None and not args.folder.is_dir():
        parser.error(f"--folder {args.folder}: {'not a folder' if args.folder.exists() else 'no such folder'}")
    if args.folder is not None and not os.access(args.folder, os.W_OK | os.X_OK):
        parser.error(f"--folder {args.folder}: not writable")
    torch.set_num_threads(1)
    import datetime as dt
    import sys

    from mbpo.record import cpu_info

    cpu = cpu_info()
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes")
    print(
        f"# {when}, {cpu['model']} ({os.cpu_count()} cores, {', '.join(cpu['simd'])}), torch {torch.__version__}, no GPU"
    )
    print(f"# python {' '.join(sys.argv)}; written to {'a temporary folder' if args.folder is None else args.folder}")
    cfg = build_config({"algo": "mbpo", "preset": "paper", "env": "Hopper-v5"})
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        out = Path(tmp)
        writer = RunWriter(out, streams(cfg))
        trainer = Trainer(cfg, device, make_generators(0, device), writer, Progress(1, "x", 1, quiet=True))
        run = trainer.runs[0]
        run.obs, _ = run.env.reset(seed=0)
        model_buffer = trainer.model_phase.buffers[0]
        print(
            f"Hopper-v5, --preset paper: model buffer capacity {model_buffer.capacity:,} rows x "
            f"{model_buffer.row_dim} floats = {model_buffer.data.numel() * 4 / 1e6:.0f} MB"
        )
        for step in (10_000, 50_000, 125_000):
            length = cfg.mbpo.rollout_length_at(step, cfg.sac.random_steps)
            rows = cfg.mbpo.model_buffer_retained(length)  # what a run at `step` holds live
            run.real.size, run.real._filled, run.real._next = step, step, step % run.real.capacity
            written = min(step * cfg.mbpo.rollout_batch_size // cfg.mbpo.model_train_freq, model_buffer.capacity)
            model_buffer.retain(rows)
            model_buffer.size, model_buffer._filled, model_buffer._next = rows, written, written % model_buffer.capacity
            trainer.step = step
            seconds = []
            for _ in range(3):
                t = time.perf_counter()
                payload = trainer.checkpoint_payload()
                checkpoint.save(out / "checkpoint.pt", payload)
                seconds.append(time.perf_counter() - t)
                del payload
            size = (out / "checkpoint.pt").stat().st_size
            print(
                f"  at {step:>7,} env steps (rollout length {length:>2}, {rows:>9,} model rows): "
                f"{size / 1e6:7.1f} MB, written in {min(seconds):5.2f} s (best of 3, state copy included)"
            )
        writer.close()


if __name__ == "__main__":
    main()
