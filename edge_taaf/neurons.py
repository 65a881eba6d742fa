"""Leaky integrate-and-fire dynamics: the one place the neuron is defined for float training.

Dynamics per step t (shapes (B, ...) per step, (T, B, ...) over a sequence):

    u_t = v_{t-1} - v_{t-1} * 2^-k + I_t      (leak beta = 1 - 2^-k: the accelerator's shift leak)
    s_t = H(u_t - theta)                       (Heaviside; surrogate gradient in backward)
    v_t = u_t - theta * s_t                    (reset by subtraction)

The accelerator's integer form (quant/) applies the same three lines to integers with
``v >> k`` (floor) in place of ``v * 2^-k`` and a saturating state.

Why a hand-written autograd Function: unrolling T steps through autograd creates ~6 graph nodes
per step; one Function that loops forward without a graph and runs BPTT by hand in backward
keeps the graph to one node per layer, which is what makes training faster than a per-step
snnTorch ``Leaky`` (bench/train_step.py). ``lif_reference`` is the plain-autograd version the
tests compare against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SURROGATES = ("atan", "fast_sigmoid")
RESETS = ("subtract", "zero")


@dataclass(frozen=True)
class LIFParams:
    """Neuron constants.

    leak_shift: k in beta = 1 - 2^-k (k >= 1).
    theta: firing threshold (float units of the synaptic current).
    reset: 'subtract' (v -= theta on a spike) or 'zero'.
    surrogate: 'atan' or 'fast_sigmoid'; slope: its steepness.
    """

    leak_shift: int = 2
    theta: float = 1.0
    reset: str = "subtract"
    surrogate: str = "atan"
    slope: float = 2.0

    def __post_init__(self):
        if int(self.leak_shift) != self.leak_shift or self.leak_shift < 1:
            raise ValueError(f"neuron.leak_shift must be an integer >= 1, got {self.leak_shift}")
        if not self.theta > 0:
            raise ValueError(f"neuron.theta must be > 0, got {self.theta}")
        if self.reset not in RESETS:
            raise ValueError(f"neuron.reset must be one of {RESETS}, got {self.reset!r}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"neuron.surrogate must be one of {SURROGATES}, got {self.surrogate!r}")
        if not self.slope > 0:
            raise ValueError(f"neuron.slope must be > 0, got {self.slope}")

    @property
    def beta(self) -> float:
        return 1.0 - 2.0 ** (-self.leak_shift)


def surrogate_grad(x: torch.Tensor, kind: str, slope: float) -> torch.Tensor:
    """d spike / d x of the smooth stand-in for H(x), x = u - theta."""
    if kind == "atan":
        # d/dx [atan(pi/2 * slope * x) / pi + 1/2]
        return (slope / 2) / (1 + (math.pi / 2 * slope * x) ** 2)
    return 1.0 / (slope * x.abs() + 1.0) ** 2  # fast sigmoid (SuperSpike)


class _MultiStepLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current: torch.Tensor, beta: float, theta: float, zero_reset: bool, kind: str, slope: float):
        v = torch.zeros_like(current[0])
        spikes = torch.empty_like(current)
        pre = torch.empty_like(current)  # u_t - theta, kept for the surrogate
        for t in range(current.shape[0]):
            u = v.mul_(beta).add_(current[t])       # in place: v is our own buffer
            torch.sub(u, theta, out=pre[t])
            s = spikes[t]
            s.copy_(pre[t] >= 0)
            v = u.mul_(1 - s) if zero_reset else u.sub_(s, alpha=theta)
        ctx.save_for_backward(pre)
        ctx.cfg = (beta, kind, slope, zero_reset)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (pre,) = ctx.saved_tensors
        beta, kind, slope, zero_reset = ctx.cfg
        grad_current = torch.empty_like(grad_spikes)
        grad_v = torch.zeros_like(grad_spikes[0])
        local = grad_spikes * surrogate_grad(pre, kind, slope)  # dL/ds_t * sg(u_t - theta), all steps at once
        keep = (pre < 0).to(grad_v.dtype) if zero_reset else None
        # BPTT with the reset detached from the graph (standard practice, keeps gradients stable):
        # dL/du_t = dL/ds_t * sg(u_t - theta) + dL/dv_t * dv_t/du_t,  dL/dv_{t-1} = beta * dL/du_t,
        # dL/dI_t = dL/du_t; dv_t/du_t is 1 for subtract reset and (1 - s_t) for zero reset.
        for t in range(grad_spikes.shape[0] - 1, -1, -1):
            if zero_reset:
                grad_v = grad_v * keep[t]
            torch.add(local[t], grad_v, out=grad_current[t])
            grad_v = grad_current[t] * beta
        return grad_current, None, None, None, None, None


def lif_multistep(current: torch.Tensor, params: LIFParams) -> torch.Tensor:
    """Run the LIF over a whole sequence.

    Args:
        current: synaptic input I, shape (T, B, ...), float.
    Returns:
        spikes in {0, 1}, same shape and dtype.
    """
    return _MultiStepLIF.apply(
        current, params.beta, float(params.theta), params.reset == "zero", params.surrogate, float(params.slope)
    )


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kind, slope):
        ctx.save_for_backward(x)
        ctx.cfg = (kind, slope)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * surrogate_grad(x, *ctx.cfg), None, None


def lif_reference(current: torch.Tensor, params: LIFParams) -> torch.Tensor:
    """Plain-autograd LIF (reset detached), the reference ``lif_multistep`` is tested against."""
    v = torch.zeros_like(current[0])
    out = []
    for t in range(current.shape[0]):
        u = v * params.beta + current[t]
        s = _Spike.apply(u - params.theta, params.surrogate, params.slope)
        out.append(s)
        sd = s.detach()
        v = u * (1 - sd) if params.reset == "zero" else u - params.theta * sd
    return torch.stack(out)
