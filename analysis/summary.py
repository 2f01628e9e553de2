"""Print the interquartile mean of evaluation returns of a set of runs at chosen env steps.

    python -m analysis.summary RUN_DIR [RUN_DIR ...] [--steps 4000 20000]

Per step: the IQM over runs of each run's mean evaluation return (the seeds' scores), the IQM
over all evaluation episodes, and each run's score.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.runs import RunFolderError, load_runs
from analysis.stats import iqm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="complete run folders")
    parser.add_argument("--steps", nargs="*", type=int, help="env steps to report (default: every evaluation)")
    args = parser.parse_args(argv)
    try:
        frame = load_runs(args.runs)
    except (RunFolderError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    steps = args.steps or sorted(frame.env_step.unique())
    missing = sorted(set(steps) - set(frame.env_step))
    if missing:
        print(f"{parser.prog}: error: no evaluation at env step(s) {missing}", file=sys.stderr)
        return 2
    print(f"{'env_step':>9} {'IQM(seeds)':>11} {'IQM(episodes)':>14}  per-seed mean returns")
    for step in steps:
        at = frame[frame.env_step == step]
        per_seed = at.groupby("seed")["return"].mean()
        seeds = " ".join(f"{s}:{v:.1f}" for s, v in per_seed.items())
        print(f"{step:>9} {iqm(per_seed.to_numpy()):11.1f} {iqm(at['return'].to_numpy()):14.1f}  {seeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
