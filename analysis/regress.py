"""Compare a candidate's returns with a committed reference: a regression check for CI.

    python -m analysis.regress --reference results/reference --candidate results/ci [--exact]

For every (env, algo, variant) of the reference, and each of two metrics per run,
- `return_last_quarter`: the run's mean evaluation return over the last quarter of its env steps,
- `auc_whole_run`: the area under its evaluation curve over the whole run, divided by the run's
  env steps (the average return while learning: a slower learner scores lower),
an exact one-sided Wilcoxon-Mann-Whitney rank test over seeds (analysis.stats.rank_shift_test)
asks whether the candidate's returns are shifted down from the reference's by more than
`--margin`. `--alpha` is the family-wise false-alarm rate of the whole check: each of the k
tests runs at alpha / k (Bonferroni), so an unchanged code base fails with probability at most
alpha whatever the distribution of returns. The difference is the Hodges-Lehmann shift (the
median of all candidate - reference pairwise differences) and the interval its 1 - 2 alpha / k
confidence interval from inverting the same test: "regression" exactly when the interval lies
at or below -margin, "improved" when it lies at or above +margin (then consider refreshing the
reference), else "pass".

`--exact` additionally requires every reference run's files to be byte-identical in the
candidate apart from wall-clock columns (the same seeds, device and thread count on the same
kind of CPU give identical runs), and names the first differing row.

Every run of both sides is verified (analysis.runs) and none is dropped: a folder that is not a
complete run, disagrees with its metadata or holds non-finite returns is named, exit status 2.
Prints the table; writes it (markdown, CSV next to it) to `--out`, or by default to
CANDIDATE/regression.md when the candidate is a pipeline output folder (`runs/` inside, not a
reference); never into the reference or a run folder. Exits 0 on pass, 1 on a regression, a
missing group or an exact mismatch, 2 on bad input.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from plan.identity import GROUP, IDENTITY, group_name
from plan.identity import name as run_name
from analysis.runs import RunFolderError, error_line, identity, load_runs, metadata, run_scores
from analysis.stats import normalized_auc, rank_shift_test
from mbpo.record import write_atomic
from mbpo.usage import OneLineParser

KEY = ["env", "algo", "variant"]
METRICS = {
    "return_last_quarter": "mean evaluation return over the last quarter of the run's env steps",
    "auc_whole_run": "area under the return curve over the whole run / its env steps",
}
FINAL_FRACTION = 0.25
TIMING_COLUMNS = {"wall_seconds", "seconds"}  # clock readings: never reproducible
RUN_FILES = ("eval.csv", "train.csv", "model.csv", "rollouts.csv")
PROVENANCE = "reference.json"
# config fields that may differ between reference and candidate runs of the same group
FREE_FIELDS = {("run", "seed"), ("run", "device"), ("run", "threads")}


class RegressError(ValueError):
    """Bad input: the message says what is wrong."""


@dataclass(frozen=True)
class RunSet:
    root: Path
    runs: dict[tuple, Path]  # (env, algo, variant, device, seed) -> run folder


def find_runs(root: Path) -> RunSet:
    """Every run under `root` (or under `root/runs` when it exists), each verified.

    A folder that holds any run file (metadata.json, a CSV or a `*.part` file) is a run folder,
    and every run folder must be a complete, verified run whose metadata agrees with its path:
    a run is never dropped silently, so the first one that is not is named (exit status 2).
    """
    root = Path(root)
    if not root.is_dir():
        raise RegressError(f"{root} is not a folder")
    base = root / "runs" if (root / "runs").is_dir() else root
    folders = sorted({p.parent for pattern in ("metadata.json", "*.csv", "*.part") for p in base.rglob(pattern)})
    runs: dict[tuple, Path] = {}
    problems: list[str] = []
    for run_dir in folders:
        try:
            ident = tuple(identity(run_dir)[k] for k in IDENTITY)
        except RunFolderError as exc:
            problems.append(str(exc))
            continue
        if ident in runs:
            problems.append(f"{run_dir} and {runs[ident]} are both run {run_name(ident)}")
            continue
        runs[ident] = run_dir
    if problems:
        more = (
            f" (and {len(problems) - 1} more run folder(s) under {base} that cannot be used)"
            if len(problems) > 1
            else ""
        )
        raise RegressError(f"{problems[0]}{more}; a check never drops a run: finish, fix or remove it")
    if not runs:
        raise RegressError(f"no complete runs under {base}")
    return RunSet(root, runs)


def field_defaults(section: str) -> dict:
    """The current defaults of a config section, as JSON writes them (tuples as lists): what a run
    recorded before a field existed ran with, since a new field's default keeps the old behaviour."""
    from mbpo.config import SECTIONS

    if section not in SECTIONS:
        return {}
    out = {}
    for f in dataclasses.fields(SECTIONS[section]):
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def comparable_config(run_dir: Path) -> dict:
    """The run's resolved config without the fields that may differ (seed, device, threads);
    fields added since the run was made take their defaults."""
    config = metadata(run_dir).get("config")
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise RegressError(f"{Path(run_dir) / 'metadata.json'}: 'config' is not an object of sections")
    return {
        (section, name): value
        for section, values in config.items()
        for name, value in {**field_defaults(section), **values}.items()
        if (section, name) not in FREE_FIELDS
    }


