"""The integer program the simulator runs: layers, readout and constants, as numpy (no ONNX, no torch).

Built by ``firmware_sim.loader`` from an ONNX file (docs/accelerator.md), or directly from numpy
arrays (tests). ``Program.check()`` validates shapes and ranges so the
kernels never see an inconsistent program.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from firmware_sim import spec
from firmware_sim.frontend import FrontEnd, FrontEndError

KINDS = ("conv", "dense")
TAAF, CONCAT, TAAF_MODAL = "taaf", "concat", "taaf_modal"   # the readouts (docs/accelerator.md)
FUSIONS = (TAAF, CONCAT, TAAF_MODAL)
MODALITIES = ("audio", "vision")   # z_t = [audio ; vision]: audio's features first


class ContractError(ValueError):
    """A file, program or input does not follow docs/accelerator.md; the message says what and where."""


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


@dataclass
class Layer:
    """One spiking layer. weight: int8, conv (C_out, C_in, k, k) or dense (out, in), PyTorch layout."""

    name: str
    kind: str
    modality: str
    input: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: np.ndarray
    weight_log2: int
    theta: int
    stride: int = 1
    padding: int = 0

    @property
    def kernel(self) -> int:
        return int(self.weight.shape[-1]) if self.kind == "conv" else 1

    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_out(self) -> int:
        return math.prod(self.out_shape)

    @property
    def fan_in(self) -> int:
        """Synapses per output neuron (full kernel, padding included)."""
        return int(np.prod(self.weight.shape[1:]))


@dataclass
class ModalBranch:
    """One modality's part of the ``taaf_modal`` readout (docs/accelerator.md, "taaf_modal readout"):
    the bias b_m of its step logits l^m_t = (W_m z^m_t + b_m) >> logit_shift and its score MLP
    e^m_t = s_m . (max(U_m z^m_t + c_m, 0) >> hidden_shift) + d_m. Integers (biases int64)."""

    bias: np.ndarray           # (K,) b_m
    hidden_weight: np.ndarray  # (H, D_m) U_m
    hidden_bias: np.ndarray    # (H,) c_m
    out_weight: np.ndarray     # (1, H) s_m
    out_bias: np.ndarray       # (1,) d_m


@dataclass
class Readout:
    """The integer TAAF, concat or taaf_modal readout; weights int, biases int64 (docs/accelerator.md).

    taaf / concat: one bias (K,) and (taaf) one score MLP on z_t. taaf_modal: ``bias`` and the
    ``hidden_*`` / ``out_*`` fields are None; ``branches`` holds each present modality's bias and score
    MLP, and ``modality_logits`` says whether the program also outputs each modality's own prediction.
    A unimodal program has None for the missing modality's input layer and warp; its z_t is the
    present modality's warped features alone (D_a or D_v is 0)."""

    fusion: str
    audio_input: str | None
    vision_input: str | None
    warp_audio: np.ndarray | None   # (D_wa,)
    warp_vision: np.ndarray | None  # (D_wv,)
    weight: np.ndarray              # (K, D_a + D_v)
    bias: np.ndarray | None         # (K,); None for taaf_modal
    logit_shift: int
    hidden_weight: np.ndarray | None = None   # (H, D_a + D_v)
    hidden_bias: np.ndarray | None = None     # (H,)
    hidden_shift: int = 0
    out_weight: np.ndarray | None = None      # (1, H)
    out_bias: np.ndarray | None = None        # (1,)
    score_log2: int = 0
    log2: dict = field(default_factory=dict)  # weight name -> log2 scale (for reports)
    branches: dict[str, ModalBranch] = field(default_factory=dict)   # taaf_modal: modality -> its branch
    modality_logits: bool = False             # taaf_modal: outputs logits_<m> = y_m for every present m

    @property
    def n_classes(self) -> int:
        return int(self.weight.shape[0])

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities whose features reach the readout, in z order (audio first)."""
        return tuple(m for m in MODALITIES if getattr(self, f"{m}_input") is not None)

    @property
    def n_branches(self) -> int:
        """Score MLPs (and attention terms per step): one per modality (taaf_modal), 1 (taaf), 0 (concat)."""
        return len(self.branches) if self.fusion == TAAF_MODAL else int(self.fusion == TAAF)

    @property
    def n_hidden(self) -> int:
        """H: hidden units of the score MLP (of each branch, for taaf_modal); 0 for concat."""
        if self.fusion == TAAF_MODAL:
            return int(next(iter(self.branches.values())).hidden_weight.shape[0]) if self.branches else 0
        return 0 if self.hidden_weight is None else int(self.hidden_weight.shape[0])

    @property
    def score_weights(self) -> int:
        """Weights of the score MLP(s): U and s of every branch."""
        if self.fusion == TAAF_MODAL:
            return sum(int(br.hidden_weight.size + br.out_weight.size) for br in self.branches.values())
        return int(self.hidden_weight.size + self.out_weight.size) if self.fusion == TAAF else 0

    def columns(self, modality: str, d_audio: int) -> slice:
        """The columns of z_t (and of ``weight``) holding ``modality``'s features, given D_a."""
        return slice(0, d_audio) if modality == "audio" else slice(d_audio, None)


