"""Wall-clock per env step of this harness against the seed tutorial's code, side by side.

    python benchmarks/vs_seed.py sac  [--utd 1 10] [--episodes 20] [--rounds 2]
    python benchmarks/vs_seed.py mbpo [--episodes 20] [--rounds 1]

Both programs run Pendulum-v1 at the seed's settings (`--preset seed`), one torch thread each,
started at the same moment on the two cores so that they share whatever the machine is doing;
`--rounds` repeats that and medians are compared. Ours is timed without its evaluation episodes
(the seed has none). Also printed: ms per env step over the first and the last 1000 steps, which
shows how the cost grows with the data (the seed retrains its model on all data every 50 steps).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import require

from mbpo.usage import OneLineParser

STEPS_PER_EPISODE = 200  # Pendulum-v1's time limit
SEED_SCRIPT = {"sac": "seed_sac.py", "mbpo": "seed_mbpo.py"}


def start_seed(seed_dir: Path, algo: str, episodes: int, utd: int, csv_path: Path) -> subprocess.Popen:
    args = [sys.executable, SEED_SCRIPT[algo], "--seed", "0", "--csv", str(csv_path)]
    args += ["--episodes", str(episodes), "--utd", str(utd)] if algo == "sac" else ["--max_episodes", str(episodes)]
    return subprocess.Popen(
        args,
        cwd=seed_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )


def start_ours(algo: str, out: Path, steps: int, utd: int) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "mbpo",
        "train",
        "--algo",
        algo,
        "--env",
        "Pendulum-v1",
        "--preset",
        "seed",
        "--seed",
        "0",
        "--total-steps",
        str(steps),
        "--threads",
        "1",
        "--eval-every",
        str(steps),
        "--eval-episodes",
        "1",
        "--log-every",
        "1000",
        "--quiet",
        "--overwrite",
        "--out",
        str(out),
    ]
    if algo == "sac":
        args += ["--updates-per-step", str(utd), "--random-steps", "1000"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def seed_growth(csv_path: Path) -> tuple[float, float]:
    """ms per env step over the first and last 1000 steps, from the seed's per-episode CSV."""
    rows = list(csv.DictReader(csv_path.open()))
    per = 1000 // STEPS_PER_EPISODE
    first = sum(float(r["episode_seconds"]) for r in rows[:per])
    last = sum(float(r["episode_seconds"]) for r in rows[-per:])
    return first, last


def ours_growth(out: Path) -> tuple[float, float]:
    """ms per env step over the first and last 1000 steps, from train.csv's clock."""
    rows = list(csv.DictReader((out / "train.csv").open()))
    clock = [float(r["wall_seconds"]) for r in rows]
    return clock[0], clock[-1] - clock[-2]


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent.parent
    parser.add_argument("algo", choices=sorted(SEED_SCRIPT))
    parser.add_argument("--seed-dir", type=Path, default=here.parent / "shared" / "baseline")
    parser.add_argument("--episodes", type=int, default=20, help="episodes of 200 steps per run")
    parser.add_argument("--utd", type=int, nargs="+", default=[1, 10], help="SAC updates per env step")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    require(
        parser,
        # the growth columns compare the first and the last 1000 env steps (5 episodes each)
        ("--episodes", args.episodes >= 10, ">= 10", args.episodes),
        ("--utd", all(u >= 1 for u in args.utd), ">= 1 each", args.utd),
        ("--rounds", args.rounds >= 1, ">= 1", args.rounds),
    )
    script = args.seed_dir / SEED_SCRIPT[args.algo]
    if not script.is_file():
        parser.error(f"no {script.name} in {args.seed_dir} (pass --seed-dir)")
    steps = args.episodes * STEPS_PER_EPISODE
    utds = args.utd if args.algo == "sac" else [10]
    print(
        f"{args.algo} on Pendulum-v1, seed settings, {steps} env steps per run, 1 thread each, {args.rounds} round(s)"
    )
    print(
        f"{'UTD':>4} {'seed ms/step':>13} {'ours ms/step':>13} {'speedup':>8}   first/last 1000 steps, ms/step: seed | ours"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for utd in utds:
            seed_ms, ours_ms, growth = [], [], []
            for r in range(args.rounds):
                out, seed_csv = Path(tmp) / f"utd{utd}_{r}", Path(tmp) / f"seed_{utd}_{r}.csv"
                seed_proc = start_seed(args.seed_dir, args.algo, args.episodes, utd, seed_csv)
                ours_proc = start_ours(args.algo, out, steps, utd)
                seed_out, _ = seed_proc.communicate()
                ours_out, _ = ours_proc.communicate()
                if seed_proc.returncode or ours_proc.returncode:
                    sys.exit(f"a run failed:\n{seed_out[-2000:]}\n{ours_out[-2000:]}")
                wall = float(re.search(r"TOTAL_WALL_SECONDS ([\d.]+)", seed_out).group(1))
                seed_ms.append(1e3 * wall / steps)
                ours_ms.append(1e3 * json.loads((out / "metadata.json").read_text())["seconds_per_env_step"])
                growth.append((*seed_growth(seed_csv), *ours_growth(out)))
            s, o = float(np.median(seed_ms)), float(np.median(ours_ms))
            g = np.median(np.array(growth), axis=0)  # seconds per 1000 steps = ms per step
            print(
                f"{utd:>4} {s:13.3f} {o:13.3f} {s / o:7.2f}x   {g[0]:.2f} / {g[1]:.2f} | {g[2]:.2f} / {g[3]:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
