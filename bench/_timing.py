"""Timing helpers shared by the bench scripts: one timed call, and the median of repeated calls."""
from __future__ import annotations

import statistics
import time


def timed(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` once; return (seconds, result)."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def median_seconds(fn, repeats: int, *args, **kwargs) -> float:
    """Median wall time (s) of ``repeats`` calls; call once before to exclude compile / warm-up."""
    return statistics.median(timed(fn, *args, **kwargs)[0] for _ in range(repeats))
