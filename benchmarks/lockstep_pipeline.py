"""The workflow's wall-clock with seeds trained in lockstep against one process per run.

    python benchmarks/lockstep_pipeline.py [--configfile config/config.yaml] [--seeds-per-job 3,5] [--cores N]

Runs `snakemake --cores N` on the experiment several times, side by side in one invocation on
this machine, each time from nothing in a fresh working directory: once with `seeds_per_job` 1
on the CPU (every run its own process), then once for each size in `--seeds-per-job` (each
group's seeds in chunks of that size, each chunk in lockstep). Prints each wall-clock and its
ratio to one process per run, and where the training processes spent their time: each phase's
core-minutes (from the runs' `metadata.json`, a lockstep process counted once), so a ratio that
stays near 1 names the phase lockstep cannot batch away (on the CPU: the model fit, whose batched
matmuls already run at the core's arithmetic peak); `outside training` is the cores' time
outside training processes (Snakemake, process start-up, analysis, the report, and a core left
idle while another runs the last job). Then compares every run's files between the arms: on the
CPU, with one thread per run, a seed's files are byte-identical whether it ran alone or in
lockstep (clock columns aside), and the script says how many are.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from runfiles import assert_same_run  # noqa: E402

from mbpo.record import cpu_info  # noqa: E402
from mbpo.usage import OneLineParser  # noqa: E402


def run_workflow(workdir: Path, configfile: Path, cores: int, seeds_per_job: int) -> float:
    """Seconds of one `snakemake --cores` from nothing in `workdir` (the experiment of
    `configfile` with `seeds_per_job` on every device); the jobs import this tree's code
    (PYTHONPATH), whatever the interpreter's install points at."""
    import yaml

    from plan.experiment import load_yaml

    workdir.mkdir(parents=True)
    config = {**load_yaml(configfile), "seeds_per_job": {"cpu": seeds_per_job, "cuda": seeds_per_job}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(workdir / "config.yaml"), "--replace-workflow-config", "--cores", str(cores), "--quiet", "all",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-20:])
        raise SystemExit(f"lockstep_pipeline: snakemake failed in {workdir} ({result.returncode}):\n{tail}")
    return seconds


PHASES = ("env", "act", "update", "model", "rollout", "eval")


def phase_seconds(workdir: Path) -> dict[str, float]:
    """Core-seconds per training phase summed over the training processes of one workflow (a
    lockstep process, whose seeds record the same group clocks, counted once), with `total`
    (their wall-clock) and `processes`."""
    out = dict.fromkeys(PHASES, 0.0)
    out.update(total=0.0, processes=0)
    seen = set()
    for path in sorted(workdir.rglob("runs/**/metadata.json")):
        meta = json.loads(path.read_text())
        group = meta.get("lockstep")
        if group is not None:
            key = (path.parent.parent, tuple(group["seeds"]))
            if key in seen:
                continue
            seen.add(key)
        for phase, seconds in meta["seconds"].items():
            out[phase] = out.get(phase, 0.0) + seconds
        out["total"] += meta["wall_seconds"]
        out["processes"] += 1
    return out


def print_phases(arms: dict[str, tuple[float, dict]], cores: int) -> None:
    """Each arm's phase core-minutes and their ratio to the first arm's."""
    names = list(arms)
    base = arms[names[0]][1]
    print(f"  where the time went (core-minutes; ratio to {names[0]}):")
    print("    " + f"{'':<22}" + "".join(f"{name:>22}" for name in names))
    rows = [*PHASES, "total"]
    for row in rows:
        cells = []
        for name in names:
            value = arms[name][1][row] / 60
            ratio = arms[name][1][row] / base[row] if base[row] > 0 else float("nan")
            cells.append(f"{value:>13.2f} ({ratio:4.2f})")
        label = "training processes" if row == "total" else f"  {row}"
        print("    " + f"{label:<22}" + "".join(f"{c:>22}" for c in cells))
    cells = []
    for name in names:
        wall, phases = arms[name]
        outside = max(0.0, wall * cores - phases["total"])
        cells.append(f"{outside / 60:>13.2f} ({outside / (wall * cores):4.0%})")
    print("    " + f"{'outside training':<22}" + "".join(f"{c:>22}" for c in cells))
    print("    " + f"{'processes':<22}" + "".join(f"{arms[n][1]['processes']:>22}" for n in names))
    share = base["model"] / base["total"] if base["total"] > 0 else float("nan")
    print(
        f"  the model fit is {share:.0%} of one-process-per-run training time: "
        "a phase lockstep leaves at ratio ~1 bounds the whole from below by its share"
    )


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--seeds-per-job", default="5", help="comma-separated lockstep sizes, each an arm (default: 5)")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    from plan.experiment import load_experiment

    try:
        load_experiment(args.configfile)  # the workflow's own check, before minutes of work
    except ValueError as exc:  # its one line names the file or the field (an unreadable one too)
        message = str(exc)
        parser.error(
            f"--configfile {message if message.startswith(str(args.configfile)) else f'{args.configfile}: {message}'}"
        )
    try:
        sizes = [int(k) for k in args.seeds_per_job.split(",")]
    except ValueError:
        parser.error(f"--seeds-per-job must be comma-separated integers, got {args.seeds_per_job!r}")
    if not sizes or min(sizes) < 2 or len(set(sizes)) != len(sizes):
        parser.error(f"--seeds-per-job must be distinct sizes >= 2 (1 is the baseline), got {args.seeds_per_job}")
    if args.cores < 1:
        parser.error(f"--cores must be >= 1, got {args.cores}")
    import torch

    cpu = cpu_info()
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes")
    print(
        f"# {when}, {cpu['model']} ({os.cpu_count()} cores, {', '.join(cpu['simd'])}), torch {torch.__version__}, no GPU"
    )
    print(f"# python benchmarks/lockstep_pipeline.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    config = args.configfile.resolve()
    with tempfile.TemporaryDirectory(prefix="lockstep-") as tmp:
        alone = Path(tmp) / "alone"
        arms = {"one process per run": (run_workflow(alone, config, args.cores, 1), phase_seconds(alone))}
        dirs = {}
        for k in sizes:
            dirs[k] = Path(tmp) / f"lockstep{k}"
            arms[f"{k} seeds per job"] = (run_workflow(dirs[k], config, args.cores, k), phase_seconds(dirs[k]))
        base = arms["one process per run"][0]
        print(f"{args.configfile.name}, --cores {args.cores}:")
        for name, (seconds, _) in arms.items():
            print(f"  {name + ':':<30} {seconds / 60:6.1f} min   ({seconds / base:4.2f} of one process per run)")
        print_phases(arms, args.cores)
        runs = sorted(p.parent.relative_to(alone) for p in alone.rglob("runs/**/metadata.json"))
        for k, together in dirs.items():
            same = []
            for run in runs:
                try:
                    assert_same_run(alone / run, together / run)
                    same.append(run)
                except AssertionError as exc:
                    print(f"  differs ({k} seeds per job): {run} ({exc})")
            print(f"  run files identical to one process per run, clock columns aside, at {k} seeds per job: "
                  f"{len(same)} of {len(runs)} runs")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
