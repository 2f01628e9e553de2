"""benchmarks/experiment_cost.py: the projection integrates each phase the way mbpo/train.py
takes it (checked by hand on stub timings), and the script plans, times and checks end to end."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mbpo.config import build_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cost():
    spec = importlib.util.spec_from_file_location("experiment_cost", ROOT / "benchmarks" / "experiment_cost.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


class StubTimer:
    """Round numbers for every part: env step 1 ms, update 10 ms, an epoch 0.5 s + 0.1 ms per
    sample, a rollout phase 0.1 s + 0.01 s per model step."""

    def env_step(self, dims, cfg):
        return 1e-3

    def update(self, dims, cfg):
        return 1e-2

    def epoch(self, dims, cfg):
        return 0.5, 1e-4

    def rollout(self, dims, cfg):
        return 0.1, 0.01


def test_projection_integrates_each_phase_as_the_training_loop_runs_it(cost):
    cfg = build_config(
        {"algo": "mbpo", "preset": "paper", "env": "Hopper-v5", "total_steps": 26_500, "eval_episodes": 3}
    )
    # Hopper's paper settings: 5000 random steps, 20 updates per step, a fit and a rollout phase
    # every 250 steps from step 5000 on, length 1 until epoch 20 after the random steps (step
    # 25000), then growing by 14/130 of a step per epoch; an evaluation every 1000 steps and at the end
    got = cost.project(cfg, StubTimer(), epochs=(100.0, 10.0))
    fits = list(range(5000, 26_501, 250))  # 87 fits
    assert len(fits) == 87
    model = 100 * (0.5 + 1e-4 * 5000) + sum(10 * (0.5 + 1e-4 * s) for s in fits[1:])
    assert {cfg.mbpo.rollout_length_at(s, 5000) for s in fits} == {1}  # epoch 21 at 26000: int(1 + 14/130)
    assert got["model"] == pytest.approx(model)
    assert got["rollout"] == pytest.approx(87 * 0.11)
    assert got["update"] == pytest.approx(21_500 * 20 * 1e-2)
    assert got["env"] == pytest.approx(26.5)
    assert got["eval"] == pytest.approx(27 * 3 * 1000 * 1e-3)  # 26 at every 1000 steps, 1 at the end

    sac = build_config({"algo": "sac", "preset": "paper", "env": "Hopper-v5", "total_steps": 8000})
    got = cost.project(sac, StubTimer(), epochs=(100.0, 10.0))
    assert got["model"] == got["rollout"] == 0.0
    assert got["update"] == pytest.approx(3000 * 1e-2)  # one update per step after 5000 random steps


def test_rollout_cost_follows_the_schedule(cost):
    cfg = build_config({"algo": "mbpo", "preset": "paper", "env": "Hopper-v5", "total_steps": 60_000})
    got = cost.project(cfg, StubTimer(), epochs=(1.0, 1.0))
    fits = range(5000, 60_001, 250)
    assert got["rollout"] == pytest.approx(sum(0.1 + 0.01 * cfg.mbpo.rollout_length_at(s, 5000) for s in fits))
    assert cfg.mbpo.rollout_length_at(60_000, 5000) > 1  # the schedule has begun to grow


def test_a_noisy_pair_of_timings_never_gives_a_negative_cost(cost):
    assert cost.line_through((1, 2.0), (3, 4.0)) == pytest.approx((1.0, 1.0))
    assert cost.line_through((10, 5.0), (30, 30.0)) == pytest.approx((0.0, 1.0))  # intercept would be -7.5
    assert cost.line_through((10, 5.0), (30, 4.0)) == pytest.approx((0.0, 4.0 / 30))  # falling


def test_epochs_per_fit_come_from_runs_first_fits_apart(cost, tmp_path):
    paths = []
    for i, counts in enumerate([(200, 30, 20), (240, 40)]):
        path = tmp_path / f"model{i}.csv"
        path.write_text("env_step,epochs\n" + "".join(f"{250 * k},{c}\n" for k, c in enumerate(counts)))
        paths.append(path)
    assert cost.fit_epochs(paths) == pytest.approx((220.0, 30.0))
    (tmp_path / "zero.csv").write_text("env_step,epochs\n0,0\n")
    with pytest.raises(ValueError, match="zero.csv: its 'epochs' column holds a count < 1"):
        cost.fit_epochs([tmp_path / "zero.csv"])


def test_the_script_plans_times_and_checks_a_finished_run(tmp_path):
    """The smoke experiment (every env and algorithm of config/paper.yaml at tiny sizes), checked
    against a committed finished run: one row per planned (env, algo, variant), a check row."""
    run = ROOT / "results/validation/runs/InvertedPendulum-v5/sac/utd1/cpu/seed0"
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
        str(run),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    check = [line for line in out.splitlines() if line.startswith("InvertedPendulum-v5/sac/utd1/cpu/seed0 ")]
    assert len(check) == 1 and re.search(r" \d+/230 +\d+\.\d\d( |$)", check[0]), out  # its phases: 230.3 s
    rows = [
        line.split()
        for line in out.splitlines()
        if line.endswith(tuple("0123456789")) and line.split()[0].endswith("-v5")
    ]
    assert len(rows) == 18, out  # 7 envs x (mbpo, sac) + 4 SAC asymptotes, one seed each
    assert all(float(row[-1]) >= 0 for row in rows), out
    assert "all 18 runs:" in out
