"""Pure metric functions over arrays.

Convention: a score array is `runs x tasks` (seeds first); a curve array is `runs x steps`.
Every random draw comes from a `numpy.random.Generator` built from an explicit seed, so the same
input gives the same interval.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of all scores, cutting int(n / 4) from each
    end of the sorted scores (as `scipy.stats.trim_mean(x, 0.25)` and rliable do)."""
    flat = np.sort(np.asarray(scores, dtype=float).ravel())
    if flat.size == 0:
        raise ValueError("iqm of an empty array")
    cut = int(0.25 * flat.size)
    return float(flat[cut : flat.size - cut].mean())


def stratified_bootstrap_ci(
    scores: np.ndarray,
    statistic: Callable[[np.ndarray], float] = iqm,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile confidence interval of `statistic` over `scores` (`runs x tasks`, or `runs`).

    Stratified: each resample draws runs with replacement within every task (column)
    separately, as rliable does, from a generator seeded with `seed`.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        scores = scores[:, None]
    runs, tasks = scores.shape
    if runs == 0:
        raise ValueError("bootstrap of an empty array")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, runs, size=(samples, runs, tasks))
    resampled = np.take_along_axis(scores[None, :, :].repeat(samples, axis=0), index, axis=1)
    stats = np.array([statistic(r) for r in resampled])
    alpha = (1.0 - confidence) / 2.0
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1.0 - alpha))


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) for a random run of each: the Mann-Whitney U statistic over all pairs, ties
    counting one half (rliable's probability of improvement for one task)."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError("probability of improvement needs runs on both sides")
    greater = (x[:, None] > y[None, :]).mean()
    ties = (x[:, None] == y[None, :]).mean()
    return float(greater + 0.5 * ties)


def normalized_auc(steps: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Area under return-vs-steps curves divided by the step span: the average return over the
    budget, in return units. `curve` is `runs x steps` (or `steps`)."""
    steps = np.asarray(steps, dtype=float)
    curve = np.asarray(curve, dtype=float)
    if steps.size < 2:
        raise ValueError("an area needs at least two steps")
    widths = np.diff(steps)
    heights = (curve[..., 1:] + curve[..., :-1]) / 2.0
    return (heights * widths).sum(axis=-1) / (steps[-1] - steps[0])


def steps_to_threshold(steps: np.ndarray, curve: np.ndarray, threshold: float) -> np.ndarray:
    """First step at which each curve (`runs x steps`, or `steps`) reaches `threshold`; NaN
    where it never does."""
    steps = np.asarray(steps, dtype=float)
    reached = np.asarray(curve, dtype=float) >= threshold
    first = np.argmax(reached, axis=-1)
    return np.where(reached.any(axis=-1), steps[first], np.nan)


def interpolate_curve(steps: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A run's curve on a common grid: linear between evaluations, NaN outside its range."""
    steps, values, grid = (np.asarray(a, dtype=float) for a in (steps, values, grid))
    out = np.interp(grid, steps, values)
    out[(grid < steps.min()) | (grid > steps.max())] = np.nan
    return out
