"""Means over seeds (or folds) with the sample standard deviation and a Student-t confidence interval.

Every accuracy the project claims is a mean over 3 or more runs, reported with its sample standard
deviation (ddof = 1) and a two-sided 95 % interval from the t-distribution with n - 1 degrees of
freedom: mean +- t_{0.975, n-1} * s / sqrt(n). A target counts as met only when the mean clears it
(:func:`meets`); the interval is printed beside it, never hidden. scipy gives the t quantile; the rest
is three lines, so it is written here rather than pulling in a statistics package.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy import stats

LEVEL = 0.95   # the confidence level of every interval the project reports


@dataclass(frozen=True)
class Interval:
    """Summary of n values (accuracies as fractions, pJ, ...; the unit is the values' own).

    mean, std (sample, ddof = 1; 0.0 for n = 1), n, and the 95 % t-interval [low, high]
    (equal to the mean for n = 1: one run says nothing about its spread)."""

    mean: float
    std: float
    n: int
    low: float
    high: float
    level: float = LEVEL

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self, scale: float = 100.0, unit: str = " %", digits: int = 2) -> str:
        """'97.33 ± 0.61 % (95 % CI 96.7-98.0, n = 3)' with values multiplied by ``scale``."""
        f = lambda x: f"{scale * x:.{digits}f}"  # noqa: E731
        return (f"{f(self.mean)} ± {f(self.std)}{unit} (95 % CI {f(self.low)}-{f(self.high)}, n = {self.n})")


def interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean, sample standard deviation and the two-sided t-interval of ``values`` (at least one finite number)."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("interval: no values (expected one number per seed or fold)")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError(f"interval: values must be finite numbers, got {xs}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval: level must lie in (0, 1), got {level}")
    n = len(xs)
    mean = sum(xs) / n
    if n == 1:
        return Interval(mean, 0.0, 1, mean, mean, level)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return Interval(mean, std, n, mean - half, mean + half, level)


def meets(summary: Interval, target: float, min_runs: int = 3) -> bool:
    """A target is met when at least ``min_runs`` runs were made and their mean reaches it."""
    return summary.n >= min_runs and summary.mean >= target
