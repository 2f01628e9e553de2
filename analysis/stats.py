"""Pure metric functions over arrays. Convention: a score array is `runs x ...` (seeds first)."""

from __future__ import annotations

import numpy as np


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of all scores, cutting int(n / 4) from each
    end of the sorted scores (as `scipy.stats.trim_mean(x, 0.25)` and rliable do)."""
    flat = np.sort(np.asarray(scores, dtype=float).ravel())
    if flat.size == 0:
        raise ValueError("iqm of an empty array")
    cut = int(0.25 * flat.size)
    return float(flat[cut : flat.size - cut].mean())