def _config_difference(want: dict, got: dict, limit: int = 4) -> str | None:
    diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
    if not diff:
        return None
    return ", ".join(f"{s}.{n}: {want.get((s, n))!r} vs {got.get((s, n))!r}" for s, n in diff[:limit])


def shared_configs(runs: RunSet, side: str) -> dict[tuple, dict]:
    """(env, algo, variant) -> the config that all of that group's runs share (seed, device and
    threads aside). RegressError naming two runs of a group made with different configs: a group
    pools its seeds, so they must be runs of one config."""
    shared: dict[tuple, tuple[dict, Path]] = {}
    for ident, run_dir in sorted(runs.runs.items()):
        got = comparable_config(run_dir)
        if ident[:3] not in shared:
            shared[ident[:3]] = (got, run_dir)
            continue
        want, first = shared[ident[:3]]
        diff = _config_difference(want, got)
        if diff:
            raise RegressError(
                f"the {side}'s runs {first} and {run_dir} were made with different configs ({diff}); the seeds of "
                "a group are pooled, so they must share one config: re-make the odd run"
            )
    return {key: config for key, (config, _) in shared.items()}


def check_configs(reference: RunSet, candidate: RunSet) -> None:
    """Each side's groups pool runs of one config, and every candidate run of a group was made
    with the reference's config for that group."""
    expected = shared_configs(reference, "reference")
    shared_configs(candidate, "candidate")
    for ident, run_dir in candidate.runs.items():
        if ident[:3] not in expected:
            continue
        want, got = expected[ident[:3]], comparable_config(run_dir)
        diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
        if diff:
            shown = ", ".join(
                f"{s}.{n}: reference {want.get((s, n))!r}, candidate {got.get((s, n))!r}" for s, n in diff[:4]
            )
            raise RegressError(
                f"{run_dir} was not made with the reference's config ({shown}); compare like with like, or "
                f"refresh the reference on purpose (README: Regression check on returns)"
            )


