"""The sensor front-end in PyTorch: the accelerator's first stage, run on the sensor's counts before the encoders.

Semantics (the reference is firmware_sim.frontend; docs/accelerator.md, "Front-end"), per step t and
output element, on x = the sum of the input counts in the element's pooling block:

    th = min_count (mode count) | max(min_count, m >> gain_shift) (mode adaptive)
    ok = x >= th and r == 0;   y = min(x, clip) if ok else 0
    r' = refractory if ok else max(r - 1, 0);   m' = m - (m >> leak_shift) + x   (adaptive)

Every value is a small integer held in float32, so float training, the integer mode and the exported
graph compute the same counts. The front-end has no parameters: it shapes the input the network learns
from. The accelerator's limits (pooling factors, bit widths) are checked by quant.qmodel.check_frontends
at training time; here only the config's form and geometry.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from sensors.options import is_int

MODES = ("count", "adaptive")
FIELDS = ("pool", "mode", "min_count", "clip", "refractory", "leak_shift", "gain_shift")


@dataclass(frozen=True)
class FrontEndConfig:
    """One sensor's front-end (configs/frontend/*.yaml). pool: a factor per sensor axis ((P, H, W) or (C,));
    clip None passes the pooled count unclipped."""

    pool: tuple[int, ...]
    mode: str = "count"
    min_count: int = 1
    clip: int | None = None
    refractory: int = 0
    leak_shift: int = 3
    gain_shift: int = 3

    @classmethod
    def parse(cls, cfg, sensor_shape: tuple[int, ...], where: str) -> "FrontEndConfig":
        """From a mapping (None: the identity); ValueError naming ``where.<field>`` on a bad value."""
        if cfg is None:
            return cls(pool=(1,) * len(sensor_shape))
        if not isinstance(cfg, Mapping) and not hasattr(cfg, "items"):
            raise ValueError(f"{where} must be a mapping with fields {list(FIELDS)}, got {cfg!r}")
        unknown = sorted(set(cfg) - set(FIELDS))
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown}; known: {list(FIELDS)}")
        pool = cfg["pool"]
        if isinstance(pool, (str, int)) or pool is None or not all(is_int(f) and f >= 1 for f in pool):
            raise ValueError(f"{where}.pool={pool!r}, expected a list of integers >= 1, one per sensor axis")
        pool = tuple(int(f) for f in pool)
        if len(pool) != len(sensor_shape):
            raise ValueError(f"{where}.pool={list(pool)}: {len(pool)} factors for a sensor of shape {list(sensor_shape)}; "
                             f"expected {len(sensor_shape)}")
        for axis, (d, f) in enumerate(zip(sensor_shape, pool)):
            if d % f:
                raise ValueError(f"{where}.pool={list(pool)}: factor {f} does not divide the sensor's axis {axis} "
                                 f"(size {d}; sensor shape {list(sensor_shape)})")
        mode = cfg["mode"]
        if mode not in MODES:
            raise ValueError(f"{where}.mode={mode!r}, expected one of {list(MODES)}")
        out = cls(pool, mode)
        values = {}
        for name, low in (("min_count", 1), ("refractory", 0), ("leak_shift", 0), ("gain_shift", 0)):
            value = cfg[name]
            if not is_int(value) or value < low:
                raise ValueError(f"{where}.{name}={value!r}, expected an integer >= {low}")
            values[name] = int(value)
        clip = cfg["clip"]
        if clip is not None and (not is_int(clip) or clip < 1):
            raise ValueError(f"{where}.clip={clip!r}, expected null (no clipping) or an integer >= 1")
        return cls(pool, mode, clip=None if clip is None else int(clip), **values)

    @property
    def volume(self) -> int:
        return math.prod(self.pool)

    @property
    def is_identity(self) -> bool:
        return (self.volume == 1 and self.mode == "count" and self.min_count == 1 and self.clip is None
                and self.refractory == 0)

    def out_shape(self, sensor_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape the encoder reads."""
        return tuple(d // f for d, f in zip(sensor_shape, self.pool))


class SensorFrontEnd(nn.Module):
    """(T, B, *sensor_shape) integer counts -> (T, B, *out_shape) counts (float32 holding integers)."""

    def __init__(self, config: FrontEndConfig):
        super().__init__()
        self.config = config

    def pool_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Block sums over the pooling factors of the trailing axes."""
        c = self.config
        if c.volume == 1:
            return x
        lead = x.dim() - len(c.pool)
        shape = list(x.shape[:lead])
        for d, f in zip(x.shape[lead:], c.pool):
            shape += [d // f, f]
        return x.reshape(shape).sum(dim=tuple(lead + 2 * i + 1 for i in range(len(c.pool))))

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        """``state`` (a stream's): {"level", "countdown"} (B, *out_shape) or None (zeros), read at the first step and
        replaced by the values after the last; no state: a fresh window."""
        c = self.config
        if c.is_identity:
            return x
        p = self.pool_sum(x)
        clip = float("inf") if c.clip is None else float(c.clip)
        if c.mode == "count" and c.refractory == 0:        # stateless: all steps at once
            return torch.where(p >= c.min_count, p.clamp(max=clip), torch.zeros_like(p))
        level = torch.zeros_like(p[0]) if state is None or state["level"] is None else state["level"]
        countdown = torch.zeros_like(p[0]) if state is None or state["countdown"] is None else state["countdown"]
        out = []
        for t in range(p.shape[0]):
            th = level.div(2.0 ** c.gain_shift).floor().clamp(min=c.min_count) if c.mode == "adaptive" else c.min_count
            ok = (p[t] >= th) & (countdown == 0)
            out.append(torch.where(ok, p[t].clamp(max=clip), torch.zeros_like(p[t])))
            countdown = torch.where(ok, torch.full_like(countdown, c.refractory), (countdown - 1).clamp(min=0))
            if c.mode == "adaptive":
                level = level - level.div(2.0 ** c.leak_shift).floor() + p[t]
        if state is not None:
            state["level"], state["countdown"] = level, countdown
        return torch.stack(out)
