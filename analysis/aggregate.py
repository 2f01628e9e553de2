"""Aggregate run folders into tables: curves on a common grid and a summary per group.

    python -m analysis.aggregate --runs RUN_DIR ... --out results/tables [--budget 4000 ...]

A group is (env, algo, variant, device); a run's score at a step is its mean evaluation return.
Writes, under --out:
- `evaluations.csv`: every evaluation episode of every run (tidy);
- `curves.csv`: per group and grid step: runs, mean, std, IQM and its stratified-bootstrap CI;
- `summary.csv`, `summary.md`, `summary.tex`: per group: IQM (CI), mean and std of the return at
  the budget, the mean return over 0..budget, the return at the runs' end, env steps for the IQM
  curve to reach the threshold, the training loop's and the whole job's milliseconds per env
  step, peak memory, and for MBPO, per baseline (every non-MBPO algorithm and variant), the
  probability of beating it and the steps ratio. README, "Summary table", defines each column.

Every run's files are verified first (analysis.runs); bad input is one line naming the file and
exit status 2; tables are replaced atomically.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plan.identity import GROUP, IDENTITY, job_seeds
from plan.identity import name as run_name
from analysis.runs import (
    METADATA_FILE,
    RunFolderError,
    error_line,
    identity,
    load_runs,
    lockstep_share,
    metadata,
    run_scores,
    train_seconds_per_env_step,
)
from analysis.stats import (
    interpolate_curve,
    iqm,
    normalized_auc_until,
    probability_of_improvement,
    steps_to_threshold,
    stratified_bootstrap_ci,
    value_at,
)
from mbpo.record import write_atomic
from mbpo.usage import OneLineParser


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
    """Snakemake's benchmark record of each run (whole job: start-up, training, evaluation):
    seconds and peak resident memory; a run without a record is left out. A seed trained in
    lockstep reads its job's record (`seeds0-1-2.tsv`): its share of the seconds (the job's / its
    seeds) and the job's peak memory."""
    rows = []
    for run_dir in run_dirs:
        try:
            rel = Path(run_dir).resolve().relative_to(Path(runs_root).resolve())
        except ValueError:
            continue  # a run outside --runs-root has no benchmark record
        meta = metadata(run_dir)
        share = lockstep_share(meta, Path(run_dir) / METADATA_FILE)
        if share > 1:
            tsv = bench_root / rel.parent / f"seeds{job_seeds(meta['lockstep']['seeds'])}.tsv"
        else:
            tsv = bench_root / rel.parent / f"{rel.name}.tsv"
        if tsv.is_file():
            try:
                bench = pd.read_csv(tsv, sep="\t")
                seconds, rss = float(bench["s"].iloc[0]), float(bench["max_rss"].iloc[0])
            except (
                pd.errors.ParserError,
                pd.errors.EmptyDataError,
                UnicodeDecodeError,
                KeyError,
                IndexError,
                ValueError,
            ):
                raise RunFolderError(f"{tsv} is not a Snakemake benchmark record (columns s, max_rss)") from None
            rows.append({"path": rel.as_posix(), "bench_seconds": seconds / share, "max_rss_mb": rss})
    return pd.DataFrame(rows, columns=["path", "bench_seconds", "max_rss_mb"])


def train_timing(run_dirs: list[Path]) -> pd.DataFrame:
    """The training loop's own seconds per env step of each run (from its metadata)."""
    rows = [{**identity(d), "train_seconds_per_env_step": train_seconds_per_env_step(d)} for d in run_dirs]
    return pd.DataFrame(rows, columns=[*IDENTITY, "train_seconds_per_env_step"])


