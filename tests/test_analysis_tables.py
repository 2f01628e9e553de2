"""The summary table and the summary command on synthetic run folders with hand-checkable
numbers: grouping by the full run identity, values at the budget exactly, the baseline of every
comparison, column names with one meaning each, and one line (exit 2) for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import aggregate, figures, paper, summary


def make_run(
    root: Path,
    algo: str,
    variant: str,
    seed: int,
    steps: list[int],
    scores: list[float],
    episodes: int = 2,
    seconds_per_env_step: float | None = 0.001,
) -> Path:
    """A complete run whose evaluation k has mean return scores[k] (episodes at +-1)."""
    run = root / "runs" / "Pendulum-v1" / algo / variant / "cpu" / f"seed{seed}"
    run.mkdir(parents=True)
    rows = [
        (s, k, v + (1.0 if k % 2 else -1.0) * (episodes > 1), 200, 0.5 * i)
        for i, (s, v) in enumerate(zip(steps, scores))
        for k in range(episodes)
    ]
    pd.DataFrame(rows, columns=["env_step", "episode", "return", "length", "wall_seconds"]).to_csv(
        run / "eval.csv", index=False
    )
    every = steps[1] - steps[0]
    config = {
        "run": {
            "algo": algo.split("_")[0],
            "env": "Pendulum-v1",
            "seed": seed,
            "total_steps": steps[-1],
            "eval_every": every,
            "eval_episodes": episodes,
            "device": "cpu",
            "threads": 1,
        }
    }
    meta = {
        "algo": algo.split("_")[0],
        "env": "Pendulum-v1",
        "seed": seed,
        "device": "cpu",
        "config": config,
        "status": "complete",
    }
    if seconds_per_env_step is not None:
        meta["seconds_per_env_step"] = seconds_per_env_step
    (run / "metadata.json").write_text(json.dumps(meta))
    return run


def aggregate_args(runs: list[Path], root: Path, out: Path, budget: int, grid: int = 200, *extra: str) -> list[str]:
    return [
        "--runs",
        *map(str, runs),
        "--runs-root",
        str(root / "runs"),
        "--benchmarks-root",
        str(root / "benchmarks"),
        "--out",
        str(out),
        "--budget",
        str(budget),
        "--threshold",
        "-500",
        "--grid",
        str(grid),
        "--bootstrap-samples",
        "50",
        *extra,
    ]


def test_summary_command_groups_runs_by_their_full_identity(tmp_path, capsys):
    """MBPO's seed 0 and SAC's seed 0 are different runs: never averaged together."""
    steps = [0, 200, 400]
    runs = [make_run(tmp_path, "mbpo", "h1", s, steps, [-1000.0, -300.0, -100.0 - s]) for s in (0, 1)]
    runs += [make_run(tmp_path, "sac", "utd1", s, steps, [-1000.0, -900.0, -700.0 - s]) for s in (0, 1)]
    assert summary.main([*map(str, runs), "--steps", "400"]) == 0
    out = capsys.readouterr().out.splitlines()
    mbpo, sac = out.index("Pendulum-v1/mbpo/h1/cpu: 2 run(s)"), out.index("Pendulum-v1/sac/utd1/cpu: 2 run(s)")
    assert out[mbpo + 2].split()[:2] == ["400", "-100.5"] and out[mbpo + 2].endswith("0:-100.0 1:-101.0")
    assert out[sac + 2].split()[:2] == ["400", "-700.5"]  # the old code printed -400.5: both algorithms pooled


def test_return_and_area_at_a_budget_between_evaluations_are_exact(tmp_path):
    """Evaluations every 300 steps, budget 500, grid 200: the old code took the grid point
    below the budget (400) for the return and stopped the area there."""
    steps = [0, 300, 600]
    runs = [make_run(tmp_path, "sac", "utd1", s, steps, [-1200.0, -600.0, -300.0]) for s in range(3)]
    assert aggregate.main(aggregate_args(runs, tmp_path, tmp_path / "tables", 500)) == 0
    row = pd.read_csv(tmp_path / "tables" / "summary.csv").iloc[0]
    assert row.budget == 500 and row.return_iqm == pytest.approx(-400.0)  # -600 + 200/300 * 300
    # area: 0-300 mean -900, 300-500 mean (-600 - 400) / 2 = -500 -> (-900 * 300 - 500 * 200) / 500
    assert row.auc_to_budget_iqm == pytest.approx(-740.0)
    assert row.return_at_end_iqm == pytest.approx(-300.0) and row.last_step == 600


def test_every_comparison_names_its_baseline(tmp_path):
    """Two SAC variants and SAC at MBPO's update ratio: one P(beats) and one steps ratio per
    baseline, each computed against that baseline alone."""
    steps = [0, 500, 1000, 1500, 2000]
    runs = [make_run(tmp_path, "mbpo", "h1", s, steps, [-1000.0, -400.0, -300.0, -250.0, -200.0 - s]) for s in range(3)]
    runs += [
        make_run(tmp_path, "sac", "utd1", s, steps, [-1000.0, -900.0, -800.0, -700.0, -600.0 - s]) for s in range(3)
    ]
    runs += [
        make_run(tmp_path, "sac", "utd20", s, steps, [-1000.0, -300.0, -200.0, -150.0, -100.0 - s]) for s in range(3)
    ]
    runs += [
        make_run(tmp_path, "sac_mbpo_utd", "utd10", s, steps, [-1000.0, -700.0, -500.0, -250.0, -200.0 - s])
        for s in range(3)
    ]
    assert aggregate.main(aggregate_args(runs, tmp_path, tmp_path / "tables", 1000, 500)) == 0
    table = pd.read_csv(tmp_path / "tables" / "summary.csv")
    mbpo = table[table.algo == "mbpo"].iloc[0]
    assert mbpo.p_beats_sac_utd1 == 1.0 and mbpo.p_beats_sac_utd20 == 0.0 and mbpo.p_beats_sac_mbpo_utd_utd10 == 1.0
    # MBPO's return at its budget of 1000 is -300: SAC utd20 reaches it at 500 (ratio 0.5), SAC
    # at MBPO's update ratio at 1500 (1.5), SAC utd1 never (NaN)
    assert mbpo.steps_ratio_sac_utd20 == pytest.approx(0.5)
    assert mbpo.steps_ratio_sac_mbpo_utd_utd10 == pytest.approx(1.5)
    assert np.isnan(mbpo.steps_ratio_sac_utd1)
    assert "p_beats_sac" not in table and "sample_efficiency_ratio" not in table
    assert table[table.algo != "mbpo"].filter(like="p_beats_").isna().all().all()


def test_mbpo_and_a_baseline_whose_runs_end_earlier_are_compared_at_one_step(tmp_path):
    """Budget 2000, SAC's runs end at 1000: MBPO is compared with SAC at 1000, where MBPO is
    worse, not at MBPO's 2000 (where MBPO would look better than SAC's 1000)."""
    mbpo_steps, sac_steps = [0, 500, 1000, 1500, 2000], [0, 500, 1000]
    runs = [
        make_run(tmp_path, "mbpo", "h1", s, mbpo_steps, [-1000.0, -900.0, -800.0, -100.0, -50.0 - s]) for s in range(3)
    ]
    runs += [make_run(tmp_path, "sac", "utd1", s, sac_steps, [-1000.0, -600.0, -500.0 - s]) for s in range(3)]
    assert aggregate.main(aggregate_args(runs, tmp_path, tmp_path / "tables", 2000)) == 0
    table = pd.read_csv(tmp_path / "tables" / "summary.csv")
    mbpo = table[table.algo == "mbpo"].iloc[0]
    assert mbpo.budget == 2000 and mbpo.compared_at_sac_utd1 == 1000
    assert mbpo.p_beats_sac_utd1 == 0.0  # -800 at 1000 against SAC's -500..-502
    assert np.isnan(table[table.algo == "sac"].iloc[0].compared_at_sac_utd1)


def test_each_column_has_one_meaning_and_both_timings_are_there(tmp_path):
    steps = [0, 200, 400]
    runs = [
        make_run(tmp_path, "sac", "utd1", s, steps, [-900.0, -500.0, -300.0], seconds_per_env_step=0.002 * (s + 1))
        for s in range(2)
    ]
    bench = tmp_path / "benchmarks" / "Pendulum-v1" / "sac" / "utd1" / "cpu"
    bench.mkdir(parents=True)
    for s, seconds in ((0, 4.0), (1, 6.0)):
        (bench / f"seed{s}.tsv").write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:0{int(seconds)}\t{100 + s}\n")
    assert aggregate.main(aggregate_args(runs, tmp_path, tmp_path / "tables", 400)) == 0
    row = pd.read_csv(tmp_path / "tables" / "summary.csv").iloc[0]
    assert row.train_ms_per_env_step == pytest.approx(3.0)  # the training loop's own, mean of 2 and 4 ms
    assert row.job_ms_per_env_step == pytest.approx(1e3 * 5.0 / 400)  # whole job (Snakemake benchmark)
    assert row.peak_rss_mb == 101
    for old in ("auc", "final_return_iqm", "ms_per_env_step"):
        assert old not in row.index


def test_a_seed_trained_in_lockstep_counts_its_share_of_its_process(tmp_path, capsys):
    """Seeds in lockstep record their process's seconds per env step: each counts 1/S of it."""
    steps = [0, 200, 400]
    runs = [
        make_run(tmp_path, "sac", "utd1", s, steps, [-900.0, -500.0, -300.0], seconds_per_env_step=0.006)
        for s in range(3)
    ]
    for run in runs[:2]:  # seeds 0 and 1 trained together, seed 2 alone
        meta = json.loads((run / "metadata.json").read_text())
        (run / "metadata.json").write_text(json.dumps({**meta, "lockstep": {"seeds": [0, 1], "device": "cpu"}}))
    bench = tmp_path / "benchmarks" / "Pendulum-v1" / "sac" / "utd1" / "cpu"
    bench.mkdir(parents=True)
    for name, seconds, rss in (("seeds0-1", 8.0, 300), ("seed2", 4.0, 200), ("seed0", 100.0, 900)):  # seed0: stale
        (bench / f"{name}.tsv").write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:01\t{rss}\n")
    assert aggregate.main(aggregate_args(runs, tmp_path, tmp_path / "tables", 400)) == 0
    row = pd.read_csv(tmp_path / "tables" / "summary.csv").iloc[0]
    assert row.train_ms_per_env_step == pytest.approx((3.0 + 3.0 + 6.0) / 3)
    assert row.job_ms_per_env_step == pytest.approx(1e3 * 4.0 / 400)  # the job's 8 s shared by 2 seeds
    assert row.peak_rss_mb == 300  # the lockstep job's process
    meta = json.loads((runs[0] / "metadata.json").read_text())
    (runs[0] / "metadata.json").write_text(json.dumps({**meta, "lockstep": {"seeds": "0,1"}}))
    assert aggregate.main(aggregate_args(runs, tmp_path, tmp_path / "tables", 400)) != 0
    assert "seed0/metadata.json: its 'lockstep' names no list of seeds" in capsys.readouterr().err


