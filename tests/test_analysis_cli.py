"""The analysis commands on real run folders, and their answer to bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import aggregate, summary
from mbpo import cli

TINY = [
    "--preset",
    "seed",
    "--total-steps",
    "400",
    "--random-steps",
    "100",
    "--eval-every",
    "200",
    "--eval-episodes",
    "2",
    "--quiet",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis") / "results" / "runs" / "Pendulum-v1" / "sac" / "utd1" / "cpu"
    for seed in (0, 1, 2):
        assert cli.main(["train", "--seed", str(seed), "--out", str(root / f"seed{seed}"), *TINY]) == 0
    return sorted(root.iterdir())


def test_summary_prints_iqm_per_step(runs, capsys):
    assert summary.main([*map(str, runs), "--steps", "0", "400"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Pendulum-v1/sac/utd1/cpu: 3 run(s)"
    assert out[1].split()[:2] == ["env_step", "IQM(seeds)"] and out[3].split()[0] == "400"
    scores = [pd.read_csv(r / "eval.csv").query("env_step == 400")["return"].mean() for r in runs]
    assert float(out[3].split()[1]) == pytest.approx(sum(scores) / 3, abs=0.06)  # IQM of 3 = mean, none cut


def test_summary_and_aggregate_reject_incomplete_runs(runs, tmp_path, capsys):
    (tmp_path / "half").mkdir()
    assert summary.main([str(runs[0]), str(tmp_path / "half")]) == 2
    assert "is not a complete run" in capsys.readouterr().err
    assert summary.main([str(runs[0]), "--steps", "123"]) == 2
    assert "Pendulum-v1/sac/utd1/cpu: no evaluation at env step(s) [123]" in capsys.readouterr().err
    args = ["--runs", str(tmp_path / "half"), "--budget", "400", "--threshold", "0", "--grid", "200"]
    assert aggregate.main(args) == 2


def test_aggregate_writes_tables_from_run_folders(runs, tmp_path):
    root = runs[0].parents[4]  # .../results/runs
    args = [
        "--runs",
        *map(str, runs),
        "--runs-root",
        str(root),
        "--benchmarks-root",
        str(tmp_path / "none"),
        "--out",
        str(tmp_path / "tables"),
        "--budget",
        "400",
        "--threshold",
        "-2000",
        "--grid",
        "200",
        "--bootstrap-samples",
        "100",
    ]
    assert aggregate.main(args) == 0
    table = pd.read_csv(tmp_path / "tables" / "summary.csv")
    assert len(table) == 1 and table.seeds[0] == 3 and table.variant[0] == "utd1"
    assert table.steps_to_threshold[0] == 0  # -2000 is reached at once
    assert table.train_ms_per_env_step[0] > 0  # from each run's metadata
    assert (tmp_path / "tables" / "summary.tex").read_text().startswith("\\begin{tabular}")
