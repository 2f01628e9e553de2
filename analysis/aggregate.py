"""Aggregate run folders into tables: curves on a common grid and a summary per group.

    python -m analysis.aggregate --runs RUN_DIR ... --out results/tables [--budget 4000 ...]

A group is (env, algo, variant, device); a run's score at a step is its mean evaluation return.
Writes, under --out:
- `evaluations.csv`: every evaluation episode of every run (tidy);
- `curves.csv`: per group and grid step: runs, mean, std, IQM and its stratified-bootstrap CI;
- `summary.csv`, `summary.md`, `summary.tex`: per group: IQM (CI), mean and std of the return at
  the budget and at the run's end, normalised area under the curve, env steps for the IQM curve
  to reach the threshold, wall-clock per env step and peak memory (from Snakemake's benchmark
  files), and for MBPO the probability of beating each SAC and the sample-efficiency ratio
  (env steps SAC's IQM curve needs to reach MBPO's IQM at the budget, over the budget).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.runs import GROUP, IDENTITY, RunFolderError, load_runs, run_scores
from analysis.stats import (
    interpolate_curve,
    iqm,
    normalized_auc,
    probability_of_improvement,
    steps_to_threshold,
    stratified_bootstrap_ci,
)

SAC_REFERENCES = ("sac", "sac_mbpo_utd")


@dataclass(frozen=True)
class Settings:
    budget: int
    threshold: float
    grid: int
    bootstrap_samples: int = 2000
    confidence: float = 0.95
    seed: int = 0


def curves_on_grid(scores: pd.DataFrame, grid_step: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Every run's score interpolated onto 0, grid_step, ... up to the longest run: `runs x steps`
    in a frame with the identity columns and one column per grid step."""
    grid = np.arange(0, scores.env_step.max() + 1, grid_step, dtype=float)
    rows = []
    for ident, run in scores.groupby(IDENTITY, sort=True):
        values = interpolate_curve(run.env_step.to_numpy(), run.score.to_numpy(), grid)
        rows.append([*ident, *values])
    return grid, pd.DataFrame(rows, columns=[*IDENTITY, *grid])


def group_curves(grid: np.ndarray, on_grid: pd.DataFrame, s: Settings) -> pd.DataFrame:
    out = []
    for key, runs in on_grid.groupby(GROUP, sort=True):
        matrix = runs[list(grid)].to_numpy()
        for j, step in enumerate(grid):
            column = matrix[:, j][~np.isnan(matrix[:, j])]
            if column.size == 0:
                continue
            lo, hi = stratified_bootstrap_ci(column, iqm, s.bootstrap_samples, s.confidence, s.seed)
            out.append([*key, int(step), column.size, column.mean(), column.std(ddof=0), iqm(column), lo, hi])
    return pd.DataFrame(out, columns=[*GROUP, "env_step", "runs", "mean", "std", "iqm", "ci_low", "ci_high"])


def benchmark_stats(run_dirs: list[Path], runs_root: Path, bench_root: Path) -> pd.DataFrame:
    """Snakemake's benchmark record of each run: seconds and peak resident memory."""
    rows = []
    for run_dir in run_dirs:
        rel = Path(run_dir).resolve().relative_to(runs_root.resolve())
        tsv = bench_root / rel.parent / f"{rel.name}.tsv"
        if tsv.is_file():
            bench = pd.read_csv(tsv, sep="\t")
            rows.append({"path": rel.as_posix(), "bench_seconds": float(bench["s"].iloc[0]),
                         "max_rss_mb": float(bench["max_rss"].iloc[0])})  # fmt: skip
    return pd.DataFrame(rows, columns=["path", "bench_seconds", "max_rss_mb"])