def test_tables_are_replaced_atomically(tmp_path, monkeypatch):
    """An interruption while the tables are being made leaves the old tables, whole."""
    steps = [0, 200, 400]
    runs = [make_run(tmp_path, "sac", "utd1", s, steps, [-900.0, -500.0, -300.0]) for s in range(2)]
    out = tmp_path / "tables"
    out.mkdir()
    for name in ("summary.csv", "curves.csv", "evaluations.csv"):
        (out / name).write_text("old\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_latex", interrupted)
    assert aggregate.main(aggregate_args(runs, tmp_path, out, 400)) == 130
    assert all((out / name).read_text() == "old\n" for name in ("summary.csv", "curves.csv", "evaluations.csv"))
    monkeypatch.undo()
    assert aggregate.main(aggregate_args(runs, tmp_path, out, 400)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "curves.csv",
        "evaluations.csv",
        "summary.csv",
        "summary.md",
        "summary.tex",
    ]


# ---- one line, exit 2, the file named ---------------------------------------------------------


def garble(run: Path, name: str, text: str | bytes) -> Path:
    path = run / name
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return path


CORRUPTIONS = {
    "eval.csv truncated at a line": lambda run: garble(
        run, "eval.csv", "".join((run / "eval.csv").read_text().splitlines(True)[:-1])
    ),
    "eval.csv empty": lambda run: garble(run, "eval.csv", ""),
    "eval.csv header only": lambda run: garble(run, "eval.csv", "env_step,episode,return,length,wall_seconds\n"),
    "eval.csv binary": lambda run: garble(run, "eval.csv", b"\x00\xff\xfe" * 50),
    "eval.csv -inf return": lambda run: garble(
        run, "eval.csv", (run / "eval.csv").read_text().replace(",-", ",-inf", 1)
    ),
    "eval.csv missing": lambda run: (run / "eval.csv").unlink() or run / "eval.csv",
    "metadata.json invalid": lambda run: garble(run, "metadata.json", "{"),
    "metadata.json a list": lambda run: garble(run, "metadata.json", "[]"),
    "metadata.json seed a string": lambda run: garble(
        run, "metadata.json", json.dumps({**json.loads((run / "metadata.json").read_text()), "seed": "0"})
    ),
    "metadata.json config.run a string": lambda run: rewrite_meta(run, config={"run": "x"}),
    "metadata.json config a list": lambda run: rewrite_meta(run, config=[]),
    "metadata.json seed true": lambda run: rewrite_meta(run, seed=True),
    "metadata.json env a number": lambda run: rewrite_meta(run, env=1),
    "folder missing": lambda run: run.with_name("seed9"),
}


