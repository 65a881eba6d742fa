"""Event-stream dtypes and the one validation function every reader and generator uses.

Camera events follow Tonic's N-MNIST dtype (x, y, t, p); cochlea / audio events follow
Tonic's SHD dtype (t, x, p) where x is the frequency channel. Times are microseconds.
"""
from __future__ import annotations

import numpy as np

#: Event-camera stream dtype, identical to ``tonic.datasets.NMNIST.dtype``. t in microseconds.
CAMERA_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
#: Cochlea / audio spike dtype, identical to ``tonic.datasets.SHD.dtype``. x = channel index.
AUDIO_DTYPE = np.dtype([("t", "<i8"), ("x", "<i8"), ("p", "<i8")])


class EventStreamError(ValueError):
    """An event stream breaks the format contract; the message names the source and the problem."""


def make_events(dtype: np.dtype, **fields: np.ndarray) -> np.ndarray:
    """Build a structured event array of ``dtype`` from equal-length field arrays."""
    n = len(next(iter(fields.values()))) if fields else 0
    out = np.empty(n, dtype=dtype)
    for name in dtype.names:
        out[name] = fields[name]
    return out


def validate_events(events: np.ndarray, sensor_size: tuple[int, int, int], source: str = "<events>") -> np.ndarray:
    """Check an event stream against the format contract and return it unchanged.

    Args:
        events: structured array with at least ``t`` and ``x`` fields (``y`` and ``p`` when present
            are checked too). ``t`` in microseconds.
        sensor_size: Tonic's (W, H, P) tuple; P is the number of polarities (1 or 2).
        source: the file or generator name used in error messages.

    Raises:
        EventStreamError: not a structured array, times negative or unsorted, coordinates outside
            the sensor, polarity outside {0, 1} (or outside {0} for a 1-polarity sensor).

    An empty stream is valid (zero spikes).
    """
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise EventStreamError(f"{source}: expected a numpy structured array of events, got {type(events).__name__}")
    names = events.dtype.names
    for required in ("t", "x"):
        if required not in names:
            raise EventStreamError(f"{source}: event field '{required}' is missing (fields: {names})")
    if events.size == 0:
        return events
    w, h, n_pol = (int(v) for v in sensor_size)
    t = events["t"]
    if t.min() < 0:
        i = int(np.argmin(t))
        raise EventStreamError(f"{source}: negative timestamp {int(t[i])} us at event {i}; times must be >= 0")
    if t.size > 1:
        bad = np.flatnonzero(np.diff(t) < 0)
        if bad.size:
            i = int(bad[0])
            raise EventStreamError(
                f"{source}: timestamps not sorted: event {i + 1} at t={int(t[i + 1])} us comes after t={int(t[i])} us"
            )
    _check_range(events["x"], w, "x", source, sensor_size)
    if "y" in names:
        _check_range(events["y"], h, "y", source, sensor_size)
    if "p" in names:
        p = events["p"].astype(np.int64)
        max_pol = max(n_pol, 2) - 1  # a 1-polarity sensor may still carry ON/OFF flags 0/1 (as SHD does)
        if p.min() < 0 or p.max() > max_pol:
            raise EventStreamError(f"{source}: polarity outside 0..{max_pol} (found {int(p.min())}..{int(p.max())})")
    return events


def _check_range(values: np.ndarray, size: int, field: str, source: str, sensor_size) -> None:
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= size:
        raise EventStreamError(
            f"{source}: {field} coordinates {lo}..{hi} fall outside the sensor {tuple(sensor_size)} (0..{size - 1})"
        )
