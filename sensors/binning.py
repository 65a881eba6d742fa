"""Binning encoder: event streams -> spike tensors with T fixed time bins.

Camera events (CAMERA_DTYPE) -> (T, P, H, W); audio / cochlea events (AUDIO_DTYPE, x = channel)
-> (T, C). Times are microseconds.

Bin index (default window, equal to ``tonic.transforms.ToFrame(sensor_size, n_time_bins=T)``):
    t0 = t_first, w = (t_last - t0) // T                     (integer microseconds)
    bin(t) = (t - t0) // w  for t < t0 + T * w
ToFrame drops every event at or after t0 + T * w: always those at t_last, plus a tail of
(t_last - t0) % T microseconds before it, and all events when t_last - t0 < T (w = 0).
Default here (``drop_last_timestamp=False``) keeps them: that tail goes to the last bin, and w is
raised to 1 us when t_last - t0 < T, so no event is lost. ``drop_last_timestamp=True`` reproduces
ToFrame exactly.

Explicit window (``t_start`` and ``t_end`` given): events in [t_start, t_end) fall in
bin = (t - t_start) * T // (t_end - t_start) (exact integer bins of width (t_end - t_start) / T);
events outside are dropped. When (t_end - t_start) % T == 0 this equals
``ToFrame(sensor_size, time_window=(t_end - t_start) // T, start_time=t_start, end_time=t_end)``.

Fields are read as exact integers (``sensors.events.integer_field``): whole-valued float time stamps
bin like the same int64 values; NaN, inf or fractional values raise EventStreamError naming the
first bad event (they are never truncated).
"""
from __future__ import annotations

import numbers

import numpy as np
from numba import njit

from sensors.events import EventStreamError, integer_field, validate_events

_INT64_MAX = np.iinfo(np.int64).max
_RAW_DTYPE = np.int32  # counts when clip is None/0 or above 255


# Numba, not Tonic/numpy: ToFrame slices in Python and calls np.add.at per slice, and numpy's
# bincount plus validate_events need several N-sized temporaries and passes. This is one O(N)
# pass that checks the stream contract, walks the bin edges (t is sorted) and saturates at clip.
@njit(cache=True, nogil=True)
def _accumulate(t, x, y, p, edges, keep_tail, stride_b, stride_p, stride_y, x_size, y_size, p_max, clip, out):
    """Add events into flat ``out``; return -1, or the index of the first event breaking the contract."""
    n_bins = edges.shape[0] - 1
    prev = 0
    b = 0
    for i in range(t.shape[0]):
        ti, xi, yi, pi = t[i], x[i], y[i], p[i]
        if ti < prev or xi < 0 or xi >= x_size or yi < 0 or yi >= y_size or pi < 0 or pi > p_max:
            return i  # checked before any write: nothing out of bounds
        prev = ti
        if ti < edges[0]:
            continue
        while b < n_bins and ti >= edges[b + 1]:
            b += 1
        if b == n_bins and not keep_tail:
            continue
        cell = min(b, n_bins - 1) * stride_b + pi * stride_p + yi * stride_y + xi
        if out[cell] < clip:
            out[cell] += 1
    return -1


def bin_camera_events(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    n_time_bins: int,
    clip: int | None = 1,
    t_start: int | None = None,
    t_end: int | None = None,
    drop_last_timestamp: bool = False,
) -> np.ndarray:
    """Bin camera events (x, y, t, p) into a (T, P, H, W) spike tensor.

    Args:
        events: CAMERA_DTYPE structured array, t sorted, microseconds.
        sensor_size: Tonic's (W, H, P). With P = 1 both polarities are merged into channel 0
            (ToFrame would raise when both are present).
        n_time_bins: T >= 1.
        clip: per-cell count cap; 1 gives binary spikes. None or 0 gives raw counts.
        t_start, t_end: explicit window [t_start, t_end) in us (both or neither); see module doc.
        drop_last_timestamp: reproduce ToFrame exactly (default window only); see module doc.

    Returns:
        (T, P, H, W) array, uint8 when 1 <= clip <= 255, else int32 counts.

    Raises:
        EventStreamError: the stream breaks the contract of :func:`sensors.events.validate_events`.
        ValueError: a bad option (message names it).
    """
    w, h, n_pol = _check_sensor_size(sensor_size)
    source = _check_fields(events, (w, h, n_pol), "bin_camera_events", ("t", "x", "y", "p"))
    out = _bin(events, (w, h, n_pol), n_time_bins, clip, t_start, t_end, drop_last_timestamp, "bin_camera_events",
               x=integer_field(events, "x", source), y=integer_field(events, "y", source),
               p=integer_field(events, "p", source), frame_size=n_pol * h * w, stride_p=h * w if n_pol > 1 else 0,
               stride_y=w, y_size=h)
    return out.reshape(int(n_time_bins), n_pol, h, w)


