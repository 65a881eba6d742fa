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
snnTorch ``Leaky`` (bench/train_step.py). On CPU the loop and the BPTT are two serial Numba
kernels that read and write each (T, M) tensor once (SIMD over neurons), instead of ~5 torch ops
per step plus ~6 whole-tensor ops for the surrogate; elsewhere (CUDA) the same arithmetic runs as
torch ops. Both engines give bit-identical results (float32 and float64, finite inputs).
``lif_reference`` is the plain-autograd version the tests compare both against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

SURROGATES = ("atan", "fast_sigmoid")
RESETS = ("subtract", "zero")
IF_LEAK_SHIFT = 16   # leak_shift with no leak (beta = 1, integrate-and-fire): the float reading of the accelerator's
                     # LEAK_OFF (firmware_sim/spec.py; tests/test_contract_names.py checks that the two agree)


@dataclass(frozen=True)
class LIFParams:
    """Neuron constants.

    leak_shift: k in beta = 1 - 2^-k, 1..16; 16 (IF_LEAK_SHIFT): no leak, beta = 1 (integrate-and-fire).
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
        if int(self.leak_shift) != self.leak_shift or not 1 <= self.leak_shift <= IF_LEAK_SHIFT:
            raise ValueError(f"neuron.leak_shift must be an integer in 1..{IF_LEAK_SHIFT} ({IF_LEAK_SHIFT}: no leak, "
                             f"integrate-and-fire), got {self.leak_shift}")
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
        return 1.0 if self.leak_shift >= IF_LEAK_SHIFT else 1.0 - 2.0 ** (-self.leak_shift)


def surrogate_grad(x: torch.Tensor, kind: str, slope: float) -> torch.Tensor:
    """d spike / d x of the smooth stand-in for H(x), x = u - theta."""
    if kind == "atan":
        # d/dx [atan(pi/2 * slope * x) / pi + 1/2]
        return (slope / 2) / (1 + (math.pi / 2 * slope * x) ** 2)
    return 1.0 / (slope * x.abs() + 1.0) ** 2  # fast sigmoid (SuperSpike)


# --- the two engines of lif_multistep ------------------------------------------------------------
# "numba": two serial Numba kernels (forward, BPTT) that make one pass over the (T, M) memory each,
# used for float32 / float64 tensors on CPU. "torch": the same arithmetic as whole-tensor torch ops,
# one time step per op, for any device. Both do each float operation in the tensor's dtype and in
# the same order (v * beta then + I; (c x)^2 as (c x)(c x); 1 / (1 + .) then * slope / 2; ...), so
# they return bit-identical spikes and gradients for finite inputs (tests/edge_taaf/test_neurons.py checks
# float32 and float64, contiguous and channels-last).
ENGINES = ("auto", "numba", "torch")


@njit(cache=True, nogil=True)
def _lif_forward_kernel(current, beta, theta, zero_reset, spikes, pre):
    """Forward LIF over (T, M) time-major memory. Writes spikes (0/1) and pre = u - theta in place.

    beta, theta: scalars of the arrays' dtype, so every operation stays in that dtype.
    """
    n_t, m = current.shape
    zero, one = theta - theta, theta / theta  # typed: integer literals would promote float32 to float64
    v = np.zeros_like(current[0])
    for t in range(n_t):
        cur, spk, pr = current[t], spikes[t], pre[t]
        if zero_reset:  # two branch-free loops (selects, not jumps), so LLVM runs them in SIMD lanes
            for i in range(m):
                u = v[i] * beta + cur[i]
                p = u - theta
                pr[i] = p
                spk[i] = one if p >= zero else zero
                v[i] = zero if p >= zero else u  # u > 0 when it fires, so torch's u * 0 is +0 too
        else:
            for i in range(m):
                u = v[i] * beta + cur[i]
                p = u - theta
                pr[i] = p
                spk[i] = one if p >= zero else zero
                v[i] = u - theta if p >= zero else u


@njit(inline="always", error_model="numpy")
def _bptt_step(gs, pr, gc, grad_v, beta, scale, amp, atan, zero_reset):
    """One BPTT step over M neurons; called with literal flags, so each call site is a branch-free loop."""
    one, zero = amp / amp, amp - amp  # typed: integer literals would promote float32 to float64
    for i in range(pr.shape[0]):
        x = pr[i]
        if atan:
            a = scale * x
            sg = (one / (a * a + one)) * amp
        else:
            a = scale * abs(x) + one
            sg = (one / (a * a)) * amp
        g = grad_v[i] * (one if x < zero else zero) if zero_reset else grad_v[i]
        out = gs[i] * sg + g
        gc[i] = out
        grad_v[i] = out * beta


@njit(cache=True, nogil=True, error_model="numpy")  # IEEE division (as torch), no zero check: SIMD
def _lif_backward_kernel(grad_spikes, pre, beta, atan, scale, amp, zero_reset, grad_current):
    """BPTT over (T, M) time-major memory, reset detached; writes dL/dI into ``grad_current``.

    Surrogate at x = u - theta: atan: (1 / (1 + (scale x)^2)) * amp with scale = pi/2 slope and
    amp = slope / 2; fast sigmoid: (1 / (scale |x| + 1)^2) * amp with scale = slope and amp = 1.
    """
    grad_v = np.zeros_like(pre[0])
    for t in range(pre.shape[0] - 1, -1, -1):
        gs, pr, gc = grad_spikes[t], pre[t], grad_current[t]
        if atan and zero_reset:
            _bptt_step(gs, pr, gc, grad_v, beta, scale, amp, True, True)
        elif atan:
            _bptt_step(gs, pr, gc, grad_v, beta, scale, amp, True, False)
        elif zero_reset:
            _bptt_step(gs, pr, gc, grad_v, beta, scale, amp, False, True)
        else:
            _bptt_step(gs, pr, gc, grad_v, beta, scale, amp, False, False)


def _memory_order(x: torch.Tensor) -> list[int]:
    """Dimensions of ``x`` from the largest stride to the smallest (ties keep dimension order)."""
    return sorted(range(x.dim()), key=lambda d: (-x.stride(d), d))


def _time_major(x: torch.Tensor, order: list[int]) -> np.ndarray:
    """(T, M) array over ``x`` laid out in ``order``, order[0] = 0 (copied once when x is not dense in that order)."""
    assert order[0] == 0, "the time dimension must be outermost"
    return x.detach().permute(order).contiguous().view(x.shape[0], -1).numpy()


def _time_major_out(x: torch.Tensor, order: list[int]) -> np.ndarray:
    """(T, M) array sharing memory with ``x``, which must be dense in ``order`` (kernel output)."""
    flat = _time_major(x, order)
    if flat.ctypes.data != x.data_ptr():
        raise AssertionError("lif_multistep: kernel output is not a view of its tensor")
    return flat


def _lif_forward_numba(current, beta, theta, zero_reset):
    """CPU engine forward: (spikes, pre, memory order), spikes and pre laid out as ``current`` when its
    time dimension is outermost in memory (channels-last conv output stays channels-last)."""
    order = _memory_order(current)
    if order[0] != 0 or not current.permute(order).is_contiguous():
        current, order = current.contiguous(), list(range(current.dim()))
    spikes, pre = torch.empty_like(current), torch.empty_like(current)
    flat = _time_major(current, order)
    cast = flat.dtype.type  # beta and theta in the tensor's dtype, as torch casts a Python scalar
    _lif_forward_kernel(flat, cast(beta), cast(theta), zero_reset, _time_major_out(spikes, order),
                        _time_major_out(pre, order))
    return spikes, pre, order


def _lif_backward_numba(grad_spikes, pre, order, beta, kind, slope, zero_reset):
    """CPU engine BPTT: dL/dI with the memory layout of ``pre`` (``order``: the forward's memory order)."""
    grad_current = torch.empty_like(pre)
    atan = kind == "atan"
    scale, amp = (math.pi / 2 * slope, slope / 2) if atan else (slope, 1.0)
    flat_pre = _time_major_out(pre, order)
    cast = flat_pre.dtype.type
    _lif_backward_kernel(_time_major(grad_spikes.to(pre.dtype), order), flat_pre, cast(beta), atan, cast(scale),
                         cast(amp), zero_reset, _time_major_out(grad_current, order))
    return grad_current


def _lif_forward_torch(current, beta, theta, zero_reset):
    """Any-device engine forward: (spikes, pre, None), one time step per torch op."""
    v = torch.zeros_like(current[0])
    spikes = torch.empty_like(current)
    pre = torch.empty_like(current)  # u_t - theta, kept for the surrogate
    for t in range(current.shape[0]):
        u = v.mul_(beta).add_(current[t])       # in place: v is our own buffer
        torch.sub(u, theta, out=pre[t])
        s = spikes[t]
        s.copy_(pre[t] >= 0)
        v = u.mul_(1 - s) if zero_reset else u.sub_(s, alpha=theta)
    return spikes, pre, None


def _lif_backward_torch(grad_spikes, pre, order, beta, kind, slope, zero_reset):
    """Any-device engine BPTT (reset detached), one time step per torch op."""
    grad_current = torch.empty_like(grad_spikes)
    grad_v = torch.zeros_like(grad_spikes[0])
    local = grad_spikes * surrogate_grad(pre, kind, slope)  # dL/ds_t * sg(u_t - theta), all steps at once
    keep = (pre < 0).to(grad_v.dtype) if zero_reset else None
    for t in range(grad_spikes.shape[0] - 1, -1, -1):
        if zero_reset:
            grad_v = grad_v * keep[t]
        torch.add(local[t], grad_v, out=grad_current[t])
        grad_v = grad_current[t] * beta
    return grad_current


def _pick_engine(current: torch.Tensor, engine: str) -> str:
    """'numba' for float32 / float64 CPU tensors under 'auto', else 'torch'; checks a forced choice."""
    if engine not in ENGINES:
        raise ValueError(f"lif_multistep: engine must be one of {ENGINES}, got {engine!r}")
    fits = current.device.type == "cpu" and current.dtype in (torch.float32, torch.float64) and current.numel() > 0
    if engine == "numba" and not fits:
        raise ValueError(f"lif_multistep: the numba engine takes float32/float64 CPU tensors, got "
                         f"{current.dtype} on {current.device}")
    return engine if engine != "auto" else ("numba" if fits else "torch")


class _MultiStepLIF(torch.autograd.Function):
    # BPTT with the reset detached from the graph (standard practice, keeps gradients stable):
    # dL/du_t = dL/ds_t * sg(u_t - theta) + dL/dv_t * dv_t/du_t,  dL/dv_{t-1} = beta * dL/du_t,
    # dL/dI_t = dL/du_t; dv_t/du_t is 1 for subtract reset and (1 - s_t) for zero reset.
    @staticmethod
    def forward(ctx, current: torch.Tensor, beta: float, theta: float, zero_reset: bool, kind: str, slope: float,
                engine: str):
        run = _lif_forward_numba if engine == "numba" else _lif_forward_torch
        spikes, pre, order = run(current, beta, theta, zero_reset)
        ctx.save_for_backward(pre)
        ctx.cfg = (order, beta, kind, slope, zero_reset, engine)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (pre,) = ctx.saved_tensors
        order, beta, kind, slope, zero_reset, engine = ctx.cfg
        run = _lif_backward_numba if engine == "numba" else _lif_backward_torch
        return run(grad_spikes, pre, order, beta, kind, slope, zero_reset), None, None, None, None, None, None


def lif_multistep(current: torch.Tensor, params: LIFParams, engine: str = "auto") -> torch.Tensor:
    """Run the LIF over a whole sequence.

    Args:
        current: synaptic input I, shape (T, B, ...), float (units of theta).
        engine: 'auto' (Numba kernels for float32/float64 CPU tensors, torch ops elsewhere),
            'numba' or 'torch' to force one; both give bit-identical spikes and gradients.
    Returns:
        spikes in {0, 1}, same shape, dtype and memory layout as ``current``.
    """
    return _MultiStepLIF.apply(
        current, params.beta, float(params.theta), params.reset == "zero", params.surrogate, float(params.slope),
        _pick_engine(current, engine),
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