def check_planned(runs: RunSet, planned: dict[tuple, dict], config_path: Path) -> None:
    """Every run is one that `config_path` plans, made with the config it plans for it, and every
    planned run is there. RegressError naming the first that is not."""
    for ident, run_dir in sorted(runs.runs.items()):
        if ident not in planned:
            raise RegressError(f"{run_dir} is not a run that {config_path} plans")
        want = {
            (section, name): value
            for section, values in planned[ident].items()
            for name, value in values.items()
            if (section, name) not in FREE_FIELDS
        }
        want = json.loads(json.dumps({"|".join(k): v for k, v in want.items()}))  # as JSON records it
        want = {tuple(k.split("|")): v for k, v in want.items()}
        diff = _config_difference(want, comparable_config(run_dir))
        if diff:
            raise RegressError(
                f"{run_dir} was not made with the config {config_path} plans for it ({diff}, planned vs run): "
                "re-run without --no-run"
            )
    missing = sorted(set(planned) - set(runs.runs))
    if missing:
        raise RegressError(
            f"{config_path} plans {run_name(missing[0])}, which has no complete run: re-run without --no-run"
        )


def run_metrics(runs: RunSet) -> pd.DataFrame:
    """One row per run: identity, `return_last_quarter` and `auc_whole_run`."""
    scores = run_scores(load_runs(list(runs.runs.values())))
    rows = []
    for ident, run in scores.groupby(IDENTITY, sort=True):
        run = run.sort_values("env_step")
        steps, values = run.env_step.to_numpy(dtype=float), run.score.to_numpy()
        last = steps[-1]
        final = values[steps >= (1.0 - FINAL_FRACTION) * last].mean()
        auc = float(normalized_auc(steps, values)) if steps.size > 1 else float(values[-1])
        rows.append([*ident, final, auc])
    return pd.DataFrame(rows, columns=[*IDENTITY, *METRICS])


def compare(ref: pd.DataFrame, cand: pd.DataFrame, alpha: float, margin: float, allow_subset: bool) -> pd.DataFrame:
    """The table: one row per candidate group and metric, plus rows for missing groups."""
    ref_groups = {k: g for k, g in ref.groupby(KEY, sort=True)}
    cand_groups = {k: g for k, g in cand.groupby(GROUP, sort=True)}
    unknown = sorted({k[:3] for k in cand_groups} - ref_groups.keys())
    if unknown:
        raise RegressError(f"the candidate has runs the reference lacks: {', '.join(group_name(k) for k in unknown)}")
    tests = len(cand_groups) * len(METRICS)
    level = alpha / tests
    rows = []
    for key, group in cand_groups.items():
        reference = ref_groups[key[:3]]
        for metric in METRICS:
            smallest_p = 1.0 / math.comb(len(reference) + len(group), len(group))
            if smallest_p > level:
                raise RegressError(
                    f"{group_name(key)}: with {len(reference)} reference and {len(group)} candidate seeds no "
                    f"p-value can fall below {smallest_p:.3g} > {level:.3g} (alpha {alpha} over {tests} tests): "
                    f"the check could never fail; use more seeds"
                )
            test = rank_shift_test(reference[metric].to_numpy(), group[metric].to_numpy(), level, margin)
            if test.p_worse <= level:
                verdict = "regression"
            elif test.p_better <= level:
                verdict = "improved"
            else:
                verdict = "pass"
            rows.append(
                {
                    **dict(zip(GROUP, key)),
                    "metric": metric,
                    "ref_seeds": len(reference),
                    "cand_seeds": len(group),
                    "reference": reference[metric].mean(),
                    "candidate": group[metric].mean(),
                    "difference": test.shift,
                    "ci_low": test.low,
                    "ci_high": test.high,
                    "p_value": test.p_worse,
                    "verdict": verdict,
                }
            )
    table = pd.DataFrame(rows)
    missing = sorted(set(ref_groups) - {k[:3] for k in cand_groups})
    if missing and not allow_subset:
        extra = pd.DataFrame(
            [{**dict(zip(KEY, k)), "device": "-", "metric": "-", "verdict": "missing"} for k in missing]
        )
        table = pd.concat([table, extra], ignore_index=True)
    table.attrs.update(level=level, tests=tests)
    return table


# ---- --exact ----------------------------------------------------------------------------------


