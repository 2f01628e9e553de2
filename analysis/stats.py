"""Pure metric functions over arrays.

Convention: a score array is `runs x tasks` (seeds first); a curve array is `runs x steps`.
Every random draw comes from a `numpy.random.Generator` built from an explicit seed, so the same
input gives the same interval.
"""

from __future__ import annotations

import functools
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


def mean_difference_ci(
    reference: np.ndarray, candidate: np.ndarray, confidence: float, samples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean(candidate) - mean(reference), low, high): the difference of means with its percentile
    bootstrap interval, each side's runs resampled with replacement on its own, from a generator
    seeded with `seed`. Unlike a rank interval it stays wide when most runs tie (a capped return
    that some seeds reach and others do not)."""
    x = np.asarray(reference, dtype=float).ravel()
    y = np.asarray(candidate, dtype=float).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError("a difference of means needs runs on both sides")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a difference of means of non-finite values (inf, nan) means nothing")
    rng = np.random.default_rng(seed)
    diffs = y[rng.integers(0, y.size, (samples, y.size))].mean(1) - x[rng.integers(0, x.size, (samples, x.size))].mean(
        1
    )
    tail = (1.0 - confidence) / 2.0
    return float(y.mean() - x.mean()), float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1.0 - tail))


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


def value_at(steps: np.ndarray, values: np.ndarray, step: float) -> float:
    """A run's curve (`steps`, increasing) at `step` exactly: linear between evaluations; an
    error outside the evaluated range."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if steps.size == 0 or not steps[0] <= step <= steps[-1]:
        raise ValueError(f"step {step:g} is outside the evaluated range {steps[:1]}..{steps[-1:]}")
    return float(np.interp(step, steps, values))


def normalized_auc_until(steps: np.ndarray, values: np.ndarray, end: float) -> float:
    """Area under one run's curve from its first evaluation to `end` exactly (the curve
    interpolated linearly at `end` when no evaluation falls on it), divided by that span."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    at_end = value_at(steps, values, end)
    inside = steps < end
    return float(normalized_auc(np.append(steps[inside], end), np.append(values[inside], at_end)))


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
    """A two-sample rank test of a shift, with the shift's estimate and confidence interval.

    `shift` is the Hodges-Lehmann estimate (the median of all candidate - reference pairwise
    differences); `low`, `high` bound the shift at confidence 1 - 2 alpha (each end a one-sided
    1 - alpha bound); `p_worse` is the one-sided p-value of "the candidate is shifted down by more
    than the margin", `p_better` that of "shifted up by more than the margin".
    """

    shift: float
    low: float
    high: float
    p_worse: float
    p_better: float


@functools.cache
def mann_whitney_cdf(n_ref: int, n_cand: int) -> np.ndarray:
    """P(U <= u), u = 0 .. n_ref * n_cand, for U = #{(i, j): candidate_j > reference_i} when all
    relabellings of the pooled runs are equally likely (no ties), counted exactly: the largest
    run is a candidate's (adding n_ref to U) or a reference's (adding 0)."""
    counts = [[None] * (n_cand + 1) for _ in range(n_ref + 1)]
    for i in range(n_ref + 1):
        for j in range(n_cand + 1):
            if i == 0 or j == 0:
                c = np.zeros(i * j + 1)
                c[0] = 1.0
            else:
                c = np.zeros(i * j + 1)
                from_ref = counts[i - 1][j]
                c[: from_ref.size] += from_ref
                from_cand = counts[i][j - 1]
                c[i : i + from_cand.size] += from_cand
            counts[i][j] = c
    total = counts[n_ref][n_cand]
    cdf = np.cumsum(total) / total.sum()
    cdf.setflags(write=False)
    return cdf


def rank_shift_test(reference: np.ndarray, candidate: np.ndarray, alpha: float, margin: float = 0.0) -> ShiftTest:
    """Wilcoxon-Mann-Whitney test of a shift between two samples, exact, inverted into the
    shift's confidence interval (Hodges-Lehmann / Moses).

    Under "no change" the runs of both sides are exchangeable, so every relabelling is equally
    likely and the test's false-alarm rate is at most `alpha` whatever the distribution of
    returns; being a rank test, one failed seed cannot mask a drop of all the others. With
    D the sorted pairwise differences candidate_j - reference_i and u the largest U whose lower
    tail has probability <= alpha, the interval is [D_(u+1), D_(nm-u)]: exactly the shifts the
    two one-sided tests do not reject.

    Ties are resolved against rejection: a tied pair counts for the candidate in the "worse" test
    and against it in the "better" test, so each p-value is the largest over every way of breaking
    the ties (conservative; the no-ties null distribution is exact for each breaking).
    """
    x = np.asarray(reference, dtype=float).ravel()
    y = np.asarray(candidate, dtype=float).ravel()
    n, m = x.size, y.size
    if n < 1 or m < 1:
        raise ValueError("a rank test needs runs on both sides")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a rank test of non-finite values (inf, nan) means nothing")
    cdf = mann_whitney_cdf(n, m)
    diffs = np.sort((y[None, :] - x[:, None]).ravel())

    # U of "worse": pairs in which the candidate, shifted up by the margin, beats or ties the
    # reference; "better" is the mirror image. A tie always counts against the claim being tested.
    u_worse = int(np.count_nonzero(diffs >= -margin))
    u_better = int(np.count_nonzero(diffs <= margin))
    rejectable = np.flatnonzero(cdf <= alpha)
    k = int(rejectable[-1]) if rejectable.size else -1  # the largest U rejected in the lower tail
    high = float(diffs[n * m - 1 - k]) if k >= 0 else math.inf
    low = float(diffs[k]) if k >= 0 else -math.inf
    return ShiftTest(float(np.median(diffs)), low, high, float(cdf[u_worse]), float(cdf[u_better]))
