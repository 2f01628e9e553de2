"""Shared helpers of the benchmark scripts (run as `python benchmarks/<script>.py`)."""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np


def timeit(fn: Callable[[], object], repeat: int, number: int) -> float:
    """Median seconds per call over `repeat` rounds of `number` calls, after one warm-up call."""
    fn()
    rounds = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - t) / number)
    return float(np.median(rounds))


def sync(device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so a clock reads its time."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device, repeat: int, number: int) -> float:
    """`timeit` of `fn` on `device`, each call waited for."""

    def run() -> None:
        fn()
        sync(device)

    return timeit(run, repeat, number)


def env_step_seconds(env, agent, repeat: int) -> float:
    """Median seconds per env step with the agent's sampled action (resetting where episodes end)."""
    obs, _ = env.reset(seed=0)

    def step() -> None:
        nonlocal obs
        obs, _, terminated, truncated, _ = env.step(agent.act(obs, deterministic=False))
        if terminated or truncated:
            obs, _ = env.reset()

    return timeit(step, repeat, 200)


def epoch_seconds(model, rows: int, obs_dim: int, device, generator, seeds: int = 1) -> float:
    """Seconds per epoch of one `model.fit` (a `GaussianEnsemble`, its epochs capped) on `rows`
    random transitions (`rows x (obs_dim + act_dim)` inputs, `rows x (1 + obs_dim)` targets), for
    each of `seeds` seeds in lockstep (the model's own number of seeds)."""
    import torch

    x = torch.randn(seeds, rows, model.in_dim, device=device, generator=generator)
    y = torch.randn(seeds, rows, 1 + obs_dim, device=device, generator=generator) * 0.1
    sync(device)
    t = time.perf_counter()
    reports = model.fit(x, y, [generator] * seeds)
    sync(device)
    return (time.perf_counter() - t) / max(r.epochs for r in reports)


def require(parser: argparse.ArgumentParser, *checks: tuple[str, bool, str, object]) -> None:
    """Each check is (flag, ok, what it must be, the value given): the first that fails is one
    line naming the flag, exit status 2 (`mbpo.usage.OneLineParser.error`), before any work."""
    for flag, ok, want, got in checks:
        if not ok:
            parser.error(f"{flag} must be {want}, got {got}")


def threads_check(threads: int) -> tuple[str, bool, str, object]:
    """`require`'s check of a `--threads` value: the training CLI's own bounds (torch takes a C
    int, so a huge value would end in its overflow traceback)."""
    from mbpo.config import MAX_THREADS

    return ("--threads", 1 <= threads <= MAX_THREADS, f"in [1, {MAX_THREADS}]", threads)


def check_device(parser: argparse.ArgumentParser, name: str, choices: tuple[str, ...] = ("cpu", "cuda")) -> None:
    """`--device` is one of `choices`, and cuda only where torch sees a CUDA device: one line,
    exit 2, instead of torch's traceback halfway through."""
    if name not in choices:
        parser.error(f"--device must be one of {', '.join(choices)}, got {name!r}")
    if name == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is visible to torch (use --device cpu)")
