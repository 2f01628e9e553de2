"""The one-run CLI: bad input, the run record, refusal to overwrite, determinism."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mbpo import cli
from mbpo.config import SECTIONS
from mbpo.record import EVAL_COLUMNS, cpu_info
from mbpo.sac import SAC

TINY = [
    "--env",
    "Pendulum-v1",
    "--preset",
    "seed",
    "--total-steps",
    "600",
    "--random-steps",
    "200",
    "--eval-every",
    "200",
    "--eval-episodes",
    "2",
    "--log-every",
    "200",
]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mbpo", "train", *args], capture_output=True, text=True, timeout=300)


def without_column(text: str, column: str) -> str:
    """The CSV text with one column removed (wall-clock time is the only non-reproducible one)."""
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, name in enumerate(rows[0]) if name != column]
    return "\n".join(",".join(row[i] for i in keep) for row in rows)


def test_help_documents_every_hyperparameter():
    result = subprocess.run([sys.executable, "-m", "mbpo", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for cls in SECTIONS.values():
        for f in dataclasses.fields(cls):
            assert "--" + f.name.replace("_", "-") in result.stdout, f.name


def test_help_and_bad_settings_are_answered_before_torch_is_imported(tmp_path):
    """Importing torch takes seconds: `--help`, a bad flag, a bad setting, an unknown env or one
    MBPO cannot run is answered without it, the pipeline plans its runs without it, and the
    analysis commands read run files without it."""
    code = f"""
import sys
from mbpo.cli import config_from_args, main
import analysis.aggregate, analysis.numerics, analysis.reference, analysis.regress, analysis.summary
assert analysis.numerics.main(["--reference", {str(tmp_path / "none")!r}]) == 2
for command in (analysis.numerics, analysis.reference):
    try:
        command.main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
for argv in (
    ["train", "--out", {str(tmp_path)!r}, "--total-steps", "-3"],
    ["train", "--out", "x", "--env", "No-v0"],
    ["train", "--out", "x", "--algo", "mbpo", "--env", "Pusher-v5"],  # no termination function
):
    assert main(argv) == 2
assert config_from_args(["--algo", "mbpo", "--env", "Hopper-v5"]).run.env == "Hopper-v5"  # the pipeline's planner
try:
    main(["train", "--help"])
except SystemExit as exc:
    assert exc.code == 0
