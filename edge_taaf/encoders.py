"""Modality encoders: spikes in, per-step spike features out.

VisionEncoder: (T, B, P, H, W) event frames -> (T, B, D_v) spikes.
AudioEncoder:  (T, B, C) cochlea spikes       -> (T, B, D_a) spikes.
Sizes come from the parsed model config (edge_taaf.model_config); the blocks come from a layer
factory (``layers.conv`` / ``layers.dense``): edge_taaf.model.FloatLayers for float training, the
quantized blocks of quant/ for the accelerator's integer model. One encoder class serves both.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from edge_taaf.model_config import AudioConfig, VisionConfig
from edge_taaf.neurons import LIFParams


class VisionEncoder(nn.Module):
    """Strided spiking convs, then one spiking dense layer giving the feature vector."""

    def __init__(self, cfg: VisionConfig, neuron: LIFParams, layers):
        super().__init__()
        shapes = cfg.conv_shapes()
        self.convs = nn.ModuleList(
            layers.conv(c_in, c_out, k, s, neuron, f"vision.conv{i}")
            for i, ((c_in, _, _), c_out, k, s) in enumerate(zip(shapes, cfg.channels, cfg.kernels, cfg.strides)))
        self.flat_features = math.prod(shapes[-1])
        self.dense = layers.dense(self.flat_features, cfg.features, neuron, "vision.dense")
        self.out_features = cfg.features

    def spiking_layers(self) -> list[tuple[str, nn.Module]]:
        """(name, block) input to output: the names the Program and the ONNX file use."""
        return [(f"vision.conv{i}", layer) for i, layer in enumerate(self.convs)] + [("vision.dense", self.dense)]

    def forward(self, x: torch.Tensor, record: list | None = None) -> torch.Tensor:
        for layer in self.convs:
            x = layer(x)
            if record is not None:
                record.append(x)
        x = self.dense(x.flatten(2))
        if record is not None:
            record.append(x)
        return x


class AudioEncoder(nn.Module):
    """A stack of spiking dense layers over cochlea channels."""

    def __init__(self, cfg: AudioConfig, neuron: LIFParams, layers):
        super().__init__()
        sizes = [cfg.in_channels, *cfg.hidden, cfg.features]
        self.layers = nn.ModuleList(layers.dense(a, b, neuron, f"audio.fc{i}")
                                    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))
        self.out_features = cfg.features

    def spiking_layers(self) -> list[tuple[str, nn.Module]]:
        return [(f"audio.fc{i}", layer) for i, layer in enumerate(self.layers)]

    def forward(self, x: torch.Tensor, record: list | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
            if record is not None:
                record.append(x)
        return x
