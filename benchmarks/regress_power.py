"""False-alarm rate and detectable drop of the regression check, measured on a pool of real runs.

    python benchmarks/regress_power.py POOL [--per-side 10] [--splits 1000] [--alpha 0.05]

POOL holds many seeds of the CI experiment (made with, e.g.,
`snakemake --cores all --configfile config/ci.yaml --replace-workflow-config
--directory /tmp/pool --config "seeds=[0,...,39]"`, then POOL = /tmp/pool/results/ci).
1. False alarms: the pool's seeds are split at random into a reference and a candidate of
   `--per-side` seeds each, with no change in code, and the whole check is applied (every group
   and metric, Bonferroni over them, as `python -m analysis.regress` does); the rate at which it
   says "regression" is printed, per test and for the whole check.
2. Detectable drop: the candidate's returns (both metrics, one group) are lowered by d and the
   rate at which that group is flagged is printed per d: the smallest d flagged in 50% and 80%
   of splits is the check's detectable drop for that group.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import require

from plan.identity import GROUP
from analysis.regress import METRICS, RegressError, find_runs, run_metrics
from analysis.runs import RunFolderError, error_line
from analysis.stats import rank_shift_test
from mbpo.usage import OneLineParser


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pool", type=Path)
    parser.add_argument("--per-side", type=int, default=10)
    parser.add_argument("--splits", type=int, default=1000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--drops", type=float, nargs="+", default=[0, 10, 20, 30, 40, 60, 80, 100, 150, 200, 300])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    require(
        parser,
        ("--per-side", args.per_side >= 1, ">= 1", args.per_side),
        ("--splits", args.splits >= 1, ">= 1", args.splits),
        ("--alpha", 0.0 < args.alpha < 0.5, "in (0, 0.5)", args.alpha),
        ("--drops", all(np.isfinite(args.drops)), "finite numbers", args.drops),
        ("--seed", args.seed >= 0, ">= 0", args.seed),
    )
    try:
        metrics = run_metrics(find_runs(args.pool))
    except (RegressError, RunFolderError, OSError) as exc:
        parser.error(error_line(exc))
    groups = {k: g.set_index("seed") for k, g in metrics.groupby(GROUP, sort=True)}
    seeds = sorted(set.intersection(*(set(g.index) for g in groups.values())))
    if len(seeds) < 2 * args.per_side:
        parser.error(
            f"{len(seeds)} seeds in every group of {args.pool}; --per-side {args.per_side} needs {2 * args.per_side}"
        )
    tests = len(groups) * len(METRICS)
    level = args.alpha / tests
    rng = np.random.default_rng(args.seed)
    splits = [rng.permutation(seeds)[: 2 * args.per_side] for _ in range(args.splits)]
    print(
        f"pool: {len(seeds)} seeds in each of {len(groups)} groups; {args.per_side} seeds a side; "
        f"{args.splits} random splits; alpha {args.alpha} over {tests} tests -> {level:.4g} each"
    )
    for key, g in groups.items():
        spread = ", ".join(f"{m} mean {g[m].mean():.1f} sd {g[m].std(ddof=1):.1f}" for m in METRICS)
        print(f"  {'/'.join(key)}: {spread}")

    def flagged(key, split, drop: float) -> bool:
        ref, cand = split[: args.per_side], split[args.per_side :]
        g = groups[key]
        return any(
            rank_shift_test(g.loc[ref, m].to_numpy(), g.loc[cand, m].to_numpy() - drop, level).p_worse <= level
            for m in METRICS
        )

    per_group = {key: np.array([flagged(key, s, 0.0) for s in splits]) for key in groups}
    any_flag = np.any(np.stack(list(per_group.values())), axis=0)
    print("\nfalse alarms (no change, fresh seeds):")
    for key, flags in per_group.items():
        print(f"  {'/'.join(key)}: {flags.mean():.2%} of splits")
    half_width = 1.96 * np.sqrt(max(any_flag.mean(), 1e-9) * (1 - any_flag.mean()) / len(splits))
    print(
        f"  whole check: {any_flag.mean():.2%} (+- {half_width:.2%}) of splits; bound by construction {args.alpha:.0%}"
    )

    print("\ndetection rate of a drop d in one group's returns (both metrics lowered by d):")
    print("  " + f"{'d':>6}" + "".join(f"{'/'.join(k[1:3]):>14}" for k in groups))
    rates = {key: [] for key in groups}
    for drop in args.drops:
        for key in groups:
            rates[key].append(np.mean([flagged(key, s, drop) for s in splits[: max(args.splits // 4, 100)]]))
        print("  " + f"{drop:6.0f}" + "".join(f"{rates[k][-1]:14.0%}" for k in groups), flush=True)
    for key in groups:
        for power in (0.5, 0.8):
            reached = [d for d, r in zip(args.drops, rates[key]) if r >= power]
            shown = f"{reached[0]:.0f}" if reached else f"> {args.drops[-1]:.0f}"
            print(f"  {'/'.join(key)}: smallest drop flagged in >= {power:.0%} of splits: {shown}")


if __name__ == "__main__":
    main()