def readout_max_T(fusion: str, n_modalities: int) -> int:
    """Longest T whose readout sum |y| stays below 2^24 (EXACT_LIMIT): y adds T x (terms per step) products
    u l' with |l'| <= 2^READOUT_MAX_BITS - 1 and u <= 2^EXP2_ONE_BITS (1 for concat); a step has one term per
    modality for taaf_modal, one for taaf and concat. 32 (taaf), 8196 (concat), 16 (taaf_modal, two sensors)."""
    u_max = 1 if fusion == CONCAT else 2 ** spec.EXP2_ONE_BITS
    terms = n_modalities if fusion == TAAF_MODAL else 1
    return (spec.EXACT_LIMIT - 1) // (terms * u_max * (2 ** spec.READOUT_MAX_BITS - 1))


@dataclass
class Program:
    """What the accelerator runs. inputs: name -> (sensor shape without T, B; max count per element);
    frontends: input name -> its FrontEnd (firmware_sim.frontend; an input without one has the identity).
    A layer reading an input reads the front-end's output (``shape_of``, ``input_max``)."""

    T: int
    max_T: int
    weight_bits: int
    state_bits: int
    leak_shift: int
    n_classes: int
    inputs: dict[str, tuple[tuple[int, ...], int]]
    layers: list[Layer]
    readout: Readout
    meta: dict = field(default_factory=dict)
    frontends: dict[str, FrontEnd] = field(default_factory=dict)

    def frontend(self, name: str) -> FrontEnd:
        """The front-end of input ``name`` (the identity when the program gives none)."""
        shape, top = self.inputs[name]
        return self.frontends.get(name) or FrontEnd.identity(shape, top)

    def input_max(self, name: str) -> int:
        """Largest count a layer reading ``name`` sees: the front-end's output max for an input, 1 for spikes."""
        return self.frontend(name).out_max(self.inputs[name][1]) if name in self.inputs else 1

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def shape_of(self, name: str) -> tuple[int, ...]:
        """Per-sample shape of an input or of a layer's spikes."""
        if name in self.inputs:
            return self.frontend(name).out_shape(self.inputs[name][0])
        return self.layer(name).out_shape

    def modality_of(self, name: str) -> str:
        return name if name in self.inputs else self.layer(name).modality

    def feature_width(self, modality: str) -> int:
        """D_m: the number of features modality ``modality`` gives z_t (0 when the program lacks it)."""
        name = getattr(self.readout, f"{modality}_input")
        return 0 if name is None else self.layer(name).n_out

    def check(self) -> "Program":
        """Raise ContractError on any inconsistency; return self."""
        limit = self._check_constants()
        seen = self._check_inputs()
        names = self._check_layers(seen, limit)
        self._check_readout(names, limit)
        self._check_bounds(*spec.state_range(self.state_bits))
        return self

    def _check_constants(self) -> int:
        """The program-wide constants; returns the weight limit of its bit width."""
        _require(self.state_bits == spec.STATE_BITS, "state_bits", self.state_bits,
                 f"{spec.STATE_BITS} (the accelerator's membrane)")
        try:
            spec.check_weight_bits(self.weight_bits)
        except ValueError as err:
            raise ContractError(f"program: {err}") from None
        _require(0 <= self.leak_shift <= spec.LEAK_OFF, "leak_shift", self.leak_shift,
                 f"0..{spec.LEAK_OFF} ({spec.LEAK_OFF}: no leak, integrate-and-fire)")
        _require(1 <= self.T <= self.max_T, "T", self.T, f"1..max_T={self.max_T}")
        return spec.weight_limit(self.weight_bits)

    def _check_inputs(self) -> dict:
        """The inputs and their front-ends; returns {input name: the shape its first layer reads}."""
        seen = {}
        for name, (shape, top) in self.inputs.items():
            _require(all(d >= 1 for d in shape), f"inputs.{name}.shape", list(shape), "positive dimensions")
            _require(1 <= top <= 255, f"inputs.{name}.max", top, "1..255")
            try:
                self.frontend(name).check(tuple(shape), top, f"frontends.{name}")
            except FrontEndError as err:
                raise ContractError(f"program: {err}") from None
            seen[name] = self.shape_of(name)
        unknown = sorted(set(self.frontends) - set(self.inputs))
        if unknown:
            raise ContractError(f"program: frontends {unknown} name no input; the inputs are {sorted(self.inputs)}")
        return seen

    def _check_layers(self, seen: dict, limit: int) -> set:
        """Each layer in order: a unique name, a known kind, an earlier source; returns every name (inputs too)."""
        hi = spec.state_range(self.state_bits)[1]
        names = set(self.inputs)
        for layer in self.layers:
            where = f"layer {layer.name!r}"
            if layer.name in names:
                raise ContractError(f"program: {where} is defined twice (or shadows an input)")
            names.add(layer.name)
            _require(layer.kind in KINDS, f"{where}.kind", layer.kind, " or ".join(KINDS))
            if layer.input not in seen:
                raise ContractError(f"program: {where} reads {layer.input!r}, which is neither an input nor an earlier layer")
            _check_layer(layer, tuple(seen[layer.input]), where, limit, hi)
            seen[layer.name] = layer.out_shape
        return names

    def _check_readout(self, names: set, limit: int) -> None:
        """The readout: its fusion, the layers it reads and their warps, its weights, biases and shifts."""
        r = self.readout
        _require(r.fusion in FUSIONS, "readout.fusion", r.fusion, " or ".join(FUSIONS))
        if not r.modalities:
            raise ContractError("program: readout.audio_input and readout.vision_input are both null; "
                                "at least one modality must reach the readout")
        for m in ("audio", "vision"):
            self._check_readout_input(m, names, limit)
        if set(r.modalities) != set(self.inputs):
            raise ContractError(f"program: the readout reads modalities {list(r.modalities)} but the inputs are "
                                f"{sorted(self.inputs)}; every input's modality must reach the readout")
        d = self.feature_width("audio") + self.feature_width("vision")
        bias_limit = 2 ** (spec.BIAS_BITS - 1) - 1
        _check_int(r.weight, "readout.weight", (self.n_classes, d), limit)
        bound = readout_max_T(r.fusion, len(r.modalities))
        _require(self.max_T <= bound, "max_T", self.max_T,
                 f"<= {bound} (fusion {r.fusion!r} with {len(r.modalities)} modalities keeps |y| below 2^24)")
        _require(isinstance(r.modality_logits, bool) and (not r.modality_logits or r.fusion == TAAF_MODAL),
                 "readout.modality_logits", r.modality_logits, "false, or true with fusion 'taaf_modal'")
        if r.fusion == TAAF_MODAL:
            self._check_branches(limit, bias_limit)
        else:
            if r.bias is None:
                raise ContractError(f"program: fusion {r.fusion!r} needs readout.bias")
            _check_int(r.bias, "readout.bias", (self.n_classes,), bias_limit)
        _require(0 <= r.logit_shift <= 62, "readout.logit_shift", r.logit_shift, "0..62")
        if r.fusion == TAAF:
            self._check_score_mlp(d, limit, bias_limit)

    def _check_readout_input(self, m: str, names: set, limit: int) -> None:
        """Modality ``m``'s readout input: absent with no warp, or a spiking layer of that modality with its warp."""
        r = self.readout
        role, name, w = f"{m}_input", getattr(r, f"{m}_input"), getattr(r, f"warp_{m}")
        if name is None:
            if w is not None:
                raise ContractError(f"program: readout.warp_{m} is set but readout.{role} is null")
            return
        if name not in names - set(self.inputs):
            raise ContractError(f"program: readout.{role}={name!r} is not a spiking layer")
        if self.layer(name).modality != m:
            raise ContractError(f"program: readout.{role}={name!r} is a {self.layer(name).modality} layer")
        if w is None:
            raise ContractError(f"program: readout.{role}={name!r} needs readout.warp_{m}")
        _require(w.ndim == 1 and w.size >= 1, f"readout.warp_{m}.shape", list(w.shape), "(D,) with D >= 1")
        _check_int(w, f"readout.warp_{m}", w.shape, limit)

    def _check_score_mlp(self, d: int, limit: int, bias_limit: int) -> None:
        """fusion 'taaf': the score MLP's weights, biases and shifts over the D fused features."""
        r = self.readout
        if r.hidden_weight is None or r.out_weight is None or r.hidden_bias is None or r.out_bias is None:
            raise ContractError("program: fusion 'taaf' needs score_hidden_* and score_out_* entries in the readout")
        h = r.hidden_weight.shape[0] if r.hidden_weight.ndim == 2 else -1
        _check_int(r.hidden_weight, "readout.score_hidden_weight", (h, d), limit)
        _check_int(r.hidden_bias, "readout.score_hidden_bias", (h,), bias_limit)
        _check_int(r.out_weight, "readout.score_out_weight", (1, h), limit)
        _check_int(r.out_bias, "readout.score_out_bias", (1,), bias_limit)
        _require(0 <= r.hidden_shift <= 62, "readout.hidden_shift", r.hidden_shift, "0..62")
        _require(r.score_log2 <= 30, "readout.score_log2", r.score_log2, "<= 30 (a left shift of at most 34)")

    def _check_branches(self, limit: int, bias_limit: int) -> None:
        """taaf_modal: one branch per present modality, every branch with the same H, shapes and ranges."""
        r = self.readout
        if r.bias is not None or any(x is not None for x in (r.hidden_weight, r.hidden_bias, r.out_weight, r.out_bias)):
            raise ContractError("program: fusion 'taaf_modal' has one bias and one score MLP per modality "
                                "(readout.<m>_readout_bias, <m>_score_*); readout.readout_bias and score_* must be unset")
        if list(r.branches) != list(r.modalities):
            raise ContractError(f"program: fusion 'taaf_modal' needs one branch per modality reaching the readout "
                                f"{list(r.modalities)} (audio first), got {list(r.branches)}")
        first = r.branches[r.modalities[0]].hidden_weight
        h = first.shape[0] if first.ndim == 2 else -1
        for m, br in r.branches.items():
            _check_int(br.bias, f"readout.{m}_readout_bias", (self.n_classes,), bias_limit)
            _check_int(br.hidden_weight, f"readout.{m}_score_hidden_weight", (h, self.feature_width(m)), limit)
            _check_int(br.hidden_bias, f"readout.{m}_score_hidden_bias", (h,), bias_limit)
            _check_int(br.out_weight, f"readout.{m}_score_out_weight", (1, h), limit)
            _check_int(br.out_bias, f"readout.{m}_score_out_bias", (1,), bias_limit)
        _require(h >= 1, "readout score hidden units", h, ">= 1")
        _require(0 <= r.hidden_shift <= 62, "readout.hidden_shift", r.hidden_shift, "0..62")
        _require(r.score_log2 <= 30, "readout.score_log2", r.score_log2, "<= 30 (a left shift of at most 34)")

    def _check_bounds(self, lo: int, hi: int) -> None:
        """Static worst cases: |v - (v >> k) + I| and every readout value below EXACT_LIMIT."""
        for layer in self.layers:
            top = self.input_max(layer.input)
            worst = int(np.abs(layer.weight.astype(np.int64)).reshape(layer.weight.shape[0], -1).sum(1).max()) * top
            if worst + (hi - lo + 1) >= spec.EXACT_LIMIT:
                raise ContractError(f"program: layer {layer.name!r}: worst-case |v - (v >> k) + I| = "
                                    f"{worst} + 2^{self.state_bits} "
                                    f"reaches 2^24 (EXACT_LIMIT)")
        r = self.readout
        ranges = {m: warp_range(getattr(r, f"warp_{m}")) for m in r.modalities}
        if r.fusion == TAAF_MODAL:
            self._check_branch_bounds(ranges)
            return
        z_lo = np.concatenate([np.full(self.feature_width(m), ranges[m][0], np.int64) for m in r.modalities])
        z_hi = np.concatenate([np.full(self.feature_width(m), ranges[m][1], np.int64) for m in r.modalities])
        logits = affine_bound(r.weight, r.bias, z_lo, z_hi)
        if logits >> r.logit_shift >= 2 ** spec.READOUT_MAX_BITS:
            raise ContractError(f"program: logit_shift={r.logit_shift} leaves worst-case |l_t| >> shift = "
                                f"{logits >> r.logit_shift} >= 2^{spec.READOUT_MAX_BITS} (READOUT_MAX_BITS)")
        if r.fusion == TAAF:
            hidden = affine_bound(r.hidden_weight, r.hidden_bias, z_lo, z_hi)
            h_hi = np.maximum(affine_upper(r.hidden_weight, r.hidden_bias, z_lo, z_hi), 0) >> r.hidden_shift
            score = affine_bound(r.out_weight, r.out_bias, np.zeros_like(h_hi), h_hi)
            for what, value in (("U z + c", hidden), ("e_t", score)):
                if value >= spec.EXACT_LIMIT:
                    raise ContractError(f"program: worst-case |{what}| = {value} >= 2^24 (EXACT_LIMIT); "
                                        f"hidden_shift={r.hidden_shift}")

    def _check_branch_bounds(self, ranges: dict[str, tuple[int, int]]) -> None:
        """taaf_modal, per modality m over its features' range: |l^m_t| >> logit_shift < 2^11, |U_m z + c_m| < 2^24
        and |e^m_t| < 2^23 (SCORE_LIMIT: the joint max minus any score stays below 2^24)."""
        r = self.readout
        for m, br in r.branches.items():
            n = self.feature_width(m)
            z_lo, z_hi = np.full(n, ranges[m][0], np.int64), np.full(n, ranges[m][1], np.int64)
            w = r.weight[:, r.columns(m, self.feature_width("audio"))]
            logits = affine_bound(w, br.bias, z_lo, z_hi)
            if logits >> r.logit_shift >= 2 ** spec.READOUT_MAX_BITS:
                raise ContractError(f"program: logit_shift={r.logit_shift} leaves worst-case |l^{m}_t| >> shift = "
                                    f"{logits >> r.logit_shift} >= 2^{spec.READOUT_MAX_BITS} (READOUT_MAX_BITS)")
            hidden = affine_bound(br.hidden_weight, br.hidden_bias, z_lo, z_hi)
            h_hi = np.maximum(affine_upper(br.hidden_weight, br.hidden_bias, z_lo, z_hi), 0) >> r.hidden_shift
            score = affine_bound(br.out_weight, br.out_bias, np.zeros_like(h_hi), h_hi)
            for what, value, top in (("U z + c", hidden, spec.EXACT_LIMIT), ("e_t", score, spec.SCORE_LIMIT)):
                if value >= top:
                    raise ContractError(f"program: worst-case |{what}| of the {m} branch = {value} >= {top} "
                                        f"(2^{top.bit_length() - 1}); hidden_shift={r.hidden_shift}")


