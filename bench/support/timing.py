"""Timing helpers shared by bench/encoders.py and bench/train_step.py.

A helper module, not a benchmark: bench/run_all.py runs only the scripts named in its BENCHES tuple.

Method (the machine is shared, so absolute times drift; ratios must not):
- every thread pool is pinned to the same count for both sides (:func:`pin_threads`): torch's
  intra-op pool and every BLAS / OpenMP pool threadpoolctl finds (the project's Numba kernels are
  serial, none uses parallel=True, so Numba's pool is never started);
- the contenders run interleaved, one timed unit each per round, in an order rotated every round
  (A B, B A, A B, ...), so neither always runs first (warm caches, a page-faulted allocator);
- untimed warm-up rounds first (Numba compile or cache load, allocator growth, lazy imports);
- each timed unit lasts about the same for both sides (:func:`repeats_for`: a fast function is
  called k times in a row per unit, k chosen so the unit takes ~``target_s``). With one call per
  unit, a ~1 ms call and a ~100 ms call meet the scheduler's time slicing differently (the short
  one often runs inside one slice, the long one never does), and the ratio swung with the load:
  measured on this 2-core machine, four runs of one-call units (two with two extra busy-loop
  processes) read 10.5x-31.1x for the 100k-event binning and 17.6x-37.8x for the cochlea, while
  0.2 s units in the same runs read 12.5x-13.2x and 31.8x-34.7x;
- the garbage collector is off while timing (a collection otherwise lands in one side's call);
- a ratio is computed per round, from two units run back to back, and the reported figure is the
  median of the per-round ratios with its spread (quartiles, min, max): load that comes and goes
  hits both calls of a round alike, and the median ignores the rounds it does not.
"""
from __future__ import annotations

import contextlib
import gc
import math
import statistics
import sys
import time
from collections.abc import Callable


def pin_threads(n: int) -> dict:
    """Limit torch's intra-op pool (if torch is imported) and every BLAS / OpenMP pool to ``n`` threads.

    Returns the settings: {"threads": n, "pools": [library names limited], "torch_threads": n}.
    """
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(n)  # process-wide, kept until exit
    pinned = {"threads": n, "pools": sorted({f"{p['internal_api']}:{p['num_threads']}" for p in threadpool_info()})}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(n)
        pinned["torch_threads"] = torch.get_num_threads()
    return pinned


@contextlib.contextmanager
def gc_paused():
    """Collect once, then keep the garbage collector off for the block."""
    gc.collect()
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def repeats_for(fns: dict[str, Callable[[], object]], target_s: float, probes: int = 3) -> dict[str, int]:
    """Calls per timed unit for each function so that one unit takes about ``target_s`` seconds.

    Each function is called ``probes`` times (these calls also warm it up); the fastest call sets
    k = ceil(target_s / fastest), at least 1.
    """
    reps = {}
    with gc_paused():
        for name, fn in fns.items():
            fastest = min(_unit_seconds(fn, 1) for _ in range(probes))
            reps[name] = max(1, math.ceil(target_s / max(fastest, 1e-9)))
    return reps


def _unit_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Wall seconds of ``repeats`` back-to-back calls of ``fn``."""
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return time.perf_counter() - start


def interleaved_times(fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 1,
                      repeats: dict[str, int] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each function, ``rounds`` timed rounds after ``warmup`` untimed ones.

    Every round runs one unit of each function (``repeats[name]`` back-to-back calls, default 1);
    round r starts at function r mod len(fns) (rotation). Returns {name: [seconds per call in
    round 0, round 1, ...]} (unit time / calls per unit).
    """
    names = list(fns)
    repeats = repeats or {}
    times: dict[str, list[float]] = {name: [] for name in names}
    with gc_paused():
        for r in range(warmup + rounds):
            for k in range(len(names)):
                name = names[(r + k) % len(names)]
                reps = repeats.get(name, 1)
                elapsed = _unit_seconds(fns[name], reps)
                if r >= warmup:
                    times[name].append(elapsed / reps)
    return times


def ratio_stats(numerator: list[float], denominator: list[float], digits: int = 4) -> dict:
    """Per-round ratios numerator[i] / denominator[i]: median, quartiles, min, max, count.

    ``spread_rel`` is (q3 - q1) / median, the interquartile range relative to the median.
    """
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError("ratio_stats: need two equally long, non-empty lists of times")
    ratios = sorted(a / b for a, b in zip(numerator, denominator))
    med = statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else (med, med, med)
    return {"median": round(med, digits), "q1": round(q1, digits), "q3": round(q3, digits),
            "min": round(ratios[0], digits), "max": round(ratios[-1], digits), "pairs": len(ratios),
            "spread_rel": round((q3 - q1) / med, digits)}


def median_ms(seconds: list[float]) -> float:
    """Median of a list of seconds, in milliseconds."""
    return 1e3 * statistics.median(seconds)
