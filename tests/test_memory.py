"""What a run may allocate under a memory cgroup (containers, SLURM jobs): `mbpo.memory`."""

from __future__ import annotations

from pathlib import Path

from mbpo.memory import _cgroup_room

GIB = 2**30


def cgroup(root: Path, path: str, **files: str) -> None:
    where = root / path.lstrip("/")
    where.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (where / name.replace("_", ".", 1)).write_text(text + "\n")


def test_page_cache_the_kernel_can_drop_counts_as_room(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("0::/job\n")
    root = tmp_path / "sys"
    # 8 GiB limit, 8.5 GiB charged of which 7 GiB is inactive page cache: 6.5 GiB are free to use
    cgroup(
        root,
        "/job",
        memory_max=str(8 * GIB),
        memory_current=str(17 * GIB // 2),
        memory_stat=f"anon 1\ninactive_file {7 * GIB}",
    )
    assert _cgroup_room(proc, root) == 8 * GIB - (17 * GIB // 2 - 7 * GIB)


def test_a_limit_on_an_ancestor_cgroup_counts(tmp_path):
    """SLURM (cgroup v2) limits the job or step; the task's own cgroup says `max`."""
    proc = tmp_path / "cgroup"
    proc.write_text("0::/slurm/job_7/step_0/task_0\n")
    root = tmp_path / "sys"
    cgroup(root, "/slurm/job_7/step_0/task_0", memory_max="max", memory_current=str(GIB))
    cgroup(root, "/slurm/job_7/step_0", memory_max=str(4 * GIB), memory_current=str(3 * GIB))
    cgroup(root, "/slurm/job_7", memory_max=str(16 * GIB), memory_current=str(3 * GIB))
    assert _cgroup_room(proc, root) == GIB


def test_cgroup_v1_and_no_limit(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("5:memory:/docker/abc\n3:cpu:/docker/abc\n")
    root = tmp_path / "sys"
    stat = f"total_inactive_file {GIB}"
    cgroup(
        root,
        "/memory/docker/abc",
        memory_limit_in_bytes=str(2 * GIB),
        memory_usage_in_bytes=str(2 * GIB),
        memory_stat=stat,
    )
    assert _cgroup_room(proc, root) == GIB
    cgroup(root, "/memory/docker/abc", memory_limit_in_bytes=str(2**63 - 4096))  # v1's "no limit"
    assert _cgroup_room(proc, root) is None
    assert _cgroup_room(tmp_path / "missing", root) is None