def per_run_at_budget(scores: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Each run's return at `budget` and its mean return over 0..budget (area / budget), both
    with the curve interpolated at the budget exactly where no evaluation falls on it."""
    rows = []
    for ident, run in scores.groupby(IDENTITY, sort=True):
        run = run.sort_values("env_step")
        steps, values = run.env_step.to_numpy(dtype=float), run.score.to_numpy()
        if steps[-1] < budget:
            raise RunFolderError(f"run {run_name(ident)} ends at env step {int(steps[-1])}, before the budget {budget}")
        rows.append([*ident, value_at(steps, values, budget), normalized_auc_until(steps, values, budget)])
    return pd.DataFrame(rows, columns=[*IDENTITY, "at_budget", "auc_to_budget"])


def summarize(
    scores: pd.DataFrame, curves: pd.DataFrame, bench: pd.DataFrame, timing: pd.DataFrame, s: Settings
) -> pd.DataFrame:
    """One row per group; columns are defined in the README (Summary table)."""
    rows = []
    at_budget: dict[tuple, np.ndarray] = {}
    budgets: dict[tuple, int] = {}
    for key, group_scores in scores.groupby(GROUP, sort=True):
        last_step = int(group_scores.env_step.max())
        budget = min(s.budget, last_step)
        per_run = per_run_at_budget(group_scores, budget)
        final = per_run.at_budget.to_numpy()
        at_budget[key], budgets[key] = final, budget
        ends = group_scores[group_scores.env_step == group_scores.groupby("seed").env_step.transform("max")]
        lo, hi = stratified_bootstrap_ci(final, iqm, s.bootstrap_samples, s.confidence, s.seed)
        curve = curves[(curves[GROUP] == pd.Series(key, index=GROUP)).all(axis=1)]
        reach = steps_to_threshold(curve.env_step.to_numpy(), curve.iqm.to_numpy(), s.threshold)
        paths = {run_name((*key, seed)) for seed in per_run.seed}
        b = bench[bench.path.isin(paths)]
        t = timing.merge(per_run[IDENTITY], on=IDENTITY).train_seconds_per_env_step.dropna()
        rows.append(
            {
                **dict(zip(GROUP, key)),
                "seeds": len(per_run),
                "budget": budget,
                "last_step": last_step,
                "return_iqm": iqm(final),
                "return_ci_low": lo,
                "return_ci_high": hi,
                "return_mean": final.mean(),
                "return_std": final.std(ddof=0),
                "auc_to_budget_iqm": iqm(per_run.auc_to_budget.to_numpy()),
                "return_at_end_iqm": iqm(ends.score.to_numpy()),
                "steps_to_threshold": float(reach),
                "train_ms_per_env_step": 1e3 * t.mean() if len(t) else np.nan,
                "job_ms_per_env_step": 1e3 * b.bench_seconds.mean() / last_step if len(b) else np.nan,
                "peak_rss_mb": b.max_rss_mb.max() if len(b) else np.nan,
            }
        )
    summary = pd.DataFrame(rows)
    # MBPO against every baseline group (each non-MBPO algorithm and variant) of the same env and
    # device: one column triple per baseline, named after it, so no comparison hides its baseline.
    # Both sides are compared at one env step: the budget, or the earlier of the two groups' last
    # steps when one group's runs end before it (`compared_at_*` says which step)
    baselines = sorted({k[1:3] for k in at_budget if k[1] != "mbpo"})
    groups = {key: g for key, g in scores.groupby(GROUP, sort=True)}
    for algo, variant in baselines:
        p_col, ratio_col = f"p_beats_{algo}_{variant}", f"steps_ratio_{algo}_{variant}"
        at_col = f"compared_at_{algo}_{variant}"
        summary[p_col], summary[ratio_col], summary[at_col] = np.nan, np.nan, np.nan
        for i, row in summary.iterrows():
            base, key = (row.env, algo, variant, row.device), tuple(row[GROUP])
            if row.algo != "mbpo" or base not in at_budget:
                continue
            step = min(budgets[key], budgets[base])
            ours, theirs = at_budget[key], at_budget[base]
            if step != budgets[key]:
                ours = per_run_at_budget(groups[key], step).at_budget.to_numpy()
            if step != budgets[base]:
                theirs = per_run_at_budget(groups[base], step).at_budget.to_numpy()
            summary.loc[i, at_col] = step
            summary.loc[i, p_col] = probability_of_improvement(ours, theirs)
            curve = curves[(curves[GROUP] == pd.Series(base, index=GROUP)).all(axis=1)]
            needed = steps_to_threshold(curve.env_step.to_numpy(), curve.iqm.to_numpy(), iqm(ours))
            # NaN when the baseline never reaches MBPO's return within its own runs
            summary.loc[i, ratio_col] = needed / step
    return summary


def write_tables(summary: pd.DataFrame, curves: pd.DataFrame, evaluations: pd.DataFrame, out: Path) -> None:
    """Every table written atomically (a temporary file renamed into place): a reader, or
    Snakemake after an interruption, sees the old table or the new one, never a part."""
    shown = summary.round(3)
    texts = {
        "evaluations.csv": evaluations.to_csv(index=False),
        "curves.csv": curves.to_csv(index=False),
        "summary.csv": summary.to_csv(index=False),
        "summary.md": shown.to_markdown(index=False) + "\n",
        "summary.tex": shown.to_latex(index=False, float_format="%.3f", na_rep="--"),
    }
    for name, text in texts.items():
        write_atomic(out / name, text)


def aggregate(run_dirs: list[Path], runs_root: Path, bench_root: Path, s: Settings) -> dict[str, pd.DataFrame]:
    evaluations = load_runs(run_dirs)
    scores = run_scores(evaluations)
    grid, on_grid = curves_on_grid(scores, s.grid)
    curves = group_curves(grid, on_grid, s)
    bench = benchmark_stats(run_dirs, runs_root, bench_root)
    summary = summarize(scores, curves, bench, train_timing(run_dirs), s)
    return {"evaluations": evaluations, "curves": curves, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m analysis.aggregate", description=__doc__.split("\n\n")[0])
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
    for name, ok, want in (
        ("--budget", args.budget > 0, "> 0"),
        ("--grid", args.grid > 0, "> 0"),
        ("--bootstrap-samples", args.bootstrap_samples > 0, "> 0"),
        ("--confidence", 0 < args.confidence < 1, "in (0, 1)"),
        ("--threshold", np.isfinite(args.threshold), "a finite number"),
        ("--seed", args.seed >= 0, ">= 0"),
    ):
        if not ok:
            parser.error(f"{name} must be {want}, got {getattr(args, name[2:].replace('-', '_'))}")
    settings = Settings(args.budget, args.threshold, args.grid, args.bootstrap_samples, args.confidence, args.seed)
    try:
        tables = aggregate(args.runs, args.runs_root, args.benchmarks_root, settings)
        write_tables(tables["summary"], tables["curves"], tables["evaluations"], args.out)
    except (RunFolderError, OSError) as exc:
        print(f"{parser.prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; no table was half-written", file=sys.stderr)
        return 130
    print(f"{parser.prog}: {len(args.runs)} runs, {len(tables['summary'])} groups -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
