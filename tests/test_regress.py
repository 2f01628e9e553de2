"""The regression check: its rank test against brute force, its interval as the inverted test,
its false-alarm rate, and the command's verdicts, table and answers to bad input on synthetic
run folders."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import regress
from analysis.stats import mann_whitney_cdf, rank_shift_test

ROOT = Path(__file__).resolve().parent.parent


def brute_force_p(reference, candidate, shift, tail):
    """The rank test's p-value by definition: relabel the pooled runs (candidate - shift,
    reference) every possible way and count labellings whose Mann-Whitney U (pairs in which a
    candidate beats a reference) is at least as extreme as the observed one."""
    y = np.asarray(candidate, float) - shift
    x = np.asarray(reference, float)
    pool, m = np.concatenate([y, x]), len(y)

    def u(cand, ref):
        return sum((c > r) + 0.5 * (c == r) for c in cand for r in ref)

    observed = u(y, x)
    count = total = 0
    for chosen in itertools.combinations(range(len(pool)), m):
        mask = np.zeros(len(pool), bool)
        mask[list(chosen)] = True
        value = u(pool[mask], pool[~mask])
        count += (value <= observed + 1e-9) if tail == "worse" else (value >= observed - 1e-9)
        total += 1
    return count / total


def test_mann_whitney_null_distribution_counts_every_labelling():
    for n, m in ((1, 1), (3, 2), (4, 5)):
        counts = np.zeros(n * m + 1)
        for chosen in itertools.combinations(range(n + m), m):  # ranks 0..n+m-1, candidate at `chosen`
            counts[sum(sum(1 for r in set(range(n + m)) - set(chosen) if r < c) for c in chosen)] += 1
        assert np.allclose(mann_whitney_cdf(n, m), np.cumsum(counts) / counts.sum())


@pytest.mark.parametrize("n_ref,n_cand,seed", [(4, 5, 0), (5, 5, 1), (6, 3, 2)])
def test_rank_test_matches_brute_force_and_its_interval_is_the_inverted_test(n_ref, n_cand, seed):
    rng = np.random.default_rng(seed)
    ref, cand = rng.normal(0, 10, n_ref), rng.normal(-8, 10, n_cand)
    alpha = 0.1
    test = rank_shift_test(ref, cand, alpha)
    assert test.shift == pytest.approx(np.median(cand[None, :] - ref[:, None]))
    for shift in (-20.0, -5.0, 0.0, 3.0, 12.0):
        assert rank_shift_test(ref, cand, alpha, margin=-shift).p_worse == pytest.approx(
            brute_force_p(ref, cand, shift, "worse")
        )
        assert rank_shift_test(ref, cand, alpha, margin=shift).p_better == pytest.approx(
            brute_force_p(ref, cand, shift, "better")
        )
    # the interval's ends are where the one-sided tests start to reject
    eps = 1e-6
    assert brute_force_p(ref, cand, test.high - eps, "worse") > alpha
    assert brute_force_p(ref, cand, test.high + eps, "worse") <= alpha
    assert brute_force_p(ref, cand, test.low + eps, "better") > alpha
    assert brute_force_p(ref, cand, test.low - eps, "better") <= alpha
    assert test.low <= test.shift <= test.high


def test_identical_samples_pass_and_a_drop_is_caught_despite_a_failed_seed():
    ref = np.array([-150.0, -170.0, -140.0, -400.0, -160.0, -155.0, -145.0, -300.0, -120.0, -130.0])
    same = rank_shift_test(ref, ref.copy(), 0.0125)
    assert same.shift == 0 and same.p_worse > 0.5 and same.p_better > 0.5
    assert same.low < 0 < same.high
    worse = ref - 100
    worse[0] = -1500.0  # one seed of the candidate fails outright: the others still show the drop
    test = rank_shift_test(ref, worse, 0.0125)
    assert test.p_worse < 0.0125 and test.high < 0


def test_false_alarm_rate_is_at_most_alpha_for_skewed_returns():
    """Exchangeable runs (no change): rejections at rate <= alpha, here for a heavy-tailed,
    bimodal return distribution like early learning curves (some seeds fail)."""
    rng = np.random.default_rng(0)
    alpha, trials = 0.05, 4000
    rejections = 0
    for _ in range(trials):
        draw = np.where(rng.random(20) < 0.3, rng.normal(-1200, 150, 20), rng.normal(-170, 25, 20))
        rejections += rank_shift_test(draw[:10], draw[10:], alpha).p_worse <= alpha
    rate = rejections / trials
    assert rate <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / trials), rate


def test_too_small_a_level_can_never_reject():
    test = rank_shift_test([1.0, 2.0], [-50.0, -60.0], alpha=0.01)  # 1 / C(4, 2) = 0.17 > alpha
    assert test.p_worse > 0.01 and test.high == np.inf and test.low == -np.inf


# ---- the command on synthetic runs ----------------------------------------------------------

CONFIG = {
    "run": {
        "algo": "sac",
        "env": "Pendulum-v1",
        "seed": 0,
        "total_steps": 1000,
        "device": "cpu",
        "threads": 1,
        "eval_every": 250,
        "eval_episodes": 2,
    },
    "sac": {"gamma": 0.98},
}


def make_run(root: Path, algo: str, variant: str, seed: int, curve: np.ndarray, gamma: float = 0.98) -> Path:
    run = root / "runs" / "Pendulum-v1" / algo / variant / "cpu" / f"seed{seed}"
    run.mkdir(parents=True)
    steps = np.arange(len(curve)) * 250
    rows = [(s, k, r + k, 200, 0.1 * i + 0.01 * seed) for i, (s, r) in enumerate(zip(steps, curve)) for k in range(2)]
    pd.DataFrame(rows, columns=["env_step", "episode", "return", "length", "wall_seconds"]).to_csv(
        run / "eval.csv", index=False
    )
    config = json.loads(json.dumps(CONFIG))
    config["run"].update(algo=algo, seed=seed)
    config["sac"]["gamma"] = gamma
    meta = {"algo": algo, "env": "Pendulum-v1", "seed": seed, "device": "cpu", "config": config, "status": "complete"}
    (run / "metadata.json").write_text(json.dumps(meta))
    return run


def make_set(root: Path, shift: float = 0.0, seeds=range(8), groups=(("mbpo", "h1"), ("sac", "utd1")), **kw) -> Path:
    for algo, variant in groups:
        for seed in seeds:
            noise = 20.0 * np.sin(seed * 1.7 + len(algo))
            curve = np.array([-1400.0, -900.0, -400.0, -200.0, -170.0]) + noise + shift
            make_run(root, algo, variant, seed, curve, **kw)
    return root


@pytest.fixture()
def reference(tmp_path):
    return make_set(tmp_path / "reference")


def run_regress(capsys, *args):
    code = regress.main([*map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unchanged_runs_pass_exactly_and_the_table_is_written(reference, tmp_path, capsys):
    candidate = tmp_path / "candidate"
    shutil.copytree(reference, candidate)
    code, out, err = run_regress(capsys, "--reference", reference, "--candidate", candidate, "--exact")
    assert code == 0, err
    assert "byte-identical" in out and "pass" in err
    table = pd.read_csv(candidate / "regression.csv")
    assert len(table) == 4 and set(table.verdict) == {"pass"} and (table.difference == 0).all()
    assert (candidate / "regression.md").read_text().count("| pass") == 4
    assert "each at 0.0125 (Bonferroni)" in out  # alpha 0.05 over 2 groups x 2 metrics


def test_a_drop_is_a_regression_and_a_gain_an_improvement(reference, tmp_path, capsys):
    worse = make_set(tmp_path / "worse", shift=-100.0, seeds=range(100, 108))
    code, out, err = run_regress(capsys, "--reference", reference, "--candidate", worse)
    assert code == 1 and "FAIL (regression: Pendulum-v1/mbpo/h1, Pendulum-v1/sac/utd1)" in err
    table = pd.read_csv(worse / "regression.csv")
    assert set(table.verdict) == {"regression"} and (table.ci_high < 0).all()
    better = make_set(tmp_path / "better", shift=100.0, seeds=range(100, 108))
    code, _, _ = run_regress(capsys, "--reference", reference, "--candidate", better)
    assert code == 0 and set(pd.read_csv(better / "regression.csv").verdict) == {"improved"}
    # a margin larger than the drop tolerates it
    code, _, _ = run_regress(capsys, "--reference", reference, "--candidate", worse, "--margin", "150")
    assert code == 0


def test_missing_group_fails_unless_subset(reference, tmp_path, capsys):
    only_sac = make_set(tmp_path / "sac", groups=(("sac", "utd1"),))
    code, out, err = run_regress(capsys, "--reference", reference, "--candidate", only_sac)
    assert code == 1 and "missing from the candidate: Pendulum-v1/mbpo/h1" in err and "| missing" in out
    code, out, _ = run_regress(capsys, "--reference", reference, "--candidate", only_sac, "--subset")
    assert code == 0 and "each at 0.025" in out  # two tests only


def test_exact_names_the_first_differing_row(reference, tmp_path, capsys):
    candidate = tmp_path / "candidate"
    shutil.copytree(reference, candidate)
    eval_csv = candidate / "runs/Pendulum-v1/sac/utd1/cpu/seed3/eval.csv"
    frame = pd.read_csv(eval_csv)
    frame.loc[5, "return"] += 0.5
    frame["wall_seconds"] += 7.0  # clock readings never count
    frame.to_csv(eval_csv, index=False)
    code, out, err = run_regress(capsys, "--reference", reference, "--candidate", candidate, "--exact")
    assert code == 1 and "not byte-identical" in err
    assert "seed3/eval.csv line 7 (env_step=500, episode=1): return = " in out and "Exact: 1 run(s) differ:" in out
    code, _, _ = run_regress(capsys, "--reference", reference, "--candidate", candidate)
    assert code == 0  # statistically the same


def test_bad_input_is_one_message_and_exit_2(reference, tmp_path, capsys):
    code, _, err = run_regress(capsys, "--reference", reference, "--candidate", tmp_path / "nowhere")
    assert code == 2 and "is not a folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_regress(capsys, "--reference", reference, "--candidate", tmp_path / "empty")
    assert code == 2 and "no complete runs" in err
    other = make_set(tmp_path / "other", gamma=0.99)
    code, _, err = run_regress(capsys, "--reference", reference, "--candidate", other)
    assert code == 2 and "sac.gamma: reference 0.98, candidate 0.99" in err
    few = make_set(tmp_path / "few", seeds=range(2))
    code, _, err = run_regress(capsys, "--reference", few, "--candidate", few)
    assert code == 2 and "could never fail; use more seeds" in err
    extra = make_set(tmp_path / "extra", groups=(("sac", "utd1"), ("sac", "utd5")))
    code, _, err = run_regress(capsys, "--reference", reference, "--candidate", extra, "--subset")
    assert code == 2 and "the reference lacks: Pendulum-v1/sac/utd5" in err
    with pytest.raises(SystemExit) as exc:
        regress.main(["--candidate", str(reference), "--alpha", "0.7"])
    assert exc.value.code == 2


def test_reference_build_records_provenance_and_refuses_runs_of_other_code(tmp_path, capsys):
    from analysis import reference

    output = make_set(tmp_path / "ci")
    for meta_path in (output / "runs").rglob("metadata.json"):
        meta = json.loads(meta_path.read_text())
        meta.update(git_revision="a" * 40, git_dirty=False, versions={"torch": torch_version()}, threads=1)
        meta_path.write_text(json.dumps(meta))
    (output / "tables").mkdir()
    (output / "tables" / "summary.md").write_text("| table |\n")
    config = tmp_path / "ci.yaml"
    config.write_text("seeds: [0]\n")
    target = tmp_path / "reference"
    target.mkdir()
    (target / "stale").write_text("old reference")
    (target / "reference.json").write_text("{}")  # a previous reference: replaced whole
    for sibling in ("reference.new", "reference.old"):  # a user's folders beside it: never touched
        (tmp_path / sibling).mkdir()
        (tmp_path / sibling / "mine").write_text("x")
    info = reference.build(output, config, target, "a" * 40, False, "python -m analysis.reference")
    assert not (target / "stale").exists() and (target / "tables" / "summary.md").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ci",
        "ci.yaml",
        "reference",
        "reference.new",
        "reference.old",
    ]
    assert all((tmp_path / sibling / "mine").is_file() for sibling in ("reference.new", "reference.old"))
    assert (target / "config.yaml").read_text() == "seeds: [0]\n"
    saved = json.loads((target / "reference.json").read_text())
    assert saved == json.loads(json.dumps(info)) and saved["git_revision"] == "a" * 40 and saved["runs"] == 16
    assert saved["machine"]["cpu_capability"] and set(saved["groups"]) == {
        "Pendulum-v1/mbpo/h1/cpu",
        "Pendulum-v1/sac/utd1/cpu",
    }
    assert set(saved["numerics_fingerprint"]) == set(saved["groups"])
    assert {"return_last_quarter_mean", "auc_whole_run_mean"} <= set(saved["groups"]["Pendulum-v1/sac/utd1/cpu"])
    code, _, _ = run_regress(capsys, "--reference", target, "--candidate", output, "--exact")
    assert code == 0
    with pytest.raises(regress.RegressError, match="was made by code aaaa"):
        reference.build(output, config, target, "b" * 40, False, "python -m analysis.reference")
    assert (target / "reference.json").is_file()  # a refused refresh leaves the reference alone


def torch_version() -> str:
    import torch

    return torch.__version__


# ---- no run dropped, no bad number accepted, no write into the inputs -----------------------


def set_meta(run: Path, **changes) -> None:
    meta = json.loads((run / "metadata.json").read_text())
    meta.update(changes)
    (run / "metadata.json").write_text(json.dumps(meta))


def one_line_exit_2(capsys, *args) -> str:
    code, out, err = run_regress(capsys, *args)
    assert code == 2, (code, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "damage,named",
    [
        (lambda run: set_meta(run, status="running"), "status 'running'"),
        (lambda run: set_meta(run, seed=4), "metadata says seed=4, the path says 3"),
        (lambda run: (run / "metadata.json").unlink(), "is not a complete run (no metadata.json)"),
        (lambda run: (run / "metadata.json").rename(run / "eval.csv.part"), "unfinished: eval.csv.part"),
        (lambda run: (run / "metadata.json").write_text('{"status": "compl'), "metadata.json is not valid JSON"),
        (lambda run: (run / "metadata.json").write_text("[1, 2]"), "metadata.json is not a JSON object"),
    ],
)
def test_every_run_the_check_cannot_use_is_named_not_dropped(reference, tmp_path, capsys, damage, named):
    candidate = tmp_path / "candidate"
    shutil.copytree(reference, candidate)
    run = candidate / "runs/Pendulum-v1/sac/utd1/cpu/seed3"
    damage(run)
    err = one_line_exit_2(capsys, "--reference", reference, "--candidate", candidate)
    assert str(run) in err and named in err


@pytest.mark.parametrize("value", ["-inf", "nan", "inf", ""])
def test_non_finite_returns_are_rejected_with_one_line(reference, tmp_path, capsys, value):
    candidate = tmp_path / "candidate"
    shutil.copytree(reference, candidate)
    eval_csv = candidate / "runs/Pendulum-v1/mbpo/h1/cpu/seed2/eval.csv"
    lines = eval_csv.read_text().splitlines()
    fields = lines[9].split(",")
    fields[2] = value
    lines[9] = ",".join(fields)
    eval_csv.write_text("\n".join(lines) + "\n")
    err = one_line_exit_2(capsys, "--reference", reference, "--candidate", candidate)
    assert f"{eval_csv} line 10: return = {value!r} is not a finite number" in err


@pytest.mark.parametrize(
    "corrupt,named",
    [
        (
            lambda text: "\n".join(text.splitlines()[:-2]) + "\n",
            "does not hold the run's evaluations",
        ),  # truncated at a line
        (lambda text: text[: len(text) // 2], "is not a finite number"),  # cut mid-line: a short row
        (lambda text: "", "is empty"),
        (lambda text: text.splitlines()[0] + "\n", "has a header but no rows"),
        (lambda text: text.replace("return", "retrun", 1), "has columns"),
        (lambda text: text.replace(",200,", ",2x0,", 1), "length = '2x0' is not a finite number"),
        (lambda text: text + "1000,0,-1.0,200,1.0\n", "a second row for env_step 1000, episode 0"),
        (lambda text: text + '"unterminated,1\n', "is not a valid CSV file"),
    ],
)
def test_a_corrupt_eval_csv_is_one_line_naming_it(reference, tmp_path, capsys, corrupt, named):
    """Runs without a file record (older runs, like the committed reference): the content checks."""
    candidate = tmp_path / "candidate"
    shutil.copytree(reference, candidate)
    eval_csv = candidate / "runs/Pendulum-v1/sac/utd1/cpu/seed5/eval.csv"
    eval_csv.write_text(corrupt(eval_csv.read_text()))
    err = one_line_exit_2(capsys, "--reference", reference, "--candidate", candidate)
    assert str(eval_csv) in err and named in err


def test_binary_garbage_in_eval_csv_is_one_line(reference, tmp_path, capsys):
    candidate = tmp_path / "candidate"
    shutil.copytree(reference, candidate)
    eval_csv = candidate / "runs/Pendulum-v1/sac/utd1/cpu/seed5/eval.csv"
    eval_csv.write_bytes(b"\xff\xfe\x00garbage\x00\x81\n" * 20)
    err = one_line_exit_2(capsys, "--reference", reference, "--candidate", candidate)
    assert str(eval_csv) in err


def record_files(run: Path) -> None:
    from mbpo.record import file_record

    set_meta(run, files={p.name: file_record(p) for p in sorted(run.glob("*.csv"))})


def test_runs_with_a_file_record_are_verified_against_it(reference, tmp_path, capsys):
    """A file truncated at a line boundary, or changed in a way the content checks cannot see
    (a return edited to another finite number), is caught by the metadata's rows/bytes/sha256."""
    for run in (reference / "runs").glob("*/*/*/*/seed*"):
        record_files(run)
    candidate = tmp_path / "candidate"
    shutil.copytree(reference, candidate)
    code, _, err = run_regress(capsys, "--reference", reference, "--candidate", candidate)
    assert code == 0, err
    eval_csv = candidate / "runs/Pendulum-v1/mbpo/h1/cpu/seed1/eval.csv"
    lines = eval_csv.read_text().splitlines()
    fields = lines[1].split(",")
    fields[2] = repr(float(fields[2]) + 1.0)
    eval_csv.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    err = one_line_exit_2(capsys, "--reference", reference, "--candidate", candidate)
    assert str(eval_csv) in err and "recorded in metadata.json" in err
    (candidate / "runs/Pendulum-v1/mbpo/h1/cpu/seed1/metadata.json").write_text(
        json.dumps(
            {**json.loads((reference / "runs/Pendulum-v1/mbpo/h1/cpu/seed1/metadata.json").read_text()), "files": [1]}
        )
    )
    err = one_line_exit_2(capsys, "--reference", reference, "--candidate", candidate)
    assert "'files' is not a record" in err


