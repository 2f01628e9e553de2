import numpy as np
import pytest

from analysis.stats import iqm


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
