"""The pipeline on a real single-node SLURM (tests/slurm_cluster.py) through profiles/slurm:
every training runs as a SLURM job and equals a local run byte for byte, a failed job is
reported with its log and loses no other result, a re-run submits only what is missing, and a
job killed mid-run is submitted again and resumes its run from the checkpoint.

Needs Debian's SLURM packages (installed here when missing and we are root with apt-get; skipped
otherwise, saying why) and snakemake-executor-plugin-slurm (the test extra)."""

from __future__ import annotations

import fcntl
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from runfiles import assert_same_run
from slurm_cluster import LocalSlurm, ensure_installed, system_conf_in_use

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIG = ROOT / "config" / "test.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
# No accounting database here (no slurmdbd), so the status comes from squeue, not sacct; the
# node has this machine's cores, which bound how many runs (one job each) run side by side.
NO_ACCOUNTING = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: ([^)]+)\)")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="a local SLURM needs Linux"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="needs pip install -e '.[slurm]' (in the test extra)")
    reason = ensure_installed() or system_conf_in_use()
    if reason:
        pytest.skip(reason)
    slurm = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        slurm.start()
        yield slurm
    finally:
        slurm.stop()


def write_config(path: Path, **changes) -> Path:
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config.update(changes)
    path.write_text(yaml.safe_dump(config))
    return path


def on_slurm(cluster: LocalSlurm, workdir: Path, config: Path, *args: str, timeout: int = 540, **popen):
    """snakemake through profiles/slurm, under `timeout -s INT` (it can ignore a TERM while hung)."""
    cmd = [
        "timeout",
        "-s",
        "INT",
        str(timeout),
        *SNAKEMAKE,
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(ROOT / "profiles" / "slurm"),
        "--configfile",
        str(config),
        "--replace-workflow-config",
        "--cores",
        str(cluster.cpus),
        *NO_ACCOUNTING,
        *args,
    ]
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, env=cluster.env, text=True, **popen)
    return subprocess.run(cmd, cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=timeout + 60)


def submissions(output: str) -> dict[str, str]:
    """SLURM job id -> its log, as snakemake reported each submission."""
    return dict(SUBMITTED.findall(output))


def trained_in(cluster: LocalSlurm, job_ids) -> list[str]:
    """The run folders whose training SLURM's own records place in `job_ids` (the plugin's job
    comment names the rule or group; the log, kept, names each run of it)."""
    runs = []
    jobs = cluster.jobs()
    for job_id in job_ids:
        assert job_id in jobs, f"SLURM has no record of job {job_id}"
        log = Path(jobs[job_id]["StdOut"]).read_text()
        runs += sorted(set(re.findall(r"--out (results/runs/\S+)", log)))  # named again in job summaries
    return runs


def run_dirs(workdir: Path) -> list[Path]:
    return sorted((workdir / "results" / "runs").glob("*/*/*/*/seed*"))


def test_pipeline_on_slurm_fails_alone_reruns_what_is_missing_and_equals_a_local_run(cluster, tmp_path):
    workdir, local = tmp_path / "slurm", tmp_path / "local"
    config = write_config(tmp_path / "test.yaml")
    held = workdir / "results" / "runs" / "Pendulum-v1" / "sac" / "utd1" / "cpu" / "seed1"
    held.mkdir(parents=True)
    start = time.monotonic()
    with open(held / ".lock", "w") as lock:  # as if another writer held this run: it fails at run time
        lock.write("pid 4242 on elsewhere since then\n")
        lock.flush()
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        first = on_slurm(cluster, workdir, config, "--keep-going", "--retries", "0", "--slurm-keep-successful-logs")
    output = first.stdout + first.stderr
    assert first.returncode != 0, output[-3000:]
    failed_log = "results/logs/train/Pendulum-v1/sac/utd1/cpu/seed1.log"
    assert f"log: {failed_log}" in output  # the failure names its log
    assert "is being written by pid 4242 on elsewhere" in (workdir / failed_log).read_text()
    first_jobs = submissions(output)
    assert first_jobs and all(Path(log).exists() for log in first_jobs.values())  # and its SLURM job's log
    # every other run is a job of its own, and --keep-going let each of them finish
    complete = {str(run.relative_to(workdir)) for run in run_dirs(workdir) if (run / "metadata.json").is_file()}
    assert complete == {str(run.relative_to(workdir)) for run in run_dirs(workdir)} - {
        str(held.relative_to(workdir))
    }, output[-6000:]
    finished = {run: (workdir / run / "metadata.json").read_bytes() for run in complete}

    second = on_slurm(cluster, workdir, config, "--slurm-keep-successful-logs")
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    second_jobs = submissions(output)
    missing = {str(run.relative_to(workdir)) for run in run_dirs(workdir)} - complete
    assert str(held.relative_to(workdir)) in missing
    assert sorted(trained_in(cluster, second_jobs)) == sorted(missing)  # only what was missing
    assert all((workdir / run / "metadata.json").read_bytes() == data for run, data in finished.items())  # untouched
    print(f"SLURM: {time.monotonic() - start:.0f} s for both invocations")

    trained = trained_in(cluster, first_jobs) + trained_in(cluster, second_jobs)
    runs = run_dirs(workdir)
    assert set(trained) == {str(run.relative_to(workdir)) for run in runs}  # each run in a SLURM job
    assert all(cluster.jobs()[job]["JobState"] == "COMPLETED" for job in second_jobs)
    assert (workdir / "results" / "tables" / "summary.csv").is_file()  # aggregation ran (locally)

    subprocess.run(
        [
            *SNAKEMAKE,
            "--directory",
            str(local),
            "--configfile",
            str(config),
            "--replace-workflow-config",
            "--cores",
            "2",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=900,
    )
    assert [run.relative_to(workdir) for run in runs] == [run.relative_to(local) for run in run_dirs(local)]
    for run in runs:
        assert_same_run(run, local / run.relative_to(workdir))


def test_a_job_killed_mid_run_is_submitted_again_and_resumes(cluster, tmp_path):
    workdir = tmp_path / "work"
    config = write_config(
        tmp_path / "one.yaml",
        seeds=[0],
        algorithms={
            "sac": {"preset": "seed", "total_steps": 6000, "updates_per_step": 1, "options": {"random_steps": 200}}
        },
    )
    proc = on_slurm(cluster, workdir, config, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        run = workdir / "results" / "runs" / "Pendulum-v1" / "sac" / "utd1" / "cpu" / "seed0"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (
            (run / "train.csv.part").exists() and len((run / "train.csv.part").read_text().splitlines()) > 1
        ):
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(0.5)
        running = [job for job, f in cluster.jobs().items() if f["JobState"] == "RUNNING"]
        assert len(running) == 1, cluster.jobs()
        assert cluster.run("scancel", running[0]).returncode == 0  # as a preemption or a time limit would
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]
    assert len(submissions(output)) == 2  # the killed job, then its retry
    assert cluster.jobs()[running[0]]["JobState"] == "CANCELLED"
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["status"] == "complete"
    assert metadata["resumes"] and 0 < metadata["resumes"][0]["env_step"] < 6000, metadata["resumes"]
