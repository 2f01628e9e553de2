"""The SAC cross-check: Stable-Baselines3's SAC run by this harness (`--algo sb3_sac`) with the
SAC config's settings and the harness's protocol, and `analysis.crosscheck`'s verdicts."""

from __future__ import annotations

import importlib.util
import json
import time
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from runfiles import assert_same_run

from analysis import crosscheck
from analysis.runs import load_runs
from mbpo.cli import config_from_args
from mbpo.cli import main as cli_main
from mbpo.record import verify_run_files
from mbpo.sb3 import sb3_kwargs
from plan.experiment import ExperimentError
from plan.experiment import runs as experiment_runs

SB3_ARGS = [
    "--algo",
    "sb3_sac",
    "--env",
    "Pendulum-v1",
    "--preset",
    "paper",
    "--random-steps",
    "200",
    "--total-steps",
    "800",
    "--eval-every",
    "400",
    "--eval-episodes",
    "2",
    "--log-every",
    "200",
    "--quiet",
]


def test_the_sb3_run_takes_every_setting_of_the_sac_config():
    cfg = config_from_args(["--algo", "sb3_sac", "--env", "Hopper-v5", "--preset", "paper", "--updates-per-step", "1"])
    kwargs = sb3_kwargs(cfg)
    assert kwargs == {
        "learning_rate": 3e-4,
        "buffer_size": 125_000,  # the run's length: a 1M buffer would never fill
        "learning_starts": 5000,
        "batch_size": 256,
        "tau": 0.005,
        "gamma": 0.99,
        "train_freq": 1,
        "gradient_steps": 1,
        "ent_coef": "auto_1.0",
        "target_entropy": "auto",
        "policy_kwargs": {"net_arch": {"pi": [256, 256], "qf": [256, 256]}},
        "seed": 0,
        "device": "cpu",
    }
    # the same config as this harness's SAC but for the algorithm
    ours = config_from_args(["--algo", "sac", "--env", "Hopper-v5", "--preset", "paper", "--updates-per-step", "1"])
    assert {k: v for k, v in cfg.to_dict().items() if k != "run"} == {
        k: v for k, v in ours.to_dict().items() if k != "run"
    }


