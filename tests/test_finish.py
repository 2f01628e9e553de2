"""Crash-safety of a run folder at every instant: a crash (SIGKILL, or a full disk) at each
filesystem operation of committing a run or of writing a checkpoint, a `.lock` deleted or
replaced under a live writer, the history of every process, leftover temporary files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import runfiles
from runfiles import ROOT, assert_same_run

from mbpo.record import commit_pending, verify_run_files

ARGS = [
    "--env",
    "Pendulum-v1",
    "--preset",
    "seed",
    "--seed",
    "1",
    "--total-steps",
    "600",
    "--random-steps",
    "200",
    "--eval-every",
    "200",
    "--eval-episodes",
    "1",
    "--log-every",
    "100",
    "--quiet",
    "--checkpoint-interval",
    "0.2",
]
COMPLETE = [".finish.json", ".lock", "eval.csv", "metadata.json", "train.csv"]  # all a complete SAC run folder holds


def crash(out: Path, phase: str, mode: str, n: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "tests" / "crashpoints.py"), phase, mode, str(n), "train", *ARGS]
    return subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    result = runfiles.finish(out, *ARGS)
    assert result.returncode == 0, result.stderr
    return out


def operations(tmp_path: Path, phase: str, mode: str) -> int:
    result = crash(tmp_path / f"count-{phase}-{mode}", phase, mode, 10**6)
    assert result.returncode == 0, result.stderr
    return int(result.stderr.strip().rsplit(" ", 2)[-2])


def check_crashed(result: subprocess.CompletedProcess, mode: str, out: Path) -> None:
    if mode == "kill":
        assert result.returncode == -signal.SIGKILL, result.stderr
    else:
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        assert "No space left on device" in lines[0] and f"cannot write {out}" in lines[0], lines[0]


def check_complete(out: Path, uninterrupted: Path) -> dict:
    assert sorted(p.name for p in out.iterdir()) == COMPLETE, "leftover files"
    meta = json.loads((out / "metadata.json").read_text())
    verify_run_files(out, meta)
    assert_same_run(uninterrupted, out)
    return meta


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kill", "enospc"])
def test_a_crash_at_any_step_of_committing_a_run_is_completed_without_training(uninterrupted, tmp_path, mode):
    total = operations(tmp_path, "finish", mode)
    assert total >= 10  # fsync the parts, journal, rename each, metadata, remove checkpoint, history, journal
    for n in range(1, total + 1):
        out = tmp_path / f"{mode}-{n}"
        check_crashed(crash(out, "finish", mode, n), mode, out)
        if (out / "metadata.json").exists() and not commit_pending(out):
            check_complete(out, uninterrupted)  # killed after the commit's last step: nothing left to do
            assert runfiles.finish(out, *ARGS, "--skip-complete").returncode == 0
            continue
        again = runfiles.finish(out, *ARGS)
        assert again.returncode == 0, (n, again.stderr)
        meta = check_complete(out, uninterrupted)
        # the process that completed the run trained nothing: it resumed from the checkpoint taken
        # at the last step, or completed the journalled commit
        assert meta["resumes"][-1]["env_step"] == 600, (n, meta["resumes"])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kill", "enospc"])
def test_a_crash_while_a_checkpoint_is_written_leaves_no_temporary_and_resumes(uninterrupted, tmp_path, mode):
    total = operations(tmp_path, "checkpoint", mode)
    # the first writes, one in the middle, and the last (fsync, rename) of the first checkpoint
    for n in sorted({1, 2, total // 2, total - 2, total - 1, total}):
        out = tmp_path / f"{mode}-{n}"
        check_crashed(crash(out, "checkpoint", mode, n), mode, out)
        again = runfiles.finish(out, *ARGS)
        assert again.returncode == 0, (n, again.stderr)
        check_complete(out, uninterrupted)


def test_a_finishing_journal_of_another_config_is_refused(uninterrupted, tmp_path):
    out = tmp_path / "run"
    crash(out, "finish", "kill", 8)
    assert (out / ".finish.json").exists()
    other = [*ARGS[: ARGS.index("--total-steps") + 1], "700", *ARGS[ARGS.index("--total-steps") + 2 :]]
    refused = runfiles.finish(out, *other)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "holds a finishing run of another config (run.total_steps: 600 in the run, 700 now)" in refused.stderr
    assert runfiles.finish(out, *ARGS).returncode == 0
    check_complete(out, uninterrupted)


LONG = [*ARGS[: ARGS.index("--total-steps") + 1], "4000", *ARGS[ARGS.index("--total-steps") + 2 :]]


def wait_for_rows(out: Path, proc: subprocess.Popen, past: int = 300) -> None:
    part = out / "train.csv.part"
    deadline = time.monotonic() + 120
    while not part.exists() or part.stat().st_size <= past:
        assert time.monotonic() < deadline and proc.poll() is None, "the run ended or stalled"
        time.sleep(0.02)


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_lock_deleted_under_a_live_writer_stops_it_before_it_writes_again(tmp_path, how):
    reference = tmp_path / "reference"
    assert runfiles.finish(reference, *LONG).returncode == 0
    out = tmp_path / "run"
    first = runfiles.start(out, *LONG)
    wait_for_rows(out, first)
    (out / ".lock").unlink()
    if how == "replaced":
        (out / ".lock").write_text("a sync tool's copy\n")
    second = runfiles.start(out, *LONG)  # gets in: the first's lock is on a file no longer there
    _, err = first.communicate(timeout=300)
    assert first.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"{out / '.lock'} was {how} while this run was writing" in lines[0], err
    assert "stopped without writing more" in lines[0]
    _, err2 = second.communicate(timeout=300)
    assert second.returncode == 0, err2
    check_complete(out, reference)
    processes = json.loads((out / "metadata.json").read_text())["resumes"]
    assert all(p["pid"] != first.pid for p in processes[1:])


def test_the_history_lists_every_process_even_those_killed_before_a_checkpoint(tmp_path):
    reference = tmp_path / "reference"
    args = [*LONG[:-1], "0"]  # checkpoints on SIGTERM only
    assert runfiles.finish(reference, *args).returncode == 0
    out = tmp_path / "run"
    pids = []
    for k, sig in enumerate((signal.SIGTERM, signal.SIGKILL, signal.SIGKILL, signal.SIGTERM, signal.SIGKILL)):
        past = runfiles.checkpoint_offsets(out)["train"] if (out / "checkpoint.pt").exists() else 0
        proc = runfiles.start(out, *args)
        history = out / ".history.jsonl"
        deadline = time.monotonic() + 120  # this process has taken the folder (and cut the parts back)
        while not history.exists() or len(history.read_text().splitlines()) <= k:
            assert time.monotonic() < deadline and proc.poll() is None, "the run did not start"
            time.sleep(0.02)
        wait_for_rows(out, proc, past + 200)
        proc.send_signal(sig)
        proc.communicate(timeout=120)
        pids.append(proc.pid)
    last = runfiles.finish(out, *args)
    assert last.returncode == 0, last.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert len(meta["resumes"]) == 5  # every process after the first, checkpointed or not
    assert [r["pid"] for r in meta["resumes"][:4]] == pids[1:]
    assert all({"env_step", "time", "pid", "git_revision", "host"} <= set(r) for r in meta["resumes"])
    assert_same_run(reference, out)


def test_leftover_temporaries_are_removed_by_the_next_process(uninterrupted, tmp_path):
    out = tmp_path / "run"
    crash(out, "checkpoint", "kill", 3)
    leftovers = sorted(p.name for p in out.glob(".checkpoint.pt.*.tmp"))
    assert leftovers, "the kill mid-write left no temporary file: the probe does not test anything"
    foreign = out / "notes.txt"
    foreign.write_text("mine")
    assert runfiles.finish(out, *ARGS).returncode == 0
    assert not list(out.glob(".*.tmp")) and foreign.read_text() == "mine"
    # a complete run with a killed writer's temporary: the refused re-run removes it too
    (out / ".checkpoint.pt.x1y2.tmp").write_bytes(b"\0" * 100)
    refused = runfiles.finish(out, *ARGS)
    assert refused.returncode == 2 and "already holds a complete run" in refused.stderr
    assert not list(out.glob(".*.tmp"))


def test_skip_complete_succeeds_for_the_same_config_only(uninterrupted, tmp_path):
    out = tmp_path / "run"
    assert runfiles.finish(out, *ARGS).returncode == 0
    before = (out / "metadata.json").read_bytes()
    same = runfiles.finish(out, *ARGS, "--skip-complete")
    assert same.returncode == 0 and (out / "metadata.json").read_bytes() == before
    other = [*ARGS[: ARGS.index("--seed") + 1], "2", *ARGS[ARGS.index("--seed") + 2 :]]
    refused = runfiles.finish(out, *other, "--skip-complete")
    assert refused.returncode == 2 and "holds a complete run of another config (run.seed: 1 in the run, 2 now)" in (
        refused.stderr
    )
    (out / "eval.csv").write_text("edited\n")
    damaged = runfiles.finish(out, *ARGS, "--skip-complete")
    assert damaged.returncode == 2 and "eval.csv" in damaged.stderr and "pass --overwrite" in damaged.stderr
