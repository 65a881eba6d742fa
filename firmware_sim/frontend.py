"""The sensor front-end stage of the accelerator: raw sensor counts in, sparse counts out (numpy only).

Each input (vision (P, H, W) event counts, audio (C,) cochlea counts per step) passes through one
FrontEnd before the first spiking layer reads it. Per step t, per output element (docs/accelerator.md,
"Front-end"):

    x  = sum of the input counts in the element's pooling block      (pool: factors per axis, 1 | 2 | 4)
    th = min_count                                   (mode count)
       = max(min_count, m >> gain_shift)             (mode adaptive: m is the element's recent level)
    ok = x >= th and r == 0                          (r: refractory countdown, 0 = ready)
    y  = min(x, clip) if ok else 0                   (the count the network sees)
    r' = refractory if ok else max(r - 1, 0)
    m' = m - (m >> leak_shift) + x                   (adaptive only; x, not y)

What each piece is for: pooling ([2, 2, 2] on a (2, H, W) camera merges the polarities and sums 2x2
pixels, as Speck's DVS layer does); min_count >= 2 after pooling is a background-activity filter (an
isolated noise event is dropped, correlated events pass); the refractory countdown caps an element's
rate; the adaptive threshold passes x only when x / (recent mean) reaches 2^(leak_shift - gain_shift),
a divisive normalisation done with a shift and a compare (XyloAudio 3's front-end adapts its
thresholds alike); clip = 1 makes binary spikes. The identity front-end (pool 1, count mode,
min_count 1, clip >= the input's largest count, refractory 0) changes nothing.

``FrontEnd.run`` is the reference; quant/ (torch) and the ONNX graph implement the same lines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_sim import spec

FRONTEND_COLUMNS = ("input_events", "pooled_events", "passed", "refractory_blocked", "level_updates", "steps")


class FrontEndError(ValueError):
    """A front-end setting the accelerator cannot run; the message names the field."""


@dataclass(frozen=True)
class FrontEnd:
    """One input's front-end. pool: a factor per input axis; clip: the largest count passed on."""

    pool: tuple[int, ...]
    mode: str = "count"
    min_count: int = 1
    clip: int = 255
    refractory: int = 0
    leak_shift: int = 3
    gain_shift: int = 3

    @classmethod
    def identity(cls, in_shape: tuple[int, ...], in_max: int) -> "FrontEnd":
        return cls(pool=(1,) * len(in_shape), clip=int(in_max))

    @property
    def volume(self) -> int:
        """Input elements summed into one output element."""
        return math.prod(self.pool)

    @property
    def adaptive(self) -> bool:
        return self.mode == "adaptive"

    def is_identity(self, in_max: int) -> bool:
        return (self.volume == 1 and self.mode == "count" and self.min_count == 1 and self.clip >= in_max
                and self.refractory == 0)

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(d // f for d, f in zip(in_shape, self.pool))

    def out_max(self, in_max: int) -> int:
        """The largest count the front-end passes on."""
        return min(self.clip, in_max * self.volume)

    def check(self, in_shape: tuple[int, ...], in_max: int, where: str = "frontend") -> "FrontEnd":
        """Raise FrontEndError naming ``where.<field>`` when the accelerator cannot run this front-end
        on an input of ``in_shape`` with counts 0..in_max; return self."""
        def need(ok, name, value, expected):
            if not ok:
                raise FrontEndError(f"{where}.{name}={value!r}, expected {expected}")
        need(isinstance(self.pool, tuple) and len(self.pool) == len(in_shape), "pool", list(self.pool),
             f"one factor per input axis ({len(in_shape)} for an input of shape {list(in_shape)})")
        for axis, (d, f) in enumerate(zip(in_shape, self.pool)):
            need(f in spec.FRONTEND_POOLS, "pool", list(self.pool), f"factors from {list(spec.FRONTEND_POOLS)}")
            need(d % f == 0, "pool", list(self.pool),
                 f"factors that divide the sensor's shape {list(in_shape)} (axis {axis}: {d} is not a multiple of {f})")
        need(self.mode in spec.FRONTEND_MODES, "mode", self.mode, " or ".join(spec.FRONTEND_MODES))
        top = 2 ** spec.COUNT_BITS - 1
        need(_is_int(self.min_count) and 1 <= self.min_count <= top, "min_count", self.min_count, f"an integer in 1..{top}")
        need(_is_int(self.clip) and 1 <= self.clip <= top, "clip", self.clip, f"an integer in 1..{top}")
        r_max = 2 ** spec.REFRACTORY_BITS - 1
        need(_is_int(self.refractory) and 0 <= self.refractory <= r_max, "refractory", self.refractory,
             f"an integer in 0..{r_max} steps ({spec.REFRACTORY_BITS}-bit countdown)")
        lo, hi = spec.ADAPT_LEAK_SHIFTS
        need(_is_int(self.leak_shift) and lo <= self.leak_shift <= hi, "leak_shift", self.leak_shift, f"an integer in {lo}..{hi}")
        need(_is_int(self.gain_shift) and 0 <= self.gain_shift <= spec.ADAPT_GAIN_SHIFT_MAX, "gain_shift",
             self.gain_shift, f"an integer in 0..{spec.ADAPT_GAIN_SHIFT_MAX}")
        pooled = in_max * self.volume
        need(pooled <= top, "pool", list(self.pool),
             f"a pooled count of at most {top} ({spec.COUNT_BITS} bits); {in_max} x {self.volume} = {pooled}")
        # The level stays below (pooled + 1) x 2^leak_shift <= 256 x 2^8 = 2^LEVEL_BITS: no check needed.
        return self

    # ---- the reference run ------------------------------------------------------------------
    def pool_sum(self, x: np.ndarray) -> np.ndarray:
        """(..., *in_shape) -> (..., *out_shape): block sums (int64)."""
        lead = x.ndim - len(self.pool)
        shape = list(x.shape[:lead])
        for d, f in zip(x.shape[lead:], self.pool):
            shape += [d // f, f]
        axes = tuple(lead + 2 * i + 1 for i in range(len(self.pool)))
        return x.astype(np.int64).reshape(shape).sum(axis=axes)

    def run(self, x: np.ndarray, state: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """x (T, B, *in_shape) integer counts -> (y (T, B, *out_shape) uint8, counters (B, len(FRONTEND_COLUMNS)) int64).

        ``state`` (a stream's, firmware_sim.stream): {"level", "countdown"} (B, *out_shape) int64, read at the first
        step and overwritten with the values after the last; None: a fresh window (both zero)."""
        n_t, n_b = x.shape[:2]
        pooled = self.pool_sum(x)
        out = np.zeros(pooled.shape, np.uint8)
        counts = np.zeros((n_b, len(FRONTEND_COLUMNS)), np.int64)
        flat = lambda a: a.reshape(n_b, -1)  # noqa: E731
        counts[:, 0] = (x != 0).reshape(n_t, n_b, -1).sum(axis=(0, 2))      # nonzero raw (element, step) pairs
        level = np.zeros(pooled.shape[1:], np.int64) if state is None else state["level"]
        countdown = np.zeros(pooled.shape[1:], np.int64) if state is None else state["countdown"]
        for t in range(n_t):
            p = pooled[t]
            th = np.maximum(self.min_count, level >> self.gain_shift) if self.adaptive else self.min_count
            ready = countdown == 0
            ok = (p >= th) & ready
            out[t] = np.where(ok, np.minimum(p, self.clip), 0)
            counts[:, 1] += flat(p != 0).sum(1)
            counts[:, 2] += flat(ok).sum(1)
            counts[:, 3] += flat((p >= th) & ~ready).sum(1)
            countdown = np.where(ok, self.refractory, np.maximum(countdown - 1, 0))
            if self.adaptive:
                level = level - (level >> self.leak_shift) + p
        if self.adaptive:
            counts[:, 4] = n_t * math.prod(pooled.shape[2:])
        counts[:, 5] = n_t
        if state is not None:
            state["level"], state["countdown"] = level, countdown
        return out, counts


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