def test_the_check_never_writes_into_its_inputs(reference, tmp_path, capsys):
    (reference / "reference.json").write_text("{}")
    before = sorted(p.name for p in reference.rglob("*"))
    # the reference as candidate: a reference folder, so the table goes to stdout only
    code, out, err = run_regress(capsys, "--reference", reference, "--candidate", reference)
    assert code == 0 and "| pass" in out and "stdout only" in err
    # a bare folder of runs is not a pipeline output folder either
    code, out, err = run_regress(capsys, "--reference", reference, "--candidate", reference / "runs")
    assert code == 0 and "stdout only" in err
    assert sorted(p.name for p in reference.rglob("*")) == before
    # and no --out can point into the reference or a run folder
    err = one_line_exit_2(
        capsys, "--reference", reference, "--candidate", reference, "--out", reference / "regression.md"
    )
    assert "inside the reference" in err
    candidate = tmp_path / "candidate"
    shutil.copytree(reference / "runs", candidate / "runs")
    run = candidate / "runs/Pendulum-v1/sac/utd1/cpu/seed0"
    err = one_line_exit_2(capsys, "--reference", reference, "--candidate", candidate, "--out", run / "r.md")
    assert f"inside the run folder {run}" in err
    assert sorted(p.name for p in reference.rglob("*")) == before
    # told where: written there
    code, _, err = run_regress(
        capsys, "--reference", reference, "--candidate", reference, "--out", tmp_path / "t" / "r.md"
    )
    assert code == 0 and set(pd.read_csv(tmp_path / "t" / "r.csv").verdict) == {"pass"}


