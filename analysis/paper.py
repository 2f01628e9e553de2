"""The MBPO paper's figures and table from an experiment like `config/paper.yaml`.

    python -m analysis.paper --runs RUN_DIR ... --tables results/paper/tables --figures results/paper/figures

Writes:
- `figures/paper_comparison.{png,pdf}`: a panel per environment, IQM evaluation return vs env
  steps with a 95% stratified-bootstrap band, MBPO (the paper's per-environment rollout schedule)
  against SAC over the same budget, and the SAC asymptote (IQM final return of the longer SAC
  runs) dashed, as in the paper's Figure 2; and `figures/paper_comparison_{env}.png`, each
  panel alone (the docs' per-env figures are copies of these: `python -m analysis.docs`);
- `figures/paper_ablation.{png,pdf}`: Hopper (or whichever env has ablation runs), MBPO at every
  rollout length of the ablation plus the paper's schedule, as in the paper's rollout-length figure;
- `tables/paper_returns.{csv,md}`: per env and algorithm, the IQM (95% CI) of the return at
  fixed fractions of the env's MBPO budget (`--fractions`), the number of runs, and the paper's
  approximate value at its own full budget (`PAPER_RETURNS`; the cell names that step where the
  budget differs, as the validation's 50k Hopper runs' does from the paper's 125k);
- `tables/paper_seeds.{csv,md}`: every run's own return at the same steps and at its last
  evaluation, so each IQM can be read back to its seeds.

Curves are the runs' mean evaluation return per evaluation, linearly interpolated onto a grid of
`--points` steps per budget; a run shorter than a grid point does not count there (the band and
the table say how many runs do).
"""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from plan.identity import PAPER_VARIANT, label, rollout_label, rollout_length, rollout_order  # noqa: E402
from analysis.figures import save_figure  # noqa: E402
from analysis.runs import RunFolderError, error_line, load_runs, run_scores  # noqa: E402
from analysis.stats import interpolate_curve, iqm, stratified_bootstrap_ci  # noqa: E402
from mbpo.config import PAPER_ENVS, env_name  # noqa: E402
from mbpo.record import write_atomic  # noqa: E402
from mbpo.usage import OneLineParser  # noqa: E402

# The paper's MBPO return at its full budget, read off its Figure 2 (approximate; -v2 envs):
# docs/paper-settings.md. SAC at the same budget is given where the paper shows it.
PAPER_RETURNS: dict[str, dict[str, float]] = {
    "Hopper": {"mbpo": 3300.0},
    "Walker2d": {"mbpo": 4700.0},
    "HalfCheetah": {"mbpo": 12000.0},
    "Ant": {"mbpo": 5700.0},
    "Humanoid": {"mbpo": 5000.0},
}
FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)  # the table's default steps, as fractions of each budget
COMPARED = ("mbpo", "sac")
# The original MBPO's published curve per env (-v2 envs; approximate), as points read by eye off a
# plot of it, drawn as a reference line with its source, never as data. A panel whose budget holds
# no reading says so (docs/paper.md: which curves exist and why others are absent; the same
# Hopper readings are tabled in docs/paper-settings.md)
ORIGINAL_CURVES: dict[str, tuple[str, list[tuple[int, float]]]] = {
    # the mean of the original code's released Hopper runs, as Xingyu-Lin/mbpo_pytorch plots it
    # (results/hopper.png, from the authors' data file, x in epochs of 1000 env steps)
    "Hopper": (
        "released runs' mean, plotted in Xingyu-Lin/mbpo_pytorch, read by eye",
        [(10_000, 340.0), (15_000, 470.0), (20_000, 540.0), (30_000, 700.0), (50_000, 1730.0), (100_000, 3320.0)],
    ),
}
NO_ORIGINAL_CURVE = "original MBPO: no reading on record (docs/paper.md)"
_PALETTE = sns.color_palette("colorblind")
COLORS = {"mbpo": _PALETTE[0], "sac": _PALETTE[1], "sac_asymptote": _PALETTE[1]}