def summarize(scores: pd.DataFrame, grid: np.ndarray, on_grid: pd.DataFrame, curves: pd.DataFrame,
              bench: pd.DataFrame, s: Settings) -> pd.DataFrame:  # fmt: skip
    rows = []
    at_budget: dict[tuple, np.ndarray] = {}
    for key, runs in on_grid.groupby(GROUP, sort=True):
        group_scores = scores.merge(runs[IDENTITY], on=IDENTITY)
        last_step = int(group_scores.env_step.max())
        budget = min(s.budget, last_step)
        upto = grid[grid <= budget]
        matrix = runs[list(upto)].to_numpy()
        final = group_scores[group_scores.env_step == budget].groupby("seed").score.first().to_numpy()
        if final.size == 0:  # no evaluation exactly at the budget: the grid's value
            final = matrix[:, -1]
        at_budget[key] = final
        end = group_scores[group_scores.env_step == last_step].score.to_numpy()
        lo, hi = stratified_bootstrap_ci(final, iqm, s.bootstrap_samples, s.confidence, s.seed)
        curve = curves[(curves[GROUP] == pd.Series(key, index=GROUP)).all(axis=1)]
        reach = steps_to_threshold(curve.env_step.to_numpy(), curve.iqm.to_numpy(), s.threshold)
        paths = {"/".join([*map(str, key[:4]), f"seed{seed}"]) for seed in runs.seed}
        b = bench[bench.path.isin(paths)]
        rows.append({
            **dict(zip(GROUP, key)), "seeds": len(runs), "budget": budget, "last_step": last_step,
            "return_iqm": iqm(final), "return_ci_low": lo, "return_ci_high": hi,
            "return_mean": final.mean(), "return_std": final.std(ddof=0), "final_return_iqm": iqm(end),
            "auc": iqm(normalized_auc(upto, matrix)), "steps_to_threshold": float(reach),
            "ms_per_env_step": 1e3 * b.bench_seconds.mean() / last_step if len(b) else np.nan,
            "peak_rss_mb": b.max_rss_mb.max() if len(b) else np.nan,
        })  # fmt: skip
    summary = pd.DataFrame(rows)
    for ref in SAC_REFERENCES:
        summary[f"p_beats_{ref}"] = np.nan
    summary["sample_efficiency_ratio"] = np.nan
    for i, row in summary.iterrows():
        if row.algo != "mbpo":
            continue
        for ref in SAC_REFERENCES:
            refs = [k for k in at_budget if k[0] == row.env and k[1] == ref and k[3] == row.device]
            if refs:
                summary.loc[i, f"p_beats_{ref}"] = probability_of_improvement(at_budget[tuple(row[GROUP])], at_budget[refs[0]])
        sac = curves[(curves.env == row.env) & (curves.algo == "sac") & (curves.device == row.device)]
        if len(sac):
            needed = steps_to_threshold(sac.env_step.to_numpy(), sac.iqm.to_numpy(), row.return_iqm)
            # NaN when SAC never reaches MBPO's return within its own budget
            summary.loc[i, "sample_efficiency_ratio"] = needed / row.budget
    return summary


def write_tables(summary: pd.DataFrame, curves: pd.DataFrame, evaluations: pd.DataFrame, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    evaluations.to_csv(out / "evaluations.csv", index=False)
    curves.to_csv(out / "curves.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    shown = summary.round(3)
    (out / "summary.md").write_text(shown.to_markdown(index=False) + "\n")
    (out / "summary.tex").write_text(shown.to_latex(index=False, float_format="%.3f", na_rep="--"))


def aggregate(run_dirs: list[Path], runs_root: Path, bench_root: Path, s: Settings) -> dict[str, pd.DataFrame]:
    evaluations = load_runs(run_dirs)
    scores = run_scores(evaluations)
    grid, on_grid = curves_on_grid(scores, s.grid)
    curves = group_curves(grid, on_grid, s)
    bench = benchmark_stats(run_dirs, runs_root, bench_root)
    summary = summarize(scores, grid, on_grid, curves, bench, s)
    return {"evaluations": evaluations, "curves": curves, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.aggregate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="complete run folders")
    parser.add_argument("--runs-root", type=Path, default=Path("results/runs"))
    parser.add_argument("--benchmarks-root", type=Path, default=Path("results/benchmarks"))
    parser.add_argument("--out", type=Path, default=Path("results/tables"))
    parser.add_argument("--budget", type=int, required=True, help="env steps at which algorithms are compared")
    parser.add_argument("--threshold", type=float, required=True, help="return for 'env steps to reach'")
    parser.add_argument("--grid", type=int, required=True, help="env steps between points of the common grid")
    parser.add_argument("--bootstrap-samples", type=int, default=2000)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap's generator")
    args = parser.parse_args(argv)
    settings = Settings(args.budget, args.threshold, args.grid, args.bootstrap_samples, args.confidence, args.seed)
    try:
        tables = aggregate(args.runs, args.runs_root, args.benchmarks_root, settings)
    except (RunFolderError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    write_tables(tables["summary"], tables["curves"], tables["evaluations"], args.out)
    print(f"{parser.prog}: {len(args.runs)} runs, {len(tables['summary'])} groups -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
