"""The experiment model behind the Snakefile, and the figure only a GPU machine produces."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis import figures
from plan import experiment
from plan.experiment import (
    ExperimentError,
    Run,
    numbers_from_command_line,
    runs,
    train_args,
)
from plan.identity import ALGORITHMS, VariantError, parse, rollout_length, rollout_variant

ROOT = Path(__file__).resolve().parent.parent

CONFIG = {
    "envs": ["Pendulum-v1"],
    "seeds": [0, 3],
    "devices": ["cpu"],
    "evaluation": {"every": 100, "episodes": 3},
    "algorithms": {
        "mbpo": {"preset": "default", "total_steps": 500, "rollout_lengths": [1, "20,100,1,15"]},
        "sac": {"total_steps": 900},
        "sac_mbpo_utd": {"preset": "seed", "total_steps": 500, "updates_per_step": 10, "options": {"random_steps": 50}},
    },
}


def test_runs_cover_every_combination_with_paths_from_the_identity():
    planned = runs(CONFIG)
    assert len(planned) == (2 + 1 + 1) * 2
    assert Run("Pendulum-v1", "mbpo", "h20-100-1-15", "cpu", 3) in planned
    assert Run("Pendulum-v1", "sac", "utd1", "cpu", 0).path == "results/runs/Pendulum-v1/sac/utd1/cpu/seed0"


def test_seeds_may_differ_per_env_and_a_bad_map_names_its_field():
    """`seeds` as a map env -> list (the validation's 5 InvertedPendulum seeds, 3 Hopper ones)."""
    config = {**CONFIG, "envs": ["Pendulum-v1", "InvertedPendulum-v5"]}
    config["seeds"] = {"InvertedPendulum-v5": [0, 1, 2, 3, 4], "Pendulum-v1": [7], "Hopper-v5": [0]}
    planned = runs(config)
    seeds = {env: sorted({r.seed for r in planned if r.env == env}) for env in config["envs"]}
    assert seeds == {"Pendulum-v1": [7], "InvertedPendulum-v5": [0, 1, 2, 3, 4]}
    assert len(planned) == (2 + 1 + 1) * 6
    assert runs({**config, "seeds": [0, 3]}) == runs({**config, "seeds": dict.fromkeys(config["envs"], [0, 3])})
    schema = str(ROOT / "workflow/schemas/config.schema.yaml")
    for seeds, message in [
        ({"Pendulum-v1": [0]}, "seeds: no seeds for InvertedPendulum-v5 (a map of seeds names every env in envs)"),
        ({**config["seeds"], "Pendulm-v1": [0]}, "seeds: unknown environment 'Pendulm-v1'"),
        ({**config["seeds"], "Pendulum-v1": [1.0]}, "seeds.Pendulum-v1: 1.0 is not an integer"),
        ({**config["seeds"], "Pendulum-v1": 3}, "seeds.Pendulum-v1: 3 is not a list of seeds"),
    ]:
        with pytest.raises(ExperimentError) as error:
            runs({**config, "seeds": seeds})
        assert str(error.value) == message
    full = {**config, "analysis": {}}
    for seeds, message in [
        ({**config["seeds"], "Pendulum-v1": [-1]}, "seeds.Pendulum-v1[0]: -1 is less than the minimum of 0"),
        ({**config["seeds"], "Pendulum-v1": []}, "seeds.Pendulum-v1: [] should be non-empty"),
        (
            "all",
            "seeds: 'all' is not valid under any of the given schemas (run seeds: one list for every env, or a map",
        ),
    ]:
        with pytest.raises(ExperimentError) as error:
            experiment.check_schema({**full, "seeds": seeds}, schema)
        assert str(error.value).startswith(message)


def test_train_args_spell_out_the_run():
    args = train_args(CONFIG, "Pendulum-v1", "mbpo", "h20-100-1-15", "cpu", 3)
    assert args[args.index("--rollout-length") + 1] == "20,100,1,15"
    assert args[args.index("--algo") + 1] == "mbpo" and args[args.index("--seed") + 1] == "3"
    control = train_args(CONFIG, "Pendulum-v1", "sac_mbpo_utd", "utd10", "cpu", 0)
    assert control[control.index("--algo") + 1] == "sac"
    assert control[control.index("--updates-per-step") + 1] == "10"
    assert control[control.index("--random-steps") + 1] == "50"


def test_rollout_variants_round_trip_and_reject_nonsense():
    for length in (3, "20,100,1,15", "paper"):
        assert rollout_length(rollout_variant(length)) == str(length)
    assert rollout_variant(3) == "h3" and rollout_variant("paper") == "hpaper"
    with pytest.raises(VariantError):
        rollout_variant("1,2")
    bad = {**CONFIG, "algorithms": {"mbpo": {**CONFIG["algorithms"]["mbpo"], "rollout_lengths": ["1,2"]}}}
    with pytest.raises(ExperimentError, match="algorithms.mbpo.rollout_lengths: '1,2' is not N"):
        runs(bad)


def test_a_run_path_parses_back_to_its_identity():
    run = Run("Hopper-v5", "mbpo_ablation", "h20-100-1-15", "cuda", 12, output="/tmp/out")
    assert parse(run.path) == {
        "env": "Hopper-v5",
        "algo": "mbpo_ablation",
        "variant": "h20-100-1-15",
        "device": "cuda",
        "seed": 12,
    }
    assert parse(run.path + "/") == parse(run.path)
    assert parse("/tmp/out/runs/Hopper-v5/mbpo/h1/cpu/seedX") is None and parse("seed0") is None


def test_auto_adds_cuda_only_where_torch_sees_a_gpu(monkeypatch):
    monkeypatch.setattr(experiment, "cuda_available", lambda: False)
    assert experiment.resolve_devices(["auto"]) == ["cpu"]
    with pytest.raises(ExperimentError, match="devices: 'cuda' requested"):
        experiment.resolve_devices(["cuda"])
    monkeypatch.setattr(experiment, "cuda_available", lambda: True)
    assert experiment.resolve_devices(["auto"]) == ["cpu", "cuda"]
    assert experiment.resolve_devices(["cuda", "auto"]) == ["cuda", "cpu"]


CPU_VERSION_PY = """from typing import Optional

__version__ = '2.13.0+cpu'
debug = False
cuda: Optional[str] = None
git_version = 'cf30153c4c131c8164ee7798e5022d810682e2cb'
hip: Optional[str] = None
"""


@pytest.mark.parametrize(
    "text, cpu_only",
    [
        (CPU_VERSION_PY, True),
        ("cuda = None\nhip = None\n", True),
        (CPU_VERSION_PY.replace("cuda: Optional[str] = None", "cuda: Optional[str] = '13.0'"), False),
        (CPU_VERSION_PY.replace("hip: Optional[str] = None", "hip: Optional[str] = '6.4.0'"), False),
        (CPU_VERSION_PY.replace("hip: Optional[str] = None", ""), False),  # a build that does not say
        ("cuda = get_cuda()\nhip = None\n", False),  # not a literal
        ("cuda = None\nhip = None\ncuda = '12.8'\n", False),  # the last assignment counts
        ("cuda = None\nhip = (\n", False),  # unparseable
    ],
)
def test_a_cpu_only_torch_build_is_recognised_from_its_version_file(tmp_path, text, cpu_only):
    version = tmp_path / "version.py"
    version.write_text(text)
    assert experiment.built_without_gpu(version) is cpu_only
    assert experiment.built_without_gpu(tmp_path / "missing.py") is False


def test_planning_auto_devices_agrees_with_torch_and_imports_it_only_for_a_gpu_build():
    """The Snakefile resolves `devices: [auto]` at every invocation; on a CPU-only torch that
    answer comes from torch's version file instead of a 2.5 s import."""
    code = (
        "import sys; from plan import experiment as e; "
        "print(e.cuda_available(), 'torch' in sys.modules); "
        "import torch; print(torch.cuda.is_available(), torch.version.cuda is None and torch.version.hip is None)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    (answer, imported), (truth, cpu_build) = (line.split() for line in out.stdout.split("\n")[:2])
    assert answer == truth
    assert imported == ("False" if cpu_build == "True" else "True")


def test_unknown_env_names_the_field():
    with pytest.raises(ExperimentError, match="envs: unknown environment 'Nope-v9'"):
        runs({**CONFIG, "envs": ["Nope-v9"]})


def test_device_throughput_figure():
    summary = pd.DataFrame(
        {
            "env": ["Pendulum-v1"] * 4,
            "algo": ["mbpo", "mbpo", "sac", "sac"],
            "variant": ["h1", "h1", "utd1", "utd1"],
            "device": ["cpu", "cuda", "cpu", "cuda"],
            "job_ms_per_env_step": [10.0, 4.0, 0.5, 0.8],
        }
    )
    fig = figures.devices(summary)
    bars = [p.get_height() for p in fig.axes[0].patches if p.get_height() > 0]
    assert sorted(bars) == pytest.approx(sorted([100.0, 250.0, 2000.0, 1250.0]))
    assert fig.axes[0].get_ylabel() == "env steps per second (whole run)"


def test_command_line_strings_become_numbers_where_they_are_numbers():
    parsed = {
        "seeds": ["0", "12"],
        "analysis": {"threshold": "-250", "confidence": "0.9"},
        "envs": ["Pendulum-v1"],
        "algorithms": {"mbpo": {"rollout_lengths": ["3", "20,100,1,15"]}},
    }
    assert numbers_from_command_line(parsed) == {
        "seeds": [0, 12],
        "analysis": {"threshold": -250, "confidence": 0.9},
        "envs": ["Pendulum-v1"],
        "algorithms": {"mbpo": {"rollout_lengths": [3, "20,100,1,15"]}},
    }


def test_the_schema_allows_exactly_the_algorithms_the_identity_module_names():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert set(schema["properties"]["algorithms"]["properties"]) == set(ALGORITHMS)


def with_algo(algo: str, **fields) -> dict:
    return {**CONFIG, "algorithms": {algo: {**CONFIG["algorithms"][algo], **fields}}}


@pytest.mark.parametrize(
    "config, message",
    [
        # an option that would make the folder's label, the budget or the evaluation lie
        (with_algo("sac", options={"updates_per_step": 5}), "algorithms.sac.options: updates_per_step is the variant"),
        (with_algo("mbpo", options={"rollout_length": 5}), "algorithms.mbpo.options: rollout_length is the variant"),
        (
            with_algo("mbpo", variant_options={"1": {"rollout_length": 3}}),
            "algorithms.mbpo.variant_options.1: rollout_length is the variant",
        ),
        (with_algo("sac", options={"total_steps": 100}), "algorithms.sac.options: total_steps is the algorithm's own"),
        (with_algo("sac", options={"preset": "seed"}), "algorithms.sac.options: preset is the algorithm's own"),
        (with_algo("mbpo", options={"eval_every": 5}), "algorithms.mbpo.options: eval_every comes from evaluation"),
        # fields that name what does not exist
        (with_algo("sac", total_steps={"Hoper-v5": 100}), "algorithms.sac.total_steps: unknown environment 'Hoper-v5'"),
        (with_algo("mbpo", variant_options={"7": {"rollout_batch_size": 8}}), "variant_options: 7 not among its"),
        ({**CONFIG, "output": "results/../../elsewhere"}, "output: 'results/../../elsewhere' leaves the working"),
    ],
)
def test_configs_that_would_mislabel_or_misplace_runs_are_refused(config, message):
    with pytest.raises(ExperimentError, match=re.escape(message)):
        runs(config)


def test_a_length_for_an_env_not_run_now_is_kept_for_later():
    """Running a subset of an experiment's envs (`--config envs=[...]`) keeps the others' lengths."""
    assert runs(with_algo("sac", total_steps={"Hopper-v5": 100, "Pendulum-v1": 50}))


def test_an_option_that_is_not_the_variant_is_passed_on():
    mbpo = train_args(with_algo("mbpo", options={"updates_per_step": 3}), "Pendulum-v1", "mbpo", "h1", "cpu", 0)
    assert mbpo[mbpo.index("--updates-per-step") + 1] == "3"  # MBPO's variant is its rollout length
    for key in (1, "1"):  # YAML's unquoted 1 and quoted "1" name the same rollout length
        mbpo = train_args(
            with_algo("mbpo", variant_options={key: {"rollout_batch_size": 8}}), "Pendulum-v1", "mbpo", "h1", "cpu", 0
        )
        assert mbpo[mbpo.index("--rollout-batch-size") + 1] == "8"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"analysis": {"budget": 10, "threshold": math.nan, "grid": 5}}, "analysis.threshold: nan is not a finite"),
        ({"evaluation": {"episodes": 3, "every": math.inf}}, "evaluation.every: inf is not a finite number"),
        (
            {"algorithms": {"sac": {"options": {"checkpoint_interval": -5}}}},
            "algorithms.sac.options.checkpoint_interval: -5 is less than the minimum of 0",
        ),
        ({"algorithms": {"sac": {"options": {"help": True}}}}, "algorithms.sac.options: 'help' should not be valid"),
    ],
)
def test_the_schema_check_refuses_what_no_run_could_use(change, message):
    config = {**CONFIG, "analysis": {"budget": 10, "threshold": 0.0, "grid": 5}, **change}
    with pytest.raises(ExperimentError, match=re.escape(message)):
        experiment.check_schema(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    experiment.check_schema(
        {**CONFIG, "analysis": {"budget": 10, "threshold": 0.0, "grid": 5}},
        ROOT / "workflow" / "schemas" / "config.schema.yaml",
    )


def test_jobs_train_each_groups_seeds_in_lockstep_chunks_per_device():
    config = {**CONFIG, "seeds": [0, 3, 5, 7, 9], "seeds_per_job": {"cpu": 2}}
    planned = runs(config)
    jobs = experiment.jobs(config, planned)
    assert sorted(r.key for job in jobs for r in job.runs) == sorted(r.key for r in planned)  # each run once
    mbpo = [job for job in jobs if job.run.algo == "mbpo" and job.run.variant == "h1"]
    assert [job.seeds for job in mbpo] == [(0, 3), (5, 7), (9,)]
    first, last = mbpo[0], mbpo[-1]
    assert first.lockstep and not last.lockstep
    assert "--seeds" in first.args and first.args[first.args.index("--seeds") + 1] == "0,3"
    assert "--seed" not in first.args and last.args == last.run.args
    assert first.out.endswith("/mbpo/h1/cpu/seed{seed}") and last.out == last.run.path
    assert first.record == "results/jobs/Pendulum-v1/mbpo/h1/cpu/seeds0-3.json"
    assert last.record == f"{last.run.path}/metadata.json"
    # the command of each seed alone is what the job's arguments give that seed
    for seed in first.seeds:
        alone = list(first.args)
        at = alone.index("--seeds")
        alone[at : at + 2] = ["--seed", str(seed)]
        assert tuple(alone) == next(r.args for r in first.runs if r.seed == seed)


def test_seeds_per_job_defaults_from_the_schema_and_sb3_is_always_alone():
    defaults = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    per_device = defaults["properties"]["seeds_per_job"]["default"]
    assert experiment.seeds_per_job(CONFIG, "cpu") == per_device["cpu"]
    assert experiment.seeds_per_job({"seeds_per_job": {"cpu": 3}}, "cuda") == per_device["cuda"]
    config = {**CONFIG, "algorithms": {"sb3_sac": {"total_steps": 900}}, "seeds_per_job": {"cpu": 5}}
    assert all(not job.lockstep for job in experiment.jobs(config, runs(config)))


def test_adding_seeds_adds_jobs_and_keeps_the_complete_seeds_planned_alike():
    before = {**CONFIG, "seeds_per_job": {"cpu": 2}}
    after = {**before, "seeds": [0, 3, 4]}
    old = {job.key: job for job in experiment.jobs(before, runs(before))}
    new = {job.key: job for job in experiment.jobs(after, runs(after))}
    assert set(old) <= set(new)  # the seeds already planned keep their jobs (and records)
    assert {job.seeds for key, job in new.items() if key not in old} == {(4,)}
