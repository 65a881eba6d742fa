"""Data-driven weight scaling so every spiking layer starts firing (an LSUV-style init for SNNs).

Default PyTorch init draws weights for dense activations; with 1-5 % input spike density the
synaptic currents of a fresh SNN stay far below threshold and no gradient flows. Before training,
each layer's weights are scaled, in order from input to output, until its mean firing rate on one
batch is close to ``target``. Deterministic for a given batch.
"""
from __future__ import annotations

import torch



def _layers(model):
    vision = [] if model.vision is None else [*model.vision.convs, model.vision.dense]
    return vision, [] if model.audio is None else list(model.audio.layers)


@torch.no_grad()
def scale_to_firing_rate(model, vision: torch.Tensor, audio: torch.Tensor, target: float = 0.1, iters: int = 12) -> list[float]:
    """Scale the weights of each spiking layer (bisection on a log scale); return the reached rates.

    vision (T, B, 2, H, W), audio (T, B, C) sensor counts (None for a modality the model lacks).
    """
    rates = []
    vision, audio = model.sense(vision, audio)         # the encoders read what the sensor front-ends pass on
    for stack, x in zip(_layers(model), (vision, audio)):
        for layer in stack:
            dense = hasattr(layer, "fc")                  # a dense block in either mode (float or integer)
            inp = x.flatten(2) if dense and x.dim() > 3 else x
            weight = layer.fc.weight if dense else layer.conv.weight
            base = weight.clone()
            lo, hi = -4.0, 8.0  # log2 of the scale factor
            for _ in range(iters):
                mid = (lo + hi) / 2
                weight.copy_(base * 2.0 ** mid)
                rate = float(layer(inp).mean())
                lo, hi = (mid, hi) if rate < target else (lo, mid)
            weight.copy_(base * 2.0 ** ((lo + hi) / 2))
            x = layer(inp)
            rates.append(float(x.mean()))
    return rates
