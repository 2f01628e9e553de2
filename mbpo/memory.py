"""Memory a run's settings need, checked against what the machine has before anything is written.

The replay buffers are allocated whole when a run starts (`mbpo.buffer.ReplayBuffer`), and every
policy update and model rollout draws a batch from them, so settings too large for the machine
(a buffer of 10**11 rows, a batch of 10**11 rows) are known before the first env step. `check`
refuses them with one line naming the setting and the bytes; an allocation that still fails later
(other processes took the memory) is reported by `mbpo.launch` as one line too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mbpo.config import TrainConfig
from mbpo.transition import Layout

if TYPE_CHECKING:
    import torch

FLOAT32_BYTES, INDEX_BYTES = 4, 8


class NotEnoughMemory(MemoryError):
    """The settings need more memory than the machine has available."""


def buffer_bytes(cfg: TrainConfig, obs_dim: int, act_dim: int) -> int:
    """Bytes of the run's replay buffers at full capacity (the model buffer's too, for MBPO)."""
    return sum(size for _, size in demands(cfg, obs_dim, act_dim)[0])


def demands(cfg: TrainConfig, obs_dim: int, act_dim: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(buffers, batches): the bytes of the allocations that scale with the settings, each with
    the settings that size it. The buffers live for the whole run; one batch at a time is drawn
    while they do (its sampled indices and gathered rows), so buffers plus the largest batch is a
    lower bound on the run's peak memory (networks, activations and the interpreter come on top)."""
    row = Layout(obs_dim, act_dim).row_dim * FLOAT32_BYTES
    real_rows = min(cfg.sac.buffer_size, cfg.run.total_steps)
    buffers = [
        (
            f"the replay buffer (min(buffer_size {cfg.sac.buffer_size}, total_steps {cfg.run.total_steps}) "
            f"= {real_rows} rows of {row} bytes)",
            real_rows * row,
        )
    ]
    batches = [(f"a policy batch (batch_size {cfg.sac.batch_size} rows)", cfg.sac.batch_size * (row + INDEX_BYTES))]
    if cfg.run.algo == "mbpo":
        m = cfg.mbpo
        model_rows = m.model_buffer_size()
        buffers.append(
            (
                f"the model buffer (model_retain_epochs {m.model_retain_epochs} x epoch_length {m.epoch_length} "
                f"// model_train_freq {m.model_train_freq} x rollout_batch_size {m.rollout_batch_size} "
                f"x the longest rollout_length {m.max_rollout_length()} = {model_rows} rows of {row} bytes)",
                model_rows * row,
            )
        )
        batches.append(
            (
                f"a rollout batch (rollout_batch_size {m.rollout_batch_size} start states)",
                m.rollout_batch_size * (row + INDEX_BYTES),
            )
        )
    return buffers, batches


def _meminfo() -> dict[str, int]:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            words = rest.split()
            if words and words[0].isdigit():
                out[key] = int(words[0]) * (1024 if words[1:] == ["kB"] else 1)
    except OSError:
        pass
    return out


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _stat(path: Path, key: str) -> int:
    """One counter of a cgroup's memory.stat (0 where absent)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _room(limit: int | None, used: int | None, reclaimable: int) -> int | None:
    if limit is None or used is None or limit >= 2**62:  # v1 writes "no limit" as ~2**63
        return None
    return max(limit - max(used - reclaimable, 0), 0)


def _cgroup_room(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes this process's memory cgroups (a SLURM job's, a container's) still allow, if limited:
    the smallest room of the process's cgroup and its ancestors (SLURM limits the job or step, not
    the task's own cgroup), counting the page cache the kernel can drop (inactive files) as free."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    rooms = []
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":  # cgroup v2
            base, names, stat_key = root, ("memory.max", "memory.current"), "inactive_file"
        elif "memory" in controllers.split(","):  # cgroup v1
            base = root / "memory"
            names, stat_key = ("memory.limit_in_bytes", "memory.usage_in_bytes"), "total_inactive_file"
        else:
            continue
        where = base / path.lstrip("/")
        while True:
            room = _room(
                _read_int(where / names[0]), _read_int(where / names[1]), _stat(where / "memory.stat", stat_key)
            )
            if room is not None:
                rooms.append(room)
            if where == base or base not in where.parents:
                break
            where = where.parent
    return min(rooms) if rooms else None


def available(device: "torch.device") -> tuple[int, str] | None:
    """(bytes, where the number comes from) of memory a run on `device` can still allocate, or None
    where it cannot be told."""
    if device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return free, f"free on {device}"
    if device.type != "cpu":
        return None
    info = _meminfo()
    found = []
    if "MemAvailable" in info:
        found.append((info["MemAvailable"] + info.get("SwapFree", 0), "MemAvailable + SwapFree in /proc/meminfo"))
    room = _cgroup_room()
    if room is not None:
        found.append((room, "left under this process's cgroup memory limit"))
    return min(found) if found else None


def human(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check(cfg: TrainConfig, obs_dim: int, act_dim: int, device: "torch.device", seeds: int = 1) -> None:
    """`NotEnoughMemory` naming the largest allocation when the buffers and the largest batch
    (of `seeds` seeds in lockstep: each has its own) need more than `device` has available;
    nothing where availability cannot be told."""
    buffers, batches = demands(cfg, obs_dim, act_dim)
    needed = seeds * (sum(b for _, b in buffers) + max(b for _, b in batches))
    room = available(device)
    if room is None or needed <= room[0]:
        return
    name, largest = max([*buffers, *batches], key=lambda item: item[1])
    raise NotEnoughMemory(
        f"not enough memory for these settings: {name} needs {largest} bytes ({human(largest)}), "
        f"and the buffers with the largest batch{f' of {seeds} seeds' if seeds > 1 else ''} at least {needed} bytes "
        f"({human(needed)}), "
        f"more than the {room[0]} bytes ({human(room[0])}) available ({room[1]})"
    )


def is_allocation_failure(exc: BaseException) -> bool:
    """Whether `exc` is a failed allocation: Python's `MemoryError`, torch's out-of-memory error,
    or the `RuntimeError` torch's CPU allocator raises ("can't allocate memory")."""
    import torch

    if isinstance(exc, MemoryError) or isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # torch's allocator messages start with "[enforce fail at alloc_cpu.cpp:...] ."
    if text.startswith("[enforce fail") and "] ." in text:
        text = text.split("] .", 1)[1].strip()
    return (text.splitlines() or [type(exc).__name__])[0]
