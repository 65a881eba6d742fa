"""The competitor a user would pick instead of the SNN: a small single-pass int8 CNN, quantization-aware.

Inputs, one window per sample (time-major, as the SNN's):
  vision (T, B, 2, H, W) spike counts -> summed over the T steps: one (B, 2, H, W) count frame, values
         0..T x clip (``vision_max``);
  audio  (T, B, C) cochlea spike counts -> one (B, 1, T, C) image, each cell one step's count 0..clip_audio
         (``audio_max``).
Each goes through its own branch of convolutions (padding k // 2, no bias) with ReLU, the two flattened
maps are concatenated, then an optional hidden dense layer with ReLU and the dense classifier (int32
logits, argmax). No biases anywhere: every layer is int8 weights x unsigned activations into an int32
accumulator, so the whole net is the accelerator's MAC array plus shifts.

Quantization (Brevitas): weights ``weight_bits`` (4..8), symmetric, narrow range, one power-of-two scale
per tensor (quant.quantizers.pow2_weight_quant, the SNN's quantizer); activations unsigned ``act_bits``
with a learned power-of-two scale (Uint8ActPerTensorFixedPoint), so requantisation is a shift. The
inputs are integers at scale 1 with ``window_bits`` bits (a constant-scale QuantIdentity, exact on
valid counts; a larger count is an error, not clipped). The two branch outputs share one activation
quantizer, so their concatenation has one scale.

``layer_shapes`` gives the per-layer shapes that firmware_sim.ann_cost prices; ``measure_nonzero``
counts, on a batch, the nonzero inputs and the MACs with a nonzero input of every layer (zero-skip).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from brevitas.nn import QuantIdentity, QuantReLU
from brevitas.quant import Uint8ActPerTensorFixedPoint
from torch import nn

from edge_taaf.config import ConfigError
from firmware_sim import spec
from firmware_sim.ann_cost import AnnLayer
from firmware_sim.energy import window_bits
from quant.quantizers import int_weight, quant_conv2d, quant_linear
from sensors.options import check_ints, check_number

# Training steps over which an activation quantizer collects statistics before its power-of-two scale
# becomes a learned parameter (Brevitas' default, 300, would keep several epochs off the power-of-two grid).
ACT_STATS_STEPS = 30


# An invalid architecture option (``ann.<key>``): the one option error class (sensors/options.py).
AnnArchError = ConfigError


@dataclass(frozen=True)
class Branch:
    """One modality's convolutions: output channels, kernel sizes and strides, one entry per layer."""

    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]


@dataclass(frozen=True)
class AnnArch:
    """The competitor's architecture. hidden = 0: the classifier reads the concatenated maps directly."""

    vision: Branch
    audio: Branch
    hidden: int = 32
    weight_bits: int = 8
    act_bits: int = 8


def arch_from_dict(d) -> AnnArch:
    """An AnnArch from the config mapping ``ann`` (keys vision, audio, hidden, weight_bits, act_bits);
    AnnArchError names the option at fault."""
    branches = {}
    for m in ("vision", "audio"):
        b = d.get(m)
        if b is None:
            raise AnnArchError(f"ann.{m} is missing; expected channels, kernels and strides")
        lists = {k: check_ints(f"ann.{m}.{k}", b.get(k)) for k in ("channels", "kernels", "strides")}
        lengths = {k: len(v) for k, v in lists.items()}
        if len(set(lengths.values())) != 1:
            raise AnnArchError(f"ann.{m}: channels, kernels and strides need one entry per layer; got lengths {lengths}")
        branches[m] = Branch(**lists)
    hidden = check_number("ann.hidden", d["hidden"], 0, integer=True)     # 0: no hidden layer
    bits = check_number("ann.weight_bits", d["weight_bits"], spec.WEIGHT_BITS_MIN, spec.WEIGHT_BITS_MAX,
                        integer=True)                                             # the accelerator's weight widths
    act = check_number("ann.act_bits", d["act_bits"], 2, 8, integer=True)
    return AnnArch(branches["vision"], branches["audio"], hidden, bits, act)


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output length of a convolution with padding kernel // 2."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def act_quant(bits: int):
    """Unsigned ``bits``-bit activations, learned power-of-two scale (a shift on the accelerator)."""
    return Uint8ActPerTensorFixedPoint.let(bit_width=bits, collect_stats_steps=ACT_STATS_STEPS)


