"""The paper experiment: its config plans what the paper ran, at the paper's per-environment
settings; and a smoke version of the whole pipeline (every env, every algorithm, every figure, the
returns table and the HTML report) runs end to end at tiny budgets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from plan.experiment import ExperimentError, runs, train_args
from mbpo.cli import config_from_args
from mbpo.config import PAPER_ENVS
from runfiles import snakemake_command

ROOT = Path(__file__).resolve().parent.parent
PAPER = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
SMOKE = ROOT / "config" / "paper_smoke.yaml"

pytest.importorskip("mujoco", reason="the paper's envs need gymnasium[mujoco]")


def resolved(algo: str, env: str, variant: str, seed: int = 0):
    return config_from_args(train_args(PAPER, env, algo, variant, "cpu", seed))


def test_paper_config_plans_the_papers_runs():
    planned = runs(PAPER)
    envs, seeds = PAPER["envs"], PAPER["seeds"]
    by_algo = {algo: [r for r in planned if r.algo == algo] for algo in PAPER["algorithms"]}
    assert len(by_algo["mbpo"]) == len(by_algo["sac"]) == len(by_algo["sac_asymptote"]) == len(envs) * len(seeds)
    assert {r.variant for r in by_algo["mbpo"]} == {"hpaper"}
    assert {(r.env, r.variant) for r in by_algo["mbpo_ablation"]} == {("Hopper-v5", v) for v in ("h1", "h200", "h500")}


@pytest.mark.parametrize("env", PAPER["envs"])
def test_each_env_runs_at_the_papers_settings(env):
    paper = PAPER_ENVS[env.split("-v")[0]]
    mbpo, sac = resolved("mbpo", env, "hpaper"), resolved("sac", env, "utd1")
    assert mbpo.run.total_steps == sac.run.total_steps == paper.total_steps  # same budget
    assert mbpo.sac.updates_per_step == paper.updates_per_step and sac.sac.updates_per_step == 1
    assert mbpo.mbpo.model_train_freq == paper.model_train_freq
    assert mbpo.mbpo.rollout_batch_size == paper.rollouts_per_step * paper.model_train_freq
    assert mbpo.mbpo.rollout_length == paper.rollout_length and mbpo.mbpo.model_hidden == (paper.model_width,) * 4
    assert mbpo.mbpo.model_retain_epochs == paper.model_retain_epochs and mbpo.mbpo.epoch_length == paper.epoch_length
    assert mbpo.sac.target_entropy == paper.target_entropy and sac.sac.target_entropy is None  # SAC: -|A|
    assert mbpo.sac.random_steps == sac.sac.random_steps == paper.random_steps
    assert mbpo.run.eval_every == paper.epoch_length
    assert mbpo.run.truncate_obs == sac.run.truncate_obs == (env.startswith(("Ant", "Humanoid")))
    assert resolved("sac_asymptote", env, "utd1").run.total_steps == 4 * paper.total_steps


def test_the_long_ablation_rollouts_fit_memory():
    rows = {}
    for variant in ("h1", "hpaper", "h200", "h500"):
        algo = "mbpo" if variant == "hpaper" else "mbpo_ablation"
        cfg = resolved(algo, "Hopper-v5", variant)
        rows[variant] = cfg.mbpo.model_buffer_size() * (2 * 11 + 3 + 2) * 4  # bytes of float32 rows
    assert rows["h1"] < 50e6 and rows["hpaper"] < 700e6
    assert rows["h200"] < 1.1e9 and rows["h500"] < 1.1e9


def test_bad_runs_are_refused_at_planning_time_naming_the_algorithm():
    for change, message in (
        ({"options": {"batch_size": 0}}, "algorithms.sac (Hopper-v5, utd1): batch_size must be > 0"),
        ({"options": {"no_such_flag": 1}}, "unrecognized arguments: --no-such-flag 1"),
        ({"options": {"model_hidden": [8]}}, "model_hidden only apply to algo mbpo"),
    ):
        config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
        config["algorithms"]["sac"].update(change)
        with pytest.raises(ExperimentError, match=message.replace("(", r"\(").replace(")", r"\)")):
            runs(config)
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    config["algorithms"]["mbpo"]["rollout_lengths"] = ["5,2,1,3"]
    with pytest.raises(ExperimentError, match="0 <= start_epoch <= end_epoch"):
        runs(config)
    config["algorithms"]["mbpo"]["rollout_lengths"] = ["paper"]
    config["seeds"] = [1.0]
    with pytest.raises(ExperimentError, match="seeds: 1.0 is not an integer"):
        runs(config)


@pytest.mark.slow
def test_smoke_pipeline_draws_every_figure_table_and_report(tmp_path):
    cmd = snakemake_command(tmp_path, SMOKE, "--cores", "2", "paper_figures")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = tmp_path / "results" / "paper_smoke"
    for name in ("paper_comparison", "paper_ablation"):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 10_000
    table = pd.read_csv(out / "tables" / "paper_returns.csv")
    smoke = yaml.safe_load(SMOKE.read_text())
    for env in smoke["envs"]:  # each panel alone too, for the docs' per-env figures
        assert (out / "figures" / f"paper_comparison_{env}.png").stat().st_size > 10_000
    assert set(table.env) == set(smoke["envs"])
    assert set(table[table.algo == "mbpo"].env) == set(table[table.algo == "sac"].env) == set(smoke["envs"])
    assert set(table[table.algo == "sac_asymptote"].env) == set(smoke["algorithms"]["sac_asymptote"]["envs"])
    assert table.at_1_iqm.notna().all()
    hopper = table[(table.env == "Hopper-v5") & (table.algo == "mbpo")].iloc[0]
    assert hopper.paper_at_budget == 3300 and hopper.budget == 300
    per_run = pd.read_csv(out / "tables" / "paper_seeds.csv")
    assert len(per_run) == len(list((out / "runs").glob("*/*/*/*/seed*"))) and per_run["last"].notna().all()
    report = tmp_path / "report.html"
    result = subprocess.run([*cmd, "--report", str(report)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    html = report.read_text()
    assert "paper_comparison.png" in html and "paper_ablation.png" in html and "paper_returns.csv" in html
    assert "paper_seeds.csv" in html


def test_paper_command_bad_input_is_one_line(tmp_path):
    for folders in ([str(tmp_path / "missing")], [str(tmp_path)]):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "analysis.paper",
                "--runs",
                *folders,
                "--tables",
                str(tmp_path / "t"),
                "--figures",
                str(tmp_path / "f"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("n_envs", [1, 2, 5])
def test_comparison_figure_keeps_its_title_and_panels_inside_the_figure(n_envs):
    from analysis.paper import comparison_figure

    envs = list(PAPER_ENVS)[:n_envs]
    rows = [
        {"env": env, "algo": algo, "variant": variant, "device": "cpu", "seed": seed, "env_step": step, "score": score}
        for env in envs
        for algo, variant, top in (("mbpo", "hpaper", 1000.0), ("sac", "utd1", 300.0))
        for seed in range(3)
        for step, score in ((0, 0.0), (500, top / 2 + seed), (1000, top - seed))
    ]
    fig = comparison_figure(pd.DataFrame(rows), {env: 1000 for env in envs}, points=4, samples=20, seed=0)
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    inside = [fig._suptitle, *(ax.title for ax in fig.axes if ax.get_visible())]
    for text in inside:
        extent = text.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and extent.y1 <= box.y1, text.get_text()
    assert "MBPO vs SAC" in fig._suptitle.get_text()
    # one or two panels (the validation's Hopper figure in the README) keep the title on one line
    assert n_envs > 2 or "\n" not in fig._suptitle.get_text(), fig._suptitle.get_text()


def test_each_panel_draws_the_original_curve_or_says_there_is_none():
    from analysis.paper import NO_ORIGINAL_CURVE, ORIGINAL_CURVES, comparison_figure

    envs = ["Hopper-v5", "InvertedDoublePendulum-v5"]
    rows = [
        {"env": env, "algo": algo, "variant": variant, "device": "cpu", "seed": seed, "env_step": step, "score": 1.0}
        for env in envs
        for algo, variant in (("mbpo", "hpaper"), ("sac", "utd1"))
        for seed in range(2)
        for step in (0, 50_000)
    ]
    fig = comparison_figure(pd.DataFrame(rows), {env: 50_000 for env in envs}, points=4, samples=20, seed=0)
    hopper, idp = fig.axes[:2]
    source, readings = ORIGINAL_CURVES["Hopper"]
    drawn = [line for line in hopper.get_lines() if source in line.get_label()]
    assert len(drawn) == 1 and list(drawn[0].get_xdata()) == [x for x, _ in readings if x <= 50_000]

    def legend(ax):
        return [t.get_text() for t in ax.get_legend().get_texts()]

    assert NO_ORIGINAL_CURVE not in legend(hopper)
    assert not any(line.get_xdata().size for line in idp.get_lines() if "original MBPO" in line.get_label())
    assert NO_ORIGINAL_CURVE in legend(idp)
    # a budget below the first reading draws nothing, and says so
    fig = comparison_figure(pd.DataFrame(rows), {env: 5_000 for env in envs}, points=4, samples=20, seed=0)
    assert NO_ORIGINAL_CURVE in legend(fig.axes[0])


def test_tables_give_the_iqm_and_every_seed_at_the_chosen_fractions():
    from analysis.paper import markdown, returns_table, seeds_markdown, seeds_table

    # three MBPO seeds evaluated every 100 steps to 1000 (seed 2 stops at 400), two SAC seeds
    rows = [
        {"env": "Hopper-v5", "algo": "mbpo", "variant": "hpaper", "device": "cpu", "seed": seed, "env_step": step}
        | {"score": 10.0 * step / 100 + seed}
        for seed in range(3)
        for step in range(0, 1001 if seed < 2 else 401, 100)
    ] + [
        {"env": "Hopper-v5", "algo": "sac", "variant": "utd1", "device": "cpu", "seed": seed, "env_step": step}
        | {"score": float(step if step < 500 else 500 * (seed + 1))}
        for seed in range(2)
        for step in (0, 500, 1000)
    ]
    scores = pd.DataFrame(rows)
    fractions = (0.25, 0.5, 1.0)
    per_run = seeds_table(scores, {"Hopper-v5": 1000}, fractions)
    assert list(zip(per_run.algo, per_run.seed)) == [("mbpo", 0), ("mbpo", 1), ("mbpo", 2), ("sac", 0), ("sac", 1)]
    assert per_run["at_0.25_steps"].tolist() == [250] * 5 and per_run["at_1_steps"].tolist() == [1000] * 5
    # 250 steps lies between two evaluations: interpolated (mbpo seed 0: 25; sac seed 1: half of 1000)
    assert per_run["at_0.25"].tolist() == [25.0, 26.0, 27.0, 250.0, 500.0]
    assert per_run["at_0.5"].tolist()[:2] == [50.0, 51.0] and pd.isna(per_run["at_0.5"].iloc[2])
    assert per_run["at_1"].iloc[[0, 1, 3, 4]].tolist() == [100.0, 101.0, 500.0, 1000.0]
    assert pd.isna(per_run["at_1"].iloc[2])  # seed 2 never got there: empty, not extrapolated
    assert per_run["last"].tolist() == [100.0, 101.0, 42.0, 500.0, 1000.0]
    assert per_run.last_steps.tolist() == [1000, 1000, 400, 1000, 1000]

    table = returns_table(scores, {"Hopper-v5": 1000}, samples=50, seed=0, fractions=fractions)
    mbpo = table[table.algo == "mbpo"].iloc[0]
    assert (mbpo["at_0.25_steps"], mbpo["at_0.5_steps"], mbpo["at_1_steps"]) == (250, 500, 1000)
    assert (mbpo["at_0.25_runs"], mbpo["at_0.5_runs"], mbpo["at_1_runs"]) == (3, 2, 2)
    assert mbpo["at_0.25_iqm"] == pytest.approx(26.0)  # the IQM of 25, 26, 27

    close = returns_table(scores, {"Hopper-v5": 1000}, samples=50, seed=0, fractions=(0.2501, 0.2502))
    assert (
        close.loc[close.algo == "mbpo", "at_0.2501_iqm"].item()
        == close.loc[close.algo == "mbpo", "at_0.2502_iqm"].item()
    )

    text = seeds_markdown(per_run, fractions)
    assert "| 0.25 x budget | 0.5 x budget | 1 x budget | last |" in text
    assert "| Hopper-v5 | MBPO (hpaper) | cpu | 2 | 1000 | 27 |  |  | 42 (400) |" in text
    assert "| 0.25 x budget | 0.5 x budget | 1 x budget | paper, full budget |" in markdown(table, fractions)
    # a 1000-step Hopper run is not the paper's 125k: its value is given with the step it belongs to
    assert table.loc[table.algo == "mbpo", "paper_budget"].item() == 125_000
    assert markdown(table, fractions).splitlines()[2].endswith("| ~3300 at 125000 |")
    full = returns_table(scores.assign(env_step=scores.env_step * 125), {"Hopper-v5": 125_000}, 50, 0, fractions)
    assert markdown(full, fractions).splitlines()[2].endswith("| ~3300 |")


def test_paper_command_refuses_fractions_outside_zero_to_one(tmp_path):
    for bad in ("0", "1.5", "nan", "x", "0.50000001"):  # the last would share 0.5's column
        result = subprocess.run(
            [sys.executable, "-m", "analysis.paper", "--runs", str(tmp_path), "--tables", str(tmp_path / "t")]
            + ["--figures", str(tmp_path / "f"), "--fractions", "0.5", bad],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert result.returncode == 2 and "--fractions" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
