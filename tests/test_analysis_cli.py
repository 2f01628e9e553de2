"""The analysis commands on real run folders, and their answer to bad input."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import aggregate, summary
from mbpo import cli

ROOT = Path(__file__).resolve().parent.parent

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


# ---- bad flags: one line, exit 2, for every analysis command -----------------------------------

COMMANDS = ("aggregate", "summary", "figures", "paper", "regress", "reference", "numerics")
BAD_FLAGS = [
    ("aggregate", ["--runs", "r", "--budget", "0", "--threshold", "0", "--grid", "1"], "--budget"),
    ("aggregate", ["--runs", "r", "--budget", "1", "--threshold", "0", "--grid", "1", "--seed", "-1"], "--seed"),
    ("summary", ["r", "--steps", "abc"], "--steps"),
    ("figures", ["--threshold", "-300"], "--threshold"),
    ("paper", ["--runs", "r", "--tables", "t", "--figures", "f", "--points", "0"], "--points"),
    ("paper", ["--runs", "r", "--tables", "t", "--figures", "f", "--seed", "-3"], "--seed"),
    ("regress", ["--candidate", "c", "--alpha", "0.7"], "--alpha"),
    ("reference", ["--cores", "0"], "--cores"),
    ("numerics", ["--reference"], "--reference"),
]


@pytest.mark.parametrize(("command", "args", "named"), BAD_FLAGS, ids=[f"{c} {' '.join(a)}" for c, a, _ in BAD_FLAGS])
def test_every_analysis_command_answers_a_bad_flag_with_one_line(tmp_path, command, args, named):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", f"analysis.{command}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    err = result.stderr
    assert result.returncode == 2, err
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err and "Traceback" not in err, err
    assert err.startswith(f"python -m analysis.{command}: error: ") and named in err, err


def test_bad_flags_cover_every_command():
    assert {c for c, _, _ in BAD_FLAGS} == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_a_docstring_shows_exists(command, capsys):
    """The usage line at the top of each command's doc names only flags the command takes."""
    module = importlib.import_module(f"analysis.{command}")
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
    shown = set(re.findall(r"--[a-z][a-z-]*", module.__doc__.split("\n\n")[1]))
    taken = set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out))
    assert shown and shown <= taken, shown - taken
