"""The quantized two-modality SNN: the accelerator's integer forward (docs/accelerator.md) in PyTorch.

``QuantTwoModalitySNN`` mirrors edge_taaf.model.TwoModalitySNN layer for layer (same state-dict
names except the warps, see ``load_init_state``) with Brevitas power-of-two weights. Its forward
always computes the accelerator's integers; straight-through gradients make that trainable
(QAT), and it returns the float model's ModelOut so the losses and the trainer are unchanged.
``integer_forward`` returns the integers themselves: every layer's spikes, the step logits,
scores, attention and y. ``export_plan`` gives the program JSON and the integer weights.
The unimodal heads are training probes, not part of the accelerator: they stay float.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from edge_taaf.fusion import FusionOut, evidence_shares, modal_fusion_out
from edge_taaf.model import ModelOut, TwoModalitySNN, absent_features, check_modality_inputs
from edge_taaf.frontend import FrontEndConfig
from edge_taaf.model_config import TAAF, TAAF_MODAL, ModelConfig
from edge_taaf.neurons import LIFParams
from firmware_sim import spec
from firmware_sim.frontend import FrontEnd, FrontEndError
from firmware_sim.program import ContractError, Layer, Program
from firmware_sim.program_io import batch_axis, to_metadata
from firmware_sim.run import check_steps
from quant.int_neuron import int_lif, theta_int
from quant.int_out import IntOut
from quant.int_readout import ExactnessError, QuantDelayWarp, QuantModalReadout, QuantReadout, max_T
from quant.quantizers import int_weight, quant_conv2d, quant_linear

STATE_HEADROOM = 2 ** spec.STATE_BITS  # |v - (v >> k)| < 2^16 is added to the current


@contextlib.contextmanager
def exact_float32():
    """On CUDA, switch TF32 off (matmul and cuDNN conv) so float32 integer sums stay exact."""
    if hasattr(torch.backends.cudnn, "conv"):   # torch >= 2.9
        flags = [(torch.backends.cuda.matmul, "fp32_precision", "ieee"), (torch.backends.cudnn.conv, "fp32_precision", "ieee")]
    else:
        flags = [(torch.backends.cuda.matmul, "allow_tf32", False), (torch.backends.cudnn, "allow_tf32", False)]
    prev = [getattr(obj, name) for obj, name, _ in flags]
    for obj, name, value in flags:
        setattr(obj, name, value)
    try:
        yield
    finally:
        for (obj, name, _), value in zip(flags, prev):
            setattr(obj, name, value)


class _IntSpiking:
    """Shared part of the quantized spiking layers: integer weights, theta_int, the integer LIF."""

    def int_params(self) -> tuple[torch.Tensor, int, int]:
        frozen = getattr(self, "_frozen_params", None)
        if frozen is not None:           # QuantTwoModalitySNN.frozen(): computed once for inference
            return frozen
        w, log2 = int_weight(self.syn, self.bits, f"{self.name}.weight")
        return w, log2, theta_int(self.neuron.theta, log2, self.name)

    def _lif(self, current: torch.Tensor, log2: int, theta: int) -> torch.Tensor:
        """The integer LIF from a stream's membranes when ``self.stream`` holds them ({"v": (B, ...) or None for
        zeros}; replaced by the membranes after the last step), else from zeros (a fresh window)."""
        n = self.neuron
        held = getattr(self, "stream", None)
        v0 = None if held is None else held["v"]
        spikes, self.saturations, v = int_lif(current, log2, theta, n.leak_shift, n.surrogate, n.slope, v0=v0)
        if held is not None:
            held["v"] = v
        return spikes


def as_int64(x: torch.Tensor) -> np.ndarray:
    """An integer-valued tensor as an int64 numpy array."""
    return x.detach().cpu().numpy().astype(np.int64)


class QuantSpikingConv(_IntSpiking, nn.Module):
    """Brevitas Conv2d (padding k // 2, no bias) + integer LIF. (T, B, C, H, W) -> (T, B, C', H', W')."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, neuron: LIFParams, bits: int, name: str):
        super().__init__()
        self.conv = quant_conv2d(c_in, c_out, kernel, stride, bits)
        self.neuron, self.bits, self.name, self.saturations = neuron, bits, name, 0

    @property
    def syn(self):
        return self.conv

    def to_layer(self, name: str, modality: str, src: str, in_shape: tuple[int, ...]) -> Layer:
        """This block's entry of the Program."""
        c = self.conv
        k, s = c.kernel_size[0], c.stride[0]
        if (c.kernel_size[1], c.stride[1], c.padding, c.dilation, c.groups) != (k, s, (k // 2, k // 2), (1, 1), 1) \
                or c.bias is not None or len(in_shape) != 3:
            raise ContractError(f"layer {name}: only square convs with padding k // 2, no dilation, "
                                "groups or bias, on (C, H, W) inputs are covered by the contract")
        w, log2, theta = self.int_params()
        out_shape = (c.out_channels, *[(n + 2 * (k // 2) - k) // s + 1 for n in in_shape[1:]])
        return Layer(name, "conv", modality, src, tuple(in_shape), out_shape, as_int64(w), log2, theta, s, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, log2, theta = self.int_params()
        t, b = x.shape[:2]
        current = F.conv2d(x.flatten(0, 1), w, stride=self.conv.stride, padding=self.conv.padding)
        return self._lif(current.unflatten(0, (t, b)), log2, theta)


class QuantSpikingDense(_IntSpiking, nn.Module):
    """Brevitas Linear (no bias) + integer LIF. (T, B, F) -> (T, B, F')."""

    def __init__(self, f_in: int, f_out: int, neuron: LIFParams, bits: int, name: str):
        super().__init__()
        self.fc = quant_linear(f_in, f_out, bits)
        self.neuron, self.bits, self.name, self.saturations = neuron, bits, name, 0

    @property
    def syn(self):
        return self.fc

    def to_layer(self, name: str, modality: str, src: str, in_shape: tuple[int, ...]) -> Layer:
        """This block's entry of the Program (a (C, H, W) input is flattened row-major)."""
        if self.fc.bias is not None:
            raise ContractError(f"layer {name}: dense layers have no bias in the contract")
        w, log2, theta = self.int_params()
        n_in = int(np.prod(in_shape))
        if n_in != w.shape[1]:
            raise ContractError(f"layer {name}: weight {tuple(w.shape)} does not fit input {list(in_shape)}")
        return Layer(name, "dense", modality, src, (n_in,), (self.fc.out_features,), as_int64(w), log2, theta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, log2, theta = self.int_params()
        return self._lif(F.linear(x, w), log2, theta)


class IntegerLayers:
    """The integer mode of every block (edge_taaf.model.FloatLayers has the float mode): Brevitas power-of-two
    weights, integer LIF, the integer warps (one shared scale) and the integer TAAF readout."""

    def __init__(self, bits: int):
        self.bits = bits

    def conv(self, c_in: int, c_out: int, kernel: int, stride: int, neuron: LIFParams, name: str) -> nn.Module:
        return QuantSpikingConv(c_in, c_out, kernel, stride, neuron, self.bits, name)

    def dense(self, f_in: int, f_out: int, neuron: LIFParams, name: str) -> nn.Module:
        return QuantSpikingDense(f_in, f_out, neuron, self.bits, name)

    def warps(self, modalities: tuple[str, ...], max_delay: int) -> dict[str, nn.Module]:
        """One warp per modality; they share one Brevitas quantizer (the contract's warp_log2): the first owns it."""
        out, owner = {}, None
        for m in modalities:
            out[m] = QuantDelayWarp(max_delay, self.bits, owner)
            owner = out[m].kernel.weight_quant
        return out

    def fusion(self, config: ModelConfig) -> nn.Module:
        if config.fusion == TAAF_MODAL:
            return QuantModalReadout(config.modalities, config.d_audio, config.d_vision, config.n_classes,
                                     config.score_hidden, self.bits, config.modality_logits)
        hidden = config.score_hidden if config.fusion == TAAF else None
        return QuantReadout(config.d_audio, config.d_vision, config.n_classes, hidden, self.bits)


class QuantTwoModalitySNN(TwoModalitySNN):
    """The network of edge_taaf.model.TwoModalitySNN in the integer mode (IntegerLayers): the same classes,
    config, param groups and weight count; forward computes the accelerator's integers."""

    def __init__(self, cfg, weight_bits: int = spec.WEIGHT_BITS_DEFAULT, input_max: tuple[int, int] = (1, 1)):
        """cfg: the model config (mapping or ModelConfig); input_max: largest vision and audio spike count."""
        config = ModelConfig.parse(cfg)
        if config.neuron.reset != spec.RESET:
            raise ContractError(f"model.neuron.reset={config.neuron.reset!r} is not covered by the accelerator contract "
                                f"(reset: {spec.RESET!r} only)")
        bits = spec.check_weight_bits(weight_bits, "quant.weight_bits")
        top = 2 ** spec.COUNT_BITS - 1
        if any(not 1 <= int(m) <= top for m in input_max):
            raise ValueError(f"input_max={tuple(input_max)} (data.clip, data.clip_audio): the largest count per bin must "
                             f"be 1..{top}, the accelerator's {spec.COUNT_BITS}-bit input counts")
        super().__init__(config, IntegerLayers(bits))
        self.bits, self.neuron = bits, config.neuron
        self.input_max = tuple(int(m) for m in input_max)
        self.vision_shape = config.sensor_shapes.get("vision")
        self.audio_channels = config.sensor_shapes["audio"][0] if "audio" in config.sensor_shapes else None
        self.frontends = {m: contract_frontend(config.frontends[m], config.sensor_shapes[m],
                                               self.input_max[0 if m == "vision" else 1], f"model.frontend.{m}")
                          for m in config.modalities}
        self.n_classes, self.d_audio = config.n_classes, config.d_audio

    # ---- structure -------------------------------------------------------------------------
    def check_covered(self) -> None:
        """Raise ContractError naming the first layer the accelerator contract does not cover."""
        expected = {"frontend", "vision", "audio", "warp_audio", "warp_vision", "fusion", "head_audio", "head_vision"}
        extra = [n for n, _ in self.named_children() if n not in expected]
        if self.vision is not None:
            extra += [f"vision.{n}" for n, _ in self.vision.named_children() if n not in ("convs", "dense")]
        if self.audio is not None:
            extra += [f"audio.{n}" for n, _ in self.audio.named_children() if n != "layers"]
        if extra:
            raise ContractError(f"layer {extra[0]} is not covered by the accelerator contract")
        for name, modality, _, layer in self.spiking_layers():
            want = QuantSpikingDense if name.endswith("dense") or modality == "audio" else QuantSpikingConv
            if type(layer) is not want:
                raise ContractError(f"layer {name} ({type(layer).__name__}) is not covered by the accelerator "
                                    f"contract (expected {want.__name__})")
            if layer.neuron.reset != spec.RESET:
                raise ContractError(f"layer {name}: reset {layer.neuron.reset!r} is not covered (only {spec.RESET!r})")
        for name, mod in (("warp.audio", self.warp_audio), ("warp.vision", self.warp_vision), ("readout", self.fusion)):
            if mod is not None and type(mod) not in (QuantDelayWarp, QuantReadout, QuantModalReadout):
                raise ContractError(f"layer {name} ({type(mod).__name__}) is not covered by the accelerator contract")

    def load_init_state(self, state: dict) -> None:
        """Load a float TwoModalitySNN state dict (warp delta -> kernel e_0 + delta) or a quantized one."""
        state = dict(state)
        for m in ("audio", "vision"):
            delta = state.pop(f"warp_{m}.delta", None)
            if delta is not None:
                kernel = torch.zeros_like(delta)
                kernel[0] = 1.0
                state[f"warp_{m}.kernel.weight"] = (kernel + delta).unsqueeze(0)
        own = self.state_dict(keep_vars=True)
        canonical = {}
        for key, tensor in own.items():   # aliases of one tensor (the shared warp quantizer's view)
            canonical.setdefault(id(tensor), key)
        for key, tensor in own.items():
            if key not in state and canonical[id(tensor)] in state:
                state[key] = state[canonical[id(tensor)]]
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ContractError(f"checkpoint does not match the quantized model: missing {missing}, "
                                f"unexpected {unexpected} (layers outside the contract or another architecture)")

    # ---- the integer computation -------------------------------------------------------------
    def _check_inputs(self, vision: torch.Tensor | None, audio: torch.Tensor | None) -> None:
        """ContractError naming the input, as the simulator's check_inputs words it (firmware_sim/run.py): shapes,
        whole counts (NaN, inf and fractions refused) in 0..the contract's input max."""
        check_modality_inputs(self.modalities, vision, audio)
        if vision is not None and (vision.dim() != 5 or tuple(vision.shape[2:]) != self.vision_shape):
            raise ContractError(f"input 'vision': shape {tuple(vision.shape)}, expected "
                                f"(T, B, {', '.join(map(str, self.vision_shape))})")
        if audio is not None and (audio.dim() != 3 or audio.shape[2] != self.audio_channels):
            raise ContractError(f"input 'audio': shape {tuple(audio.shape)}, expected (T, B, {self.audio_channels})")
        if vision is not None and audio is not None and vision.shape[:2] != audio.shape[:2]:
            raise ContractError(f"input 'audio': (T, B) = {tuple(audio.shape[:2])} but another input has "
                                f"{tuple(vision.shape[:2])}")
        for name, x, hi in (("vision", vision, self.input_max[0]), ("audio", audio, self.input_max[1])):
            if x is None or not x.numel():
                continue
            bad = ~torch.isfinite(x) | (x != torch.floor(x))
            if bool(bad.any()):
                raise ContractError(f"input {name!r}: value {float(x[bad].flatten()[0])!r} is not a whole number, "
                                    f"expected integer spike counts 0..{hi}")
            lo, top = x.min(), x.max()
            if lo < 0 or top > hi:
                raise ContractError(f"input {name!r}: counts span {int(lo)}..{int(top)}, expected 0..{hi} "
                                    f"(inputs.{name}.max in the program)")

    def _warps(self) -> tuple[dict[str, torch.Tensor], int]:
        """({modality: integer warp kernel (D,)} of the present modalities, their shared log2 scale)."""
        kernels, scales = {}, {}
        for m in self.modalities:
            w, scales[m] = int_weight(getattr(self, f"warp_{m}").kernel, self.bits, f"warp.{m}")
            kernels[m] = w.reshape(-1)
        if len(set(scales.values())) > 1:
            raise ContractError(f"warp.audio and warp.vision must share one scale, got 2^{scales['audio']} and "
                                f"2^{scales['vision']}")
        return kernels, next(iter(scales.values()))

    @staticmethod
    def _z_max(kernels: dict[str, torch.Tensor], dims: dict[str, int]) -> torch.Tensor:
        """Worst-case |z_j| over z = [a ; v]: sum_d |w_d| of the feature's modality (features are 0/1 spikes)."""
        return torch.cat([kernels[m].detach().abs().sum().expand(dims[m]) for m in ("audio", "vision") if m in kernels])

    @contextlib.contextmanager
    def frozen(self):
        """Inference with every integer weight, warp and readout plan computed once (on entry) instead of on
        every call, and ``integer_forward(..., checks=False)`` allowed: torch integer mode at its fastest.
        Weights must not change inside the block."""
        self.check_exact()
        with torch.no_grad():
            layers = [layer for _, _, _, layer in self.spiking_layers()]
            for layer in layers:
                layer._frozen_params = layer.int_params()
            kernels, z_log2 = self._warps()
            dims = {m: getattr(self, m).out_features for m in self.modalities}
            self._frozen_plan = (kernels, z_log2, self.fusion.plan(z_log2, self._z_max(kernels, dims)))
        try:
            yield self
        finally:
            for layer in layers:
                layer._frozen_params = None
            self._frozen_plan = None

    def _run(self, vision: torch.Tensor | None, audio: torch.Tensor | None, checks: bool = True,
             state: dict | None = None):
        """The integer run from a fresh window, or from a stream's ``state`` (integer_stream's; updated in place)."""
        if checks:
            self._check_inputs(vision, audio)
        rec_v, rec_a = [], []
        feats = {}
        if state is None:
            sensed = dict(zip(("vision", "audio"), self.sense(vision, audio)))
        else:
            sensed = {m: None if x is None else self.frontend[m](x, state["frontend"][m])
                      for m, x in (("vision", vision), ("audio", audio))}
        vision, audio = sensed["vision"], sensed["audio"]
        layers = {name: layer for name, _, _, layer in self.spiking_layers()}
        try:
            for name, layer in layers.items():     # each layer's membranes: the stream's, else a fresh window
                layer.stream = None if state is None else {"v": state["layers"].get(name)}
            if self.vision is not None:
                feats["vision"] = self.vision(vision, rec_v)
            if self.audio is not None:
                feats["audio"] = self.audio(audio, rec_a)
            if state is not None:
                state["layers"] = {name: layer.stream["v"] for name, layer in layers.items()}
        finally:
            for layer in layers.values():
                layer.stream = None
        frozen = getattr(self, "_frozen_plan", None)
        kernels, z_log2 = frozen[:2] if frozen is not None else self._warps()
        if state is None:
            warped = {m: getattr(self, f"warp_{m}").apply_int(f, kernels[m]) for m, f in feats.items()}
        else:                                      # the warp's taps read the features of the steps before the chunk
            warped = {}
            for m, f in feats.items():
                depth = kernels[m].numel() - 1
                past = state["history"].get(m)
                past = f.new_zeros((depth, *f.shape[1:])) if past is None else past
                whole = torch.cat([past, f])
                warped[m] = getattr(self, f"warp_{m}").apply_int(whole, kernels[m])[depth:]
                state["history"][m] = whole[whole.shape[0] - depth:]
        any_feat = next(iter(warped.values()))
        a = warped.get("audio", absent_features(any_feat))
        v = warped.get("vision", absent_features(any_feat))
        p = frozen[2] if frozen is not None else \
            self.fusion.plan(z_log2, self._z_max(kernels, {m: f.shape[-1] for m, f in feats.items()}))
        r = self.fusion(torch.cat([a, v], dim=-1), z_log2, p)
        names = [name for name, _, _, _ in self.spiking_layers()]
        return dict(zip(names, rec_v + rec_a)), a, v, z_log2, p, r, {m: x for m, x in sensed.items() if x is not None}

    def forward(self, vision: torch.Tensor, audio: torch.Tensor, record: list | None = None) -> ModelOut:
        """The integer forward in real units with straight-through gradients (QAT).

        vision (T, B, 2, H, W), audio (T, B, C) spike counts -> ModelOut (as the float model).
        """
        with exact_float32():
            spikes, a, v, z_log2, p, r, _ = self._run(vision, audio)
        if record is not None:
            record.extend(spikes.values())
        a, v = a * 2.0 ** z_log2, v * 2.0 ** z_log2
        step_logits = r.step_logits * 2.0 ** r.logit_log2
        if self.fusion_kind == TAAF_MODAL:
            fused = modal_fusion_out(step_logits, r.alpha, r.mix, r.beta, p["W"] * 2.0 ** p["readout_log2"],
                                     self.modalities, a, v)
            return ModelOut(fused, *self.heads(a, v), a, v)
        w = r.alpha.unsqueeze(-1)
        logits = (w * step_logits).sum(0)
        weight = p["W"] * 2.0 ** p["readout_log2"]
        ca, cv, share = evidence_shares(weight, self.d_audio, (w * a).sum(0), (w * v).sum(0))
        return ModelOut(FusionOut(logits, step_logits, r.alpha, share, ca, cv), *self.heads(a, v), a, v)

    @torch.no_grad()
    def integer_forward(self, vision: torch.Tensor | None, audio: torch.Tensor | None, checks: bool = True,
                        allow_other_T: bool = False) -> IntOut:
        """The accelerator's integers for (T, B, ...) spike counts (docs/accelerator.md); None for a modality the
        model lacks. ``checks=False`` (inside ``frozen()`` only) skips the exactness and input checks. T must be the
        model's unless ``allow_other_T`` (1..max_T steps, run as given; firmware_sim.run.check_steps, always)."""
        if not checks and getattr(self, "_frozen_plan", None) is None:
            raise ValueError("integer_forward(checks=False) needs the weights frozen: use `with model.frozen():`")
        steps = (vision if vision is not None else audio).shape[0]
        check_steps(int(steps), int(self.T), max_T(self.fusion_kind, len(self.modalities)), allow_other_T)
        if checks:
            self.check_exact()
        with exact_float32():
            return self._int_out(*self._run(vision, audio, checks))

    @torch.no_grad()
    def integer_chunk(self, vision: torch.Tensor | None, audio: torch.Tensor | None, state: dict) -> IntOut:
        with exact_float32():   # a stream's next chunk from ``state`` (quant.int_stream's; updated in place)
            return self._int_out(*self._run(vision, audio, True, state))

    def _int_out(self, spikes, _a, _v, _z_log2, _p, r, sensed) -> IntOut:
        """The run's integers as IntOut (int64)."""
        sat = {name: int(layer.saturations) for name, _, _, layer in self.spiking_layers()}
        as_int = lambda x: None if x is None else x.to(torch.int64)  # noqa: E731
        own = {m: as_int(r.modal_logits[:, i]) for i, m in enumerate(self.modalities)} \
            if getattr(self.fusion, "modality_logits", False) else {}
        return IntOut(as_int(r.logits), as_int(r.step_logits), as_int(r.attention), as_int(r.scores),
                      {k: as_int(s) for k, s in spikes.items()}, sat, {k: as_int(x) for k, x in sensed.items()}, own)

    @torch.no_grad()
    def check_exact(self) -> None:
        """Raise ExactnessError when a spiking layer's worst-case current could reach 2^24 with the state."""
        self.check_covered()
        for name, modality, src, layer in self.spiking_layers():
            w, _, _ = layer.int_params()
            x_max = self.frontend_max(src) if src in ("vision", "audio") else 1
            worst = float(w.abs().flatten(1).sum(1).max()) * x_max + STATE_HEADROOM
            if worst >= spec.EXACT_LIMIT:
                raise ExactnessError(f"{name}: worst-case |v - (v >> k) + I| = {worst:.0f} reaches 2^24")

    # ---- the program (docs/accelerator.md, "The ONNX file") -------------------------------------
    @torch.no_grad()
    def to_program(self) -> Program:
        """The accelerator's Program (firmware_sim.program): each spiking block writes its own Layer, the
        readout its Readout; checked by Program.check (the one check of the contract)."""
        self.check_exact()
        limit = max_T(self.fusion_kind, len(self.modalities))
        if self.T > limit:
            raise ValueError(f"model.T={self.T} exceeds max_T={limit} for fusion {self.fusion_kind!r}")
        sensor = {m: tuple(self.vision_shape) if m == "vision" else (self.audio_channels,) for m in self.modalities}
        shape = {m: self.frontends[m].out_shape(sensor[m]) for m in self.modalities}
        layers = []
        for name, modality, src, layer in self.spiking_layers():
            entry = layer.to_layer(name, modality, src, shape[src])
            shape[name] = entry.out_shape
            layers.append(entry)
        kernels, z_log2 = self._warps()
        last = {m: [e.name for e in layers if e.modality == m][-1] for m in self.modalities}
        p = self.fusion.plan(z_log2, self._z_max(kernels, {m: shape[name][0] for m, name in last.items()}))
        readout = self.fusion.to_readout(self.fusion_kind, last, {m: as_int64(w) for m, w in kernels.items()}, z_log2, p)
        inputs = {m: (sensor[m], self.input_max[0 if m == "vision" else 1]) for m in ("vision", "audio") if m in self.modalities}
        program = Program(self.T, limit, self.bits, spec.STATE_BITS, int(self.neuron.leak_shift), self.n_classes, inputs,
                          layers, readout, frontends=dict(self.frontends))
        try:
            return program.check()
        except ContractError as err:
            raise ContractError(f"the quantized model is outside the contract: {err}") from None

    def frontend_max(self, modality: str) -> int:
        """Largest count the first layer of ``modality`` reads (its front-end's output max)."""
        return self.frontends[modality].out_max(self.input_max[0 if modality == "vision" else 1])

    def export_plan(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(program JSON, integer tensors by initializer name): the file form of ``to_program()``."""
        return to_metadata(self.to_program())

    def program(self) -> dict:
        """The program JSON of the ONNX file's metadata (docs/accelerator.md)."""
        return self.export_plan()[0]


def contract_frontend(config: FrontEndConfig, sensor_shape: tuple[int, ...], in_max: int, where: str) -> FrontEnd:
    """The accelerator's FrontEnd of a front-end config (clip null: the largest pooled count), checked against
    the accelerator's limits (firmware_sim.spec); ContractError naming ``where.<field>`` when it cannot run."""
    clip = config.clip if config.clip is not None else in_max * config.volume
    fe = FrontEnd(config.pool, config.mode, config.min_count, clip, config.refractory, config.leak_shift, config.gain_shift)
    try:
        return fe.check(tuple(sensor_shape), int(in_max), where)
    except FrontEndError as err:
        raise ContractError(f"{err} (the accelerator's front-end, docs/accelerator.md)") from None


def input_max(cfg) -> tuple[int, int]:
    """Largest vision and audio count per bin the data set gives (data.clip, data.clip_audio)."""
    return int(cfg.data.clip), int(cfg.data.clip_audio)


def check_frontends(cfg, config: ModelConfig) -> dict[str, FrontEnd]:
    """Check a train config's sensor front-ends (its parsed model ``config``) against the accelerator before any
    training (float runs too: the front-end shapes what the network learns from); ContractError naming
    model.frontend.<m>.<field>."""
    top = dict(zip(("vision", "audio"), input_max(cfg)))
    return {m: contract_frontend(config.frontends[m], config.sensor_shapes[m], top[m], f"model.frontend.{m}")
            for m in config.modalities}


def build_quant_model(cfg, config: ModelConfig | None = None) -> QuantTwoModalitySNN:
    """From a full train config: its parsed model ``config`` (None: parsed here from the model group, as for a
    checkpoint's config), quant.weight_bits, data.clip / data.clip_audio."""
    if config is None:
        config = OmegaConf.to_container(cfg.model, resolve=True) if OmegaConf.is_config(cfg.model) else cfg.model
    return QuantTwoModalitySNN(config, int(cfg.quant.weight_bits), input_max(cfg))


@torch.no_grad()
def run_integer(model: QuantTwoModalitySNN, vision: np.ndarray | None, audio: np.ndarray | None,
                batch_size: int = 128, device: str | torch.device = "cpu",
                allow_other_T: bool = False) -> dict[str, np.ndarray]:
    """Integer mode over a whole data set given batch-first (N, T, ...) arrays (PairedSpikes layout);
    None for a modality the model does not have. T must be the model's unless ``allow_other_T``.

    Returns the ONNX output names: logits (N, K), everything else time-major (T, N, ...), int64.
    """
    model.eval()
    parts = []
    n = len(vision if vision is not None else audio)

    def batch(x, i):
        return None if x is None else torch.as_tensor(x[i:i + batch_size], dtype=torch.float32,
                                                      device=device).transpose(0, 1)
    for i in range(0, n, batch_size):
        parts.append(model.integer_forward(batch(vision, i), batch(audio, i), allow_other_T=allow_other_T).as_numpy())
    return {k: np.concatenate([p[k] for p in parts], axis=batch_axis(k)) for k in parts[0]}
