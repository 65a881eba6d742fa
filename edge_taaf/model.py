"""The two-modality spiking network: encoders -> time-warp -> fusion, plus unimodal heads.

Inputs: vision spikes (T, B, 2, 34, 34), audio spikes (T, B, C). Output: ModelOut with the fused
prediction, the fusion internals and each modality's unimodal head logits (B, K). The heads read
the time-mean of each modality's warped features; whether their loss reaches the encoders is the
loss's choice (edge_taaf.losses).
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


@dataclass
class ModelOut:
    fusion: FusionOut
    head_audio: torch.Tensor   # (B, K)
    head_vision: torch.Tensor  # (B, K)
    feat_audio: torch.Tensor   # (T, B, D_a) warped audio features
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
        self.vision = VisionEncoder(vc["in_shape"], vc["channels"], vc["kernels"], vc["strides"], vc["features"], neuron)
        self.audio = AudioEncoder(ac["in_channels"], ac["hidden"], ac["features"], neuron)
        self.warp_audio = CausalDelayWarp(cfg["warp_max_delay"])
        self.warp_vision = CausalDelayWarp(cfg["warp_max_delay"])
        k, da, dv = cfg["n_classes"], ac["features"], vc["features"]
        if cfg["fusion"] == "taaf":
            self.fusion = TAAFFusion(da, dv, k, cfg["score_hidden"])
        else:
            self.fusion = ConcatFusion(da, dv, k)
        self.head_audio = nn.Linear(da, k)
        self.head_vision = nn.Linear(dv, k)
        self.detach_heads = True  # set by the loss: heads are probes unless the loss trains encoders with them

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimizer group: each modality's encoder and warp (whose learning rates the
        balanced loss modulates), the fusion, and the unimodal heads (never modulated, so a slowed
        modality's head still tracks its features)."""
        return {
            "audio": [*self.audio.parameters(), *self.warp_audio.parameters()],
            "vision": [*self.vision.parameters(), *self.warp_vision.parameters()],
            "fusion": list(self.fusion.parameters()),
            "heads": [*self.head_audio.parameters(), *self.head_vision.parameters()],
        }

    def forward(self, vision: torch.Tensor, audio: torch.Tensor, record: list | None = None) -> ModelOut:
        """vision (T, B, 2, H, W), audio (T, B, C) -> ModelOut. ``record`` collects every layer's spikes."""
        if vision.shape[0] != audio.shape[0]:
            raise ValueError(f"vision has T={vision.shape[0]} steps but audio has T={audio.shape[0]}")
        v = self.warp_vision(self.vision(vision, record))
        a = self.warp_audio(self.audio(audio, record))
        fused = self.fusion(a, v)
        pa, pv = (a.detach(), v.detach()) if self.detach_heads else (a, v)
        return ModelOut(fused, self.head_audio(pa.mean(0)), self.head_vision(pv.mean(0)), a, v)

    def weight_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
