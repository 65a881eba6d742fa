"""The two-modality spiking network: encoders -> time-warp -> fusion, plus unimodal heads.

Inputs: the sensors' counts, vision (T, B, 2, 34, 34) and audio (T, B, C); each passes its sensor
front-end (edge_taaf.frontend, the accelerator's first stage) before its encoder. Output: ModelOut with the fused
prediction, the fusion internals and each modality's unimodal head logits (B, K). The heads read
the time-mean of each modality's warped features; whether their loss reaches the encoders is the
loss's choice (edge_taaf.losses).

``model.modalities`` may name one sensor only (unimodal training): the other encoder, warp and
head do not exist, its input is None, and the fusion sees a zero-width feature vector in its
place, so TAAF's attention over time and the readout run unchanged on the one modality.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edge_taaf.blocks import SpikingConv, SpikingDense
from edge_taaf.encoders import AudioEncoder, VisionEncoder
from edge_taaf.frontend import SensorFrontEnd
from edge_taaf.fusion import ConcatFusion, FusionOut, TAAFFusion, TAAFModalFusion
from edge_taaf.model_config import FUSIONS, MODALITIES, TAAF, TAAF_MODAL, ModelConfig, parse_modalities
from edge_taaf.neurons import LIFParams
from edge_taaf.timewarp import CausalDelayWarp

__all__ = ["FUSIONS", "MODALITIES", "FloatLayers", "ModelOut", "TwoModalitySNN", "model_modalities"]


def model_modalities(cfg) -> tuple[str, ...]:
    """The sensors a model config uses (``modalities``, default both), in MODALITIES order."""
    return cfg.modalities if isinstance(cfg, ModelConfig) else parse_modalities(cfg.get("modalities"))


def absent_features(present: torch.Tensor) -> torch.Tensor:
    """The (T, B, 0) feature sequence standing in for a missing modality, shaped after ``present``."""
    return present.new_zeros((*present.shape[:2], 0))


class FloatLayers:
    """The float mode of every block (float training). quant/ has the integer mode with the same methods:
    each builds one block of the network from its sizes, so the network classes are written once."""

    def conv(self, c_in: int, c_out: int, kernel: int, stride: int, neuron: LIFParams, name: str) -> nn.Module:
        return SpikingConv(c_in, c_out, kernel, stride, neuron)

    def dense(self, f_in: int, f_out: int, neuron: LIFParams, name: str) -> nn.Module:
        return SpikingDense(f_in, f_out, neuron)

    def warps(self, modalities: tuple[str, ...], max_delay: int) -> dict[str, nn.Module]:
        return {m: CausalDelayWarp(max_delay) for m in modalities}

    def fusion(self, config: ModelConfig) -> nn.Module:
        if config.fusion == TAAF:
            return TAAFFusion(config.d_audio, config.d_vision, config.n_classes, config.score_hidden)
        if config.fusion == TAAF_MODAL:
            return TAAFModalFusion(config.modalities, config.d_audio, config.d_vision, config.n_classes, config.score_hidden)
        return ConcatFusion(config.d_audio, config.d_vision, config.n_classes)


@dataclass
class ModelOut:
    fusion: FusionOut
    head_audio: torch.Tensor | None   # (B, K); None when the model has no audio encoder
    head_vision: torch.Tensor | None  # (B, K); None without a vision encoder
    feat_audio: torch.Tensor   # (T, B, D_a) warped audio features (D_a = 0 without audio)
    feat_vision: torch.Tensor  # (T, B, D_v)

    @property
    def logits(self) -> torch.Tensor:
        return self.fusion.logits


class TwoModalitySNN(nn.Module):
    """The network of a ModelConfig in a mode: FloatLayers (float training) or quant/'s integer mode.

    param_groups, weight_count and the evidence shares are written here once for both modes."""

    def __init__(self, cfg, layers=None):
        """cfg: the model config (configs/model/*.yaml, a mapping) or a parsed ModelConfig."""
        super().__init__()
        config = ModelConfig.parse(cfg)
        layers = FloatLayers() if layers is None else layers
        self.config = config
        self.T, self.fusion_kind, self.modalities = config.T, config.fusion, config.modalities
        self.frontend = nn.ModuleDict({m: SensorFrontEnd(config.frontends[m]) for m in config.modalities})
        self.vision = VisionEncoder(config.vision, config.neuron, layers) if config.vision is not None else None
        self.audio = AudioEncoder(config.audio, config.neuron, layers) if config.audio is not None else None
        warps = layers.warps(config.modalities, config.warp_max_delay)
        self.warp_audio, self.warp_vision = warps.get("audio"), warps.get("vision")
        self.fusion = layers.fusion(config)
        k = config.n_classes
        self.head_audio = nn.Linear(config.d_audio, k) if config.audio is not None else None
        self.head_vision = nn.Linear(config.d_vision, k) if config.vision is not None else None
        self.detach_heads = True  # set by the loss: heads are probes unless the loss trains encoders with them

    def spiking_layers(self) -> list[tuple[str, str, str, nn.Module]]:
        """(name, modality, input name, block) in program order (each modality's stack, input to output)."""
        out = []
        for modality in ("vision", "audio"):
            encoder = getattr(self, modality)
            prev = modality
            for name, layer in ([] if encoder is None else encoder.spiking_layers()):
                out.append((name, modality, prev, layer))
                prev = name
        return out

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimizer group: each modality's encoder and warp (whose learning rates the
        balanced loss modulates), the fusion, and the unimodal heads (never modulated, so a slowed
        modality's head still tracks its features). A missing modality's group is empty."""
        def warp_params(warp):
            return [] if warp is None else list(getattr(warp, "own_parameters", warp.parameters)())
        return {
            "audio": [*parameters_of(self.audio), *warp_params(self.warp_audio)],
            "vision": [*parameters_of(self.vision), *warp_params(self.warp_vision)],
            "fusion": list(self.fusion.parameters()),
            "heads": parameters_of(self.head_audio, self.head_vision),
        }

    def heads(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Each present modality's unimodal head on its time-mean features (B, K)."""
        pa, pv = (a.detach(), v.detach()) if self.detach_heads else (a, v)
        return (self.head_audio(pa.mean(0)) if self.head_audio is not None else None,
                self.head_vision(pv.mean(0)) if self.head_vision is not None else None)

    def forward(self, vision: torch.Tensor | None, audio: torch.Tensor | None, record: list | None = None) -> ModelOut:
        """vision (T, B, 2, H, W), audio (T, B, C) -> ModelOut. ``record`` collects every layer's spikes.

        A modality the model does not have must be None (and one it has must not be)."""
        check_modality_inputs(self.modalities, vision, audio)
        vision, audio = self.sense(vision, audio)
        v = self.warp_vision(self.vision(vision, record)) if self.vision is not None else None
        a = self.warp_audio(self.audio(audio, record)) if self.audio is not None else None
        a = absent_features(v) if a is None else a
        v = absent_features(a) if v is None else v
        return ModelOut(self.fusion(a, v), *self.heads(a, v), a, v)

    def sense(self, vision: torch.Tensor | None, audio: torch.Tensor | None):
        """The sensor front-ends: the sensors' counts -> the counts the encoders read (None stays None)."""
        return (None if vision is None else self.frontend["vision"](vision),
                None if audio is None else self.frontend["audio"](audio))

    def weight_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def parameters_of(*modules) -> list[nn.Parameter]:
    """The parameters of the modules that exist (a missing modality's modules are None)."""
    return [p for m in modules if m is not None for p in m.parameters()]


def check_modality_inputs(modalities: tuple[str, ...], vision, audio) -> None:
    """Raise ValueError when an input is given for a missing modality, or missing for a present one,
    or when the two inputs disagree on T."""
    for name, x in (("vision", vision), ("audio", audio)):
        if (name in modalities) != (x is not None):
            raise ValueError(f"the model's modalities are {list(modalities)}, but {name} input is "
                             f"{'None' if x is None else 'given'}")
    if vision is not None and audio is not None and vision.shape[0] != audio.shape[0]:
        raise ValueError(f"vision has T={vision.shape[0]} steps but audio has T={audio.shape[0]}")
