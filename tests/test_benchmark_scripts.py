"""The benchmark scripts' answer to bad input: one line naming it, exit status 2, before any work
(the benchmarks themselves run outside the test suite: `pytest benchmarks/ --benchmark-only`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

# script, arguments ({tmp}: the test's folder), a word the one line must hold
BAD_INPUT = [
    ("regress_power.py", ["{tmp}/nonexist"], "nonexist is not a folder"),
    ("regress_power.py", ["{tmp}", "--per-side", "0"], "--per-side"),
    ("regress_power.py", ["{tmp}", "--per-side", "-3"], "--per-side"),
    ("regress_power.py", ["{tmp}", "--alpha", "0.7"], "--alpha"),
    ("regress_power.py", ["{tmp}", "--seed", "-1"], "--seed"),
    ("vs_seed.py", ["sac", "--rounds", "0"], "--rounds"),
    ("vs_seed.py", ["sac", "--episodes", "2"], "--episodes"),
    ("vs_seed.py", ["sac", "--utd", "0"], "--utd"),
    ("vs_seed.py", ["sac", "--seed-dir", "{tmp}"], "seed_sac.py"),
    ("vs_seed.py", ["ppo"], "invalid choice"),
    ("sac_update_flops.py", ["--threads", "0"], "--threads"),
    ("sac_update_flops.py", ["--threads", "1099511627776"], "--threads must be in [1, 4096]"),
    ("sac_update_flops.py", ["--hidden", "256,x"], "--hidden"),
    ("paper_scale.py", ["--threads", "0"], "--threads"),
    ("paper_scale.py", ["--device", "tpu"], "--device"),
    ("paper_scale.py", ["--device", "cuda"], "no CUDA device is visible"),
    ("paper_scale.py", ["--epochs", "nan"], "--epochs"),
    ("paper_scale.py", ["--model-csv", "{tmp}/nonexist.csv"], "--model-csv"),
    ("paper_scale.py", ["--model-csv", "{tmp}/garbage.csv"], "--model-csv"),
    ("experiment_cost.py", ["--threads", "0"], "--threads"),
    ("experiment_cost.py", ["--device", "tpu"], "--device"),
    ("experiment_cost.py", ["--device", "cuda"], "no CUDA device is visible"),
    ("experiment_cost.py", ["--epochs", "inf"], "--epochs"),
    ("experiment_cost.py", ["--threads", "100000"], "--threads must be in [1, 4096]"),
    ("experiment_cost.py", ["--sizes", "30000", "10000"], "--sizes"),
    ("experiment_cost.py", ["--sizes", "30000", "40000"], "--sizes"),
    ("experiment_cost.py", ["--configfile", "{tmp}/binary.yaml"], "binary.yaml: not UTF-8 text"),
    ("experiment_cost.py", ["--repeat", "0"], "--repeat"),
    ("experiment_cost.py", ["--model-csv", "{tmp}/nonexist.csv"], "nonexist.csv: No such file"),
    ("experiment_cost.py", ["--model-csv", "{tmp}/garbage.csv"], "not a model.csv"),
    ("experiment_cost.py", ["--configfile", "{tmp}/nonexist.yaml"], "nonexist.yaml: cannot read it (No such file"),
    ("experiment_cost.py", ["--configfile", "{tmp}/garbage.csv"], "garbage.csv: not a mapping"),
    ("experiment_cost.py", ["--configfile", "{tmp}/schema.yaml"], "schema.yaml: config: 'seeds' is a required"),
    ("experiment_cost.py", ["--configfile", "{tmp}/bad.yaml"], "bad.yaml, line 2, column 1"),
    ("experiment_cost.py", ["--check", "{tmp}/nonexist"], "no such run folder"),
    ("experiment_cost.py", ["--check", "{tmp}"], "not a complete run"),
    ("mbpo_components.py", ["--threads", "0"], "--threads"),
    ("checkpoint_cost.py", ["--folder", "{tmp}/nonexist"], "--folder"),
    ("checkpoint_cost.py", ["--folder", "{tmp}/garbage.csv"], "--folder"),
    ("mbpo_inverted_pendulum.py", ["--steps", "100"], "--steps"),
    ("mbpo_inverted_pendulum.py", ["--device", "tpu"], "--device"),
    ("mbpo_inverted_pendulum.py", ["--device", "cuda"], "no CUDA device is visible"),
    ("portable_numerics.py", ["--repeats", "0"], "--repeats"),
    ("portable_numerics.py", ["--bogus"], "unrecognized arguments"),
    ("lockstep.py", ["--seeds", "1,0"], "--seeds"),
    ("lockstep.py", ["--seeds", "1,x"], "--seeds"),
    ("lockstep.py", ["--device", "tpu"], "--device"),
    ("lockstep.py", ["--device", "cuda"], "no CUDA device is visible"),
    ("lockstep.py", ["--threads", "0"], "--threads"),
    ("lockstep.py", ["--data", "5"], "--data"),
    ("lockstep_pipeline.py", ["--seeds-per-job", "1"], "--seeds-per-job"),
    ("lockstep_pipeline.py", ["--seeds-per-job", "5,5"], "--seeds-per-job"),
    ("lockstep_pipeline.py", ["--seeds-per-job", "3,x"], "--seeds-per-job"),
    ("lockstep_pipeline.py", ["--cores", "0"], "--cores"),
    ("lockstep_pipeline.py", ["--configfile", "{tmp}/nonexist.yaml"], "nonexist.yaml: cannot read it (No such file"),
    ("lockstep_pipeline.py", ["--configfile", "{tmp}/schema.yaml"], "schema.yaml: config: 'seeds' is a required"),
    ("lockstep_pipeline.py", ["--configfile", "{tmp}/bad.yaml"], "bad.yaml, line 2, column 1"),
]


@pytest.mark.parametrize(("script", "args", "named"), BAD_INPUT, ids=[f"{s} {' '.join(a)}" for s, a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(tmp_path, script, args, named):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    (tmp_path / "garbage.csv").write_text("a,b\n1,2\n")
    (tmp_path / "bad.yaml").write_text("envs: [Hopper-v5\n")
    (tmp_path / "schema.yaml").write_text("envs: [Hopper-v5]\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x81")
    cmd = [sys.executable, str(ROOT / "benchmarks" / script), *(a.format(tmp=tmp_path) for a in args)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # a script that started its work would run for minutes: the timeout fails that case
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    err = result.stderr
    assert result.returncode == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "usage:" not in err, err
    assert err.startswith(f"{script}: error: ") and named in err, err
    assert result.stdout == ""


def test_lockstep_pipeline_counts_a_lockstep_process_once(tmp_path, capsys):
    """The phase table sums each training process once: the seeds of a lockstep job record the
    same group clocks, a run alone its own."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lockstep_pipeline", ROOT / "benchmarks" / "lockstep_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def write(run: str, seconds: dict, wall: float, lockstep: list[int] | None = None) -> None:
        folder = tmp_path / "w" / "runs" / run
        folder.mkdir(parents=True)
        meta = {"seconds": seconds, "wall_seconds": wall}
        if lockstep is not None:
            meta["lockstep"] = {"seeds": lockstep, "device": "cpu"}
        (folder / "metadata.json").write_text(json.dumps(meta))

    group = {"env": 1.0, "act": 2.0, "update": 10.0, "model": 20.0, "rollout": 1.0, "eval": 2.0}
    for seed in (0, 1, 2):  # one lockstep process of three seeds
        write(f"P/mbpo/h1/cpu/seed{seed}", group, 40.0, [0, 1, 2])
    write("P/mbpo/h1/cpu/seed3", group, 40.0, [3])  # a later process of the same group: its own
    write("P/sac/utd1/cpu/seed0", {"env": 1.0, "act": 1.0, "update": 3.0, "eval": 1.0}, 7.0)
    phases = module.phase_seconds(tmp_path / "w")
    assert phases["processes"] == 3
    assert phases["model"] == 40.0 and phases["update"] == 23.0 and phases["rollout"] == 2.0
    assert phases["total"] == 87.0
    base = {**dict.fromkeys(module.PHASES, 10.0), "model": 40.0, "total": 100.0, "processes": 10}
    module.print_phases({"one process per run": (60.0, base), "3 seeds per job": (45.0, phases)}, cores=2)
    out = capsys.readouterr().out
    assert "the model fit is 40% of one-process-per-run training time" in out
    assert "1.45 (0.87)" in out  # 87 core-seconds, 0.87 of the base's 100