class PaperError(ValueError):
    """The runs cannot make the paper's figures (the message says why)."""


def budgets(scores: pd.DataFrame) -> dict[str, int]:
    """Each env's budget: the longest MBPO run (else the longest run) of the comparison."""
    out = {}
    for env, runs in scores.groupby("env"):
        mbpo = runs[runs.algo == "mbpo"]
        out[env] = int((mbpo if not mbpo.empty else runs[runs.algo != "sac_asymptote"]).env_step.max())
    return out


def iqm_curve(runs: pd.DataFrame, grid: np.ndarray, samples: int, seed: int) -> pd.DataFrame:
    """IQM over runs at each grid step with its 95% stratified-bootstrap interval: columns
    env_step, runs, iqm, ci_low, ci_high (steps no run reaches are left out)."""
    curves = np.array(
        [
            interpolate_curve(run.env_step.to_numpy(), run.score.to_numpy(), grid)
            for _, run in runs.groupby(["device", "seed"], sort=True)
        ]
    )
    rows = []
    for j, step in enumerate(grid):
        values = curves[:, j][~np.isnan(curves[:, j])]
        if values.size == 0:
            continue
        low, high = stratified_bootstrap_ci(values, iqm, samples=samples, seed=seed)
        rows.append((int(step), values.size, iqm(values), low, high))
    return pd.DataFrame(rows, columns=["env_step", "runs", "iqm", "ci_low", "ci_high"])


def asymptote(scores: pd.DataFrame, env: str) -> float:
    """IQM over the SAC-asymptote runs of `env` of each run's last evaluation score."""
    runs = scores[(scores.env == env) & (scores.algo == "sac_asymptote")]
    if runs.empty:
        return math.nan
    return iqm(runs.sort_values("env_step").groupby("seed").score.last().to_numpy())


def compared_runs(scores: pd.DataFrame, env: str, algo: str) -> pd.DataFrame:
    """The runs of `algo` in the comparison on `env`: MBPO at the paper's schedule where it ran."""
    runs = scores[(scores.env == env) & (scores.algo == algo)]
    if algo == "mbpo" and (runs.variant == PAPER_VARIANT).any():
        runs = runs[runs.variant == PAPER_VARIANT]
    return runs


def table_steps(
    runs: pd.DataFrame, algo: str, budget: int, fractions: tuple[float, ...]
) -> tuple[int, tuple[float, ...]]:
    """The budget a row of the tables is measured against and its fractions: the env's MBPO
    budget at every fraction, except the SAC asymptote, at the end of its own longer runs only."""
    if algo == "sac_asymptote":
        return int(runs.env_step.max()), (1.0,)
    return budget, fractions


