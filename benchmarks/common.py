"""Shared helpers of the benchmark scripts (run as `python benchmarks/<script>.py`)."""

from __future__ import annotations

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
