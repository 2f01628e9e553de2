"""Print the interquartile mean of evaluation returns of a set of runs at chosen env steps.

    python -m analysis.summary RUN_DIR [RUN_DIR ...] [--steps 4000 20000]

Per group of runs (env, algo, variant, device: only runs of one group are pooled) and step: the
IQM over runs of each run's mean evaluation return (the seeds' scores), the IQM over all
evaluation episodes, and each run's score. Every run's files are verified first; bad input is
one line naming the file and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from plan.identity import GROUP
from analysis.runs import RunFolderError, error_line, load_runs
from analysis.stats import iqm
from mbpo.usage import OneLineParser


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m analysis.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="complete run folders")
    parser.add_argument("--steps", nargs="*", type=int, help="env steps to report (default: every evaluation)")
    args = parser.parse_args(argv)
    try:
        frame = load_runs(args.runs)
    except (RunFolderError, OSError) as exc:
        print(f"{parser.prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    groups = list(frame.groupby(GROUP, sort=True))
    for key, group in groups:
        missing = sorted(set(args.steps or []) - set(group.env_step))
        if missing:
            print(f"{parser.prog}: error: {'/'.join(key)}: no evaluation at env step(s) {missing}", file=sys.stderr)
            return 2
    for n, (key, group) in enumerate(groups):
        steps = args.steps or sorted(group.env_step.unique())
        if n:
            print()
        print(f"{'/'.join(key)}: {group.seed.nunique()} run(s)")
        print(f"{'env_step':>9} {'IQM(seeds)':>11} {'IQM(episodes)':>14}  per-seed mean returns")
        for step in steps:
            at = group[group.env_step == step]
            per_seed = at.groupby("seed")["return"].mean()
            seeds = " ".join(f"{s}:{v:.1f}" for s, v in per_seed.items())
            print(f"{step:>9} {iqm(per_seed.to_numpy()):11.1f} {iqm(at['return'].to_numpy()):14.1f}  {seeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
