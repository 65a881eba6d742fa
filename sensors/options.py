"""The one option checker of sensors, edge_taaf and quant: range and cross-field rules, one error class.

The config schemas (sensors/schema.py, edge_taaf/schema.py) check types and unknown keys when Hydra composes
a config; what a type cannot say (a probability in [0, 1], a list of whole numbers >= 1, one name of a
set) is checked here, and every failure is an :class:`OptionError` whose message names the full option
path and the value: ``trainer.corrupt.silence_prob=1.5; expected a probability in [0, 1]``.
firmware_sim keeps its own checks (it imports nothing of ours).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

#: The sensors a paired data set and a model may hold, in the order every module lists them.
MODALITIES = ("audio", "vision")


class OptionError(ValueError):
    """An option's value is invalid; the message names the option (its full dotted path) and what was expected."""


def is_int(value) -> bool:
    """A whole number (Python or numpy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A finite real number (Python or numpy), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def show(value) -> str:
    """A value as a person wrote it: sequences as [a, b], everything else as repr."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return repr(value)


def _bounds_text(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def _inside(value, low, high, low_open: bool, high_open: bool) -> bool:
    return ((low is None or (value > low if low_open else value >= low))
            and (high is None or (value < high if high_open else value <= high)))


def check_number(path: str, value, low=None, high=None, *, low_open: bool = False, high_open: bool = False,
                 integer: bool = False, optional: bool = False):
    """``value`` (the option at ``path``) as a finite number inside the bounds (open or closed ends), a whole
    number when ``integer``; None passes when ``optional``. Returns the value (int or float)."""
    if value is None and optional:
        return None
    kind = "a whole number" if integer else "a number"
    bounds = _bounds_text(low, high, low_open, high_open)
    expected = f"{kind} {bounds}".strip() + (" or null" if optional else "")
    if not (is_int(value) if integer else is_real(value)) or not _inside(value, low, high, low_open, high_open):
        raise OptionError(f"{path}={show(value)}; expected {expected}")
    return int(value) if integer else float(value)


def check_probability(path: str, value) -> float:
    """A probability in [0, 1]."""
    if not is_real(value) or not 0 <= value <= 1:
        raise OptionError(f"{path}={show(value)}; expected a probability in [0, 1]")
    return float(value)


def check_pair(path: str, value, low=None, high=None, *, low_open: bool = False) -> tuple[float, float]:
    """[min, max]: two finite numbers, min <= max, both inside the bounds."""
    pair = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if pair is None or len(pair) != 2 or not all(is_real(v) for v in pair):
        raise OptionError(f"{path}={show(value)}; expected [min, max], two finite numbers")
    if pair[0] > pair[1]:
        raise OptionError(f"{path}={show(value)}; expected min <= max")
    if not all(_inside(v, low, high, low_open, False) for v in pair):
        raise OptionError(f"{path}={show(value)}; expected values {_bounds_text(low, high, low_open, False)}")
    return float(pair[0]), float(pair[1])


def check_ints(path: str, values, low: int = 1, *, length: int | None = None, allow_empty: bool = False) -> tuple[int, ...]:
    """A list of whole numbers >= ``low`` (``length`` of them when given; non-empty unless ``allow_empty``)."""
    ok = isinstance(values, Iterable) and not isinstance(values, (str, bytes, dict))
    out = tuple(values) if ok else ()
    if not ok or not all(is_int(v) and v >= low for v in out) or (not out and not allow_empty) \
            or (length is not None and len(out) != length):
        count = f"{length}" if length is not None else ("zero or more" if allow_empty else "one or more")
        raise OptionError(f"{path}={show(values)}; expected a list of {count} whole numbers >= {low}")
    return tuple(int(v) for v in out)


def check_choice(path: str, value, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise OptionError(f"{path}={value!r} is unknown; expected one of {list(choices)}")
    return value


def check_modalities(path: str, names, default: Sequence[str] = MODALITIES) -> tuple[str, ...]:
    """A non-empty list of distinct sensor names from MODALITIES (empty or null: ``default``), in
    MODALITIES order."""
    names = list(default) if not names else names
    if isinstance(names, str) or not set(names) <= set(MODALITIES) or len(set(names)) != len(list(names)):
        raise OptionError(f"{path}={show(names)}; expected a non-empty list of distinct names from {list(MODALITIES)}")
    return tuple(m for m in MODALITIES if m in names)
