"""Modality encoders: spikes in, per-step spike features out.

VisionEncoder: (T, B, 2, 34, 34) event frames -> (T, B, D_v) spikes.
AudioEncoder:  (T, B, C) cochlea spikes       -> (T, B, D_a) spikes.
Sizes come from the model config (configs/model/*.yaml).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edge_taaf.blocks import SpikingConv, SpikingDense
from edge_taaf.neurons import LIFParams


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Spatial size after a conv with padding kernel // 2."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


class VisionEncoder(nn.Module):
    """Strided spiking convs, then one spiking dense layer giving the feature vector."""

    def __init__(self, in_shape: Sequence[int], channels: Sequence[int], kernels: Sequence[int],
                 strides: Sequence[int], features: int, neuron: LIFParams):
        super().__init__()
        if not len(channels) == len(kernels) == len(strides):
            raise ValueError("model.vision: channels, kernels and strides must have the same length")
        c, h, w = in_shape
        layers = []
        for c_out, k, s in zip(channels, kernels, strides):
            layers.append(SpikingConv(c, c_out, k, s, neuron))
            c, h, w = c_out, conv_out(h, k, s), conv_out(w, k, s)
        self.convs = nn.ModuleList(layers)
        self.flat_features = c * h * w
        self.dense = SpikingDense(self.flat_features, features, neuron)
        self.out_features = features

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

    def __init__(self, in_channels: int, hidden: Sequence[int], features: int, neuron: LIFParams):
        super().__init__()
        sizes = [in_channels, *hidden, features]
        self.layers = nn.ModuleList(SpikingDense(a, b, neuron) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out_features = features

    def forward(self, x: torch.Tensor, record: list | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
            if record is not None:
                record.append(x)
        return x
