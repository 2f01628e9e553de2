"""Wall-clock per env step of this SAC against the seed tutorial's SAC, side by side.

    python benchmarks/sac_vs_seed.py [--seed-dir ../shared/baseline] [--episodes 20] [--utd 1 10]

Both run Pendulum-v1 at the seed's settings (batch 64, one hidden layer of 128, 1000 steps
before the first update), one torch thread each. For every UTD value the two programs are
started at the same moment on the two cores, so they share whatever the machine is doing;
`--rounds` repeats that and the medians are compared. Ours is timed without its evaluation
episodes (the seed has none): the metadata's `seconds_per_env_step`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

STEPS_PER_EPISODE = 200  # Pendulum-v1's time limit


def start_seed(seed_dir: Path, episodes: int, utd: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "seed_sac.py", "--seed", "0", "--episodes", str(episodes), "--utd", str(utd)],
        cwd=seed_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )  # fmt: skip


def start_ours(out: Path, steps: int, utd: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable, "-m", "mbpo", "train", "--algo", "sac", "--env", "Pendulum-v1", "--preset", "seed",
            "--seed", "0", "--total-steps", str(steps), "--updates-per-step", str(utd), "--random-steps", "1000",
            "--threads", "1", "--eval-every", str(steps), "--eval-episodes", "1", "--quiet", "--overwrite",
            "--out", str(out),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent.parent
    parser.add_argument("--seed-dir", type=Path, default=here.parent / "shared" / "baseline")
    parser.add_argument("--episodes", type=int, default=20, help="episodes of 200 steps per run")
    parser.add_argument("--utd", type=int, nargs="+", default=[1, 10], help="updates per env step")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not (args.seed_dir / "seed_sac.py").is_file():
        parser.error(f"no seed_sac.py in {args.seed_dir} (pass --seed-dir)")
    steps = args.episodes * STEPS_PER_EPISODE
    print(f"Pendulum-v1, seed settings, {steps} env steps per run, 1 thread each, {args.rounds} round(s)")
    print(f"{'UTD':>4} {'seed ms/step':>13} {'ours ms/step':>13} {'speedup':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for utd in args.utd:
            seed_ms, ours_ms = [], []
            for r in range(args.rounds):
                out = Path(tmp) / f"utd{utd}_{r}"
                seed_proc, ours_proc = start_seed(args.seed_dir, args.episodes, utd), start_ours(out, steps, utd)
                seed_out, _ = seed_proc.communicate()
                ours_out, _ = ours_proc.communicate()
                if seed_proc.returncode or ours_proc.returncode:
                    sys.exit(f"a run failed:\n{seed_out[-2000:]}\n{ours_out[-2000:]}")
                wall = float(re.search(r"TOTAL_WALL_SECONDS ([\d.]+)", seed_out).group(1))
                seed_ms.append(1e3 * wall / steps)
                ours_ms.append(1e3 * json.loads((out / "metadata.json").read_text())["seconds_per_env_step"])
            s, o = float(np.median(seed_ms)), float(np.median(ours_ms))
            print(f"{utd:>4} {s:13.3f} {o:13.3f} {s / o:7.2f}x", flush=True)


if __name__ == "__main__":
    main()