def rewrite_meta(run: Path, **fields) -> Path:
    return garble(run, "metadata.json", json.dumps({**json.loads((run / "metadata.json").read_text()), **fields}))


@pytest.fixture()
def three_runs(tmp_path):
    return [make_run(tmp_path, "sac", "utd1", s, [0, 200, 400], [-900.0, -500.0, -300.0 - s]) for s in range(3)]


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("command", ["summary", "aggregate", "paper"])
def test_bad_run_files_are_one_line_naming_the_file(three_runs, tmp_path, capsys, corruption, command):
    named = CORRUPTIONS[corruption](three_runs[0])
    runs = [named if corruption == "folder missing" else three_runs[0], *three_runs[1:]]
    if command == "summary":
        code = summary.main([*map(str, runs)])
    elif command == "aggregate":
        code = aggregate.main(aggregate_args(runs, tmp_path, tmp_path / "tables", 400))
    else:
        tables, figures = str(tmp_path / "paper" / "tables"), str(tmp_path / "paper" / "figures")
        code = paper.main(["--runs", *map(str, runs), "--tables", tables, "--figures", figures])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(named) in err


def test_aggregate_bad_options_and_outputs_are_one_line(three_runs, tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    assert aggregate.main(aggregate_args(three_runs, tmp_path, tmp_path / "a-file", 400)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "a-file: is a file, not a directory" in err
    with pytest.raises(SystemExit) as exc:
        aggregate.main(aggregate_args(three_runs, tmp_path, tmp_path / "t", 400, 0))
    assert exc.value.code == 2 and "--grid must be > 0" in capsys.readouterr().err
    bench = tmp_path / "benchmarks" / "Pendulum-v1" / "sac" / "utd1" / "cpu"
    bench.mkdir(parents=True)
    (bench / "seed0.tsv").write_text("garbage\n\x00\n")
    assert aggregate.main(aggregate_args(three_runs, tmp_path, tmp_path / "t", 400)) == 2
    assert "seed0.tsv is not a Snakemake benchmark record" in capsys.readouterr().err


def test_the_same_run_twice_is_an_error_not_a_double_count(three_runs, capsys):
    assert summary.main([str(three_runs[0]), str(three_runs[0])]) == 2
    assert "one run would count twice" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["missing", "empty", "garbled", "old columns"])
def test_figures_answer_bad_tables_with_one_line(three_runs, tmp_path, capsys, damage):
    tables = tmp_path / "tables"
    assert aggregate.main(aggregate_args(three_runs, tmp_path, tables, 400)) == 0
    capsys.readouterr()
    target = tables / "summary.csv"
    if damage == "missing":
        target.unlink()
    elif damage == "empty":
        target.write_text("")
    elif damage == "garbled":
        target.write_bytes(b'"\x00\xff\n,,"\n')
    else:
        target.write_text(target.read_text().replace("auc_to_budget_iqm", "auc"))
    assert figures.main(["--tables", str(tables), "--out", str(tmp_path / "figures")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(target) in err, err


def test_metadata_type_errors_say_what_was_expected(three_runs, capsys):
    rewrite_meta(three_runs[0], seed="0")
    assert summary.main([str(three_runs[0])]) == 2
    assert "'seed' is '0', expected an integer" in capsys.readouterr().err
    rewrite_meta(three_runs[0], seed=0, config={"run": "x"})
    assert summary.main([str(three_runs[0])]) == 2
    assert "'config' is not an object of sections" in capsys.readouterr().err


@pytest.mark.parametrize("variant", ["bogus", "1", "h1-2", "h"])
def test_figures_name_an_mbpo_variant_that_is_no_rollout_length(three_runs, tmp_path, capsys, variant):
    tables = tmp_path / "tables"
    assert aggregate.main(aggregate_args(three_runs, tmp_path, tables, 400)) == 0
    capsys.readouterr()
    summary_csv = tables / "summary.csv"
    summary_csv.write_text(summary_csv.read_text().replace("Pendulum-v1,sac,utd1", f"Pendulum-v1,mbpo,{variant}"))
    assert figures.main(["--tables", str(tables), "--out", str(tmp_path / "figures")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(summary_csv) in err and f"'{variant}'" in err, err
    assert not (tmp_path / "figures").exists()  # checked before any figure is written


def test_figures_read_identity_columns_as_text(three_runs, tmp_path, capsys):
    """A variant (or device) that looks like a number is still a name: `1` is plotted, not len()-ed."""
    tables = tmp_path / "tables"
    assert aggregate.main(aggregate_args(three_runs, tmp_path, tables, 400)) == 0
    for name in ("curves.csv", "summary.csv", "evaluations.csv"):
        (tables / name).write_text((tables / name).read_text().replace(",utd1,", ",1,"))
    assert figures.main(["--tables", str(tables), "--out", str(tmp_path / "figures")]) == 0, capsys.readouterr().err
    assert (tmp_path / "figures" / "sample_efficiency.png").is_file()
    assert (figures.read_table(tables / "summary.csv", figures.TABLE_COLUMNS["summary.csv"]).variant == "1").all()


@pytest.mark.parametrize("command", ["aggregate", "figures", "paper"])
@pytest.mark.parametrize("under", ["a-file", "a-file/deeper"])
def test_an_output_folder_under_a_file_says_the_file_is_not_a_directory(three_runs, tmp_path, capsys, command, under):
    tables = tmp_path / "tables"
    assert aggregate.main(aggregate_args(three_runs, tmp_path, tables, 400)) == 0
    capsys.readouterr()
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / under
    if command == "aggregate":
        code = aggregate.main(aggregate_args(three_runs, tmp_path, out, 400))
    elif command == "figures":
        code = figures.main(["--tables", str(tables), "--out", str(out)])
    else:
        code = paper.main(["--runs", *map(str, three_runs), "--tables", str(out), "--figures", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{tmp_path / 'a-file'}: is a file, not a directory" in err and "File exists" not in err, err
    assert (tmp_path / "a-file").read_text() == "x"