def test_a_config_sb3_cannot_express_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    args = [*SB3_ARGS, "--actor-lr", "0.001", "--out", str(out)]
    result = subprocess.run([sys.executable, "-m", "mbpo", "train", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "SB3 has one learning rate" in result.stderr and not out.exists()


@pytest.fixture(scope="module")
def sb3_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("sb3")
    outs = [root / "runs" / "Pendulum-v1" / "sb3_sac" / "utd1" / "cpu" / name for name in ("seed0", "again")]
    for out in outs:
        cmd = [sys.executable, "-m", "mbpo", "train", *SB3_ARGS, "--out", str(out)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    return outs


def test_an_sb3_run_writes_a_run_folder_the_readers_take_and_repeats_itself(sb3_runs):
    out, again = sb3_runs
    meta = json.loads((out / "metadata.json").read_text())
    verify_run_files(out, meta)
    assert meta["algo"] == "sb3_sac" and meta["implementation"]["name"] == "stable-baselines3"
    assert meta["implementation"]["kwargs"]["learning_starts"] == 200 and meta["updates"] == 600
    assert "--algo sb3_sac" in meta["command"]
    evals = load_runs([out])
    assert sorted(evals.env_step.unique()) == [0, 400, 800] and (evals.groupby("env_step").size() == 2).all()
    train = pd.read_csv(out / "train.csv")
    assert list(train.env_step) == [200, 400, 600, 800] and list(train.updates) == [0, 200, 400, 600]
    assert train.alpha.iloc[1:].between(0, 1).all() and train.critic_loss.iloc[0] != train.critic_loss.iloc[0]
    assert_same_run(out, again)  # the same seed, device and thread count: the same files


# ---- analysis.crosscheck on runs with known returns --------------------------------------------


def make_run(root: Path, env: str, algo: str, seed: int, final: float, gamma: float = 0.99) -> Path:
    run = root / "runs" / env / algo / "utd1" / "cpu" / f"seed{seed}"
    run.mkdir(parents=True)
    steps = [0, 500, 1000]
    scores = [0.0, final / 2, final]
    rows = [(s, k, v, 100, 0.1 * i) for i, (s, v) in enumerate(zip(steps, scores)) for k in range(2)]
    pd.DataFrame(rows, columns=["env_step", "episode", "return", "length", "wall_seconds"]).to_csv(
        run / "eval.csv", index=False
    )
    config = {
        "run": {"algo": algo, "env": env, "seed": seed, "total_steps": 1000, "eval_every": 500, "eval_episodes": 2},
        "sac": {"gamma": gamma, "batch_size": 256},
    }
    meta = {"algo": algo, "env": env, "seed": seed, "device": "cpu", "config": config, "status": "complete"}
    (run / "metadata.json").write_text(json.dumps(meta))
    return run


def verdicts(tmp_path: Path, ours: list[float], theirs: list[float], margin: str = "100", **kw) -> pd.DataFrame:
    runs = [make_run(tmp_path, "Hopper-v5", "sac", s, v) for s, v in enumerate(ours)]
    runs += [make_run(tmp_path, "Hopper-v5", "sb3_sac", s, v, **kw) for s, v in enumerate(theirs)]
    code = crosscheck.main(
        ["--runs", *map(str, runs), "--tables", str(tmp_path / "t"), "--figures", str(tmp_path / "f"),
         "--margin", f"Hopper-v5={margin}"]
    )  # fmt: skip
    assert code == 0
    assert (tmp_path / "f" / "crosscheck.png").stat().st_size > 0
    return pd.read_csv(tmp_path / "t" / "crosscheck.csv").set_index("metric")


def test_equal_sacs_are_equivalent_and_a_far_one_differs(tmp_path):
    rng = np.random.default_rng(0)
    base = list(500 + 5 * rng.standard_normal(10))
    table = verdicts(tmp_path / "same", base, [v + 3 for v in base])
    assert table.loc["return_at_budget", "verdict"] == "equivalent"
    assert table.loc["return_at_budget", "ci_low"] > -100 and table.loc["return_at_budget", "ci_high"] < 100
    table = verdicts(tmp_path / "far", base, [v + 400 for v in base])
    assert table.loc["return_at_budget", "verdict"] == "SB3 higher" and table.loc["auc", "verdict"] == "SB3 higher"
    assert table.loc["return_at_budget", "shift_sb3_minus_sac"] == pytest.approx(400, abs=15)
    table = verdicts(tmp_path / "noisy", [0, 1000, 0, 1000, 500], [1000, 0, 1000, 0, 500])
    assert table.loc["return_at_budget", "verdict"] == "inconclusive"
    # most runs tied at a capped return: the rank interval is (0, 0), the means' is wide
    capped = verdicts(tmp_path / "capped", [1000] * 7 + [148, 181, 120], [1000] * 8 + [160, 140])
    row = capped.loc["return_at_budget"]
    assert (row.ci_low, row.ci_high) == (0, 0) and row.mean_ci_low < -100 and row.mean_ci_high > 100
    assert row.verdict == "inconclusive"


def test_runs_of_other_settings_are_refused_in_one_line(tmp_path, capsys):
    runs = [make_run(tmp_path, "Hopper-v5", "sac", s, 500.0) for s in range(3)]
    runs += [make_run(tmp_path, "Hopper-v5", "sb3_sac", s, 500.0, gamma=0.98) for s in range(3)]
    args = ["--runs", *map(str, runs), "--tables", str(tmp_path / "t"), "--figures", str(tmp_path / "f")]
    assert crosscheck.main([*args, "--margin", "Hopper-v5=100"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not run with the same settings (sac.gamma: 0.99 vs 0.98)" in err
    assert crosscheck.main([*args, "--margin", "Hopper-v5=-1"]) == 2
    assert "--margin 'Hopper-v5=-1': expected ENV=VALUE" in capsys.readouterr().err


def test_the_same_runs_give_byte_identical_tables_and_figures(tmp_path):
    """No timestamp in the PDF (or anywhere): redrawing committed runs changes no committed file."""
    base = [500.0, 510.0, 490.0]
    verdicts(tmp_path, base, base)
    first = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "t").iterdir()}
    first |= {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "f").iterdir()}
    assert {p.suffix for p in first} == {".csv", ".md", ".png", ".pdf"}
    time.sleep(1.1)  # the PDF's CreationDate has one-second resolution
    verdicts_again = crosscheck.main(
        ["--runs", *map(str, sorted((tmp_path / "runs").glob("*/*/*/*/seed*"))), "--tables", str(tmp_path / "t"),
         "--figures", str(tmp_path / "f"), "--margin", "Hopper-v5=100"]
    )  # fmt: skip
    assert verdicts_again == 0
    assert {p: (tmp_path / p).read_bytes() for p in first} == first


def test_without_sb3_its_runs_are_refused_at_planning_and_at_the_cli_in_one_line(tmp_path, monkeypatch, capsys):
    """A pipeline with sb3_sac runs fails before any job starts, naming the extra to install,
    instead of each training job failing into its own log."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "stable_baselines3" else real(name, *a)
    )
    config = {
        "envs": ["Pendulum-v1"],
        "seeds": [0],
        "devices": ["cpu"],
        "evaluation": {"every": 100, "episodes": 2},
        "algorithms": {"sac": {"total_steps": 200}, "sb3_sac": {"total_steps": 200}},
    }
    with pytest.raises(
        ExperimentError, match=r"algorithms\.sb3_sac .*needs Stable-Baselines3: pip install .*\[crosscheck\]"
    ):
        experiment_runs(config)
    out = tmp_path / "run"
    assert cli_main(["train", *SB3_ARGS, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs Stable-Baselines3" in err[0] and not out.exists()
    assert experiment_runs({**config, "algorithms": {"sac": {"total_steps": 200}}})  # nothing else needs it


def test_runs_of_other_groups_are_left_out_and_counted(tmp_path, capsys):
    runs = [make_run(tmp_path, "Hopper-v5", algo, s, 500.0 + s) for algo in ("sac", "sb3_sac") for s in range(3)]
    other = make_run(tmp_path, "Hopper-v5", "mbpo", 0, 900.0)
    alone = make_run(tmp_path, "Walker2d-v5", "sac", 0, 900.0)  # no SB3 run of this env
    args = ["--tables", str(tmp_path / "t"), "--figures", str(tmp_path / "f"), "--margin", "Hopper-v5=100"]
    assert crosscheck.main(["--runs", *map(str, [*runs, other, alone]), *args]) == 0
    err = capsys.readouterr().err
    assert "1 of the 8 runs are neither sac/utd1 nor sb3_sac/utd1: left out" in err
    assert "Walker2d-v5: runs of one SAC only, left out" in err
    with_other = (tmp_path / "t" / "crosscheck.csv").read_bytes()
    assert crosscheck.main(["--runs", *map(str, runs), *args]) == 0
    assert capsys.readouterr().err == "" and (tmp_path / "t" / "crosscheck.csv").read_bytes() == with_other
    assert crosscheck.main(["--runs", str(alone), *args]) == 2
    assert "no env has runs of both sac/utd1 and sb3_sac/utd1" in capsys.readouterr().err