def test_a_garbled_provenance_record_is_one_line(reference, tmp_path, capsys):
    (reference / "reference.json").write_text("{not json")
    err = one_line_exit_2(capsys, "--reference", reference, "--candidate", reference)
    assert "reference.json is not a valid provenance record" in err


def test_numerics_fingerprint_decides_whether_byte_identical_runs_are_possible(reference):
    from analysis import numerics

    possible, why = numerics.byte_identical_possible(reference)  # no reference.json: unknown
    assert not possible and "records no numerics fingerprint" in why
    configs = numerics.group_configs(reference)
    mine = numerics.fingerprints(configs)
    assert set(mine) == {"Pendulum-v1/mbpo/h1/cpu", "Pendulum-v1/sac/utd1/cpu"}
    assert mine == numerics.fingerprints(configs)  # the computation is deterministic
    assert len(set(mine.values())) == 2 and all(len(v) == 64 for v in mine.values())
    (reference / "reference.json").write_text(json.dumps({"numerics_fingerprint": mine}))
    assert numerics.byte_identical_possible(reference) == (
        True,
        "this machine's numerics fingerprint equals the reference's",
    )
    other = {**mine, "Pendulum-v1/sac/utd1/cpu": "0" * 64}
    (reference / "reference.json").write_text(json.dumps({"numerics_fingerprint": other}))
    possible, why = numerics.byte_identical_possible(reference)
    assert not possible and "differs from the reference's for Pendulum-v1/sac/utd1/cpu" in why


