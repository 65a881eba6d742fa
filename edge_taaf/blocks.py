"""Network blocks: a synaptic layer (conv or dense) followed by LIF neurons, over all T steps.

The synaptic layer has no state, so it runs once on the (T*B, ...) batch; only the neuron loops
over time (edge_taaf.neurons). No bias and no normalisation: the accelerator adds integer
weights of active inputs and nothing else (docs/accelerator.md).
"""
from __future__ import annotations

import torch
from torch import nn

from edge_taaf.neurons import LIFParams, lif_multistep


# On CPU, oneDNN's convolution backward is ~2.5x faster in channels-last layout and on batches of a
# few hundred rows than on one (T*B)-row batch (measured in bench/train_step.py's setting), so the
# stateless convolution runs on channels-last chunks of CPU_CONV_CHUNK rows.
CPU_CONV_CHUNK = 256


class SpikingConv(nn.Module):
    """Conv2d + LIF. (T, B, C_in, H, W) spikes -> (T, B, C_out, H', W') spikes."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, neuron: LIFParams):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.neuron = neuron

    def synaptic_current(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H', W')."""
        if x.device.type != "cpu":
            return self.conv(x)
        x = x.contiguous(memory_format=torch.channels_last)
        return torch.cat([self.conv(part) for part in x.split(CPU_CONV_CHUNK)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        current = self.synaptic_current(x.flatten(0, 1))
        return lif_multistep(current.unflatten(0, (t, b)), self.neuron)


class SpikingDense(nn.Module):
    """Linear + LIF. (T, B, F_in) spikes -> (T, B, F_out) spikes."""

    def __init__(self, f_in: int, f_out: int, neuron: LIFParams):
        super().__init__()
        self.fc = nn.Linear(f_in, f_out, bias=False)
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lif_multistep(self.fc(x), self.neuron)