def first_difference(ref_file: Path, cand_file: Path) -> str | None:
    """None when the two CSV files agree apart from timing columns; else the first differing row."""
    if not cand_file.is_file():
        return f"{cand_file} is missing"
    with open(ref_file, newline="") as f:
        ref_rows = list(csv.reader(f))
    with open(cand_file, newline="") as f:
        cand_rows = list(csv.reader(f))
    if ref_rows[:1] != cand_rows[:1]:
        return f"{cand_file}: header {cand_rows[:1]} differs from the reference's {ref_rows[:1]}"
    header = ref_rows[0]
    keep = [i for i, name in enumerate(header) if name not in TIMING_COLUMNS]
    for line, (r, c) in enumerate(zip(ref_rows[1:], cand_rows[1:]), start=2):
        for i in keep:
            if r[i] != c[i]:
                where = ", ".join(f"{header[j]}={r[j]}" for j in keep[:2])
                return f"{cand_file} line {line} ({where}): {header[i]} = {c[i]}, reference {r[i]}"
    if len(ref_rows) != len(cand_rows):
        return f"{cand_file} has {len(cand_rows) - 1} rows, the reference {len(ref_rows) - 1}"
    return None


def exact_differences(reference: RunSet, candidate: RunSet) -> list[str]:
    problems = []
    for ident, ref_dir in sorted(reference.runs.items()):
        cand_dir = candidate.runs.get(ident)
        name = run_name(ident)
        if cand_dir is None:
            problems.append(f"{name}: no such run in the candidate")
            continue
        for file in RUN_FILES:
            if (ref_dir / file).is_file():
                diff = first_difference(ref_dir / file, cand_dir / file)
                if diff:
                    problems.append(diff)
                    break
    return problems


# ---- output -----------------------------------------------------------------------------------