def input_quant(bits: int):
    """Unsigned ``bits``-bit integer inputs at scale 1 (the counts themselves)."""
    return Uint8ActPerTensorFixedPoint.let(bit_width=bits, scaling_impl_type="const", max_val=float(2 ** bits - 1))


@dataclass(frozen=True)
class _Geom:
    """Static shape facts of one quantized layer."""

    name: str
    kind: str             # conv | dense
    in_shape: tuple       # (C, H, W) or (N,)
    out_shape: tuple
    kernel: int = 1
    stride: int = 1

    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_out(self) -> int:
        return math.prod(self.out_shape)

    @property
    def macs(self) -> int:
        """Every output x its whole receptive field (padding taps included, the usual count)."""
        fan_in = self.in_shape[0] * self.kernel ** 2 if self.kind == "conv" else self.in_shape[0]
        return self.n_out * fan_in


class AnnCompetitor(nn.Module):
    """Single-pass int8 CNN over the window's count frame and cochlea count map. forward(vision (T, B, 2, H, W),
    audio (T, B, C)) -> logits (B, n_classes) (the int32 accumulators times their power-of-two scale)."""

    def __init__(self, arch: AnnArch, vision_shape: Sequence[int], audio_shape: Sequence[int], vision_max: int,
                 audio_max: int, n_classes: int = 10):
        super().__init__()
        self.arch, self.n_classes = arch, n_classes
        self.vision_shape, self.audio_shape = tuple(vision_shape), tuple(audio_shape)   # (P, H, W), (T, C)
        self.vision_max, self.audio_max = int(vision_max), int(audio_max)
        self.in_bits = {"vision": window_bits(1, self.vision_max), "audio": window_bits(1, self.audio_max)}
        self.geoms: list[_Geom] = []
        self.layers = nn.ModuleDict()          # name (dots as '_') -> quant layer
        self.acts = nn.ModuleDict()
        self.inputs = nn.ModuleDict({m: QuantIdentity(act_quant=input_quant(b)) for m, b in self.in_bits.items()})
        self.feature_act = QuantReLU(act_quant=act_quant(arch.act_bits))   # shared: one scale for the concatenation
        flat = 0
        for m, shape in (("vision", self.vision_shape), ("audio", (1, *self.audio_shape))):
            branch = getattr(arch, m)
            c, h, w = shape
            for i, (c_out, k, s) in enumerate(zip(branch.channels, branch.kernels, branch.strides)):
                h2, w2 = conv_out(h, k, s), conv_out(w, k, s)       # >= 1: padding k // 2 keeps every input
                g = _Geom(f"{m}.conv{i}", "conv", (c, h, w), (c_out, h2, w2), k, s)
                self._add(g, quant_conv2d(c, c_out, k, s, arch.weight_bits),
                          None if i == len(branch.channels) - 1 else QuantReLU(act_quant=act_quant(arch.act_bits)))
                c, h, w = c_out, h2, w2
            flat += c * h * w
        if arch.hidden:
            self._add(_Geom("fusion.hidden", "dense", (flat,), (arch.hidden,)),
                      quant_linear(flat, arch.hidden, arch.weight_bits), QuantReLU(act_quant=act_quant(arch.act_bits)))
            flat = arch.hidden
        self._add(_Geom("fusion.classifier", "dense", (flat,), (n_classes,)), quant_linear(flat, n_classes, arch.weight_bits),
                  None)

    def _add(self, g: _Geom, layer: nn.Module, act: nn.Module | None) -> None:
        self.geoms.append(g)
        key = g.name.replace(".", "_")
        self.layers[key] = layer
        if act is not None:
            self.acts[key] = act

    def layer(self, name: str) -> nn.Module:
        return self.layers[name.replace(".", "_")]

    def frames(self, vision: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, B, 2, H, W), (T, B, C) spike counts -> the count frame (B, 2, H, W) and the count map (B, 1, T, C);
        ValueError when a count exceeds what the input bits hold."""
        v, a = vision.sum(0), audio.transpose(0, 1).unsqueeze(1)
        for m, x, top in (("vision", v, self.vision_max), ("audio", a, self.audio_max)):
            if x.numel() and (float(x.max()) > top or float(x.min()) < 0):
                raise ValueError(f"{m} counts reach {float(x.max()):g} (min {float(x.min()):g}); the model takes 0..{top}")
        return v, a

    def _branch(self, m: str, x: torch.Tensor) -> torch.Tensor:
        x = self.inputs[m](x)
        n = len(getattr(self.arch, m).channels)
        for i in range(n):
            key = f"{m}_conv{i}"
            x = self.layers[key](x)
            x = self.acts[key](x) if i < n - 1 else self.feature_act(x)
        return x.flatten(1)

    def forward(self, vision: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        v, a = self.frames(vision, audio)
        z = torch.cat([self._branch("vision", v), self._branch("audio", a)], dim=1)
        if self.arch.hidden:
            z = self.acts["fusion_hidden"](self.layers["fusion_hidden"](z))
        return self.layers["fusion_classifier"](z)

    # ---- what the pricing needs --------------------------------------------------------------

    def weight_count(self) -> int:
        return sum(int(self.layer(g.name).weight.numel()) for g in self.geoms)

    def mac_count(self) -> int:
        return sum(g.macs for g in self.geoms)

    def int_weights(self) -> dict[str, tuple[torch.Tensor, int]]:
        """Per layer: (integer weights, log2 of their power-of-two scale), checked against the narrow range."""
        out = {}
        for g in self.geoms:
            w, log2 = int_weight(self.layer(g.name), self.arch.weight_bits, g.name)
            out[g.name] = (w.detach(), log2)
        return out

    def layer_shapes(self, nonzero: dict[str, dict] | None = None) -> list[AnnLayer]:
        """The layers as firmware_sim.ann_cost prices them (per inference); ``nonzero`` (from measure_nonzero)
        fills the measured nonzero inputs and MACs. Inputs: ``in_bits`` of their modality; hidden
        activations ``act_bits``; the logits int32 (spec.ACC_BITS)."""
        out = []
        first = {f"{m}.conv0" for m in ("vision", "audio")}
        for g in self.geoms:
            modality = g.name.split(".")[0]
            in_bits = self.in_bits[modality] if g.name in first else self.arch.act_bits
            out_bits = spec.ACC_BITS if g.name == "fusion.classifier" else self.arch.act_bits
            nz = (nonzero or {}).get(g.name, {})
            out.append(AnnLayer(g.name, g.macs, int(self.layer(g.name).weight.numel()), g.n_in, in_bits, g.n_out, out_bits,
                                self.arch.weight_bits, nz.get("inputs"), nz.get("macs")))
        return out


def _nonzero_macs(g: _Geom, x: torch.Tensor) -> int:
    """MACs whose input is nonzero, summed over the batch: x (B, C, H, W) or (B, N)."""
    mask = (x != 0).double()
    if g.kind == "dense":
        return int(mask.sum()) * g.n_out
    ones = torch.ones(1, g.in_shape[0], g.kernel, g.kernel, dtype=torch.float64, device=x.device)
    reached = F.conv2d(mask, ones, stride=g.stride, padding=g.kernel // 2)   # nonzero inputs per output position
    return int(reached.sum()) * g.out_shape[0]


@torch.no_grad()
def measure_nonzero(model: AnnCompetitor, vision: torch.Tensor, audio: torch.Tensor,
                    batch_size: int = 256) -> dict[str, dict]:
    """Per layer, the mean per sample over the batch (vision (T, B, 2, H, W), audio (T, B, C)) of its nonzero
    inputs (``inputs``) and of its MACs with a nonzero input (``macs``), from the quantized eval forward."""
    was_training = model.training
    model.eval()
    sums = {g.name: [0, 0] for g in model.geoms}
    hooks = []
    for g in model.geoms:
        def hook(_module, args, g=g):
            x = args[0]
            sums[g.name][0] += int((x != 0).sum())
            sums[g.name][1] += _nonzero_macs(g, x)
        hooks.append(model.layer(g.name).register_forward_pre_hook(hook))
    n = vision.shape[1]
    try:
        for idx in torch.arange(n).split(batch_size):
            model(vision[:, idx], audio[:, idx])
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {name: {"inputs": s[0] / max(n, 1), "macs": s[1] / max(n, 1)} for name, s in sums.items()}