def test_a_field_added_since_the_reference_takes_its_default(tmp_path):
    """A reference made before a config field existed compares equal to runs that record the
    field at its default (the default keeps the old behaviour), and unequal at another value."""
    import json as _json

    from analysis.regress import comparable_config

    old, new, other = tmp_path / "old", tmp_path / "new", tmp_path / "other"
    for folder, run in (
        (old, {"env": "Pendulum-v1"}),
        (new, {"env": "Pendulum-v1", "truncate_obs": False}),
        (other, {"env": "Pendulum-v1", "truncate_obs": True}),
    ):
        folder.mkdir()
        meta = {
            "status": "complete",
            "env": "Pendulum-v1",
            "algo": "sac",
            "device": "cpu",
            "seed": 0,
            "config": {"run": run},
        }
        (folder / "metadata.json").write_text(_json.dumps(meta))
    assert comparable_config(old) == comparable_config(new) != comparable_config(other)


def stamped_output(root: Path, revision: str) -> Path:
    """A pipeline output folder whose runs say they were made by `revision`."""
    output = make_set(root, seeds=range(3), groups=(("sac", "utd1"),))
    for meta_path in (output / "runs").rglob("metadata.json"):
        meta = json.loads(meta_path.read_text())
        meta.update(git_revision=revision, git_dirty=False)
        meta_path.write_text(json.dumps(meta))
    return output


