"""Every measured number in the README and the docs, rendered from committed records.

    python -m analysis.docs            # rewrite the generated blocks of README.md and docs/*.md
    python -m analysis.docs --check    # exit 1 naming each file whose blocks differ (a test runs it)

A Markdown file marks a generated block with two lines,

    <!-- generated: NAME -->
    <!-- end generated -->

and everything between them is replaced by `RENDERERS[NAME]()`, computed from files under
`results/` (run folders, the tables the pipeline drew from them, benchmark records). Prose around
the blocks states no measured number; a number edited by hand inside a block fails `--check`.
Each block names the records it was rendered from, and each record its machine and command.

The figures a page shows are copies of committed records, kept the same way: each
`docs/validation_<env>.png` (e.g. `validation_hopper.png`) of the `results/validation/figures/
paper_comparison_<Env-vN>.png` that `python -m analysis.paper` draws, and
`docs/sample_efficiency.png` of the default experiment's (`results/default/`, kept by
`benchmarks/fresh_clone.py`).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

from analysis.runs import lockstep_share
from mbpo.record import atomic_file, write_atomic
from mbpo.usage import OneLineParser
from plan.experiment import load_yaml
from plan.identity import label

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT / "results" / "validation"
BLOCK = re.compile(r"(<!-- generated: ([a-z0-9-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)
LABELS = {"mbpo": "MBPO", "sac": "SAC", "sb3_sac": "SAC (Stable-Baselines3)"}


class DocsError(ValueError):
    """A block names no renderer, or a record it needs cannot be read."""


def _rel(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:  # a file outside the repository
        return path.as_posix()


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DocsError(f"{_rel(path)}: cannot read it ({exc})") from None


def _cell(center: float, low: float, high: float, runs: int) -> str:
    """One aggregate with what it is: with 3 runs or fewer the IQM is their mean and a 95%
    percentile bootstrap interval their range, so it says so."""
    if runs <= 3:
        return f"{center:.0f} ({low:.0f} to {high:.0f})"
    return f"{center:.0f} ({low:.0f}, {high:.0f})"


def _runs_metadata(root: Path) -> list[dict]:
    out = []
    for path in sorted(root.glob("runs/*/*/*/*/seed*/metadata.json")):
        meta = json.loads(path.read_text())
        meta["_path"] = path.parent
        out.append(meta)
    return out


def _machines(metas: list[dict]) -> str:
    names = sorted(
        {
            f"{m['cpu']['model'] if isinstance(m.get('cpu'), dict) else m.get('cpu')} ({m.get('cpu_count')} cores), "
            f"torch {m['versions']['torch']}, {m.get('threads')} thread per run"
            for m in metas
        }
    )
    return "; ".join(names)


def validation_returns() -> str:
    """The validation's MBPO vs SAC table: per env, the return at half and all of the budget."""
    table = _read_csv(VALIDATION / "tables" / "paper_returns.csv")
    metas = [m for m in _runs_metadata(VALIDATION) if m["algo"] in ("mbpo", "sac")]
    hours = {}
    for m in metas:
        key = (m["env"], m["algo"])
        hours.setdefault(key, []).append(m["wall_seconds"] / lockstep_share(m, m["_path"] / "metadata.json") / 3600)
    lines = [
        "| env | algorithm | seeds | return at 0.5 x budget | return at the budget | original MBPO | hours per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table.to_dict("records"):
        if r["algo"] not in ("mbpo", "sac"):
            continue
        cells = []
        for f in ("0.5", "1"):
            if f"at_{f}_iqm" in r:
                cells.append(_cell(r[f"at_{f}_iqm"], r[f"at_{f}_ci_low"], r[f"at_{f}_ci_high"], r[f"at_{f}_runs"]))
            else:
                cells.append("")
        paper = f"~{r['paper_at_budget']:.0f} at {r['paper_budget']}" if pd.notna(r["paper_at_budget"]) else ""
        h = hours.get((r["env"], r["algo"]), [])
        low, high = (f"{min(h):.2g}", f"{max(h):.2g}") if h else ("", "")
        cost = low if low == high else f"{low}-{high}"
        lines.append(
            f"| {r['env']} ({r['budget']} steps) | {LABELS[r['algo']]} | {r['at_1_runs']} | {cells[0]} | {cells[1]} "
            f"| {paper} | {cost} |"
        )
    lines += [
        "",
        "IQM over seeds with its 95% stratified-bootstrap interval; with 3 seeds or fewer the IQM is their mean and the "
        "interval their range, written `mean (min to max)`. Original MBPO: read off the paper's figure (-v2 envs). "
        "Hours per run: the training's wall-clock on one CPU thread, over all of its processes (a seed trained in "
        "lockstep: its process's wall-clock divided by the seeds it trained; runs trained beside other work take "
        "longer). "
        f"Machines: {_machines(metas)}. Records: `{_rel(VALIDATION / 'tables' / 'paper_returns.csv')}`, the run "
        f"folders under `{_rel(VALIDATION / 'runs')}` (`metadata.json`: machine, command, wall-clock).",
    ]
    return "\n".join(lines)


def validation_seeds() -> str:
    """Every validation run's own return at each fraction of its budget."""
    table = _read_csv(VALIDATION / "tables" / "paper_seeds.csv")
    fractions = [c.removesuffix("_steps") for c in table.columns if c.startswith("at_") and c.endswith("_steps")]
    head = "| env | algorithm | seed | " + " | ".join(f"{f[3:]} x budget" for f in fractions) + " |"
    lines = [head, "|" + "---|" * (3 + len(fractions))]
    for row in table.to_dict("records"):
        values = " | ".join(f"{row[f]:.0f}" for f in fractions)
        lines.append(f"| {row['env']} | {LABELS.get(row['algo'], row['algo'])} | {row['seed']} | {values} |")
    lines += ["", f"Record: `{_rel(VALIDATION / 'tables' / 'paper_seeds.csv')}`."]
    return "\n".join(lines)


def crosscheck() -> str:
    path = VALIDATION / "tables" / "crosscheck.md"
    if not path.is_file():
        return f"No cross-check record yet: `snakemake crosscheck --configfile config/crosscheck.yaml` writes `{_rel(path)}`."
    return path.read_text().rstrip() + f"\n\nRecord: `{_rel(path)}` (runs under `{_rel(VALIDATION / 'runs')}`)."


def paper_cost() -> str:
    """Projected hours per env of the paper's experiment, from `benchmarks/experiment_cost.py`'s record."""
    path = ROOT / "results" / "costs" / "paper_cpu_idle.txt"
    try:
        text = path.read_text()
    except OSError as exc:
        raise DocsError(f"{_rel(path)}: cannot read it ({exc.strerror})") from None
    header = [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]
    rows = []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 12 and words[0].endswith(("-v5", "-v1")) and words[3].isdigit():
            rows.append(words)
    if not rows:
        raise DocsError(f"{_rel(path)}: no per-run rows")
    per_env: dict[str, dict[str, float]] = {}
    for w in rows:
        env, algo, steps, runs, per_run, total = w[0], w[1], int(w[3]), int(w[4]), float(w[10]), float(w[11])
        entry = per_env.setdefault(env, {"steps": steps, "mbpo_run": 0.0, "all": 0.0, "runs": 0})
        if algo == "mbpo":
            entry["mbpo_run"] = per_run
        entry["all"] += total
        entry["runs"] += runs
    lines = ["| env | MBPO steps | hours per MBPO run | runs | hours, all runs |", "|---|---|---|---|---|"]
    for env, e in per_env.items():
        lines.append(f"| {env} | {e['steps']} | {e['mbpo_run']:.3g} | {e['runs']} | {e['all']:.0f} |")
    total = sum(e["all"] for e in per_env.values())
    runs = sum(e["runs"] for e in per_env.values())
    lines.append(f"| all | | | {runs} | {total:.0f} |")
    lines += ["", f"Hours of one CPU core, one run per core. Record: `{_rel(path)}` ({'; '.join(header)})."]
    return "\n".join(lines)


def _verbatim(name: str, command: str) -> str:
    """A benchmark record as it was printed (its header names the machine and the command)."""
    path = ROOT / "results" / "costs" / name
    if not path.is_file():
        return f"No record yet: `{command} > {_rel(path)}` writes one."
    return "```\n" + path.read_text().rstrip() + "\n```\n\nRecord: `" + _rel(path) + "`."


def checkpoint_cost() -> str:
    return _verbatim("checkpoint_cost.txt", "python benchmarks/checkpoint_cost.py")


def lockstep_pipeline() -> str:
    return _verbatim("lockstep_pipeline_cpu.txt", "python benchmarks/lockstep_pipeline.py")


def lockstep_phases() -> str:
    return _verbatim("lockstep_cpu.txt", "python benchmarks/lockstep.py")


def _lockstep_ratio(text: str, seeds_per_job: int) -> tuple[str, int, float, float, float] | None:
    """(machine, seeds per job, one-per-run minutes, lockstep minutes, ratio) of the last record
    of the default experiment in a `benchmarks/lockstep_pipeline.py` record: the arm at the
    default experiment's `seeds_per_job` (else the fastest arm); None where it holds none."""
    blocks = re.split(r"(?m)^(?=# \d{4}-)", text)
    for block in reversed(blocks):
        machine = re.search(r"^# [^,]+, (.+?) \((\d+) cores", block, re.M)
        if not (machine and re.search(r"^config\.yaml, --cores", block, re.M)):
            continue
        alone = re.search(r"^\s+one process per run:\s+([\d.]+) min", block, re.M)
        arm = r"^\s+(\d+) seeds per job:\s+([\d.]+) min\s+\(([\d.]+) of one process per run\)"
        arms = {int(k): (float(m), float(r)) for k, m, r in re.findall(arm, block, re.M)}
        if not (alone and arms):
            continue
        k = seeds_per_job if seeds_per_job in arms else min(arms, key=lambda n: arms[n][1])
        return f"an {machine[1]} with {machine[2]} cores", k, float(alone[1]), *arms[k]
    return None


def lockstep_headline() -> str:
    path = ROOT / "results" / "costs" / "lockstep_pipeline_cpu.txt"
    configured = load_yaml(ROOT / "config" / "config.yaml").get("seeds_per_job", {}).get("cpu", 1)
    found = _lockstep_ratio(path.read_text(), configured) if path.is_file() else None
    if found is None:
        return "Seeds in lockstep are not measured yet (`python benchmarks/lockstep_pipeline.py`)."
    machine, k, alone, together, ratio = found
    return (
        f"With {k} seeds per job trained in lockstep (one process, one batched computation) the default "
        f"experiment took {together:.1f} min instead of {alone:.1f} min with one process per run "
        f"({ratio:.0%} of the wall-clock, on {machine}; record `{_rel(path)}`)."
    )


def default_summary() -> str:
    path = ROOT / "results" / "default" / "summary.csv"
    if not path.is_file():
        return f"No record of the default experiment yet (`{_rel(path)}`)."
    table = _read_csv(path)
    record = (ROOT / "results" / "default" / "README.md").read_text().strip().splitlines()
    lines = [
        "| run | seeds | return at the budget | mean return over 0..budget | steps to reach the threshold | "
        "ms per env step |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        name = label(r.algo, r.variant)
        lines.append(
            f"| {name} | {r.seeds} | {_cell(r.return_iqm, r.return_ci_low, r.return_ci_high, r.seeds)} | "
            f"{r.auc_to_budget_iqm:.0f} | {r.steps_to_threshold:.0f} | {r.train_ms_per_env_step:.1f} |"
        )
    lines += ["", f"Record: `{_rel(path)}`; {' '.join(record[1:])}"]
    return "\n".join(lines)


def _schema_type(node: dict, schema: dict) -> str:
    node = _resolve(node, schema)
    if "oneOf" in node:
        return " or ".join(_schema_type(option, schema) for option in node["oneOf"])
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "")
    if kind == "array" and "items" in node:
        return f"list of ({_schema_type(node['items'], schema)})"
    if kind == "object" and "additionalProperties" in node and isinstance(node["additionalProperties"], dict):
        return f"map to ({_schema_type(node['additionalProperties'], schema)})"
    bounds = [
        f"{op} {node[key]}"
        for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
        if key in node
    ]
    return " ".join([kind or "any", *bounds])


def _resolve(node: dict, schema: dict) -> dict:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _schema_rows(node: dict, schema: dict, prefix: str, required: set[str]) -> list[str]:
    rows = []
    for name, child in node.get("properties", {}).items():
        child_node = _resolve(child, schema)
        where = f"{prefix}{name}"
        if child_node.get("type") == "object" and "properties" in child_node and name != "options":
            if "description" in child_node:
                rows.append(f"| `{where}` | object | {child_node['description']} | |")
            rows += _schema_rows(child_node, schema, where + ".", set(child_node.get("required", [])))
            continue
        details = child.get("description") or child_node.get("description", "")
        default = child_node.get("default", child.get("default"))
        shown = "**required**" if name in required else ("" if default is None else f"`{json.dumps(default)}`")
        rows.append(f"| `{where}` | {_schema_type(child, schema)} | {details} | {shown} |")
    return rows


def config_parameters() -> str:
    """The experiment config's parameters, from the schema the pipeline validates against."""
    import yaml

    path = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(path.read_text())
    lines = ["| parameter | type | details | default |", "|---|---|---|---|"]
    lines += _schema_rows(schema, schema, "", set(schema.get("required", [])))
    lines += [
        "",
        f"Generated from `{_rel(path)}` (`python -m analysis.docs`). `algorithms.<name>.options` takes any "
        "`python -m mbpo train` flag without its dashes (`docs/cli.md`).",
    ]
    return "\n".join(lines)


def quickstart() -> str:
    """What the README's two commands cost, from `benchmarks/fresh_clone.py`'s record."""
    path = ROOT / "results" / "quickstart" / "record.json"
    if not path.is_file():
        return f"No timing record yet: `python benchmarks/fresh_clone.py` writes `{_rel(path)}`."
    record = json.loads(path.read_text())
    m = record["machine"]
    where = f"{m['cores']}-core {m['cpu']} ({', '.join(m['simd'])}), {m['memory_gib']} GiB, torch {m.get('torch')}"
    parts = []
    for name, what in (("main", "the main job"), ("tests", "the tests")):
        c = record["commands"].get(name)
        if c is None:
            continue
        extra = f", {c['summary']}" if c.get("summary") else ""
        status = "" if c["exit_status"] == 0 else f", exit status {c['exit_status']}"
        parts.append(f"{what} {c['minutes']:.0f} minutes{extra}{status}")
    return (
        f"From a fresh clone, install included: {'; '.join(parts)} (on a {where}, no GPU, "
        f"{record['date'][:10]}, load average {max(c['load_average_at_start'] for c in record['commands'].values())} "
        f"at the start; record `{_rel(path)}`)."
    )


RENDERERS: dict[str, Callable[[], str]] = {
    "validation-returns": validation_returns,
    "validation-seeds": validation_seeds,
    "crosscheck": crosscheck,
    "paper-cost": paper_cost,
    "checkpoint-cost": checkpoint_cost,
    "lockstep-pipeline": lockstep_pipeline,
    "lockstep-phases": lockstep_phases,
    "lockstep-headline": lockstep_headline,
    "default-summary": default_summary,
    "config-parameters": config_parameters,
    "quickstart": quickstart,
}


DOC_FIGURE = re.compile(r"\]\((validation_([a-z0-9_]+)\.png)\)")


def _snake(env_id: str) -> str:
    """`InvertedDoublePendulum-v5` -> `inverted_double_pendulum`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", env_id.split("/")[-1].split("-v")[0]).lower()


DEFAULT_FIGURES = ("sample_efficiency.png",)  # docs/NAME copies results/default/NAME


def doc_figures() -> dict[Path, Path]:
    """Every figure a page of docs/ shows that copies a record (`validation_<env>.png`,
    `DEFAULT_FIGURES`), and the committed figure it copies."""
    sources = {
        _snake(p.stem.removeprefix("paper_comparison_")): p
        for p in (VALIDATION / "figures").glob("paper_comparison_*.png")
    }
    out = {}
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text()
        for name, env in DOC_FIGURE.findall(text):
            if env not in sources:
                raise DocsError(
                    f"{_rel(page)} shows {name}, but results/validation/figures has no paper_comparison_<env>.png "
                    "of that env (python -m analysis.paper draws them)"
                )
            out[ROOT / "docs" / name] = sources[env]
        for name in re.findall(r"\]\(([a-z_]+\.png)\)", text):
            if name in DEFAULT_FIGURES:
                source = ROOT / "results" / "default" / name
                if not source.is_file():
                    raise DocsError(
                        f"{_rel(page)} shows {name}, but {_rel(source)} is missing (benchmarks/fresh_clone.py keeps it)"
                    )
                out[ROOT / "docs" / name] = source
    return out


def documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "config" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def render(text: str, where: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(2)
        if name not in RENDERERS:
            raise DocsError(f"{where}: no renderer for block {name!r} (known: {', '.join(RENDERERS)})")
        return match.group(1) + RENDERERS[name]().rstrip() + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m analysis.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block differs")
    args = parser.parse_args(argv)
    stale = []
    try:
        for path in documents():
            text = path.read_text()
            new = render(text, _rel(path))
            if new != text:
                stale.append(_rel(path))
                if not args.check:
                    write_atomic(path, new)
        for target, source in doc_figures().items():
            data = source.read_bytes()
            if not target.exists() or target.read_bytes() != data:
                stale.append(_rel(target))
                if not args.check:
                    with atomic_file(target, "wb") as handle:
                        handle.write(data)
    except (DocsError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    if args.check and stale:
        print(
            f"{parser.prog}: generated blocks or figures differ from the records in {', '.join(stale)}: "
            "run `python -m analysis.docs` (never edit a generated block by hand)",
            file=sys.stderr,
        )
        return 1
    print(f"{parser.prog}: {'checked' if args.check else 'rendered'} {len(documents())} files", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
