"""The gap fraction f that the scorecard and the rVAE chapter use to call a model's order."""

import pytest

from tlr.evaluation.order import gap_fraction


def test_gap_fraction_ends_and_middle():
    assert gap_fraction(6.0, 6.0, 2.0) == 0.0    # at KF-1: nothing of the gap closed
    assert gap_fraction(2.0, 6.0, 2.0) == 1.0    # at KF-2: all of it
    assert gap_fraction(4.0, 6.0, 2.0) == 0.5    # halfway: the second-order threshold
    assert gap_fraction(7.0, 6.0, 2.0) == -0.25  # worse than KF-1: negative


def test_gap_fraction_needs_kf1_above_kf2():
    with pytest.raises(ValueError, match="KF-1's MSE above KF-2's, got 2.0 and 6.0"):
        gap_fraction(4.0, 2.0, 6.0)