def warp_range(w: np.ndarray) -> tuple[int, int]:
    """(min, max) of sum_d w[d] * s_d over binary spikes s."""
    w = w.astype(np.int64)
    return int(w[w < 0].sum()), int(w[w > 0].sum())


def affine_upper(w: np.ndarray, b: np.ndarray, x_lo: np.ndarray, x_hi: np.ndarray) -> np.ndarray:
    """Per row, max of w x + b over the box x_lo <= x <= x_hi (int64)."""
    w = w.astype(np.int64)
    return np.maximum(w * x_lo, w * x_hi).sum(1) + b.astype(np.int64)


def affine_bound(w, b, x_lo, x_hi) -> int:
    """max over rows and over the box of |w x + b|."""
    w64 = w.astype(np.int64)
    lower = np.minimum(w64 * x_lo, w64 * x_hi).sum(1) + b.astype(np.int64)
    return int(max(np.abs(affine_upper(w, b, x_lo, x_hi)).max(), np.abs(lower).max()))


def _require(ok: bool, field_name: str, value, expected: str) -> None:
    if not ok:
        raise ContractError(f"program: {field_name}={value!r}, expected {expected}")


def _check_int(arr: np.ndarray, where: str, shape: tuple, limit: int) -> None:
    if tuple(arr.shape) != tuple(shape):
        raise ContractError(f"program: {where} has shape {tuple(arr.shape)}, expected {tuple(shape)}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ContractError(f"program: {where} has dtype {arr.dtype}, expected integers")
    if arr.size and int(np.abs(arr.astype(np.int64)).max()) > limit:
        raise ContractError(f"program: {where} holds |value| {int(np.abs(arr.astype(np.int64)).max())} > {limit}")


def _check_layer(layer: Layer, src: tuple[int, ...], where: str, limit: int, state_hi: int) -> None:
    _require(1 <= layer.theta <= state_hi, f"{where}.theta", layer.theta, f"1..{state_hi}")
    if layer.kind == "conv":
        _require(len(layer.in_shape) == 3 and tuple(layer.in_shape) == src, f"{where}.in_shape", list(layer.in_shape),
                 f"{list(src)} (the shape of {layer.input!r})")
        w = layer.weight
        _require(w.ndim == 4 and w.shape[2] == w.shape[3], f"{where}.weight.shape", list(w.shape), "(C_out, C_in, k, k)")
        _require(layer.stride >= 1 and layer.padding >= 0, f"{where}.stride/padding", (layer.stride, layer.padding),
                 "stride >= 1, padding >= 0")
        c, h, wd = layer.in_shape
        k, s, p = w.shape[2], layer.stride, layer.padding
        expect = (w.shape[0], conv_out(h, k, s, p), conv_out(wd, k, s, p))
        _require(w.shape[1] == c, f"{where}.weight C_in", w.shape[1], f"{c} (in_shape[0])")
        _require(tuple(layer.out_shape) == expect, f"{where}.out_shape", list(layer.out_shape), f"{list(expect)}")
    else:
        n_src = int(np.prod(src))
        _require(tuple(layer.in_shape) in ((n_src,), tuple(src)), f"{where}.in_shape", list(layer.in_shape),
                 f"[{n_src}] (the flattened shape of {layer.input!r})")
        _require(len(layer.out_shape) == 1, f"{where}.out_shape", list(layer.out_shape), "[out]")
        _require(layer.weight.shape == (layer.out_shape[0], n_src), f"{where}.weight.shape", list(layer.weight.shape),
                 f"[{layer.out_shape[0]}, {n_src}]")
    _check_int(layer.weight, f"{where}.weight", layer.weight.shape, limit)