print(sorted(name for name in ("torch", "mbpo.launch", "mbpo.train") if name in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
    assert list(tmp_path.iterdir()) == []


BAD_INPUT = [
    (["--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
    (["--env", "Pendulum-v0"], "did you mean"),
    (["--env", "CartPole-v1"], "continuous (Box)"),
    (["--total-steps", "0"], "total_steps must be > 0"),
    (["--total-steps", "-5"], "total_steps must be > 0"),
    (["--seed", "-1"], "seed must be in [0, 2**63 - 1], got -1"),
    (["--seed", "99999999999999999999999"], "seed must be in [0, 2**63 - 1]"),
    (["--threads", "0"], "threads must be in [1, 4096], got 0"),
    (["--threads", "1099511627776"], "threads must be in [1, 4096]"),  # torch.set_num_threads overflows
    (["--actor-lr", "inf"], "actor_lr must be a finite number, got inf"),
    (["--target-entropy", "nan"], "target_entropy must be a finite number, got nan"),
    (["--model-weight-decay", "0,0,nan,0"], "only apply to algo mbpo"),
    (["--algo", "mbpo", "--model-weight-decay", "0,0,nan,0"], "model_weight_decay must be a finite number"),
    (["--checkpoint-interval", "-1"], "--checkpoint-interval must be a finite number >= 0"),
    (["--env", "Pendulum-v1", "--truncate-obs"], "truncate_obs applies to Ant-v5 and Humanoid-v5 only"),
    (["--seed", "one"], "invalid int value"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
    (["--actor-hidden", "64,x"], "comma-separated integers"),
    (["--preset", "nope"], "invalid choice: 'nope'"),
    (["--gamma", "1.5"], "gamma must be in [0, 1]"),
    (["--batch-size", "0"], "batch_size must be > 0"),
    # registered ids that cannot be built here: a module or package missing
    (["--env", "Hopper-v2"], "environment 'Hopper-v2' cannot be made here: The mujoco v2 and v3"),
    (["--env", "GymV26Environment-v0"], "environment 'GymV26Environment-v0' cannot be made here"),
    # sizes no machine can allocate: refused before any run file exists
    (
        ["--algo", "mbpo", "--rollout-batch-size", "1000000000", "--rollout-length", "500", "--total-steps", "50"],
        "the model buffer (model_retain_epochs 1 x epoch_length",
    ),
    (["--buffer-size", "100000000000", "--total-steps", "100000000000"], "min(buffer_size 100000000000"),
    (["--batch-size", "100000000000", "--random-steps", "0", "--total-steps", "5"], "batch_size 100000000000"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = run_cli("--out", str(tmp_path / "run"), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_refused(tmp_path):
    result = run_cli("--out", str(tmp_path / "run"), "--device", "cuda")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "python -m mbpo train: error: device 'cuda' requested but torch sees no CUDA device (use --device cpu or auto)"
    )


def test_not_enough_memory_names_the_setting_and_the_bytes(tmp_path):
    result = run_cli("--out", str(tmp_path / "run"), "--batch-size", "100000000000", "--total-steps", "5")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    # a Pendulum row is 9 float32 (36 bytes), and each sampled row an 8-byte index
    assert "a policy batch (batch_size 100000000000 rows) needs 4400000000000 bytes (4.0 TiB)" in result.stderr
    assert "available (" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_buffer_that_fails_to_allocate_is_one_line_and_leaves_no_files(tmp_path, monkeypatch, capsys):
    """The memory was there when checked, gone when the buffer is made (another process took it)."""
    from mbpo import buffer, memory

    real_zeros = torch.zeros

    def zeros(*size, **kwargs):
        if size and isinstance(size[0], int) and size[0] >= 10**9:
            raise RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: "
                "you tried to allocate 36000000000 bytes. Error code 12 (Cannot allocate memory)"
            )
        return real_zeros(*size, **kwargs)

    monkeypatch.setattr(memory, "available", lambda device: (10**15, "pretend"))
    monkeypatch.setattr(buffer.torch, "zeros", zeros)
    out = tmp_path / "run"
    args = ["--buffer-size", "1000000000", "--total-steps", "1000000000", "--quiet"]
    assert cli.main(["train", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "python -m mbpo train: error: cannot allocate the replay buffer (buffer_size): "
        "1000000000 rows of 9 float32 need 36000000000 bytes on cpu"
    ]
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_running_out_of_memory_mid_run_is_one_line(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    real_update = SAC.update

    def update(self, batch, stats=False):
        calls["n"] += 1
        if calls["n"] > 20:
            raise RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: "
                "you tried to allocate 800 bytes. Error code 12 (Cannot allocate memory)"
            )
        return real_update(self, batch, stats)

    monkeypatch.setattr(SAC, "update", update)
    assert cli.main(["train", "--out", str(tmp_path / "run"), *TINY, "--quiet", "--checkpoint-interval", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "python -m mbpo train: error: out of memory during the run (DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 800 bytes. Error code 12 (Cannot allocate memory)); no checkpoint was written "
        "yet, so running the same command again starts over"
    ]


def test_an_empty_out_writes_nothing_in_the_current_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mbpo", "train", "--out", "", "--total-steps", "50"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--out: expected a folder, got an empty string" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_config_from_args_refuses_help_instead_of_exiting():
    """The planner checks each run's arguments in its own process: --help among them must not
    print the help and end that process with status 0."""
    assert cli.config_from_args(["--env", "Pendulum-v1"]).run.env == "Pendulum-v1"
    for args in (["--help"], ["--env", "Pendulum-v1", "-h"]):
        with pytest.raises(cli.ArgumentError, match="--help is not a run setting"):
            cli.config_from_args(args)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"[1]", "not a complete run's metadata (a JSON list, not an object)"),
        (b"\x80\xff\x00binary", "not a run's metadata (not JSON text: 'utf-8' codec can't decode"),
        (b"{not json", "not a run's metadata (not JSON text: Expecting property name"),
        (b'{"status": "running"}', "not a complete run's metadata (no status 'complete')"),
    ],
    ids=["list", "binary", "not-json", "not-complete"],
)
def test_a_foreign_metadata_json_is_refused_unless_overwrite(tmp_path, content, problem):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metadata.json").write_bytes(content)
    refused = run_cli("--out", str(out), "--total-steps", "50", "--quiet")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert f"{out / 'metadata.json'}: {problem}" in refused.stderr
    assert refused.stderr.strip().endswith("; pass --overwrite to replace it")
    assert (out / "metadata.json").read_bytes() == content
    assert sorted(p.name for p in out.iterdir()) == [".lock", "metadata.json"]


def test_overwrite_replaces_a_foreign_metadata_json(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metadata.json").write_bytes(b"\x80[1]")
    result = run_cli("--out", str(out), "--total-steps", "50", "--quiet", "--overwrite")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metadata.json").read_text())["status"] == "complete"


@pytest.mark.parametrize(
    "name", ["metadata.json", "checkpoint.pt", "eval.csv", "train.csv.part", ".lock", ".metadata.json.x1.tmp"]
)
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_a_folder_where_the_run_writes_a_file_is_refused_and_kept(tmp_path, name, overwrite):
    """Bad input, not a failed run (exit 2, one line), and never deleted: --overwrite discards run
    files, not folders a user put there (a folder named like a run's temporary file is not in the
    way and is kept too)."""
    out = tmp_path / "run"
    (out / name).mkdir(parents=True)
    (out / name / "keep").write_text("x")
    result = run_cli("--out", str(out), "--total-steps", "50", "--quiet", *overwrite)
    if name.endswith(".tmp"):  # a temporary's name, never the run's file: not in the way, and kept
        assert result.returncode == 0, result.stderr
        assert (out / name / "keep").read_text() == "x" and (out / "metadata.json").is_file()
        return
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{out / name} is a folder where the run writes a file; move it out of the way" in result.stderr
    assert [p.relative_to(out).as_posix() for p in sorted(out.rglob("*"))] == [name, f"{name}/keep"]


def test_progress_has_no_eta_before_any_step():
    from mbpo.progress import Progress

    stream = io.StringIO()
    progress = Progress(1000, "run", interval=100, stream=stream)
    progress.update(0)
    progress.resumed(500)
    progress.update(500, eval_return="1.0")  # just resumed: no step since
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and all(" eta ? " in line or line.endswith(" eta ?") for line in lines), lines
    assert "nan" not in stream.getvalue()
    progress.update(600)
    assert " eta ?" not in stream.getvalue().splitlines()[-1]


def test_ctrl_c_before_any_checkpoint_says_a_rerun_starts_over(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "mbpo", "train", "--out", str(out), *TINY, "--total-steps", "100000"]
    proc = subprocess.Popen([*cmd, "--quiet", "--checkpoint-interval", "0"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "train.csv.part").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip() == (
        "python -m mbpo train: interrupted; the run is incomplete: no checkpoint was written yet, "
        "so running the same command again starts over"
    )
    assert not (out / "checkpoint.pt").exists()


def test_missing_out_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "mbpo", "train"], capture_output=True, text=True)
    assert result.returncode == 2 and "--out" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """Two runs with seed 0 and one with seed 1 (each a fresh process)."""
    root = tmp_path_factory.mktemp("runs")
    runs = {"a": root / "a", "b": root / "b", "other": root / "other"}
    for name, seed in (("a", "0"), ("b", "0"), ("other", "1")):
        result = run_cli("--out", str(runs[name]), "--seed", seed, *TINY)
        assert result.returncode == 0, result.stderr
    return runs


def test_run_record_files_and_metadata(tiny_runs):
    out = tiny_runs["a"]
    assert sorted(p.name for p in out.iterdir()) == [".finish.json", ".lock", "eval.csv", "metadata.json", "train.csv"]
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert tuple(rows[0]) == EVAL_COLUMNS
    assert [int(r["env_step"]) for r in rows] == [0, 0, 200, 200, 400, 400, 600, 600]
    assert all(int(r["length"]) == 200 for r in rows)
    meta = json.loads((out / "metadata.json").read_text())
    for key in (
        "status",
        "config",
        "seed",
        "algo",
        "env",
        "device",
        "device_name",
        "threads",
        "versions",
        "git_revision",
        "git_dirty",
        "host",
        "start_time",
        "end_time",
        "wall_seconds",
        "env_steps_per_second",
        "command",
    ):
        assert key in meta, key
    assert meta["status"] == "complete" and meta["threads"] == 1 and meta["seed"] == 0
    assert set(meta["versions"]) == {"python", "torch", "gymnasium", "numpy"}
    assert meta["config"]["sac"]["batch_size"] == 64  # from the preset
    train = list(csv.DictReader((out / "train.csv").open()))
    assert [int(r["env_step"]) for r in train] == [200, 400, 600]
    assert float(train[-1]["critic_loss"]) > 0 and float(train[-1]["alpha"]) > 0


def test_same_seed_is_byte_identical_and_other_seed_differs(tiny_runs):
    for name in ("eval.csv", "train.csv"):
        a = (tiny_runs["a"] / name).read_text()
        b = (tiny_runs["b"] / name).read_text()
        assert without_column(a, "wall_seconds") == without_column(b, "wall_seconds"), name
    other = (tiny_runs["other"] / "eval.csv").read_text()
    a = (tiny_runs["a"] / "eval.csv").read_text()
    assert without_column(a, "wall_seconds") != without_column(other, "wall_seconds")


def test_reproduce_command_reproduces_the_run(tiny_runs, tmp_path):
    meta = json.loads((tiny_runs["a"] / "metadata.json").read_text())
    words = meta["command"].split()
    assert words[:4] == ["python", "-m", "mbpo", "train"]
    words[words.index("--out") + 1] = str(tmp_path / "again")
    result = subprocess.run([sys.executable, *words[1:], "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    again = (tmp_path / "again" / "eval.csv").read_text()
    assert without_column(again, "wall_seconds") == without_column(
        (tiny_runs["a"] / "eval.csv").read_text(), "wall_seconds"
    )


def test_complete_run_is_refused_unless_overwrite(tiny_runs, tmp_path):
    out = tmp_path / "run"
    assert run_cli("--out", str(out), *TINY, "--quiet").returncode == 0
    before = (out / "metadata.json").read_text()
    refused = run_cli("--out", str(out), *TINY)
    assert refused.returncode == 2
    assert "already holds a complete run (pass --overwrite" in refused.stderr
    assert (out / "metadata.json").read_text() == before
    replaced = run_cli("--out", str(out), *TINY, "--overwrite", "--seed", "1", "--quiet")
    assert replaced.returncode == 0
    assert json.loads((out / "metadata.json").read_text())["seed"] == 1


def test_a_crash_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    out = tmp_path / "run"
    calls = {"n": 0}
    real_update = SAC.update

    def failing_update(self, batch, stats=False):
        calls["n"] += 1
        if calls["n"] > 50:
            raise RuntimeError("injected failure")
        return real_update(self, batch, stats)

    monkeypatch.setattr(SAC, "update", failing_update)
    with pytest.raises(RuntimeError, match="injected failure"):
        cli.main(["train", "--out", str(out), *TINY, "--quiet"])
    names = sorted(p.name for p in out.iterdir())
    assert names == [".history.jsonl", ".lock", "eval.csv.part", "train.csv.part"]
    monkeypatch.undo()
    # the interrupted folder is not a complete run, so it is re-run without --overwrite
    assert cli.main(["train", "--out", str(out), *TINY, "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".finish.json", ".lock", "eval.csv", "metadata.json", "train.csv"]


def test_out_that_is_a_file_is_one_line(tmp_path):
    target = tmp_path / "file"
    target.write_text("not a folder")
    result = run_cli("--out", str(target), *TINY)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"cannot use --out {target}" in result.stderr
    assert target.read_text() == "not a folder"


def test_a_run_removes_only_the_files_it_writes(tmp_path):
    """--out pointing at a folder of other files (results/tables, say) loses none of them."""
    out = tmp_path / "tables"
    out.mkdir()
    mine = {"summary.csv": "a,b\n1,2\n", "notes.txt": "keep", "curves.csv": "x\n"}
    for name, text in mine.items():
        (out / name).write_text(text)
    assert run_cli("--out", str(out), *TINY, "--quiet").returncode == 0
    assert {name: (out / name).read_text() for name in mine} == mine
    # and with --overwrite too
    assert run_cli("--out", str(out), *TINY, "--quiet", "--overwrite").returncode == 0
    assert {name: (out / name).read_text() for name in mine} == mine


@pytest.fixture
def small_mount(tmp_path):
    """A 512 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    where = tmp_path / "mnt"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_full_disk_is_one_line_naming_the_file(small_mount):
    (small_mount / "filler").write_bytes(b"\0" * (500 * 1024))  # leave a few KiB
    result = run_cli(
        "--out", str(small_mount / "run"), *TINY, "--total-steps", "2000", "--eval-every", "100", "--quiet"
    )
    assert result.returncode in (1, 2), result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "No space left on device" in lines[0] and str(small_mount) in lines[0]
    assert not (small_mount / "run" / "metadata.json").exists()


def test_a_read_only_out_is_one_line(small_mount):
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    result = run_cli("--out", str(small_mount / "run"), *TINY)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"cannot use --out {small_mount / 'run'}: Read-only file system" in result.stderr


@pytest.mark.parametrize(
    "where",
    [
        "mbpo/cli.py:main",
        "mbpo/cli.py:_prepare",
        "mbpo/cli.py:check_env",
        "mbpo/launch.py:<module>",
        "mbpo/launch.py:train",
    ],
)
def test_ctrl_c_between_the_start_up_steps_is_one_line_and_nothing_is_written(tmp_path, where):
    """SIGINT delivered exactly as a start-up step begins (a profiler hook sends it): the seams
    between `python -m mbpo`'s own hold, the parser, the imports and the run's handler."""
    file, function = where.split(":")
    code = f"""
import os, runpy, signal, sys
fired = []
def hook(frame, event, arg):
    code = frame.f_code
    if event == "call" and not fired and code.co_name == {function!r} and code.co_filename.endswith({file!r}):
        fired.append(1)
        os.kill(os.getpid(), signal.SIGINT)
sys.setprofile(hook)
sys.argv = ["mbpo", "train", "--out", {str(tmp_path / "run")!r}, *{TINY!r}, "--quiet"]
runpy.run_module("mbpo", run_name="__main__", alter_sys=True)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip() == "python -m mbpo train: interrupted while starting; nothing was written"
    assert not (tmp_path / "run").exists()


def test_a_ctrl_c_held_at_start_up_wins_over_bad_input_and_help(tmp_path, capsys):
    import signal

    bad = ["train", "--out", str(tmp_path / "r"), "--env", "No-v0"]
    assert cli.main(bad, pending=[signal.SIGINT]) == 130
    assert capsys.readouterr().err == "python -m mbpo train: interrupted while starting; nothing was written\n"
    assert cli.main(["train", "--out", str(tmp_path / "r"), "--help"], pending=[signal.SIGINT]) == 130
    with pytest.raises(SystemExit) as exited:  # argparse's error line is already out: it stays the only one
        cli.main(["train", "--bogus"], pending=[signal.SIGINT])
    assert exited.value.code == 2
    assert cli.main(bad, pending=[]) == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not (tmp_path / "r").exists()


def test_main_in_process_keeps_the_callers_handler_and_runs_outside_the_main_thread(tmp_path, capsys):
    import signal
    import threading

    bad = ["train", "--out", str(tmp_path / "r"), "--total-steps", "-3"]

    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGINT, mine)
    try:
        assert cli.main(bad) == 2
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)
    results = []
    thread = threading.Thread(target=lambda: results.append(cli.main(bad)))
    thread.start()
    thread.join(timeout=60)
    assert results == [2]
    assert capsys.readouterr().err.count("total_steps must be > 0") == 2


def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(tmp_path):
    """SIGINT while the interpreter imports torch/gymnasium (at several points: an interrupt in
    the middle of numpy's import once left it without `logical_or`, a traceback), or later while
    training: one line."""
    import signal
    import time

    import mbpo

    package = str(Path(mbpo.__file__).resolve().parent) + "/"  # the child imports the same package
    for delay in (0.1, 0.3, 0.6, 1.2, 6.0):
        # On a loaded machine the interpreter may still be in its own start-up (site packages) at
        # 0.1 s, before `mbpo/__main__.py` runs: Python's own traceback, out of our hands. Such a
        # try (a traceback through no file of the package) is repeated a little later.
        for attempt in range(5):
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mbpo",
                    "train",
                    "--out",
                    str(tmp_path / f"r{delay}-{attempt}"),
                    *TINY,
                    "--total-steps",
                    "100000",
                    "--quiet",
                ],
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(delay + 0.1 * attempt)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
            if not ("Traceback" in stderr and package not in stderr):
                break
        else:
            pytest.fail(f"SIGINT at {delay} s landed before python -m mbpo started in 5 tries: {stderr}")
        assert proc.returncode == 130, stderr
        assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr


def test_the_rerun_hint_never_tells_an_overwrite_run_to_repeat_itself(tmp_path):
    """With --overwrite the same command would discard the checkpoint: resuming is without it."""
    from mbpo.launch import rerun_hint

    assert "starts over" in rerun_hint(tmp_path, overwrite=True)
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    assert rerun_hint(tmp_path) == "run the same command again to resume from its last checkpoint"
    assert rerun_hint(tmp_path, overwrite=True) == (
        "run the same command without --overwrite to resume from its last checkpoint"
    )


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: other
"""


def test_cpu_info_tells_apart_cpus_of_one_name():
    """A VM may call an EPYC without AVX-512 and a Zen 4 both "AMD EPYC": the metadata must record the family,
    model number and stepping (not confuse "model" with "model name") and the SIMD flags."""
    info = cpu_info(CPUINFO)
    assert info["vendor"] == "AuthenticAMD" and info["model"] == "AMD EPYC"
    assert info["family_model_stepping"] == ["25", "17", "1"]
    assert info["microcode"] == "0x1000065"
    assert info["simd"] == ["avx2", "fma", "avx512f", "avx512_bf16"]
    assert info["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    bare = cpu_info("")  # not Linux: no numbers, no flags, still a record
    assert bare["family_model_stepping"] == [None, None, None] and bare["simd"] == []
