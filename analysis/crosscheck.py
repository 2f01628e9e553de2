"""Is this harness's SAC the SAC it claims to be? Its runs against Stable-Baselines3's SAC run
with the same settings and evaluation protocol (`--algo sb3_sac`, `mbpo.sb3`).

    python -m analysis.crosscheck --runs RUN_DIR ... --tables DIR --figures DIR --margin ENV=M ...

Runs of other groups among `--runs`, and envs with runs of one SAC only, are left out (and named on
stderr). Per env, the runs of group `sac/utd1` (this SAC) and `sb3_sac/utd1` (SB3's) must share one SAC
config (every field of the `sac` section, and the run length, evaluation and env): otherwise the
comparison is refused. Two metrics per run:
- `return_at_budget`: the mean evaluation return at the run's last step (its budget);
- `auc`: the area under its evaluation curve over the whole run, divided by the run's env steps
  (the average return while learning).
The difference is SB3 minus this SAC, with two `1 - 2 alpha` intervals: the difference of means
with its percentile bootstrap interval (`analysis.stats.mean_difference_ci`), and the
Hodges-Lehmann shift (the median of all pairwise differences) with its interval from inverting the
exact Wilcoxon-Mann-Whitney test (`analysis.stats.rank_shift_test`). An interval inside (-margin,
+margin) is the two one-sided tests of equivalence at level `alpha` each. Verdicts: `equivalent`
(both intervals inside the margin), `SB3 higher` / `SB3 lower` (both wholly beyond +margin /
-margin: they differ by more than the margin), `inconclusive` (otherwise: more seeds needed to
tell). Both are asked because each fails where the other holds: the rank interval narrows to
nothing when most runs tie at a capped return (InvertedPendulum's 1000), and the means' interval
is pulled by one outlying run. The margin is given per env in return units and applies to both
metrics (`config/crosscheck.yaml`).

Writes `tables/crosscheck.{csv,md}` and `figures/crosscheck.{png,pdf}` (every run's curve and
each implementation's mean curve, per env).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from plan.identity import label  # noqa: E402
from analysis.figures import save_figure  # noqa: E402
from analysis.runs import RunFolderError, error_line, identity, load_runs, metadata, run_scores  # noqa: E402
from analysis.stats import mean_difference_ci, normalized_auc, rank_shift_test  # noqa: E402
from mbpo.record import write_atomic  # noqa: E402
from mbpo.usage import OneLineParser  # noqa: E402

OURS, THEIRS = ("sac", "utd1"), ("sb3_sac", "utd1")
METRICS = {
    "return_at_budget": "mean evaluation return at the run's last step",
    "auc": "area under the evaluation curve over the whole run / its env steps",
}
SHARED_SECTIONS = ("sac",)
SHARED_RUN_FIELDS = ("env", "total_steps", "eval_every", "eval_episodes", "truncate_obs")


class CrosscheckError(ValueError):
    """Bad input: the message says what is wrong."""


def _shared(config: dict) -> dict:
    run = config.get("run", {})
    return {
        **{f"run.{k}": run.get(k) for k in SHARED_RUN_FIELDS},
        **{f"{s}.{k}": v for s in SHARED_SECTIONS for k, v in config.get(s, {}).items()},
    }


def check_same_settings(run_dirs: list[Path]) -> None:
    """Every run of an env, of either implementation, was made with one SAC config."""
    first: dict[str, tuple[dict, Path]] = {}
    for run_dir in run_dirs:
        config = metadata(run_dir).get("config") or {}
        env = identity(run_dir)["env"]
        got = _shared(config)
        if env not in first:
            first[env] = (got, run_dir)
            continue
        want, where = first[env]
        diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
        if diff:
            shown = ", ".join(f"{k}: {want.get(k)!r} vs {got.get(k)!r}" for k in diff[:4])
            raise CrosscheckError(f"{where} and {run_dir} were not run with the same settings ({shown})")


def run_metrics(scores: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (env, algo, variant, device, seed), run in scores.groupby(["env", "algo", "variant", "device", "seed"]):
        run = run.sort_values("env_step")
        steps, values = run.env_step.to_numpy(dtype=float), run.score.to_numpy()
        auc = float(normalized_auc(steps, values)) if steps.size > 1 else float(values[-1])
        rows.append([env, algo, variant, device, seed, int(steps[-1]), float(values[-1]), auc])
    return pd.DataFrame(rows, columns=["env", "algo", "variant", "device", "seed", "budget", *METRICS])


def verdict(intervals: list[tuple[float, float]], margin: float) -> str:
    """`equivalent` when every interval lies inside (-margin, margin), `SB3 higher` / `SB3 lower`
    when every one lies wholly beyond +margin / -margin, else `inconclusive`."""
    if all(-margin < low and high < margin for low, high in intervals):
        return "equivalent"
    if all(low >= margin for low, _ in intervals):
        return "SB3 higher"
    if all(high <= -margin for _, high in intervals):
        return "SB3 lower"
    return "inconclusive"


def compare(
    metrics: pd.DataFrame, margins: dict[str, float], alpha: float, samples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    rows = []
    for env in sorted(metrics.env.unique()):
        data = metrics[metrics.env == env]
        ours = data[(data.algo == OURS[0]) & (data.variant == OURS[1])]
        theirs = data[(data.algo == THEIRS[0]) & (data.variant == THEIRS[1])]
        if ours.empty or theirs.empty:
            missing = "/".join(OURS) if ours.empty else "/".join(THEIRS)
            raise CrosscheckError(f"{env}: no {missing} runs to compare")
        if env not in margins:
            raise CrosscheckError(f"{env}: no --margin given for it")
        budgets = set(ours.budget) | set(theirs.budget)
        if len(budgets) != 1:
            raise CrosscheckError(f"{env}: the runs end at different env steps {sorted(budgets)}")
        budget = int(budgets.pop())
        for metric in METRICS:
            test = rank_shift_test(ours[metric].to_numpy(), theirs[metric].to_numpy(), alpha)
            diff, low, high = mean_difference_ci(ours[metric], theirs[metric], 1 - 2 * alpha, samples, seed)
            rows.append(
                {
                    "env": env,
                    "budget": budget,
                    "metric": metric,
                    "seeds_sac": len(ours),
                    "seeds_sb3": len(theirs),
                    "mean_sac": ours[metric].mean(),
                    "mean_sb3": theirs[metric].mean(),
                    "mean_sb3_minus_sac": diff,
                    "mean_ci_low": low,
                    "mean_ci_high": high,
                    "shift_sb3_minus_sac": test.shift,
                    "ci_low": test.low,
                    "ci_high": test.high,
                    "confidence": 1 - 2 * alpha,
                    "margin": margins[env],
                    "excludes_zero": bool((test.low > 0 or test.high < 0) and (low > 0 or high < 0)),
                    "verdict": verdict([(test.low, test.high), (low, high)], margins[env]),
                }
            )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "| env | metric (budget) | this SAC: mean [seeds] | SB3 SAC: mean [seeds] | SB3 - this SAC: means "
        "(interval) | SB3 - this SAC: HL shift (interval) | margin | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        means = f"{r.mean_sb3_minus_sac:.0f} ({r.mean_ci_low:.0f}, {r.mean_ci_high:.0f})"
        shift = f"{r.shift_sb3_minus_sac:.0f} ({r.ci_low:.0f}, {r.ci_high:.0f})"
        lines.append(
            f"| {r.env} | {r.metric} ({r.budget}) | {r.mean_sac:.0f} [{r.seeds_sac}] | {r.mean_sb3:.0f} "
            f"[{r.seeds_sb3}] | {means} | {shift} | ±{r.margin:g} | {r.verdict} |"
        )
    confidence = table.confidence.iloc[0]
    lines += [
        "",
        f"Two {confidence:.0%} intervals of SB3 minus this SAC: the difference of means (bootstrap) and the "
        "Hodges-Lehmann shift (exact rank test inverted). Equivalent: both inside ±margin (two one-sided tests by "
        "each); SB3 higher or lower: both wholly beyond it; otherwise inconclusive at these seeds. The rank interval "
        "alone narrows to nothing when most runs tie at a capped return; the interval of means does not.",
    ]
    return "\n".join(lines) + "\n"


def figure(scores: pd.DataFrame, out: Path) -> None:
    envs = sorted(scores.env.unique())
    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), 4.8), squeeze=False)
    palette = sns.color_palette("colorblind")
    for ax, env in zip(axes[0], envs):
        for color, (algo, variant) in zip(palette, (OURS, THEIRS)):
            data = scores[(scores.env == env) & (scores.algo == algo) & (scores.variant == variant)]
            for _, run in data.groupby("seed"):
                ax.plot(run.env_step, run.score, color=color, alpha=0.25, linewidth=0.8)
            mean = data.groupby("env_step").score.mean()
            seeds = data.seed.nunique()
            ax.plot(mean.index, mean.values, color=color, linewidth=2.2, label=f"{label(algo)}: mean of {seeds} seeds")
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8, frameon=False)  # off the curves
    fig.suptitle("SAC cross-check: this harness's SAC and Stable-Baselines3's, same settings (thin: one seed each)")
    fig.tight_layout()
    save_figure(fig, out, "crosscheck", dpi=120)


def parse_margins(items: list[str]) -> dict[str, float]:
    margins = {}
    for item in items:
        env, sep, value = item.partition("=")
        try:
            margin = float(value)
        except ValueError:
            margin = math.nan
        if not sep or not env or not math.isfinite(margin) or margin <= 0:
            raise CrosscheckError(f"--margin {item!r}: expected ENV=VALUE with a finite VALUE > 0")
        margins[env] = margin
    return margins


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m analysis.crosscheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="complete run folders of both SACs")
    parser.add_argument("--tables", type=Path, required=True, help="folder for crosscheck.csv and crosscheck.md")
    parser.add_argument("--figures", type=Path, required=True, help="folder for crosscheck.png and crosscheck.pdf")
    parser.add_argument(
        "--margin",
        nargs="+",
        required=True,
        help="ENV=VALUE: the equivalence margin per env, return units, both metrics",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="level of each one-sided test; the intervals are 1 - 2 alpha (0.05)"
    )
    parser.add_argument("--bootstrap-samples", type=int, default=2000, help="resamples of the means' interval (2000)")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's generator seed (0)")
    args = parser.parse_args(argv)
    if not 0 < args.alpha < 0.5:
        parser.error(f"--alpha must be in (0, 0.5), got {args.alpha}")
    if args.bootstrap_samples < 100:
        parser.error(f"--bootstrap-samples must be at least 100, got {args.bootstrap_samples}")
    try:
        margins = parse_margins(args.margin)
        runs = [d for d in args.runs if (identity(d)["algo"], identity(d)["variant"]) in (OURS, THEIRS)]
        if not runs:
            raise CrosscheckError(f"none of the {len(args.runs)} runs is a {'/'.join(OURS)} or {'/'.join(THEIRS)} run")
        if len(runs) < len(args.runs):  # a glob over a results folder is fine; say what it left out
            print(
                f"{parser.prog}: {len(args.runs) - len(runs)} of the {len(args.runs)} runs are neither "
                f"{'/'.join(OURS)} nor {'/'.join(THEIRS)}: left out",
                file=sys.stderr,
            )
        ids = {run: identity(run) for run in runs}
        sides: dict[str, set] = {}
        for run in runs:
            sides.setdefault(ids[run]["env"], set()).add(ids[run]["algo"])
        one_sided = sorted(env for env, algos in sides.items() if len(algos) < 2)
        if len(one_sided) == len(sides):
            raise CrosscheckError(f"no env has runs of both {'/'.join(OURS)} and {'/'.join(THEIRS)}")
        if one_sided:
            runs = [run for run in runs if ids[run]["env"] not in one_sided]
            print(f"{parser.prog}: {', '.join(one_sided)}: runs of one SAC only, left out", file=sys.stderr)
        check_same_settings(runs)
        scores = run_scores(load_runs(runs))
        table = compare(run_metrics(scores), margins, args.alpha, args.bootstrap_samples, args.seed)
        args.tables.mkdir(parents=True, exist_ok=True)
        write_atomic(args.tables / "crosscheck.csv", table.to_csv(index=False))
        write_atomic(args.tables / "crosscheck.md", markdown(table))
        figure(scores, args.figures)
    except (CrosscheckError, RunFolderError, OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; no table was half-written", file=sys.stderr)
        return 130
    print(markdown(table), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
