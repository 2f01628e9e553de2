"""benchmarks/experiment_cost.py: the projection integrates each phase the way mbpo/train.py
takes it (checked by hand on stub timings), and the script plans, times and checks end to end."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mbpo.cli import config_from_args

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cost():
    spec = importlib.util.spec_from_file_location("experiment_cost", ROOT / "benchmarks" / "experiment_cost.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


class CountingTimer:
    """Every part costs one second per thing it counts: an env step, an update, a fit (`rows`:
    or one per row it fits on), a model step of a rollout phase. Projected with it, a run's
    phases count the training loop's events, which a finished run's files record."""

    def __init__(self, rows: bool = False) -> None:
        self.rows = rows

    def env_step(self, dims, cfg):
        return 1.0

    def update(self, dims, cfg):
        return 1.0

    def epoch(self, dims, cfg):
        return (0.0, 1.0) if self.rows else (1.0, 0.0)

    def rollout(self, dims, cfg):
        return 0.0, 1.0


def finished(run: str):
    folder = ROOT / "results/validation/runs" / run
    meta = json.loads((folder / "metadata.json").read_text())
    return folder, meta, config_from_args(shlex.split(meta["command"])[4:])


def test_projection_counts_the_events_a_finished_mbpo_run_recorded(cost):
    """Hopper at the paper's settings to 50k (random steps 5000, 20 updates per step, a fit and a
    rollout phase every 250 steps from step 5000, the rollout schedule, 10 evaluation episodes at
    step 0, every 1000 steps and the end): the projection's counts are the run's."""
    folder, meta, cfg = finished("Hopper-v5/mbpo/hpaper/cpu/seed1")
    evals = pd.read_csv(folder / "eval.csv")
    model = pd.read_csv(folder / "model.csv")
    rollouts = pd.read_csv(folder / "rollouts.csv")
    got = cost.project(cfg, CountingTimer(), epochs=(1.0, 1.0))
    assert got["env"] == cfg.run.total_steps == 50_000
    assert got["update"] == meta["updates"] == 900_000
    assert got["model"] == len(model) == 181
    assert got["rollout"] == rollouts["rollout_length"].sum()
    assert got["eval"] == evals["env_step"].nunique() * cfg.run.eval_episodes * 1000  # 51 evaluations
    # the run's own epochs per fit, and an epoch's cost in the rows it fits on (all real data so far)
    fits = dict(zip(model["env_step"], model["epochs"]))
    got = cost.project(cfg, CountingTimer(rows=True), epochs=(1.0, 1.0), fits=fits)
    assert got["model"] == (model["epochs"] * (model["train_size"] + model["holdout_size"])).sum()
    # the first fit (from scratch) and the later ones apart
    got = cost.project(cfg, CountingTimer(), epochs=(100.0, 10.0))
    assert got["model"] == 100 + 10 * 180


def test_projection_counts_the_events_a_finished_sac_run_recorded(cost):
    folder, meta, cfg = finished("Hopper-v5/sac/utd1/cpu/seed1")
    got = cost.project(cfg, CountingTimer(), epochs=(100.0, 10.0))
    assert got["update"] == meta["updates"] == 45_000  # one per step after the 5000 random steps
    assert got["model"] == got["rollout"] == 0.0
    assert got["eval"] == pd.read_csv(folder / "eval.csv")["env_step"].nunique() * cfg.run.eval_episodes * 1000


def test_a_noisy_pair_of_timings_never_gives_a_negative_cost(cost):
    assert cost.line_through((1, 2.0), (3, 4.0)) == pytest.approx((1.0, 1.0))
    assert cost.line_through((10, 5.0), (30, 30.0)) == pytest.approx((0.0, 1.0))  # intercept would be -7.5
    assert cost.line_through((10, 5.0), (30, 4.0)) == pytest.approx((0.0, 4.0 / 30))  # falling


def test_epochs_per_fit_come_from_runs_first_fits_apart_weighted_by_their_data(cost, tmp_path):
    paths = []
    for i, counts in enumerate([(200, 30, 20), (240, 40)]):
        path = tmp_path / f"model{i}.csv"
        rows = "".join(f"{250 * (k + 1)},{c},{200 * (k + 1)},{50 * (k + 1)}\n" for k, c in enumerate(counts))
        path.write_text("env_step,epochs,train_size,holdout_size\n" + rows)
        paths.append(path)
    # later fits: 30 on 500 rows, 20 on 750, 40 on 500 -> (15000 + 15000 + 20000) / 1750
    assert cost.fit_epochs(paths) == pytest.approx((220.0, 50_000 / 1750))
    (tmp_path / "bare.csv").write_text("epochs\n9\n3\n5\n")  # no sizes: a plain mean
    assert cost.fit_epochs([tmp_path / "bare.csv"]) == pytest.approx((9.0, 4.0))
    (tmp_path / "zero.csv").write_text("env_step,epochs\n0,0\n")
    with pytest.raises(ValueError, match="zero.csv: its 'epochs' column holds a count < 1"):
        cost.fit_epochs([tmp_path / "zero.csv"])


def test_a_finished_run_that_cannot_be_checked_is_named_in_one_error(cost, tmp_path):
    folder, meta, _ = finished("InvertedPendulum-v5/sac/utd1/cpu/seed0")
    cases = {
        "zero": ({"seconds": {}}, "do not add up to a time > 0"),
        "none": ({"seconds": None}, "no 'seconds' object"),
        "nan": ({"seconds": {"update": "x"}}, "not a number"),
        "quote": ({"command": "python -m mbpo train --env 'Hopper"}, "does not parse"),
        "other": ({"command": "python train.py"}, "not a `python -m mbpo train` command"),
        "group": ({"lockstep": {"seeds": []}}, "its 'lockstep' names no list of seeds"),
    }
    for name, (change, message) in cases.items():
        run = tmp_path / name
        run.mkdir()
        bare = {k: v for k, v in meta.items() if k != "files"}  # no checksums of the files
        (run / "metadata.json").write_text(json.dumps({**bare, **change}))
        with pytest.raises(ValueError, match=re.escape(message)) as caught:
            cost.load_finished(run)
        assert str(run) in str(caught.value)


def test_the_script_plans_times_and_checks_a_finished_run(tmp_path):
    """The smoke experiment (every env and algorithm of config/paper.yaml at tiny sizes), checked
    against a committed finished run: one row per planned (env, algo, variant), a check row."""
    alone = ROOT / "results/validation/runs/InvertedDoublePendulum-v5/sac/utd1/cpu/seed0"
    grouped = ROOT / "results/validation/runs/InvertedPendulum-v5/sac/utd1/cpu/seed0"  # 10 in lockstep
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks/experiment_cost.py"),
        "--configfile",
        str(ROOT / "config/paper_smoke.yaml"),
        "--repeat",
        "1",
        "--sizes",
        "2000",
        "4000",
        "--check",
        str(alone),
        str(grouped),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    check = [line for line in out.splitlines() if line.startswith("InvertedDoublePendulum-v5/sac/utd1/cpu/seed0 ")]
    assert len(check) == 1 and re.search(r" \d+/209 +\d+\.\d\d( |$)", check[0]), out  # its phases: 209.3 s
    # a seed trained among 10 in lockstep: its process's 5578 s / 10, and said so
    check = [line for line in out.splitlines() if line.startswith("InvertedPendulum-v5/sac/utd1/cpu/seed0 ")]
    assert len(check) == 1 and re.search(r" \d+/558 +\d+\.\d\d ", check[0]), out
    assert "trained 10 seed(s) per process, projected at 1" in check[0], out
    rows = [
        line.split()
        for line in out.splitlines()
        if line.endswith(tuple("0123456789")) and line.split()[0].endswith("-v5")
    ]
    assert len(rows) == 18, out  # 7 envs x (mbpo, sac) + 4 SAC asymptotes, one seed each
    assert all(float(row[-1]) >= 0 for row in rows), out
    assert "all 18 runs:" in out