def returns_table(
    scores: pd.DataFrame, budget: dict[str, int], samples: int, seed: int, fractions: tuple[float, ...] = FRACTIONS
) -> pd.DataFrame:
    """IQM (CI) at each fraction of each env's budget, per env and compared algorithm (the SAC
    asymptote at its own, longer budget only)."""
    rows = []
    for env in sorted(budget, key=paper_order):
        for algo in (*COMPARED, "sac_asymptote"):
            for variant, runs in compared_runs(scores, env, algo).groupby("variant", sort=True):
                length, at = table_steps(runs, algo, budget[env], fractions)
                steps = [f * length for f in at]
                curve = iqm_curve(runs, np.array(steps), samples, seed).drop_duplicates("env_step")
                curve = curve.set_index("env_step")  # two fractions may fall on one whole step
                row = {"env": env, "algo": algo, "variant": variant, "budget": length}
                for fraction, step in zip(at, steps):
                    hit = curve.loc[int(step)] if int(step) in curve.index else None
                    key = f"at_{fraction:g}"
                    row[f"{key}_steps"] = int(step)
                    row[f"{key}_runs"] = int(hit.runs) if hit is not None else 0
                    for stat in ("iqm", "ci_low", "ci_high"):
                        row[f"{key}_{stat}"] = float(hit[stat]) if hit is not None else math.nan
                row["paper_at_budget"] = PAPER_RETURNS.get(env_name(env), {}).get(algo, math.nan)
                paper_env = PAPER_ENVS.get(env_name(env))
                row["paper_budget"] = paper_env.total_steps if paper_env is not None else math.nan
                rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, fractions: tuple[float, ...] = FRACTIONS) -> str:
    """The table as Markdown: one cell per fraction, `IQM (low, high) [runs]`, or `mean (min to max)
    [runs]` for 3 runs or fewer (what the IQM and its bootstrap interval then are)."""
    header = ["env", "algorithm", "budget", *(f"{f:g} x budget" for f in fractions), "paper, full budget"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = []
        for f in fractions:
            key = f"at_{f:g}"
            if f"{key}_iqm" not in row or pd.isna(row.get(f"{key}_iqm")):
                cells.append("")
            else:
                center, low, high, runs = (row[f"{key}_{k}"] for k in ("iqm", "ci_low", "ci_high", "runs"))
                # with 3 runs or fewer the IQM is their mean and the bootstrap interval their range
                spread = f"{low:.0f} to {high:.0f}" if runs <= 3 else f"{low:.0f}, {high:.0f}"
                cells.append(f"{center:.0f} ({spread}) [{runs:.0f}]")
        paper = "" if pd.isna(row.paper_at_budget) else f"~{row.paper_at_budget:.0f}"
        if paper and row.paper_budget != row.budget:  # a run of another length: say where the paper's value is
            paper += f" at {row.paper_budget:.0f}"
        lines.append("| " + " | ".join([row.env, label(row.algo, row.variant), str(row.budget), *cells, paper]) + " |")
    return "\n".join(lines) + "\n"


def seeds_table(scores: pd.DataFrame, budget: dict[str, int], fractions: tuple[float, ...] = FRACTIONS) -> pd.DataFrame:
    """Every run's return at the table's steps (interpolated between evaluations like the curves;
    empty past the run's end) and at its last evaluation: one row per run, in the table's order."""
    rows = []
    for env in sorted(budget, key=paper_order):
        for algo in (*COMPARED, "sac_asymptote", "mbpo_ablation"):
            group = scores[(scores.env == env) & (scores.algo == algo)]
            for (variant, device, seed), run in group.groupby(["variant", "device", "seed"], sort=True):
                run = run.sort_values("env_step")
                length, at = table_steps(run, algo, budget[env], fractions)
                steps = np.array([f * length for f in at])
                values = interpolate_curve(run.env_step.to_numpy(), run.score.to_numpy(), steps)
                row = {"env": env, "algo": algo, "variant": variant, "device": device, "seed": seed, "budget": length}
                for fraction, step, value in zip(at, steps, values):
                    row[f"at_{fraction:g}_steps"] = int(step)
                    row[f"at_{fraction:g}"] = float(value)
                row["last_steps"] = int(run.env_step.iloc[-1])
                row["last"] = float(run.score.iloc[-1])
                rows.append(row)
    return pd.DataFrame(rows)


def seeds_markdown(table: pd.DataFrame, fractions: tuple[float, ...] = FRACTIONS) -> str:
    """The per-run table as Markdown: one cell per fraction, then the last evaluation `return
    (at step)`."""
    header = ["env", "algorithm", "device", "seed", "budget", *(f"{f:g} x budget" for f in fractions), "last"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = ["" if pd.isna(row.get(f"at_{f:g}")) else f"{row[f'at_{f:g}']:.0f}" for f in fractions]
        last = f"{row['last']:.0f} ({row['last_steps']})"
        lines.append(
            "| "
            + " | ".join(
                [row.env, label(row.algo, row.variant), row.device, str(row.seed), str(row.budget), *cells, last]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def paper_order(env: str) -> tuple:
    """The paper's order of envs (PAPER_ENVS), others after it by name."""
    names = list(PAPER_ENVS)
    return (names.index(env_name(env)), env) if env_name(env) in names else (len(names), env)


def comparison_figure(scores: pd.DataFrame, budget: dict[str, int], points: int, samples: int, seed: int) -> plt.Figure:
    envs = sorted(budget, key=paper_order)
    cols = min(len(envs), 4)
    rows = math.ceil(len(envs) / cols)
    # one or two panels get the width of a readable single figure (the title on one line)
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.2 * cols, 7.0), max(4.6 * rows, 5.4)), squeeze=False)
    for ax, env in zip(axes.ravel(), envs):
        grid = np.linspace(0, budget[env], points + 1)
        for algo in COMPARED:
            for i, (variant, runs) in enumerate(compared_runs(scores, env, algo).groupby("variant", sort=True)):
                curve = iqm_curve(runs, grid, samples, seed)
                n = len(runs.groupby(["device", "seed"]))
                what = rollout_label(variant) if variant == PAPER_VARIANT else variant
                style = ("-", ":", "-.")[i % 3]
                # with 3 runs or fewer the IQM is their mean and the 95% bootstrap band their range
                drawn = "mean, band: min-max" if n <= 3 else "IQM, band: 95% bootstrap CI"
                ax.plot(
                    curve.env_step,
                    curve.iqm,
                    color=COLORS[algo],
                    linestyle=style,
                    label=f"{label(algo)}, {what} ({n} runs; {drawn})",
                )
                ax.fill_between(curve.env_step, curve.ci_low, curve.ci_high, color=COLORS[algo], alpha=0.2, linewidth=0)
        source, readings = ORIGINAL_CURVES.get(env_name(env), ("", []))
        shown = [(x, y) for x, y in readings if x <= budget[env]]
        if shown:
            xs, ys = zip(*shown)
            ax.plot(xs, ys, color="0.35", linestyle="--", marker="o", markersize=3, linewidth=1,
                    label=f"original MBPO ({source})")  # fmt: skip
        else:  # said in the legend, so that a missing line is not read as one left out by mistake
            ax.plot([], [], linestyle="none", label=NO_ORIGINAL_CURVE)
        level = asymptote(scores, env)
        if math.isfinite(level):
            ax.axhline(
                level, color=COLORS["sac_asymptote"], linestyle="--", linewidth=1.2, label=label("sac_asymptote")
            )
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return")
        # below the panel: a legend inside it covers curves
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    for ax in axes.ravel()[len(envs) :]:
        ax.set_visible(False)
    fit_suptitle(fig, "MBPO vs SAC at the paper's settings")
    fig.tight_layout()
    return fig


def fit_suptitle(fig: plt.Figure, text: str) -> None:
    """The figure's title, wrapped onto as few lines as keep it inside the figure's width (one
    panel is narrower than the title)."""
    renderer = fig.canvas.get_renderer()
    for lines in range(1, len(text.split()) + 1):
        title = fig.suptitle(textwrap.fill(text, width=math.ceil(len(text) / lines)))
        if title.get_window_extent(renderer).width <= 0.95 * fig.bbox.width:
            return


def length_label(variant: str) -> str:
    text = rollout_label(variant)
    return text if variant == PAPER_VARIANT or "," in rollout_length(variant) else f"length {text}"


def ablation_figure(scores: pd.DataFrame, budget: dict[str, int], points: int, samples: int, seed: int) -> plt.Figure:
    envs = sorted(scores[scores.algo == "mbpo_ablation"].env.unique())
    fig, axes = plt.subplots(1, max(len(envs), 1), figsize=(5.5 * max(len(envs), 1), 3.8), squeeze=False)
    if not envs:
        axes[0, 0].text(0.5, 0.5, "no rollout-length ablation runs in this experiment", ha="center", va="center")
        axes[0, 0].set_axis_off()
        return fig
    palette = sns.color_palette("viridis", 6)
    for ax, env in zip(axes.ravel(), envs):
        runs = scores[(scores.env == env) & scores.algo.isin(["mbpo", "mbpo_ablation"])]
        grid = np.linspace(0, budget[env], points + 1)
        for i, variant in enumerate(sorted(runs.variant.unique(), key=rollout_order)):
            group = runs[runs.variant == variant]
            curve = iqm_curve(group, grid, samples, seed)
            c = palette[i % len(palette)]
            n = len(group.groupby(["device", "seed"]))
            ax.plot(curve.env_step, curve.iqm, color=c, label=f"{length_label(variant)} ({n} runs)")
            ax.fill_between(curve.env_step, curve.ci_low, curve.ci_high, color=c, alpha=0.15, linewidth=0)
        ax.set_title(f"{env}: MBPO rollout length")
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return (IQM)")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def make(
    run_dirs: list[Path],
    tables: Path,
    figures: Path,
    points: int,
    samples: int,
    seed: int,
    fractions: tuple[float, ...] = FRACTIONS,
) -> pd.DataFrame:
    scores = run_scores(load_runs(run_dirs))
    comparison = scores[scores.algo.isin([*COMPARED, "sac_asymptote"])]
    if comparison.empty:
        raise PaperError("no mbpo, sac or sac_asymptote runs among the runs given")
    budget = budgets(scores)
    table = returns_table(scores, budget, samples, seed, fractions)
    write_atomic(tables / "paper_returns.csv", table.to_csv(index=False))
    write_atomic(tables / "paper_returns.md", markdown(table, fractions))
    per_run = seeds_table(scores, budget, fractions)
    write_atomic(tables / "paper_seeds.csv", per_run.to_csv(index=False))
    write_atomic(tables / "paper_seeds.md", seeds_markdown(per_run, fractions))
    sns.set_theme(style="whitegrid", palette="colorblind")
    save_figure(comparison_figure(comparison, budget, points, samples, seed), figures, "paper_comparison")
    for env in budget:  # one panel each, for pages that show one env (python -m analysis.docs copies them)
        if (comparison.env == env).any():
            one = comparison_figure(comparison[comparison.env == env], {env: budget[env]}, points, samples, seed)
            save_figure(one, figures, f"paper_comparison_{env}", exts=("png",))
    save_figure(ablation_figure(scores, budget, points, samples, seed), figures, "paper_ablation")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m analysis.paper", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="complete run folders")
    parser.add_argument("--tables", type=Path, required=True, help="folder for paper_returns.{csv,md}")
    parser.add_argument("--figures", type=Path, required=True, help="folder for the figures")
    parser.add_argument("--points", type=int, default=50, help="grid points per budget on the curves (default 50)")
    parser.add_argument("--bootstrap-samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's generator seed")
    parser.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=list(FRACTIONS),
        metavar="F",
        help="the tables' steps as fractions of each env's budget, each in (0, 1] (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    for name, ok, want in (
        ("--points", args.points >= 1, ">= 1"),
        ("--bootstrap-samples", args.bootstrap_samples >= 10, ">= 10"),
        ("--seed", args.seed >= 0, ">= 0"),
    ):
        if not ok:
            parser.error(f"{name} must be {want}, got {getattr(args, name[2:].replace('-', '_'))}")
    bad = [f for f in args.fractions if not 0 < f <= 1]
    if bad:
        parser.error(f"--fractions must each be in (0, 1], got {bad[0]:g}")
    fractions = tuple(sorted(set(args.fractions)))
    keys = [f"{f:g}" for f in fractions]
    if len(set(keys)) < len(keys):
        parser.error(f"--fractions must differ in their first 6 digits, got {' '.join(map(repr, fractions))}")
    try:
        table = make(args.runs, args.tables, args.figures, args.points, args.bootstrap_samples, args.seed, fractions)
    except (RunFolderError, PaperError, OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    print(markdown(table, fractions), end="")
    print(f"\nEvery run: {args.tables / 'paper_seeds.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