def test_reference_never_replaces_a_folder_that_is_not_a_reference(tmp_path):
    """`--to` an existing folder of the user's (or one holding the runs) is refused, its files kept."""
    from analysis import reference

    output = stamped_output(tmp_path / "out", "a" * 40)
    config = tmp_path / "ci.yaml"
    config.write_text("seeds: [0]\n")
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "precious.txt").write_text("results")
    (victim / "sub" / "more.txt").write_text("more")
    (tmp_path / "a-file").write_text("x")
    refused = {
        victim: "is a folder that is not a reference (no reference.json)",
        output: "holds the runs' output folder",
        tmp_path: "holds the runs' output folder",
        output / "runs" / "reference": "is inside the runs' folder",
        tmp_path / "a-file": "exists and is not a folder",
        tmp_path / "dead-link": "is a symbolic link",
        tmp_path / "live-link": "is a symbolic link",
    }
    (tmp_path / "dead-link").symlink_to(tmp_path / "nowhere")
    (tmp_path / "live-link").symlink_to(victim)
    for target, why in refused.items():
        with pytest.raises(regress.RegressError, match=re.escape(why)):
            reference.build(output, config, target, "a" * 40, False, "python -m analysis.reference")
    assert (victim / "precious.txt").read_text() == "results" and (victim / "sub" / "more.txt").read_text() == "more"
    assert (tmp_path / "a-file").read_text() == "x" and len(list((output / "runs").rglob("eval.csv"))) == 3
    # no temporaries left, nothing made where the dead link points
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a-file",
        "ci.yaml",
        "dead-link",
        "live-link",
        "out",
        "victim",
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    reference.build(output, config, empty, "a" * 40, False, "python -m analysis.reference")
    assert (empty / "reference.json").is_file()


