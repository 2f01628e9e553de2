"""Figures from the aggregated tables (PNG and PDF), with one colour per algorithm everywhere.

    python -m analysis.figures [--tables results/tables] [--out results/figures]

- `sample_efficiency`: IQM return vs env steps with bootstrap confidence bands, a panel per env;
- `rollout_ablation`: MBPO's return at the budget and area under the curve vs rollout length,
  SAC's as reference lines;
- `wallclock`: IQM return vs wall-clock seconds;
- `devices` (only when runs on more than one device exist): env steps per second per device.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from plan.identity import GROUP, VariantError, label, rollout_label, rollout_order  # noqa: E402
from analysis.runs import error_line  # noqa: E402
from mbpo.record import atomic_file  # noqa: E402
from mbpo.usage import OneLineParser  # noqa: E402


_PALETTE = sns.color_palette("colorblind")
ALGO_COLORS = {"mbpo": _PALETTE[0], "sac": _PALETTE[1], "sac_mbpo_utd": _PALETTE[2]}
DASHES = ["-", "--", ":", "-."]


def color(algo: str):
    return ALGO_COLORS.get(algo, _PALETTE[3])


def plot_curves(curves: pd.DataFrame, env: str, ax=None, x: str = "env_step"):
    """IQM return vs `x` for every group of one env, with confidence bands."""
    ax = ax or plt.gca()
    data = curves[curves.env == env]
    for (algo, variant, device), group in data.groupby(["algo", "variant", "device"], sort=True):
        variants = sorted(data[data.algo == algo].variant.unique(), key=lambda v: (len(v), v))
        style = DASHES[variants.index(variant) % len(DASHES)]
        name = label(algo, variant) + (f" [{device}]" if data.device.nunique() > 1 else "")
        ax.plot(group[x], group.iqm, style, color=color(algo), label=name, linewidth=1.6)
        ax.fill_between(group[x], group.ci_low, group.ci_high, color=color(algo), alpha=0.15, linewidth=0)
    ax.set_title(env)
    ax.set_ylabel("return (IQM, 95% CI)")
    return ax


def sample_efficiency(curves: pd.DataFrame) -> plt.Figure:
    envs = sorted(curves.env.unique())
    fig, axes = plt.subplots(1, len(envs), figsize=(6.5 * len(envs), 4.5), squeeze=False)
    for ax, env in zip(axes[0], envs):
        plot_curves(curves, env, ax)
        ax.set_xlabel("env steps")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def rollout_ablation(summary: pd.DataFrame) -> plt.Figure:
    envs = sorted(summary.env.unique())
    fig, axes = plt.subplots(len(envs), 2, figsize=(11, 4 * len(envs)), squeeze=False)
    for row, env in zip(axes, envs):
        data = summary[summary.env == env]
        mbpo = data[data.algo == "mbpo"].copy()
        mbpo = mbpo.iloc[sorted(range(len(mbpo)), key=lambda i: rollout_order(mbpo.variant.iloc[i]))]
        for ax, column, ylabel in (
            (row[0], "return_iqm", "return at the budget (IQM, 95% CI)"),
            (row[1], "auc_to_budget_iqm", "mean return over 0..budget (area / budget, IQM)"),
        ):
            positions = range(len(mbpo))
            ax.plot(positions, mbpo[column], "o-", color=color("mbpo"), label=label("mbpo"))
            if column == "return_iqm":
                ax.fill_between(positions, mbpo.return_ci_low, mbpo.return_ci_high, color=color("mbpo"), alpha=0.15)
            for _, ref in data[data.algo != "mbpo"].iterrows():
                ax.axhline(ref[column], color=color(ref.algo), linestyle="--", label=label(ref.algo, ref.variant))
            ax.set_xticks(list(positions), [rollout_label(v) for v in mbpo.variant])
            ax.set_xlabel("MBPO rollout length (model steps)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{env}, budget {int(mbpo.budget.max()) if len(mbpo) else ''} env steps")
        row[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def wallclock(evaluations: pd.DataFrame, curves: pd.DataFrame) -> plt.Figure:
    """IQM return against the mean wall-clock at which each evaluation happened."""
    clock = evaluations.groupby(["env", "algo", "variant", "device", "env_step"], as_index=False).wall_seconds.mean()
    data = curves.merge(clock, on=["env", "algo", "variant", "device", "env_step"])
    envs = sorted(data.env.unique())
    fig, axes = plt.subplots(1, len(envs), figsize=(6.5 * len(envs), 4.5), squeeze=False)
    for ax, env in zip(axes[0], envs):
        plot_curves(data, env, ax, x="wall_seconds")
        ax.set_xlabel("wall-clock (s, mean over seeds)")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def devices(summary: pd.DataFrame) -> plt.Figure:
    data = summary.assign(
        steps_per_second=1e3 / summary.job_ms_per_env_step,
        run=[label(a, v) for a, v in zip(summary.algo, summary.variant)],
    )
    fig, ax = plt.subplots(figsize=(9, 4.5))
    sns.barplot(data=data, x="run", y="steps_per_second", hue="device", ax=ax, palette="colorblind")
    ax.set_xlabel("")
    ax.set_ylabel("env steps per second (whole run)")
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig


class TableError(ValueError):
    """A table is missing, empty, garbled or lacks a column the figures need."""


TABLE_COLUMNS = {
    "curves.csv": ["env", "algo", "variant", "device", "env_step", "iqm", "ci_low", "ci_high"],
    "summary.csv": [
        "env",
        "algo",
        "variant",
        "device",
        "budget",
        "return_iqm",
        "return_ci_low",
        "return_ci_high",
        "auc_to_budget_iqm",
        "job_ms_per_env_step",
    ],
    "evaluations.csv": ["env", "algo", "variant", "device", "env_step", "wall_seconds"],
}


def read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """A table written by analysis.aggregate, with the columns the figures use; the identity
    columns as text whatever they hold (a variant `1` is the text "1", not a number)."""
    try:
        table = pd.read_csv(path, dtype={c: str for c in GROUP})
    except FileNotFoundError:
        raise TableError(f"{path} is missing (run analysis.aggregate first)") from None
    except pd.errors.EmptyDataError:
        raise TableError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TableError(f"{path} is not a valid CSV file ({str(exc).strip().splitlines()[-1]})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise TableError(f"{path} lacks column(s) {missing} (written by an older analysis.aggregate?)")
    if table.empty:
        raise TableError(f"{path} has no rows")
    for column in columns:
        if column in GROUP:
            if table[column].isna().any():
                raise TableError(f"{path} line {int(table[column].isna().argmax()) + 2}: no {column}")
        elif not pd.api.types.is_numeric_dtype(table[column]):
            raise TableError(f"{path}: column {column} holds non-numbers")
    return table


def check_rollout_variants(summary: pd.DataFrame, path: Path) -> None:
    """Every MBPO row's variant is a rollout length the ablation figure can place (before any
    figure is written)."""
    for variant in summary[summary.algo == "mbpo"].variant:
        try:
            rollout_order(variant)
        except VariantError as exc:
            raise TableError(f"{path}: {exc}") from None


def save_figure(fig: plt.Figure, out: Path, name: str, dpi: int = 150, exts: tuple[str, ...] = ("png", "pdf")) -> None:
    """`out/name.png` and `out/name.pdf` (`exts`), each written to a temporary file and renamed into
    place, the PDF without a timestamp, so the same data give byte-identical files; closes `fig`."""
    out.mkdir(parents=True, exist_ok=True)
    for ext in exts:
        with atomic_file(out / f"{name}.{ext}", "wb") as handle:
            fig.savefig(handle, format=ext, dpi=dpi, metadata={"CreationDate": None} if ext == "pdf" else None)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m analysis.figures", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=Path, default=Path("results/tables"))
    parser.add_argument("--out", type=Path, default=Path("results/figures"))
    args = parser.parse_args(argv)
    try:
        curves, summary, evaluations = (read_table(args.tables / name, TABLE_COLUMNS[name]) for name in TABLE_COLUMNS)
        check_rollout_variants(summary, args.tables / "summary.csv")
    except (TableError, OSError) as exc:
        print(f"{parser.prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    sns.set_theme(style="whitegrid", palette="colorblind")
    try:
        save_figure(sample_efficiency(curves), args.out, "sample_efficiency")
        save_figure(rollout_ablation(summary), args.out, "rollout_ablation")
        save_figure(wallclock(evaluations, curves), args.out, "wallclock")
        if summary.device.nunique() > 1:
            save_figure(devices(summary), args.out, "devices")
    except OSError as exc:
        print(f"{parser.prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