def bin_audio_events(
    events: np.ndarray,
    n_channels: int,
    n_time_bins: int,
    clip: int | None = 1,
    t_start: int | None = None,
    t_end: int | None = None,
    drop_last_timestamp: bool = False,
) -> np.ndarray:
    """Bin audio / cochlea events (t, x = channel, p) into a (T, C) spike tensor.

    Polarity is ignored (both ON/OFF flags count on the channel). Same window, clip and
    ``drop_last_timestamp`` rules as :func:`bin_camera_events`; the Tonic equivalent is
    ``ToFrame((C, 1, 1), n_time_bins=T)(events)[:, 0, :]``.

    Returns:
        (T, C) array, uint8 when 1 <= clip <= 255, else int32 counts.
    """
    if isinstance(n_channels, bool) or not isinstance(n_channels, numbers.Integral) or n_channels < 1:
        raise ValueError(f"bin_audio_events: n_channels must be an integer >= 1, got {n_channels!r}")
    c = int(n_channels)
    source = _check_fields(events, (c, 1, 1), "bin_audio_events", ("t", "x"))
    x = integer_field(events, "x", source)
    p = integer_field(events, "p", source) if "p" in events.dtype.names else np.zeros(len(events), np.int64)
    # y does not index audio tensors: pass x with a zero stride instead of allocating zeros.
    out = _bin(events, (c, 1, 1), n_time_bins, clip, t_start, t_end, drop_last_timestamp, "bin_audio_events",
               x=x, y=x, p=p, frame_size=c, stride_p=0, stride_y=0, y_size=c)
    return out.reshape(int(n_time_bins), c)


def _check_fields(events, sensor_size, fn, fields) -> str:
    """Structure checks only (cheap); the per-event contract is checked inside the kernel. Returns
    the source name for error messages."""
    source = f"{fn}(events)"
    if isinstance(events, np.ndarray) and events.ndim != 1:
        raise EventStreamError(f"{source}: expected a 1-D event array, got shape {events.shape}")
    validate_events(events[:0] if isinstance(events, np.ndarray) else events, sensor_size, source)
    missing = [f for f in fields if f not in events.dtype.names]
    if missing:
        raise EventStreamError(f"{source}: event field(s) {missing} missing (fields: {events.dtype.names})")
    return source


def _bin(events, sensor_size, n_time_bins, clip, t_start, t_end, drop_last_timestamp, fn,
         *, x, y, p, frame_size, stride_p, stride_y, y_size):
    """Check options, compute the T + 1 bin edges (us) and run the kernel; returns the flat tensor.
    x, y, p: int64 field arrays (``integer_field``)."""
    if isinstance(n_time_bins, bool) or not isinstance(n_time_bins, numbers.Integral) or n_time_bins < 1:
        raise ValueError(f"{fn}: n_time_bins must be an integer >= 1, got {n_time_bins!r}")
    n_bins = int(n_time_bins)
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, numbers.Integral) or clip < 0):
        raise ValueError(f"{fn}: clip must be None or an integer >= 0, got {clip!r}")
    raw = clip is None or clip == 0
    dtype = _RAW_DTYPE if raw or clip > 255 else np.uint8
    cap = np.iinfo(dtype).max if raw else min(int(clip), np.iinfo(dtype).max)
    out = np.zeros(n_bins * frame_size, dtype=dtype)

    if (t_start is None) != (t_end is None):
        raise ValueError(f"{fn}: give both t_start and t_end (explicit window) or neither, got {t_start=}, {t_end=}")
    t = integer_field(events, "t", f"{fn}(events)")   # exact: NaN, inf or fractional times raise here
    k = np.arange(n_bins + 1, dtype=np.int64)
    if t_start is not None:
        if drop_last_timestamp:
            raise ValueError(f"{fn}: drop_last_timestamp applies to the default window only, not t_start/t_end")
        for name, v in (("t_start", t_start), ("t_end", t_end)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{fn}: {name} must be an integer >= 0 (microseconds), got {v!r}")
        lo, span = int(t_start), int(t_end) - int(t_start)
        if span <= 0:
            raise ValueError(f"{fn}: t_end ({int(t_end)} us) must be greater than t_start ({lo} us)")
        if span * n_bins > _INT64_MAX - n_bins:
            raise ValueError(f"{fn}: window {span} us x {n_bins} bins overflows int64 bin arithmetic")
        edges = lo + (k * span + n_bins - 1) // n_bins  # edge k = t_start + ceil(k * span / T)
        keep_tail = False
    else:
        lo = int(t[0]) if t.size else 0
        width = (int(t[-1]) - lo) // n_bins if t.size else 1
        if not drop_last_timestamp:
            width = max(width, 1)
        edges = lo + k * width
        keep_tail = not drop_last_timestamp
    bad = _accumulate(t, x, y, p, edges, keep_tail, frame_size, stride_p, stride_y, sensor_size[0], y_size, 1, cap, out)
    if bad >= 0:
        source = f"{fn}(events)"
        validate_events(events, sensor_size, source)  # raises with the contract's message
        raise EventStreamError(f"{source}: event {bad} breaks the event-stream contract")
    return out


def _check_sensor_size(sensor_size) -> tuple[int, int, int]:
    try:
        w, h, n_pol = (int(v) for v in sensor_size)
        ok = all(v == int(v) for v in sensor_size) and min(w, h, n_pol) >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"sensor_size must be Tonic's (W, H, P) with positive integers, got {sensor_size!r}")
    return w, h, n_pol
