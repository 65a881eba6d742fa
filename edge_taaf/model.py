"""The two-modality spiking network: encoders -> time-warp -> fusion, plus unimodal heads.

Inputs: vision spikes (T, B, 2, 34, 34), audio spikes (T, B, C). Output: ModelOut with the fused
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

from edge_taaf.encoders import AudioEncoder, VisionEncoder
from edge_taaf.fusion import ConcatFusion, FusionOut, TAAFFusion
from edge_taaf.neurons import LIFParams
from edge_taaf.timewarp import CausalDelayWarp

FUSIONS = ("taaf", "concat")
MODALITIES = ("audio", "vision")


def model_modalities(cfg) -> tuple[str, ...]:
    """The sensors a model config uses (``modalities``, default both), in MODALITIES order."""
    names = cfg.get("modalities") or list(MODALITIES)
    if isinstance(names, str) or not set(names) <= set(MODALITIES) or len(set(names)) != len(names):
        raise ValueError(f"model.modalities={names!r}; expected a non-empty list of distinct names from {MODALITIES}")
    return tuple(m for m in MODALITIES if m in names)


def absent_features(present: torch.Tensor) -> torch.Tensor:
    """The (T, B, 0) feature sequence standing in for a missing modality, shaped after ``present``."""
    return present.new_zeros((*present.shape[:2], 0))


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
    def __init__(self, cfg):
        """cfg: the model config (configs/model/*.yaml) as a mapping."""
        super().__init__()
        if cfg["fusion"] not in FUSIONS:
            raise ValueError(f"model.fusion must be one of {FUSIONS}, got {cfg['fusion']!r}")
        neuron = LIFParams(**cfg["neuron"])
        vc, ac = cfg["vision"], cfg["audio"]
        self.T = int(cfg["T"])
        self.fusion_kind = cfg["fusion"]
        self.modalities = model_modalities(cfg)
        has_v, has_a = "vision" in self.modalities, "audio" in self.modalities
        self.vision = VisionEncoder(vc["in_shape"], vc["channels"], vc["kernels"], vc["strides"], vc["features"],
                                    neuron) if has_v else None
        self.audio = AudioEncoder(ac["in_channels"], ac["hidden"], ac["features"], neuron) if has_a else None
        self.warp_audio = CausalDelayWarp(cfg["warp_max_delay"]) if has_a else None
        self.warp_vision = CausalDelayWarp(cfg["warp_max_delay"]) if has_v else None
        k = cfg["n_classes"]
        da, dv = (ac["features"] if has_a else 0), (vc["features"] if has_v else 0)
        if cfg["fusion"] == "taaf":
            self.fusion = TAAFFusion(da, dv, k, cfg["score_hidden"])
        else:
            self.fusion = ConcatFusion(da, dv, k)
        self.head_audio = nn.Linear(da, k) if has_a else None
        self.head_vision = nn.Linear(dv, k) if has_v else None
        self.detach_heads = True  # set by the loss: heads are probes unless the loss trains encoders with them

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimizer group: each modality's encoder and warp (whose learning rates the
        balanced loss modulates), the fusion, and the unimodal heads (never modulated, so a slowed
        modality's head still tracks its features). A missing modality's group is empty."""
        return {
            "audio": parameters_of(self.audio, self.warp_audio),
            "vision": parameters_of(self.vision, self.warp_vision),
            "fusion": list(self.fusion.parameters()),
            "heads": parameters_of(self.head_audio, self.head_vision),
        }

    def forward(self, vision: torch.Tensor | None, audio: torch.Tensor | None, record: list | None = None) -> ModelOut:
        """vision (T, B, 2, H, W), audio (T, B, C) -> ModelOut. ``record`` collects every layer's spikes.

        A modality the model does not have must be None (and one it has must not be)."""
        check_modality_inputs(self.modalities, vision, audio)
        v = self.warp_vision(self.vision(vision, record)) if self.vision is not None else None
        a = self.warp_audio(self.audio(audio, record)) if self.audio is not None else None
        a = absent_features(v) if a is None else a
        v = absent_features(a) if v is None else v
        fused = self.fusion(a, v)
        pa, pv = (a.detach(), v.detach()) if self.detach_heads else (a, v)
        return ModelOut(fused, self.head_audio(pa.mean(0)) if self.head_audio is not None else None,
                        self.head_vision(pv.mean(0)) if self.head_vision is not None else None, a, v)

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