def provenance_line(root: Path) -> str:
    path = Path(root) / PROVENANCE
    if not path.is_file():
        return f"reference: {root} (no {PROVENANCE})"
    try:
        info = json.loads(path.read_text())
        machine = info.get("machine", {})
        dirty = " (dirty)" if info.get("git_dirty") else ""
        return (
            f"reference: {root}, code {str(info.get('git_revision'))[:12]}{dirty}, made {info.get('created')} "
            f"on {machine.get('cpu', '?')} ({machine.get('cpu_capability', '?')})"
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise RegressError(f"{path} is not a valid provenance record ({exc})") from None


def is_inside(path: Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def table_path(out: Path | None, reference: RunSet, candidate: RunSet) -> Path | None:
    """Where the table goes: `--out`, else CANDIDATE/regression.md when the candidate is a
    pipeline output folder (it holds `runs/` and is no reference), else nowhere (stdout only).
    Never into the reference, nor into any run folder: a check does not write into its inputs."""
    if out is None:
        root = candidate.root
        pipeline_output = (root / "runs").is_dir() and not (root / PROVENANCE).exists()
        if not pipeline_output or is_inside(root, reference.root) or is_inside(reference.root, root):
            return None
        out = root / "regression.md"
    if is_inside(out, reference.root):
        raise RegressError(
            f"--out {out} is inside the reference {reference.root}: a check does not write into the reference"
        )
    for run_dir in (*reference.runs.values(), *candidate.runs.values()):
        if is_inside(out, run_dir):
            raise RegressError(
                f"--out {out} is inside the run folder {run_dir}: a check does not write into its inputs"
            )
    if out.suffix != ".md":
        raise RegressError(f"--out {out}: the table's file name must end in .md (the CSV goes next to it)")
    return out


def render(table: pd.DataFrame, alpha: float, margin: float, header: list[str]) -> str:
    shown = table.copy()
    for col in ("reference", "candidate", "difference", "ci_low", "ci_high"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    if "p_value" in shown:
        shown["p_value"] = shown["p_value"].map(lambda v: "" if pd.isna(v) else f"{v:.2g}")
    for col in ("ref_seeds", "cand_seeds"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else str(int(v)))
    shown = shown.rename(columns={"ci_low": "interval low", "ci_high": "interval high"})
    level = table.attrs.get("level", alpha)
    lines = [
        *header,
        "",
        f"Test: exact one-sided Wilcoxon-Mann-Whitney rank test over seeds, per group and metric "
        f"({'; '.join(f'{k}: {v}' for k, v in METRICS.items())}); family-wise alpha {alpha} over "
        f"{table.attrs.get('tests', '?')} tests, so each at {level:.4g} (Bonferroni); margin {margin}. "
        f"reference, candidate: means over seeds; difference: Hodges-Lehmann shift (median of the "
        f"candidate - reference pairwise differences); interval: its {100 * (1 - 2 * level):.2f}% "
        f"confidence interval.",
        "",
        shown.to_markdown(index=False),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m analysis.regress",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 pass, 1 regression / missing group / exact mismatch, 2 bad input.",
    )
    parser.add_argument(
        "--reference", type=Path, default=Path("results/reference"), help="reference folder (default: %(default)s)"
    )
    parser.add_argument("--candidate", type=Path, required=True, help="folder of candidate runs, e.g. results/ci")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise false-alarm rate (default: %(default)s)")
    parser.add_argument(
        "--margin", type=float, default=0.0, help="drop in return tolerated before a regression (default: %(default)s)"
    )
    parser.add_argument("--exact", action="store_true", help="also require byte-identical runs (timing columns aside)")
    parser.add_argument(
        "--subset", action="store_true", help="compare only the groups the candidate has (no 'missing')"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="write the markdown table here (CSV next to it); default: CANDIDATE/regression.md "
        "when the candidate is a pipeline output folder, else only stdout",
    )
    args = parser.parse_args(argv)
    if not 0.0 < args.alpha < 0.5:
        parser.error(f"--alpha must be in (0, 0.5), got {args.alpha}")
    if not 0.0 <= args.margin < math.inf:
        parser.error(f"--margin must be a finite number >= 0, got {args.margin}")
    try:
        reference, candidate = find_runs(args.reference), find_runs(args.candidate)
        out = table_path(args.out, reference, candidate)
        check_configs(reference, candidate)
        table = compare(run_metrics(reference), run_metrics(candidate), args.alpha, args.margin, args.subset)
        header = [f"# Regression check: {args.candidate} against the reference", "", provenance_line(args.reference)]
        problems = exact_differences(reference, candidate) if args.exact else []
        if args.exact:
            header += ["", "Exact: every reference run is byte-identical (timing columns aside)"]
            if problems:  # each run that differs, with its first difference
                header[-1] = f"Exact: {len(problems)} run(s) differ:"
                header += [f"- {problem}" for problem in problems]
        text = render(table, args.alpha, args.margin, header)
        if out is not None:
            write_atomic(out, text)
            write_atomic(out.with_suffix(".csv"), table.to_csv(index=False))
    except (RegressError, RunFolderError, OSError, UnicodeDecodeError, csv.Error) as exc:
        print(f"{parser.prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    print(text, end="")
    where = f"table: {out}" if out is not None else "table on stdout only (--out FILE.md writes it)"
    failed = sorted(set(table.verdict) & {"regression", "missing"})
    if failed or problems:
        reasons = []
        if "regression" in failed:
            groups = table[table.verdict == "regression"]
            reasons.append("regression: " + ", ".join(sorted({group_name(k) for k in zip(*(groups[c] for c in KEY))})))
        if "missing" in failed:
            groups = table[table.verdict == "missing"]
            reasons.append(
                "missing from the candidate: " + ", ".join(group_name(k) for k in zip(*(groups[c] for c in KEY)))
            )
        if problems:
            reasons.append("not byte-identical")
        print(f"{parser.prog}: FAIL ({'; '.join(reasons)}); {where}", file=sys.stderr)
        return 1
    print(f"{parser.prog}: pass; {where}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
