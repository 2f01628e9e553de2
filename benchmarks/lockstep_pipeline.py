"""The workflow's wall-clock with seeds trained in lockstep against one process per run.

    python benchmarks/lockstep_pipeline.py [--configfile config/config.yaml] [--seeds-per-job 5] [--cores N]

Runs `snakemake --cores N` on the experiment twice, side by side in one invocation on this
machine, each time from nothing in a fresh working directory: once with `seeds_per_job` 1 on
the CPU (every run its own process) and once with `--seeds-per-job` (each group's seeds in
lockstep). Prints both wall-clocks and their ratio, then compares every run's files between the
two: on the CPU, with one thread per run, a seed's files are byte-identical whether it ran alone
or in lockstep (clock columns aside), and the script says how many are.
"""

from __future__ import annotations

import datetime as dt
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


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--seeds-per-job", type=int, default=5)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    if not args.configfile.is_file():
        parser.error(f"--configfile {args.configfile}: no such file")
    if args.seeds_per_job < 2:
        parser.error(f"--seeds-per-job must be >= 2 (1 is the baseline), got {args.seeds_per_job}")
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
        alone, together = Path(tmp) / "alone", Path(tmp) / "lockstep"
        seconds_alone = run_workflow(alone, config, args.cores, 1)
        seconds_together = run_workflow(together, config, args.cores, args.seeds_per_job)
        print(f"{args.configfile.name}, --cores {args.cores}:")
        print(f"  one process per run:           {seconds_alone / 60:6.1f} min")
        print(f"  {args.seeds_per_job:>2} seeds per job (lockstep):   {seconds_together / 60:6.1f} min")
        print(f"  lockstep / one per run:          {seconds_together / seconds_alone:6.2f}")
        runs = sorted(p.parent.relative_to(alone) for p in alone.rglob("runs/**/metadata.json"))
        same = []
        for run in runs:
            try:
                assert_same_run(alone / run, together / run)
                same.append(run)
            except AssertionError as exc:
                print(f"  differs: {run} ({exc})")
        print(f"  run files identical, clock columns aside: {len(same)} of {len(runs)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
