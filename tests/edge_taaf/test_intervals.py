"""edge_taaf.intervals: sample std, t-interval, and the 'met' rule."""
import math

import pytest

from edge_taaf.intervals import interval, meets


def test_three_seeds_match_the_t_table():
    s = interval([0.97, 0.98, 0.99])
    assert s.mean == pytest.approx(0.98)
    assert s.std == pytest.approx(0.01)                      # ddof = 1
    half = 4.302652729911275 * 0.01 / math.sqrt(3)           # t_{0.975, 2}
    assert (s.low, s.high) == (pytest.approx(0.98 - half), pytest.approx(0.98 + half))
    assert s.n == 3 and "n = 3" in s.text()


def test_one_run_has_no_spread():
    s = interval([0.5])
    assert (s.std, s.low, s.high) == (0.0, 0.5, 0.5)


def test_met_needs_three_runs_and_the_mean():
    assert meets(interval([0.97, 0.975, 0.98]), 0.97)
    assert not meets(interval([0.99, 0.99]), 0.97)           # two seeds are not enough
    assert not meets(interval([0.96, 0.97, 0.975]), 0.97)     # the mean falls short


@pytest.mark.parametrize("bad", [[], [float("nan"), 1.0]])
def test_bad_values_are_refused(bad):
    with pytest.raises(ValueError, match="interval"):
        interval(bad)
