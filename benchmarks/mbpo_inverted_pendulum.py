"""MBPO at mbrl-lib's InvertedPendulum settings: wall-clock per env step and where it goes.

    python benchmarks/mbpo_inverted_pendulum.py [--steps 2000] [--device cpu]

Settings (the paper's InvertedPendulum column, as mbrl-lib runs it): SAC 2 x 256, batch 256,
10 updates per env step, 500 random steps, target entropy -0.05; 7 members (5 elites) of 4 x 200;
the model retrained every 250 steps; 100k one-step rollouts per retraining (400 per env step);
real_ratio 0.05. This prints ours on this machine, one thread. A peer is compared only when it
runs beside this on the same machine (timed by hand on one AMD core: mbrl-lib 119.7 ms per env
step against ours 87.6, 1.37x); a number measured elsewhere is no baseline, so none is printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import check_device
from mbpo.usage import OneLineParser

SETTINGS = [
    "--algo",
    "mbpo",
    "--preset",
    "paper",
    "--env",
    "InvertedPendulum-v5",
    "--actor-hidden",
    "256,256",
    "--critic-hidden",
    "256,256",
    "--batch-size",
    "256",
    "--updates-per-step",
    "10",
    "--random-steps",
    "500",
    "--target-entropy",
    "-0.05",
    "--ensemble-size",
    "7",
    "--num-elites",
    "5",
    "--model-hidden",
    "200,200,200,200",
    "--model-batch-size",
    "256",
    "--model-train-freq",
    "250",
    "--rollout-batch-size",
    "100000",
    "--rollout-length",
    "1",
    "--epoch-length",
    "250",
    "--model-retain-epochs",
    "1",
    "--real-ratio",
    "0.05",
]


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000, help="env steps (the first 500 are random)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.steps < 750:  # three rows of train.csv: the random phase's end, then two of learning
        parser.error(f"--steps must be >= 750 (the first 500 are random), got {args.steps}")
    check_device(parser, args.device, ("cpu", "cuda", "auto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [
            sys.executable,
            "-m",
            "mbpo",
            "train",
            *SETTINGS,
            "--total-steps",
            str(args.steps),
            "--device",
            args.device,
            "--threads",
            "1",
            "--eval-every",
            str(args.steps),
            "--eval-episodes",
            "1",
            "--log-every",
            "250",
            "--quiet",
            "--out",
            str(out),
        ]
        if subprocess.run(cmd).returncode != 0:
            sys.exit(f"{parser.prog}: the training run failed (its message is above)")
        meta = json.loads((out / "metadata.json").read_text())
        clock = [float(r["wall_seconds"]) for r in csv.DictReader((out / "train.csv").open())]
    learning_steps = args.steps - 500
    seconds = meta["seconds"]
    busy = sum(v for k, v in seconds.items() if k != "eval")
    print(
        f"MBPO, InvertedPendulum-v5, mbrl-lib settings, {args.steps} env steps ({learning_steps} after the random "
        f"ones), {meta['device_name']}, 1 thread"
    )
    print(f"  ms per env step, whole run (excl. evaluation):  {1e3 * busy / args.steps:8.2f}")
    # train.csv's clock every 250 steps: row 1 is step 500, where learning starts
    print(f"  ms per env step, learning steps only:           {1e3 * (clock[-1] - clock[1]) / learning_steps:8.2f}")
    print(f"  ms per env step, last 250 steps:                {1e3 * (clock[-1] - clock[-2]) / 250:8.2f}")
    for phase in ("update", "model", "rollout", "env", "act"):
        print(f"  {phase:>8}: {seconds[phase]:7.1f} s  ({seconds[phase] / busy:4.0%})")


if __name__ == "__main__":
    main()
