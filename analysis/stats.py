"""Pure metric functions over arrays.

Convention: a score array is `runs x tasks` (seeds first); a curve array is `runs x steps`.
Every random draw comes from a `numpy.random.Generator` built from an explicit seed, so the same
input gives the same interval.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ShiftTest:
    """A two-sample permutation test of a shift in means, inverted into a confidence interval.

    `difference` is mean(candidate) - mean(reference); `low`, `high` bound the shift at
    confidence 1 - 2 alpha (each end a one-sided 1 - alpha bound); `p_worse` is the one-sided
    p-value of "candidate's mean is lower than reference's by more than the margin", `p_better`
    that of "higher by more than the margin".
    """

    difference: float
    low: float
    high: float
    p_worse: float
    p_better: float
    permutations: int
    exact: bool


@functools.cache
def _labellings(n_ref: int, n_cand: int, max_exact: int, samples: int, seed: int) -> tuple[np.ndarray, bool]:
    """`labellings x (n_cand + n_ref)` booleans: which pooled values play the candidate (the
    candidate's own values come first in the pool). Every labelling when there are at most
    `max_exact`, else the observed one plus `samples - 1` uniform draws from a seeded generator."""
    total = n_cand + n_ref
    if math.comb(total, n_cand) <= max_exact:
        chosen = np.array(list(itertools.combinations(range(total), n_cand)), dtype=np.intp)
        exact = True
    else:
        rng = np.random.default_rng(seed)
        draws = np.argsort(rng.random((samples - 1, total)), axis=1)[:, :n_cand]
        chosen = np.concatenate([np.arange(n_cand)[None, :], draws])
        exact = False
    mask = np.zeros((chosen.shape[0], total), dtype=bool)
    np.put_along_axis(mask, chosen, True, axis=1)
    mask.setflags(write=False)
    return mask, exact


def permutation_shift_test(
    reference: np.ndarray,
    candidate: np.ndarray,
    alpha: float,
    margin: float = 0.0,
    max_exact: int = 200_000,
    samples: int = 100_000,
    seed: int = 0,
) -> ShiftTest:
    """Permutation test of the difference in means, with its confidence interval by inversion.

    Under "no change" the runs of both sides are exchangeable, so the test's false-alarm rate is
    at most `alpha` whatever the distribution of returns (exact when every relabelling is
    enumerated; with more than `max_exact`, `samples` seeded draws, p-values counting the
    observed labelling). For a shift d, the test of candidate - d against reference rejects
    "shift >= d" when p <= alpha; the labelling with statistic T, sharing k of the candidate's
    runs, counts toward p exactly when d <= c = (T_obs - T) / (1 - k/m + (m - k)/n), so every
    p-value and both interval ends are order statistics of c (no search).
    """
    x = np.asarray(reference, dtype=float).ravel()
    y = np.asarray(candidate, dtype=float).ravel()
    n, m = x.size, y.size
    if n < 1 or m < 1:
        raise ValueError("a permutation test needs runs on both sides")
    mask, exact = _labellings(n, m, max_exact, samples, seed)
    pooled = np.concatenate([y, x])
    chosen_sum = mask @ pooled
    t = chosen_sum / m - (pooled.sum() - chosen_sum) / n
    t_obs = y.mean() - x.mean()
    k = mask[:, :m].sum(axis=1)
    slope = 1.0 - k / m + (m - k) / n  # > 0 unless the labelling is the observed one
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(slope > 1e-12, (t_obs - t) / slope, np.inf)
    total = c.size
    scale = 1e-9 * max(1.0, float(np.abs(pooled).max()))
    p_worse = float(np.count_nonzero(c >= -margin - scale)) / total
    c_finite_low = np.where(np.isinf(c), -np.inf, c)  # the observed labelling counts on both tails
    p_better = float(np.count_nonzero(c_finite_low <= margin + scale)) / total
    j = int(math.floor(alpha * total))
    if j >= total:
        raise ValueError(f"alpha {alpha} leaves no interval")
    high = float(-np.partition(-c, j)[j])  # the (j+1)-th largest: the largest shift not rejected
    low = float(np.partition(c_finite_low, j)[j])
    return ShiftTest(float(t_obs), low, high, p_worse, p_better, total, exact)
