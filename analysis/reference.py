"""Refresh the committed reference of the regression check, on purpose.

    python -m analysis.reference [--config config/ci.yaml] [--cores all] [--to results/reference]

Runs the CI experiment from scratch through the pipeline (`snakemake` with that config, in a
fresh temporary folder: finished runs, the config's own output included, are never reused),
checks that every run was made by the committed code (the revision it records), and replaces
`--to` with: the run files (`runs/`), the summary tables (`tables/`), the config, and
`reference.json` (code revision, versions, machine, CPU instruction set, command, date, and the
numerics fingerprint of each group, analysis.numerics: the evidence a later `--exact` rests on). Then
commit the folder: the reference changes only through this command and a commit that says why.
`--no-run` takes the config's finished runs as they are instead of re-running them.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from plan.experiment import ExperimentError, load_experiment, load_yaml, planned_configs
from analysis.numerics import fingerprints, group_configs
from analysis.regress import (
    PROVENANCE,
    RUN_FILES,
    RegressError,
    RunSet,
    check_planned,
    find_runs,
    run_metrics,
    shared_configs,
)
from analysis.runs import RunFolderError, error_line, metadata
from mbpo.usage import OneLineParser

ROOT = Path(__file__).resolve().parent.parent


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def machine() -> dict:
    import torch

    from mbpo.record import device_name

    return {
        "cpu": device_name(torch.device("cpu")),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "host": platform.node(),
        "platform": platform.platform(),
    }


def run_pipeline(config: dict, cores: str, workdir: Path) -> Path:
    """The experiment `config` from nothing, in the fresh folder `workdir`, its output moved
    there too; returns that output folder. Finished runs elsewhere (the config's own output
    included) are neither reused nor touched, so every run is made by the code at hand (a
    forced re-run in place would find complete runs and keep them, `--skip-complete`)."""
    import yaml

    here = workdir / "config.yaml"
    here.write_text(yaml.safe_dump({**config, "output": "output"}, sort_keys=False))
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
        "--cores", cores, "--configfile", str(here), "--replace-workflow-config",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    if subprocess.run(cmd, cwd=ROOT, env=env).returncode != 0:
        raise RegressError("the pipeline failed (see its output above); the reference is unchanged")
    return workdir / "output"


def check_target(target: Path, output: Path) -> None:
    """`--to` may be a new or empty folder or a previous reference (it holds reference.json),
    and never the pipeline's output or runs folder or a folder holding them: replacing it
    deletes what was there."""
    if Path(target).is_symlink():  # checked before resolving, which follows the link
        raise RegressError(f"--to {target} is a symbolic link: not replaced; name the folder itself")
    target, output = Path(target).resolve(), Path(output).resolve()
    if output.is_relative_to(target):
        raise RegressError(f"--to {target} holds the runs' output folder {output}: it would be deleted")
    if target.is_relative_to(output / "runs"):
        raise RegressError(f"--to {target} is inside the runs' folder {output / 'runs'}: a reference is kept apart")
    if target.exists() and not target.is_dir():
        raise RegressError(f"--to {target} exists and is not a folder: not replaced")
    if target.is_dir() and not (target / PROVENANCE).is_file() and any(target.iterdir()):
        raise RegressError(
            f"--to {target} is a folder that is not a reference (no {PROVENANCE}): not replaced; "
            "name a new or empty folder or a previous reference"
        )


def build(output: Path, config: Path, target: Path, revision: str, dirty: bool, command: str) -> dict:
    """Write the new reference next to `target` (a hidden folder of its own), then swap it in."""
    check_target(target, output)
    runs = find_runs(output / "runs")
    shared_configs(runs, "reference")
    for run_dir in runs.runs.values():
        meta = metadata(run_dir)
        if meta.get("git_revision") != revision or bool(meta.get("git_dirty")) != dirty:
            raise RegressError(
                f"{run_dir} was made by code {meta.get('git_revision')} (dirty {meta.get('git_dirty')}), not by "
                f"{revision} (dirty {dirty}): re-run without --no-run"
            )
    # folders of unique names beside the target: a user's own `NAME.new` or `NAME.old` is never touched
    target.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new-"))
    try:
        os.chmod(new, 0o777 & ~_umask())  # as mkdir would make it, not mkdtemp's owner-only 0700
        info = _fill(new, runs, output, config, revision, dirty, command)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)  # this command's own half-built copy
        raise
    try:
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    previous = old / target.name
    try:
        if target.exists():
            target.rename(previous)
        new.rename(target)
    except BaseException:
        if previous.exists() and not target.exists():
            previous.rename(target)  # the previous reference back in place
        shutil.rmtree(new, ignore_errors=True)
        if not previous.exists():
            old.rmdir()
        raise
    try:
        shutil.rmtree(old)
    except OSError as exc:  # the new reference is in place: a leftover copy is not a failure
        print(
            f"python -m analysis.reference: warning: the previous reference's copy {old} was not removed "
            f"({exc.strerror or exc}); delete it by hand",
            file=sys.stderr,
        )
    return info


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fill(new: Path, runs: RunSet, output: Path, config: Path, revision: str, dirty: bool, command: str) -> dict:
    """The reference's files in the empty folder `new`."""
    for run_dir in runs.runs.values():
        dest = new / "runs" / run_dir.relative_to(output / "runs")
        dest.mkdir(parents=True)
        for name in (*RUN_FILES, "metadata.json"):
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, dest / name)
    (new / "tables").mkdir()
    for name in ("summary.csv", "summary.md"):
        if (output / "tables" / name).is_file():
            shutil.copy2(output / "tables" / name, new / "tables" / name)
    shutil.copy2(config, new / "config.yaml")
    metrics = run_metrics(find_runs(new))
    first = metadata(next(iter(runs.runs.values())))
    info = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
        "git_revision": revision,
        "git_dirty": dirty,
        "versions": first.get("versions"),
        "threads": first.get("threads"),
        "machine": machine(),
        "runs": len(runs.runs),
        "groups": {
            "/".join(key): {
                "seeds": sorted(int(s) for s in g.seed),
                "return_last_quarter_mean": g.return_last_quarter.mean(),
                "auc_whole_run_mean": g.auc_whole_run.mean(),
            }
            for key, g in metrics.groupby(["env", "algo", "variant", "device"], sort=True)
        },
        # evidence for "byte-identical runs are possible on another machine" (analysis.numerics)
        "numerics_fingerprint": fingerprints(group_configs(new)),
    }
    (new / PROVENANCE).write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m analysis.reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "ci.yaml", help="the CI experiment")
    parser.add_argument("--cores", default="all", help="snakemake --cores (default: %(default)s)")
    parser.add_argument("--to", type=Path, default=ROOT / "results" / "reference", help="reference folder")
    parser.add_argument("--no-run", action="store_true", help="use the config's finished runs as they are")
    parser.add_argument("--allow-dirty", action="store_true", help="accept uncommitted changes (recorded as dirty)")
    args = parser.parse_args(argv)
    if args.cores != "all" and not (args.cores.isdigit() and int(args.cores) >= 1):
        parser.error(f"--cores must be 'all' or a number >= 1, got {args.cores!r}")
    try:
        config = args.config.resolve()
        if not config.is_file():
            raise RegressError(f"no config file {args.config}")
        loaded = load_yaml(config)
        if not isinstance(loaded, dict):
            raise RegressError(f"{config} is not a mapping of config keys")
        output = ROOT / str(loaded.get("output", "results"))
        check_target(args.to, output)  # before the pipeline's minutes, not after
        revision = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        if dirty and not args.allow_dirty:
            raise RegressError("uncommitted changes: commit first, so the reference names the code that made it")
        command = "python -m analysis.reference " + " ".join(argv if argv is not None else sys.argv[1:])
        with tempfile.TemporaryDirectory(prefix="reference-run-") as workdir:
            if not args.no_run:
                output = run_pipeline(loaded, args.cores, Path(workdir))
            # the reference's config.yaml must be the one its runs were made with, each of them
            check_planned(find_runs(output / "runs"), planned_configs(load_experiment(config)), config)
            info = build(output, config, args.to.resolve(), revision, dirty, command.strip())
    except (RegressError, RunFolderError, ExperimentError, OSError, subprocess.CalledProcessError) as exc:
        print(f"{parser.prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; the reference is unchanged unless the swap had begun", file=sys.stderr)
        return 130
    print(
        f"{parser.prog}: {info['runs']} runs of code {revision[:12]} -> {args.to}; commit it with a message that says why"
    )
    for group, g in info["groups"].items():
        print(
            f"  {group}: {len(g['seeds'])} seeds, return_last_quarter {g['return_last_quarter_mean']:.1f}, "
            f"auc_whole_run {g['auc_whole_run_mean']:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
