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
