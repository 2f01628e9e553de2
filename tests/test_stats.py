"""Statistics on hand-computable arrays."""

import numpy as np
import pytest

from analysis.stats import (
    interpolate_curve,
    iqm,
    mean_difference_ci,
    normalized_auc,
    normalized_auc_until,
    probability_of_improvement,
    steps_to_threshold,
    stratified_bootstrap_ci,
    value_at,
)


def test_iqm_of_known_matrix():
    # 8 scores: cut 2 from each end of 1..8 -> mean(3, 4, 5, 6) = 4.5, whatever the shape
    scores = np.array([[8, 1, 3, 2], [7, 6, 5, 4]])
    assert iqm(scores) == 4.5


def test_iqm_ignores_outliers_and_equals_mean_for_small_n():
    assert iqm([1.0, 2.0, 3.0, 4.0, 1000.0]) == 3.0  # cut 1 of 5 at each end
    assert iqm([5.0, 7.0, 9.0]) == 7.0  # int(0.75) = 0: nothing cut


def test_iqm_of_empty_is_an_error():
    with pytest.raises(ValueError):
        iqm([])


def test_seeded_bootstrap_gives_the_same_interval_twice_and_another_seed_differs():
    scores = np.random.default_rng(0).normal(size=(10, 2))
    a = stratified_bootstrap_ci(scores, samples=500, seed=7)
    b = stratified_bootstrap_ci(scores, samples=500, seed=7)
    c = stratified_bootstrap_ci(scores, samples=500, seed=8)
    assert a == b and a != c and a[0] < iqm(scores) < a[1]


def test_bootstrap_is_stratified_by_task():
    """With two tasks at very different levels, every resample keeps one run of each task per
    draw: the mean of a resample never leaves the range of per-task means mixes."""
    scores = np.column_stack((np.zeros(5), np.full(5, 100.0)))
    lo, hi = stratified_bootstrap_ci(scores, statistic=np.mean, samples=200, seed=0)
    assert lo == hi == 50.0  # an unstratified resample could draw only zeros or only hundreds


def test_bootstrap_covers_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(123)
    trials, covered = 200, 0
    for trial in range(trials):
        sample = rng.normal(loc=3.0, scale=2.0, size=(30,))
        lo, hi = stratified_bootstrap_ci(sample, statistic=np.mean, samples=400, confidence=0.95, seed=trial)
        covered += lo <= 3.0 <= hi
    # percentile bootstrap of a mean at n=30 covers slightly under 95%; 200 trials: +-3% noise
    assert 0.88 <= covered / trials <= 0.99


def test_probability_of_improvement_by_hand():
    assert probability_of_improvement([3, 4], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [3, 4]) == 0.0
    # pairs (1,1) tie, (1,2) loss, (3,1) win, (3,2) win: (2 + 0.5) / 4
    assert probability_of_improvement([1, 3], [1, 2]) == 0.625


def test_auc_and_threshold_by_hand():
    steps = np.array([0, 100, 300])
    curve = np.array([[0.0, 10.0, 10.0], [-5.0, -5.0, 20.0]])
    # trapezoids: (5*100 + 10*200) / 300 and (-5*100 + 7.5*200) / 300
    np.testing.assert_allclose(normalized_auc(steps, curve), [2500 / 300, 1000 / 300])
    np.testing.assert_array_equal(steps_to_threshold(steps, curve, 10.0), [100.0, 300.0])
    assert np.isnan(steps_to_threshold(steps, curve, 50.0)).all()


def test_interpolation_onto_a_grid():
    out = interpolate_curve([0, 200], [0.0, 10.0], [0, 100, 200, 300])
    np.testing.assert_array_equal(out[:3], [0.0, 5.0, 10.0])
    assert np.isnan(out[3])


def test_value_and_area_at_a_budget_between_evaluations_are_interpolated_exactly():
    steps, values = np.array([0, 200, 400]), np.array([-1000.0, -600.0, -200.0])
    # budget 300: halfway between 200 and 400, not the value at 200 (the grid point below)
    assert value_at(steps, values, 300) == -400.0
    assert value_at(steps, values, 400) == -200.0
    # trapezoids 0-200 (mean -800) and 200-300 (mean -500): (-800 * 200 - 500 * 100) / 300
    assert normalized_auc_until(steps, values, 300) == pytest.approx(-210000 / 300)
    assert normalized_auc_until(steps, values, 400) == pytest.approx(normalized_auc(steps, values))
    with pytest.raises(ValueError, match="outside the evaluated range"):
        value_at(steps, values, 500)


def test_ties_in_the_rank_test_are_resolved_against_rejection():
    """4 v 4 runs, one tied pair, no candidate above any reference: U is 0 or 1 depending on
    how the tie is broken; the conservative p-value is P(U <= 1) = 2/70, not P(U <= 0) = 1/70."""
    from analysis.stats import rank_shift_test

    ref, cand = [1.0, 2.0, 3.0, 4.0], [-1.0, -0.5, 0.0, 1.0]
    test = rank_shift_test(ref, cand, alpha=1 / 70)
    assert test.p_worse == pytest.approx(2 / 70)  # the old code floored U = 0.5 to 0: p = 1/70, rejected
    assert not test.p_worse <= 1 / 70
    # and the mirror image: ties never help "better" either
    assert rank_shift_test(cand, ref, alpha=1 / 70).p_better == pytest.approx(2 / 70)
    # all tied: neither direction can be claimed
    same = rank_shift_test([5.0] * 4, [5.0] * 4, alpha=0.05)
    assert same.p_worse == 1.0 and same.p_better == 1.0


def test_rank_test_rejects_non_finite_values():
    from analysis.stats import rank_shift_test

    with pytest.raises(ValueError, match="non-finite"):
        rank_shift_test([1.0, 2.0], [float("-inf"), 1.0], alpha=0.05)


def test_difference_of_means_interval_is_seeded_and_covers_at_about_the_nominal_rate():
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 5.0, 7.0])
    diff, low, high = mean_difference_ci(x, y, 0.9, samples=500, seed=1)
    assert diff == pytest.approx(2.5) and low < diff < high
    assert mean_difference_ci(x, y, 0.9, samples=500, seed=1) == (diff, low, high)
    assert mean_difference_ci(x, y, 0.9, samples=500, seed=2) != (diff, low, high)
    rng = np.random.default_rng(7)
    covered = 0
    for trial in range(200):
        a, b = rng.normal(0.0, 1.0, 25), rng.normal(1.0, 2.0, 25)
        _, lo, hi = mean_difference_ci(a, b, 0.9, samples=400, seed=trial)
        covered += lo <= 1.0 <= hi
    assert 0.82 <= covered / 200 <= 0.96  # percentile bootstrap at n=25 covers a little under 90%
    with pytest.raises(ValueError, match="non-finite"):
        mean_difference_ci(x, np.array([1.0, np.nan]), 0.9)


def test_ties_at_a_cap_leave_the_means_interval_wide_where_the_rank_interval_collapses():
    """7 of 10 and 8 of 10 runs at a capped 1000, the others near 150: the rank interval is
    exactly 0, while the difference of means is uncertain by hundreds."""
    from analysis.stats import rank_shift_test

    ours = np.array([1000.0] * 7 + [148.0, 181.0, 120.0])
    theirs = np.array([1000.0] * 8 + [160.0, 140.0])
    test = rank_shift_test(ours, theirs, 0.05)
    assert (test.low, test.high) == (0.0, 0.0)
    _, low, high = mean_difference_ci(ours, theirs, 0.9, samples=2000, seed=0)
    assert low < -100 and high > 100