def test_reference_swap_leaves_no_temporaries_when_a_step_fails(tmp_path, monkeypatch, capsys):
    """The second hidden folder cannot be made: the half-built copy goes, the target is unchanged.
    The previous reference's copy cannot be deleted after the swap: a warning, not a failure (the
    new reference is in place)."""
    import shutil
    import tempfile

    from analysis import reference

    output = stamped_output(tmp_path / "out", "a" * 40)
    config = tmp_path / "ci.yaml"
    config.write_text("seeds: [0]\n")
    target = tmp_path / "ref"
    reference.build(output, config, target, "a" * 40, False, "first")
    first = (target / "reference.json").read_text()
    made = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_once(*args, **kwargs):
        if made:
            raise OSError(28, "No space left on device")
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(reference.tempfile, "mkdtemp", mkdtemp_once)
    with pytest.raises(OSError, match="No space left"):
        reference.build(output, config, target, "a" * 40, False, "second")
    assert (target / "reference.json").read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ci.yaml", "out", "ref"]
    monkeypatch.undo()

    real_rmtree = shutil.rmtree

    def rmtree_not_old(path, *args, **kwargs):
        if ".ref.old-" in str(path):
            raise PermissionError(13, "Permission denied")
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(reference.shutil, "rmtree", rmtree_not_old)
    info = reference.build(output, config, target, "a" * 40, False, "third")
    assert info["runs"] == 3 and json.loads((target / "reference.json").read_text())["command"] == "third"
    err = capsys.readouterr().err
    assert "warning: the previous reference's copy" in err and "Permission denied" in err, err


