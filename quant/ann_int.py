"""The single-pass int8 ANN competitor as integers: its program, and a numpy reference that runs it.

``ann_program(model)`` reads a trained quant.ann_competitor.AnnCompetitor into an :class:`AnnProgram`:
per layer the integer weights (int8 at most, narrow range) and the requantisation the Brevitas eval
forward performs. Every scale in that forward is a power of two, so a layer with an activation is

    y = clip(round_half_even(acc * 2^shift), 0, 2^act_bits - 1),   acc = sum of int weights x int inputs

with ``shift`` = log2(input scale) + log2(weight scale) - log2(activation scale) (negative: a rounding
right shift), and the classifier's int32 accumulators are the logits. The inputs are the count frame
(B, 2, H, W), the window's vision counts summed over its T steps, and the count map (B, 1, T, C), each
audio step's cochlea counts: integers equal to the counts (checked), at a power-of-two scale.

``reference_logits(program, vision, audio)`` computes that in int64 numpy arithmetic (the authority the
exported ONNX file and onnxruntime are checked against, quant/ann_onnx.py) and raises when an
accumulator reaches 2^24, where float32 stops being exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from firmware_sim import spec
from firmware_sim.program import ContractError
from firmware_sim.run import check_counts
from quant.quantizers import exact_log2

INPUTS = ("vision", "audio")   # the competitor's inputs in its graph order (vision first)


@dataclass(frozen=True)
class IntLayer:
    """One layer: ``weight`` int64 (O, C, k, k) for a conv (padding k // 2) or (O, N) for a dense layer.
    ``shift`` None: no activation (the classifier; its accumulators are the logits)."""

    name: str
    kind: str                 # conv | dense
    weight: np.ndarray
    stride: int
    shift: int | None
    act_max: int              # 2^act_bits - 1 (unused without an activation)


@dataclass(frozen=True)
class AnnProgram:
    """The integer competitor. Inputs, time-major: vision (T, B, *vision_shape) counts 0..vision_step_max,
    audio (T, B, audio_channels) counts 0..audio_step_max."""

    T: int
    vision_shape: tuple[int, int, int]      # (P, H, W)
    audio_channels: int
    vision_step_max: int                    # data.clip
    audio_step_max: int                     # data.clip_audio
    weight_bits: int
    act_bits: int
    vision: tuple[IntLayer, ...]
    audio: tuple[IntLayer, ...]
    head: tuple[IntLayer, ...]              # optional hidden layer, then the classifier
    n_classes: int

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per input, the shape after (T, B): vision (P, H, W), audio (C,)."""
        return {"vision": self.vision_shape, "audio": (self.audio_channels,)}

    def input_max(self) -> dict[str, int]:
        return {"vision": self.vision_step_max, "audio": self.audio_step_max}

    def as_dict(self) -> dict:
        """The facts a reader of the ONNX file needs (its metadata), no weights."""
        return {"T": self.T, "inputs": {m: {"shape": list(self.input_shapes()[m]), "max": self.input_max()[m]}
                                        for m in INPUTS},
                "weight_bits": self.weight_bits, "act_bits": self.act_bits, "n_classes": self.n_classes,
                "layers": [{"name": lay.name, "kind": lay.kind, "shape": list(lay.weight.shape), "stride": lay.stride,
                            "shift": lay.shift} for lay in (*self.vision, *self.audio, *self.head)]}


def _pow2_log2(quant_act, where: str) -> int:
    return exact_log2(quant_act.act_quant.scale().detach(), where)


@torch.no_grad()
def _input_log2(model, m: str) -> int:
    """log2 of input ``m``'s scale, checked to keep every valid count 0..max as that integer (Brevitas gives a
    1-bit input the scale 1/2: the integers are the counts, the scale folds into the first layer's shift)."""
    quant = model.inputs[m]
    e = _pow2_log2(quant, f"inputs.{m}")
    top = model.vision_max if m == "vision" else model.audio_max
    counts = torch.arange(top + 1, dtype=torch.float32)
    if not torch.equal(quant(counts) / 2.0 ** e, counts):
        raise ContractError(f"inputs.{m}: the input quantizer (scale 2^{e}) does not keep the counts 0..{top} as integers")
    return e


def ann_program(model) -> AnnProgram:
    """The integer program of a trained AnnCompetitor (eval-mode scales). Raises QuantRangeError when a
    weight leaves its narrow int range or a scale is not a power of two (never clipped, never rounded)."""
    weights = model.int_weights()
    act_max = 2 ** model.arch.act_bits - 1
    in_log2 = {m: _input_log2(model, m) for m in INPUTS}
    feature_log2 = _pow2_log2(model.feature_act, "feature activation")
    branches = {}
    for m in INPUTS:
        x_log2, layers = in_log2[m], []
        n = len(getattr(model.arch, m).channels)
        for i in range(n):
            name = f"{m}.conv{i}"
            w, w_log2 = weights[name]
            out_log2 = feature_log2 if i == n - 1 else _pow2_log2(model.acts[f"{m}_conv{i}"], name)
            stride = next(g.stride for g in model.geoms if g.name == name)
            layers.append(IntLayer(name, "conv", _ints(w), stride, x_log2 + w_log2 - out_log2, act_max))
            x_log2 = out_log2
        branches[m] = tuple(layers)
    head, x_log2 = [], feature_log2
    if model.arch.hidden:
        w, w_log2 = weights["fusion.hidden"]
        out_log2 = _pow2_log2(model.acts["fusion_hidden"], "fusion.hidden")
        head.append(IntLayer("fusion.hidden", "dense", _ints(w), 1, x_log2 + w_log2 - out_log2, act_max))
    w, _ = weights["fusion.classifier"]
    head.append(IntLayer("fusion.classifier", "dense", _ints(w), 1, None, act_max))
    vision_step_max = model.vision_max // model.audio_shape[0]
    return AnnProgram(model.audio_shape[0], tuple(model.vision_shape), model.audio_shape[1], vision_step_max,
                      model.audio_max, model.arch.weight_bits, model.arch.act_bits, branches["vision"],
                      branches["audio"], tuple(head), model.n_classes)


def _ints(w) -> np.ndarray:
    arr = w.detach().cpu().double().numpy()
    out = np.rint(arr).astype(np.int64)
    if not np.array_equal(out, arr):
        raise ContractError("integer weights hold a non-integer value")
    return out


def check_inputs(program, vision: np.ndarray, audio: np.ndarray) -> int:
    """ContractError naming the input unless vision is (T, B, P, H, W) and audio (T, B, C) with the program's T
    and shapes, one batch size B, and whole counts in 0..max per step. Returns B. ``program``: anything with
    ``T``, ``input_shapes()`` and ``input_max()`` (an AnnProgram, or quant.ann_onnx.AnnOrt)."""
    given = {"vision": np.asarray(vision), "audio": np.asarray(audio)}
    batch = None
    for m, x in given.items():
        want = program.input_shapes()[m]
        if x.ndim != 2 + len(want) or x.shape[0] != program.T or tuple(x.shape[2:]) != want:
            raise ContractError(f"input {m!r}: shape {x.shape}, expected (T={program.T}, B, "
                                f"{', '.join(map(str, want))})")
        if batch is not None and x.shape[1] != batch:
            raise ContractError(f"input {m!r}: batch {x.shape[1]} but vision has {batch}")
        batch = x.shape[1]
        check_counts(m, x, program.input_max()[m], floats=True)
    return int(batch)


def input_maps(vision: np.ndarray, audio: np.ndarray) -> dict[str, np.ndarray]:
    """(T, B, P, H, W), (T, B, C) -> int64 count frame (B, P, H, W) and count map (B, 1, T, C)."""
    return {"vision": np.asarray(vision).astype(np.int64).sum(0),
            "audio": np.asarray(audio).astype(np.int64).transpose(1, 0, 2)[:, None]}


def conv2d_int(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """Integer convolution, padding k // 2: x (B, C, H, W), w (O, C, k, k) int64 -> (B, O, H', W') int64."""
    k = w.shape[-1]
    p = k // 2
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("bchwij,ocij->bohw", windows, w, optimize=True)


def requantise(acc: np.ndarray, shift: int, act_max: int) -> np.ndarray:
    """clip(round_half_even(acc * 2^shift), 0, act_max) in integers (Brevitas' torch.round, ONNX Round)."""
    if shift >= 0:
        y = acc << shift
    else:
        k = -shift
        q = acc >> k                                   # floor
        r = acc - (q << k)                             # 0 <= r < 2^k
        half = 1 << (k - 1)
        y = q + ((r > half) | ((r == half) & (q % 2 == 1)))
    return np.clip(y, 0, act_max)


def _layer(lay: IntLayer, x: np.ndarray) -> np.ndarray:
    acc = conv2d_int(x, lay.weight, lay.stride) if lay.kind == "conv" else x @ lay.weight.T
    worst = int(np.abs(acc).max()) if acc.size else 0
    if worst >= spec.EXACT_LIMIT:
        raise ContractError(f"{lay.name}: an accumulator reaches {worst}, not below 2^24 (float32 stops being exact)")
    return acc if lay.shift is None else requantise(acc, lay.shift, lay.act_max)


def reference_logits(program: AnnProgram, vision: np.ndarray, audio: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Integer logits (B, n_classes) int64 of time-major vision (T, B, P, H, W), audio (T, B, C) counts;
    ContractError naming an input of the wrong shape or range."""
    n = check_inputs(program, vision, audio)
    out = []
    for i in range(0, n, batch_size):
        maps = input_maps(vision[:, i:i + batch_size], audio[:, i:i + batch_size])
        flat = []
        for m in INPUTS:
            x = maps[m]
            for lay in getattr(program, m):
                x = _layer(lay, x)
            flat.append(x.reshape(len(x), -1))
        z = np.concatenate(flat, axis=1)
        for lay in program.head:
            z = _layer(lay, z)
        out.append(z)
    return np.concatenate(out, axis=0) if out else np.zeros((0, program.n_classes), np.int64)
