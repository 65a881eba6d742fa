"""Event-stream dtypes and the one validation function every reader and generator uses.

Camera events follow Tonic's N-MNIST dtype (x, y, t, p); cochlea / audio events follow
Tonic's SHD dtype (t, x, p) where x is the frequency channel. Times are microseconds.

Every field holds integers. Integer and bool dtypes are taken as they are; a float field is
accepted only when every value is a finite whole number that its float type holds exactly
(|v| <= 2^24 for float32, 2^53 for float64: beyond that a float cannot hold every microsecond),
so whole-valued float time stamps (as some Tonic-era files store them) read as the same integers.
NaN, inf and fractional values are refused with the first bad event's index, never truncated.
"""
from __future__ import annotations

import numpy as np

#: Event-camera stream dtype, identical to ``tonic.datasets.NMNIST.dtype``. t in microseconds.
CAMERA_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
#: Cochlea / audio spike dtype, identical to ``tonic.datasets.SHD.dtype``. x = channel index.
AUDIO_DTYPE = np.dtype([("t", "<i8"), ("x", "<i8"), ("p", "<i8")])


class EventStreamError(ValueError):
    """An event stream breaks the format contract; the message names the source and the problem."""


_FIELDS = ("t", "x", "y", "p")
_INT64_MAX = np.iinfo(np.int64).max


def _check_dtype(events: np.ndarray, name: str, source: str) -> None:
    dtype = events.dtype[name]
    if dtype.kind not in "biuf" or dtype.shape:
        raise EventStreamError(f"{source}: event field '{name}' has dtype {dtype}; expected integers "
                               "(int64 as in Tonic's dtypes, or whole-valued floats)")


def integer_field(events: np.ndarray, name: str, source: str = "<events>") -> np.ndarray:
    """Field ``name`` of a structured event array as int64, exactly (see the module doc).

    Integer fields come back as they are (no copy for int64). A float field must hold finite whole
    numbers within its type's exact-integer range; otherwise EventStreamError names the source, the
    field and the first bad event.
    """
    _check_dtype(events, name, source)
    values = events[name]
    label = "time stamp t" if name == "t" else f"field '{name}'"
    if values.dtype.kind == "u" and values.dtype.itemsize == 8 and values.size and int(values.max()) > _INT64_MAX:
        i = int(np.argmax(values > _INT64_MAX))
        raise EventStreamError(f"{source}: {label} of event {i} is {int(values[i])}, beyond the int64 range")
    if values.dtype.kind != "f":
        return values.astype(np.int64, copy=False)
    exact = 2 ** min(np.finfo(values.dtype).nmant + 1, 62)   # every integer up to here is representable
    finite = np.isfinite(values)
    whole = finite & (np.floor(np.where(finite, values, 0)) == values)
    bad = ~whole | (np.abs(np.where(finite, values, 0)) > exact)
    if bad.any():
        i = int(np.argmax(bad))
        v = values[i]
        if not finite[i]:
            why = "not a finite number"
        elif not whole[i]:
            why = "not a whole number"
        else:
            why = (f"beyond 2^{exact.bit_length() - 1}, where {values.dtype} cannot hold every integer "
                   "(store the field as int64)")
        unit = " us" if name == "t" else ""
        raise EventStreamError(f"{source}: {label} of event {i} is {float(v)!r}{unit} ({values.dtype}): {why}; "
                               f"expected {'a whole number of microseconds' if name == 't' else 'an integer'}")
    return values.astype(np.int64)


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
        EventStreamError: not a structured array, a field that does not hold integers (NaN, inf,
            fractional or inexact float values: see the module doc), times negative or unsorted,
            coordinates outside the sensor, polarity outside {0, 1} (or outside {0} for a
            1-polarity sensor).

    An empty stream is valid (zero spikes). Whole-valued float fields are accepted and the array is
    returned unchanged; :func:`integer_field` gives a field as int64.
    """
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise EventStreamError(f"{source}: expected a numpy structured array of events, got {type(events).__name__}")
    names = events.dtype.names
    for required in ("t", "x"):
        if required not in names:
            raise EventStreamError(f"{source}: event field '{required}' is missing (fields: {names})")
    present = [f for f in _FIELDS if f in names]
    for name in present:
        _check_dtype(events, name, source)
    if events.size == 0:
        return events
    w, h, n_pol = (int(v) for v in sensor_size)
    t = integer_field(events, "t", source)
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
    _check_range(integer_field(events, "x", source), w, "x", source, sensor_size)
    if "y" in names:
        _check_range(integer_field(events, "y", source), h, "y", source, sensor_size)
    if "p" in names:
        p = integer_field(events, "p", source)
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