def test_reference_command_refuses_a_user_folder_in_one_line(tmp_path, capsys):
    from analysis import reference

    output = stamped_output(tmp_path / "out", "a" * 40)
    config = tmp_path / "refcfg.yaml"
    config.write_text(f"output: {output}\n")
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "precious.txt").write_text("results")
    code = reference.main(["--no-run", "--config", str(config), "--to", str(victim)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not a reference" in err, err
    assert (victim / "precious.txt").read_text() == "results" and (victim / "sub").is_dir()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("{not json", "reference.json is not valid JSON"),
        ("[1, 2]", "reference.json is not a JSON object (a list)"),
        ('{"numerics_fingerprint": [1]}', "'numerics_fingerprint' is not an object of group: fingerprint"),
        ('{"numerics_fingerprint": {"a/b/c/cpu": 1}}', "'numerics_fingerprint' is not an object of group: fingerprint"),
    ],
)
def test_numerics_says_what_is_wrong_with_an_unreadable_reference_json(tmp_path, capsys, text, said):
    from analysis import numerics

    reference = make_set(tmp_path / "reference", seeds=range(1), groups=(("sac", "utd1"),))
    (reference / "reference.json").write_text(text)
    with pytest.raises(numerics.NumericsError, match=re.escape(said)):
        numerics.byte_identical_possible(reference)
    assert numerics.main(["--reference", str(reference)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and said in err and "records no numerics fingerprint" not in err, err


def test_numerics_names_a_run_whose_config_has_no_env(tmp_path, capsys):
    from analysis import numerics

    reference = make_set(tmp_path / "reference", seeds=range(1), groups=(("sac", "utd1"),))
    meta_path = next((reference / "runs").rglob("metadata.json"))
    meta = json.loads(meta_path.read_text())
    meta["config"] = {"sac": {}}
    meta_path.write_text(json.dumps(meta))
    assert numerics.main(["--reference", str(reference)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "'config' records no run.env" in err and str(meta_path) in err, err


@pytest.mark.parametrize("under", ["a-file/r.md", "a-file/deeper/r.md"])
def test_an_out_under_a_file_says_the_file_is_not_a_directory(reference, tmp_path, capsys, under):
    (tmp_path / "a-file").write_text("x")
    err = one_line_exit_2(capsys, "--reference", reference, "--candidate", reference, "--out", tmp_path / under)
    assert f"{tmp_path / 'a-file'}: is a file, not a directory" in err and "File exists" not in err, err
    assert (tmp_path / "a-file").read_text() == "x"


# ---- runs that are pooled or compared share the config that defines them ----------------------


def set_config(run: Path, section: str, **changes) -> None:
    meta = json.loads((run / "metadata.json").read_text())
    meta["config"][section].update(changes)
    (run / "metadata.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("side", ["reference", "candidate"])
def test_a_group_whose_runs_differ_in_config_is_refused_on_either_side(reference, tmp_path, capsys, side):
    candidate = tmp_path / "candidate"
    shutil.copytree(reference, candidate)
    odd = (reference if side == "reference" else candidate) / "runs/Pendulum-v1/mbpo/h1/cpu/seed5"
    set_config(odd, "run", eval_every=500)  # one run re-made at another evaluation interval
    err = one_line_exit_2(capsys, "--reference", reference, "--candidate", candidate)
    assert f"the {side}'s runs" in err and str(odd) in err and "run.eval_every" in err
    assert "must share one config" in err


def test_the_committed_reference_was_made_with_its_own_config_and_a_changed_run_is_named(tmp_path):
    from plan.experiment import load_experiment, planned_configs

    ref = ROOT / "results" / "reference"
    planned = planned_configs(load_experiment(ref / "config.yaml"))
    regress.check_planned(regress.find_runs(ref), planned, ref / "config.yaml")  # as committed: consistent
    copy = tmp_path / "reference"
    shutil.copytree(ref / "runs", copy / "runs")
    odd = copy / "runs/Pendulum-v1/sac/utd1/cpu/seed3"
    set_config(odd, "run", eval_every=400)
    with pytest.raises(regress.RegressError, match=f"{odd} was not made with the config .* plans for it"):
        regress.check_planned(regress.find_runs(copy), planned, ref / "config.yaml")
    shutil.rmtree(copy / "runs/Pendulum-v1/sac/utd1/cpu/seed3")
    with pytest.raises(regress.RegressError, match="plans Pendulum-v1/sac/utd1/cpu/seed3, which has no complete run"):
        regress.check_planned(regress.find_runs(copy), planned, ref / "config.yaml")


def test_reference_trains_every_run_afresh_and_never_touches_the_configs_output(tmp_path, capsys):
    """Finished runs of other code in the config's output folder are neither reused (the
    reference's runs name the code at hand) nor touched; the reference keeps the config as given."""
    import shutil
    import uuid

    from analysis import reference
    from mbpo.record import _git

    relative = f"results/.test-reference-{uuid.uuid4().hex}"  # an output is relative to the repository
    try:
        stale = stamped_output(ROOT / relative, "b" * 40)
        before = {p: p.read_bytes() for p in stale.rglob("*") if p.is_file()}
        config = tmp_path / "tiny.yaml"
        config.write_text(
            f"output: {relative}\nenvs: [Pendulum-v1]\nseeds: [0, 1]\ndevices: [cpu]\nseeds_per_job: {{cpu: 2}}\n"
            "evaluation: {every: 100, episodes: 1}\n"
            "algorithms: {sac: {preset: seed, total_steps: 300, updates_per_step: 1, options: {random_steps: 100}}}\n"
            "analysis: {budget: 300, threshold: -1000, grid: 100, bootstrap_samples: 50, confidence: 0.95, seed: 0}\n"
        )
        target = tmp_path / "ref"
        code = reference.main(["--config", str(config), "--to", str(target), "--cores", "1", "--allow-dirty"])
        assert code == 0, capsys.readouterr().err
        assert {p: p.read_bytes() for p in stale.rglob("*") if p.is_file()} == before
    finally:
        shutil.rmtree(ROOT / relative, ignore_errors=True)
    info = json.loads((target / "reference.json").read_text())
    assert info["runs"] == 2 and info["git_revision"] == _git("rev-parse", "HEAD")
    for meta_path in (target / "runs").rglob("metadata.json"):
        assert json.loads(meta_path.read_text())["git_revision"] == info["git_revision"]
    assert (target / "config.yaml").read_text() == config.read_text()
