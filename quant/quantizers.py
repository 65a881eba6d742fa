"""Power-of-two (fixed-point) weight quantizers from Brevitas, and the straight-through helpers.

Weights: symmetric, narrow range [-(2^(b-1)-1), 2^(b-1)-1], one scale 2^log2 per tensor, b in 4..8
(``firmware_sim.spec``). Brevitas' ``Int8WeightPerTensorFixedPoint`` is exactly that at 8 bits
(max-abs statistics, scale restricted to a power of two with a ceil, round half to even); ``.let``
sets the bit width. ``int_weight`` turns a quant layer's weight into integer units with a
straight-through gradient, so the training forward computes the accelerator's integers.
"""
from __future__ import annotations

import math

import torch
from brevitas.nn import QuantConv2d, QuantLinear
from brevitas.quant import Int8WeightPerTensorFixedPoint

from firmware_sim import spec


class QuantRangeError(ValueError):
    """A weight, bias or threshold does not fit its bit width (reported, never clipped)."""


def pow2_weight_quant(bits: int):
    """Brevitas weight quantizer: narrow, signed, per-tensor, power-of-two scale, ``bits`` bits."""
    return Int8WeightPerTensorFixedPoint.let(bit_width=spec.check_weight_bits(bits, "quant.weight_bits"))


def quant_conv2d(c_in: int, c_out: int, kernel: int, stride: int, bits: int) -> QuantConv2d:
    return QuantConv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False,
                       weight_quant=pow2_weight_quant(bits))


def quant_linear(f_in: int, f_out: int, bits: int, bias: bool = False, weight_quant=None) -> QuantLinear:
    """A Brevitas linear layer; a bias stays float here and is rounded at the product's scale by its user."""
    return QuantLinear(f_in, f_out, bias=bias, weight_quant=weight_quant or pow2_weight_quant(bits))


def st(exact: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """Value of ``exact`` (bit for bit: adds an exact zero), gradient of ``surrogate``."""
    return exact.detach() + (surrogate - surrogate.detach())


def floor_shift(x: torch.Tensor, shift: int) -> torch.Tensor:
    """x >> shift (arithmetic, floor) on float32 integers; straight-through gradient x / 2^shift."""
    y = x / 2.0 ** shift
    return st(torch.floor(y), y)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half to even (as torch.round / QuantizeLinear) with a straight-through gradient."""
    return st(torch.round(x), x)


def exact_log2(scale: torch.Tensor | float, where: str) -> int:
    """log2 of a power-of-two scale; raises if the scale is not one."""
    s = float(scale.detach()) if isinstance(scale, torch.Tensor) else float(scale)
    e = round(math.log2(s)) if s > 0 else None
    if e is None or 2.0 ** e != s:
        raise QuantRangeError(f"{where}: weight scale {s!r} is not a power of two")
    return int(e)


def int_weight(layer, bits: int, where: str) -> tuple[torch.Tensor, int]:
    """(integer weights as float32 with a straight-through gradient, log2 of their scale).

    The value is exactly Brevitas' integer tensor; it is checked against the narrow range.
    """
    qw = layer.quant_weight()
    log2 = exact_log2(qw.scale.detach().reshape(-1)[0], where)
    w = qw.value / 2.0 ** log2
    check_fits(w.detach(), spec.weight_limit(bits), f"{where} ({bits}-bit weights)")
    return w, log2


def check_fits(values: torch.Tensor, limit: int, where: str) -> None:
    """Raise QuantRangeError when some |value| > limit."""
    worst = float(values.abs().max()) if values.numel() else 0.0
    if worst > limit:
        raise QuantRangeError(f"{where}: |value| reaches {worst:.0f}, above the limit {limit}; not clipped")


def int_bias(bias: torch.Tensor, log2: int, where: str) -> torch.Tensor:
    """A float bias rounded to int32 at scale 2^log2 (straight-through); must stay exact (< 2^24)."""
    b = round_ste(bias / 2.0 ** log2)
    check_fits(b.detach(), spec.EXACT_LIMIT - 1, f"{where} (int32 bias at scale 2^{log2}, exact below 2^24)")
    return b
