"""The Snakemake pipeline: lint, dry runs, a real run of config/test.yaml, its tables against a
recomputation from the run files, incremental and safe re-runs, validation, and the HTML report
in a real headless browser."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from analysis.stats import iqm
from runfiles import snakemake_command, start_workflow_until_a_run_writes

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIG = ROOT / "config" / "test.yaml"

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, config: Path | None = TEST_CONFIG, check: bool = True, timeout: int = 900):
    result = subprocess.run(
        snakemake_command(workdir, config, *args), capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def write_config(path: Path, **changes) -> Path:
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config.update(changes)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    snakemake(workdir, "--cores", "2")
    return workdir


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", config=None)
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_default_dry_run_plans_every_run_and_auto_adds_cuda_only_with_a_gpu(tmp_path):
    out = snakemake(tmp_path, "-n", config=None).stdout
    groups = 3 + 1 + 1  # MBPO at 3 rollout lengths, SAC, SAC at MBPO's update ratio: 5 seeds each, one job
    devices = 2 if torch.cuda.is_available() else 1
    assert f"train_seeds {groups * devices}" in " ".join(out.split())
    assert ("/cuda/" in out) == torch.cuda.is_available()
    alone = write_config(tmp_path / "alone.yaml", seeds_per_job={"cpu": 1, "cuda": 1})
    out = snakemake(tmp_path, "-n", config=alone).stdout
    assert "train_seeds" not in out and "train 8" in " ".join(out.split())  # config/test.yaml's 8 runs


def test_real_run_writes_tables_and_figures(finished):
    for name in ("summary.csv", "summary.md", "summary.tex", "curves.csv", "evaluations.csv"):
        assert (finished / "results" / "tables" / name).stat().st_size > 0
    for name in ("sample_efficiency", "rollout_ablation", "wallclock"):
        for ext in ("png", "pdf"):
            assert (finished / "results" / "figures" / f"{name}.{ext}").stat().st_size > 10_000
    assert not (finished / "results" / "figures" / "devices.png").exists()  # one device only
    runs = sorted((finished / "results" / "runs").glob("*/*/*/*/seed*"))
    assert len(runs) == 2 * 2 + 2 + 2
    assert all((run / "metadata.json").is_file() for run in runs)
    assert all((finished / "results" / "benchmarks").rglob("seed*.tsv"))


def test_summary_equals_a_recomputation_from_the_run_files(finished):
    summary = pd.read_csv(finished / "results" / "tables" / "summary.csv")
    budget = 600
    for _, row in summary.iterrows():
        folders = sorted((finished / "results" / "runs" / row.env / row.algo / row.variant / row.device).glob("seed*"))
        scores, aucs = [], []
        for folder in folders:
            ev = pd.read_csv(folder / "eval.csv").groupby("env_step")["return"].mean()
            scores.append(ev.loc[budget])
            upto = ev[ev.index <= budget]
            steps, values = upto.index.to_numpy(float), upto.to_numpy()
            aucs.append(((values[1:] + values[:-1]) / 2 * np.diff(steps)).sum() / (steps[-1] - steps[0]))
        scores = np.array(scores)
        assert row.seeds == len(folders) == 2
        assert row.return_iqm == pytest.approx(iqm(scores))
        assert row.return_mean == pytest.approx(scores.mean())
        assert row.return_std == pytest.approx(scores.std())
        assert row.auc_to_budget_iqm == pytest.approx(iqm(np.array(aucs)))
        assert row.return_ci_low <= row.return_iqm <= row.return_ci_high
        bench = pd.read_csv(
            finished / "results" / "benchmarks" / row.env / row.algo / row.variant / row.device / "seed0.tsv", sep="\t"
        )
        assert row.peak_rss_mb >= bench.max_rss.iloc[0]
    mbpo = summary[summary.algo == "mbpo"]
    assert mbpo.filter(like="p_beats_").stack().between(0, 1).all() and mbpo.filter(like="p_beats_").shape[1] == 2


def test_rerunning_with_nothing_changed_runs_nothing(finished):
    out = snakemake(finished, "-n").stdout
    assert "Nothing to be done" in out


def test_adding_a_seed_runs_only_the_new_runs(finished, tmp_path):
    config = write_config(tmp_path / "more.yaml", seeds=[0, 1, 2])
    out = snakemake(finished, "-n", config=config).stdout
    planned = [
        line.split()[-1] for line in out.splitlines() if line.strip().startswith("output:") and "metadata.json" in line
    ]
    assert len(planned) == 4 and all("/seed2/" in line for line in planned)


def test_command_line_config_overrides_work(finished):
    out = snakemake(finished, "-n", "--config", "seeds=[0,1,2]", config=TEST_CONFIG).stdout
    assert "/seed2/" in out and "Nothing to be done" not in out


def test_a_failed_run_loses_no_other_result(tmp_path):
    """A run that fails at run time (here: its folder is held by another process, as by an
    orphaned training) fails alone; every other run finishes."""
    import fcntl

    config = write_config(tmp_path / "one.yaml", seeds=[0])
    held = tmp_path / "results" / "runs" / "Pendulum-v1" / "sac_mbpo_utd" / "utd10" / "cpu" / "seed0"
    held.mkdir(parents=True)
    with open(held / ".lock", "w") as lock:
        lock.write("pid 4242 on elsewhere since then\n")
        lock.flush()
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = snakemake(tmp_path, "--cores", "2", "--keep-going", config=config, check=False)
    assert result.returncode != 0
    runs = tmp_path / "results" / "runs" / "Pendulum-v1"
    assert (runs / "sac" / "utd1" / "cpu" / "seed0" / "metadata.json").is_file()
    assert (runs / "mbpo" / "h1" / "cpu" / "seed0" / "metadata.json").is_file()
    assert not (held / "metadata.json").exists()
    log = tmp_path / "results" / "logs" / "train" / "Pendulum-v1" / "sac_mbpo_utd" / "utd10" / "cpu" / "seed0.log"
    assert "is being written by pid 4242 on elsewhere" in log.read_text()
    # the holder is gone: the documented re-run finishes the experiment
    snakemake(tmp_path, "--cores", "2", config=config)
    assert (held / "metadata.json").is_file()


def test_a_seed_failing_in_a_lockstep_job_costs_no_other_seed_its_results(tmp_path):
    """Both seeds of each group in one job; seed 1 diverges: every job fails, seed 0 of every
    group completes and is never trained again, and once the fault is gone the same command
    trains seed 1 alone and finishes the experiment."""
    config = write_config(tmp_path / "lockstep.yaml", seeds_per_job={"cpu": 2})
    faulty = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "crashhook"), "MBPO_FAULT": "seed_1_diverges"}
    first = subprocess.run(
        snakemake_command(tmp_path, config, "--cores", "2", "--keep-going"),
        capture_output=True, text=True, timeout=900, cwd=ROOT, env=faulty,
    )  # fmt: skip
    assert first.returncode != 0, "the injected divergence did not fail the jobs"
    runs = tmp_path / "results" / "runs"
    done = sorted(runs.glob("*/*/*/cpu/seed0"))
    assert len(done) == 4 and all((run / "metadata.json").is_file() for run in done)
    assert not list(runs.glob("*/*/*/cpu/seed1/metadata.json"))
    assert not list((tmp_path / "results").glob("jobs/**/*.json"))  # a failed job's record is gone
    log = next((tmp_path / "results" / "logs" / "train").rglob("seeds0-1.log")).read_text()
    assert "seed 1:" in log and "diverged" in log
    before = {p: p.stat().st_mtime_ns for run in done for p in run.iterdir() if p.name != ".lock"}
    snakemake(tmp_path, "--cores", "2", config=config)
    assert {p: p.stat().st_mtime_ns for p in before} == before  # seed 0 was not trained again
    assert len(list(runs.glob("*/*/*/cpu/seed1/metadata.json"))) == 4
    assert len(list((tmp_path / "results").glob("jobs/**/seeds0-1.json"))) == 4
    meta = json.loads((runs / "Pendulum-v1" / "sac" / "utd1" / "cpu" / "seed1" / "metadata.json").read_text())
    assert meta["lockstep"]["seeds"] == [1]  # the re-run's group: seed 0 was complete


def test_kill_9_of_snakemake_then_the_same_command_finishes(tmp_path):
    """No --unlock, no --rerun-incomplete to find: the profile carries them, and interrupted
    trainings resume from their checkpoints or start over."""
    config = write_config(tmp_path / "one.yaml", seeds=[0])
    proc = start_workflow_until_a_run_writes(tmp_path, config, cores=2)
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its trainings, as a crash would
    proc.wait(timeout=60)
    snakemake(tmp_path, "--cores", "2", config=config)
    assert len(list((tmp_path / "results" / "runs").rglob("metadata.json"))) == 4
    assert not list((tmp_path / "results" / "runs").rglob("*.part"))


def test_an_interrupted_run_never_looks_complete_and_reruns_cleanly(tmp_path):
    config = write_config(tmp_path / "one.yaml", seeds=[0])
    proc = start_workflow_until_a_run_writes(tmp_path, config, cores=1)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    for folder in (tmp_path / "results" / "runs").glob("*/*/*/*/seed*"):
        if (folder / "metadata.json").exists():  # what looks complete is complete
            assert json.loads((folder / "metadata.json").read_text())["status"] == "complete"
            assert (folder / "eval.csv").is_file()
    snakemake(tmp_path, "--cores", "2", config=config)
    assert len(list((tmp_path / "results" / "runs").rglob("metadata.json"))) == 4
    assert not list((tmp_path / "results" / "runs").rglob("*.part"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"envs": ["NoSuchEnv-v0"]}, "envs: unknown environment 'NoSuchEnv-v0'"),
        ({"algorithms": {"ppo": {"total_steps": 10}}}, "'ppo' was unexpected"),
        ({"seeds": [-1]}, "invalid config: seeds[0]: -1 is less than the minimum of 0"),
        ({"seeds": [1.0]}, "invalid config: seeds: 1.0 is not an integer"),
        ({"seeds": []}, "invalid config: seeds: [] should be non-empty"),
        ({"seeds": {"Hopper-v5": [0]}}, "invalid config: seeds: no seeds for Pendulum-v1"),
        ({"seeds": {"Pendulum-v1": [0, -2]}}, "invalid config: seeds.Pendulum-v1[1]: -2 is less than the minimum of 0"),
        ({"envs": []}, "invalid config: envs: [] should be non-empty"),
        ({"envs": ["CartPole-v1"]}, "Discrete action space"),
        (
            {"algorithms": {"sac": {"total_steps": 10, "options": {"batch_size": 0}}}},
            "invalid config: algorithms.sac (Pendulum-v1, utd1): batch_size must be > 0, got 0",
        ),
        ({"algorithms": {"sac": {"total_steps": 10, "options": {"no_such_flag": 3}}}}, "unrecognized arguments"),
        ({"algorithms": {"sac": {"total_steps": 10, "options": {"model_hidden": [8]}}}}, "only apply to algo mbpo"),
        (
            {"algorithms": {"mbpo": {"total_steps": 10, "rollout_lengths": ["5,2,1,3"]}}},
            "0 <= start_epoch <= end_epoch",
        ),
    ],
)
def test_invalid_configs_fail_naming_the_field(tmp_path, change, message):
    """Before any run starts, with one line that names the problem (no schema dump)."""
    result = snakemake(tmp_path, "-n", config=write_config(tmp_path / "bad.yaml", **change), check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert message in output
    assert "Failed validating" not in output and "$schema" not in output


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_report_renders_every_figure_in_a_headless_browser(finished, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    snakemake(finished, "--report", "results/report.html")
    report = finished / "results" / "report.html"
    assert report.stat().st_size > 100_000
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(report.as_uri())
        wait = WebDriverWait(driver, 30)
        assert "Pendulum-v1" in wait.until(ec.presence_of_element_located((By.ID, "app"))).text
        for name in ("sample_efficiency", "rollout_ablation", "wallclock"):
            wait.until(ec.element_to_be_clickable((By.LINK_TEXT, "Figures"))).click()
            row = wait.until(ec.presence_of_element_located((By.XPATH, f"//tr[td[contains(., '{name}.png')]]")))
            row.find_element(By.CSS_SELECTOR, "a[iconname='eye']").click()
            image = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"img[src*='filename={name}.png']")))
            wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
            assert driver.execute_script("return arguments[0].naturalWidth", image) > 500
    finally:
        driver.quit()


def test_a_malformed_default_config_is_named_with_its_line(tmp_path):
    """A user who breaks config/config.yaml's YAML is told which file and where."""
    for name in ("Snakefile", "workflow", "analysis", "mbpo", "profiles"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("envs: [Pendulum-v1\nseeds: [0]\n")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert f"invalid config: {tmp_path / 'config' / 'config.yaml'}, line 2, column 6" in result.stdout + result.stderr


def test_a_project_and_outputs_under_paths_with_spaces_and_non_ascii_run(tmp_path):
    """The project checked out under "a b é/", its interpreter there too (a virtual environment
    inside the checkout, as the README's commands make it), the config and the results under
    such names as well: every job's command line quotes every path."""
    import site
    import venv

    home = tmp_path / "a b é"
    project = home / "mbpo bench"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if name.startswith("results/") or not (ROOT / name).is_file():
            continue
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, project / name)
    env_dir = project / ".venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # this interpreter sees the test's installed packages, and imports the copy's own code first
    (Path(packages) / "parent.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    config = home / "mon expérience.yaml"
    write_config(
        config,
        output="résultats/run s",
        algorithms={
            "mbpo": {
                "preset": "default",
                "total_steps": 300,
                "rollout_lengths": [1],
                "options": {"model_max_epochs": 2},
            },
            "sac": {"preset": "seed", "total_steps": 300, "updates_per_step": 1, "options": {"random_steps": 100}},
        },
        seeds=[0],
        analysis={**yaml.safe_load(TEST_CONFIG.read_text())["analysis"], "budget": 300},
    )
    result = subprocess.run(
        [str(python), "-m", "snakemake", "--cores", "2", "--configfile", str(config), "--replace-workflow-config"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = project / "résultats" / "run s"
    summary = pd.read_csv(out / "tables" / "summary.csv")
    assert sorted(summary.algo) == ["mbpo", "sac"]
    meta = json.loads((out / "runs" / "Pendulum-v1" / "sac" / "utd1" / "cpu" / "seed0" / "metadata.json").read_text())
    assert meta["argv"][0].startswith(str(project))  # the copy's own code ran, from its odd path


@pytest.mark.parametrize("op", [8, 14])
def test_a_training_job_killed_while_its_run_is_committed_loses_nothing(tmp_path, op):
    """SIGKILL after the run's files were renamed into place, before its metadata.json (op 8), or
    after the whole commit, before the process exits (op 14, its last folder fsync): Snakemake
    deletes the failed job's declared output (and would delete it again before re-running the
    job), and the next invocation completes the run without training."""
    config = write_config(
        tmp_path / "one.yaml",
        algorithms={
            "sac": {"preset": "seed", "total_steps": 300, "updates_per_step": 1, "options": {"random_steps": 100}}
        },
        seeds=[0],
        analysis={**yaml.safe_load(TEST_CONFIG.read_text())["analysis"], "budget": 300},
    )
    run = tmp_path / "results" / "runs" / "Pendulum-v1" / "sac" / "utd1" / "cpu" / "seed0"
    crash = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "crashhook"), "MBPO_CRASHPOINT": f"finish kill {op}"}
    first = subprocess.run(
        snakemake_command(tmp_path, config, "--cores", "1"),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env=crash,
    )
    assert first.returncode != 0, "the injected crash did not happen"
    assert (run / ".finish.json").exists() and (run / "eval.csv").exists() and not (run / "metadata.json").exists()
    snakemake(tmp_path, "--cores", "1", config=config)
    meta = json.loads((run / "metadata.json").read_text())
    from mbpo.record import verify_run_files

    verify_run_files(run, meta)
    assert meta["resumes"][-1].get("finish_only") is True  # the re-run job trained nothing
    assert sorted(p.name for p in run.iterdir()) == [".finish.json", ".lock", "eval.csv", "metadata.json", "train.csv"]
