"""The accelerator's integer LIF (``firmware_sim.spec.lif_step``) in PyTorch, with surrogate gradients.

Forward, per step, on float32 tensors holding integers (exact: every value < 2^24):

    u = sat(v - (v >> k) + I);  s = (u >= theta_int);  v' = u - theta_int * s

Backward: the float neuron's BPTT (edge_taaf.neurons) with the floor leak and the saturation
passed straight through, evaluated in float units (x = (u - theta_int) * 2^log2), so the
surrogate has the float model's slope whatever the weight scale.
"""
from __future__ import annotations

import torch

from edge_taaf.neurons import surrogate_grad
from firmware_sim import spec
from quant.quantizers import QuantRangeError


def theta_int(theta: float, log2: int, where: str, state_bits: int = spec.STATE_BITS) -> int:
    """The float threshold on the integer grid of weights with scale 2^log2: round(theta / 2^log2).

    Raises QuantRangeError when it is below 1 or does not fit the signed state register.
    """
    value = round(theta / 2.0 ** log2)
    hi = spec.state_range(state_bits)[1]
    if not 1 <= value <= hi:
        raise QuantRangeError(
            f"{where}: theta_int = round({theta} / 2^{log2}) = {value} does not fit 1..{hi} "
            f"(the {state_bits}-bit state); the layer's weights are too {'large' if value < 1 else 'small'}")
    return value


class _IntLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, scale, theta, leak_shift, lo, hi, kind, slope, v0):
        spikes, pre, v, saturated = lif_steps(current, theta, leak_shift, lo, hi, v0)
        pre.mul_(scale)
        ctx.save_for_backward(pre)
        ctx.cfg = (1.0 - 2.0 ** -leak_shift if leak_shift < spec.LEAK_OFF else 1.0, kind, slope, scale)
        ctx.mark_non_differentiable(saturated, v)
        return spikes, saturated, v

    @staticmethod
    def backward(ctx, grad_spikes, _grad_sat, _grad_v):
        (pre,) = ctx.saved_tensors
        beta, kind, slope, scale = ctx.cfg
        grad_current = torch.empty_like(grad_spikes)
        grad_v = torch.zeros_like(grad_spikes[0])
        for t in range(grad_spikes.shape[0] - 1, -1, -1):
            grad_u = grad_spikes[t] * surrogate_grad(pre[t], kind, slope) + grad_v
            grad_current[t] = grad_u * scale      # dL/dI_int = dL/dI_float * 2^log2
            grad_v = grad_u * beta
        return grad_current, None, None, None, None, None, None, None, None


def lif_steps(current: torch.Tensor, theta: float, leak_shift: int, lo: float, hi: float, v0: torch.Tensor | None):
    """spec.lif_step over the T steps of ``current`` (T, B, ...) from membranes ``v0`` (B, ...; None: zeros).
    Returns (spikes, u - theta per step, the membranes after the last step, neuron-steps saturated (int64))."""
    v = torch.zeros_like(current[0]) if v0 is None else v0
    spikes = torch.empty_like(current)
    pre = torch.empty_like(current)
    saturated = torch.zeros((), dtype=torch.int64, device=current.device)
    div = float(2 ** leak_shift)
    leaks = leak_shift < spec.LEAK_OFF          # LEAK_OFF: no leak (integrate-and-fire)
    for t in range(current.shape[0]):
        raw = (v - torch.floor(v / div) if leaks else v) + current[t]
        u = raw.clamp(lo, hi)
        saturated += (u != raw).sum()
        s = (u >= theta).to(current.dtype)
        spikes[t] = s
        pre[t] = u - theta
        v = u - theta * s
    return spikes, pre, v, saturated


def int_lif(current: torch.Tensor, log2: int, theta: int, leak_shift: int, surrogate: str = "atan",
            slope: float = 2.0, state_bits: int = spec.STATE_BITS, v0: torch.Tensor | None = None):
    """Integer LIF over a sequence.

    Args:
        current: I in integer units (weights' scale 2^log2), float32 (T, B, ...).
        theta: theta_int (see ``theta_int``).
        v0: the membranes before the first step (B, ...), a stream's state; None: zeros (a fresh window).
    Returns:
        (spikes (T, B, ...) in {0, 1}, number of neuron-steps whose state saturated (int64 scalar),
        the membranes after the last step (B, ...)).
    """
    lo, hi = spec.state_range(state_bits)
    return _IntLIF.apply(current, 2.0 ** log2, float(theta), int(leak_shift), float(lo), float(hi), surrogate,
                         float(slope), v0)
