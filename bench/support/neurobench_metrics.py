"""NeuroBench's metrics (Yik et al., Nat. Commun. 2025; the ``neurobench`` package) on our integer network, beside
the simulator's own counters.

The network NeuroBench measures is the NIR graph read back as our integer network (quant.nir_import: every spike
equals the simulator's), wrapped for NeuroBench's TorchModel: it takes (B, T, *input) and returns the summed step
logits; its connection layers are torch Conv2d / Linear holding the integer weights, its activation modules the
accelerator's LIF (IntegerLIF). So any difference to our counters is one of definition, never of activity:

- ``Footprint``: bytes of the torch parameters (float32, 4 per weight, plus the readout bias); the chip holds the
  weights at ``weight_bits`` (the chip image's weight section).
- ``ConnectionSparsity``: the share of zero weights (our energy model pays a weight read for a zero weight too).
- ``ActivationSparsity``: the share of zero outputs of the LIF modules over all neurons and steps; ours reports the
  spike rate per layer.
- ``SynapticOperations``: per connection layer and step, the nonzero inputs times the nonzero weights they meet
  (Effective_ACs when the input is binary, MACs otherwise), and Dense (every weight, every step, every input
  position that the padding does not cover). The simulator's ``syn_ops`` counts an accumulate per nonzero input and
  every weight of its fan-out, zero weights included, and the readout's ``logit_macs`` a product per nonzero
  feature and class.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from quant.nir_import import IntegerLIF, NIRIntegerNet


class StepsOfGraph(nn.Module):
    """NeuroBench's view of the network: (B, T, *input shape) -> (B, K) the summed step logits."""

    def __init__(self, net: NIRIntegerNet):
        super().__init__()
        if len(net.inputs) != 1:
            raise ValueError(f"NeuroBench's TorchModel feeds one tensor; the graph has inputs {net.inputs}")
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.net.reset()
        return sum(self.net({self.net.inputs[0]: x[:, t]}) for t in range(x.shape[1]))


def neurobench_metrics(graph, x: np.ndarray, labels: np.ndarray, batch: int = 100) -> dict:
    """NeuroBench's static and workload metrics of the NIR graph's integer network on x (T, B, *input counts)."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, ClassificationAccuracy, SynapticOperations
    from neurobench.models import TorchModel

    model = TorchModel(StepsOfGraph(NIRIntegerNet(graph)))
    model.add_activation_module(IntegerLIF)
    data = torch.utils.data.TensorDataset(torch.as_tensor(np.swapaxes(x, 0, 1), dtype=torch.float32),
                                          torch.as_tensor(labels, dtype=torch.int64))
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=False)
    benchmark = Benchmark(model, loader, [], [lambda out: out.argmax(-1)],
                          [[Footprint, ConnectionSparsity], [ActivationSparsity, SynapticOperations,
                                                             ClassificationAccuracy]])
    with torch.no_grad():
        results = benchmark.run(quiet=True)
    return {k: (dict(v) if isinstance(v, dict) else float(v)) for k, v in results.items()}


def counters_like_neurobench(program, spikes: dict[str, np.ndarray], frontend: dict[str, np.ndarray]) -> float:
    """NeuroBench's Effective synaptic operations per sample recomputed from the simulator's spikes: per spiking
    layer and the readout, each step's nonzero inputs times the nonzero weights of their fan-out (no count
    multiplicity). Equal to NeuroBench's figure when the definitions are read alike (checked in the bench)."""
    total = 0.0
    batch = next(iter(spikes.values())).shape[1]
    for layer in program.layers:
        x = frontend[layer.input] if layer.input in frontend else spikes[layer.input]
        active = (x != 0).astype(np.float32)
        nonzero = (layer.weight != 0).astype(np.float32)
        if layer.kind == "conv":
            t, b = active.shape[:2]
            out = nn.functional.conv2d(torch.from_numpy(active.reshape(t * b, *active.shape[2:])),
                                       torch.from_numpy(nonzero), stride=layer.stride, padding=layer.padding)
            total += float(out.sum())
        else:
            total += float((active.reshape(*active.shape[:2], -1) @ nonzero.T).sum())
    r = program.readout
    d_audio = program.feature_width("audio")
    for m in r.modalities:
        feats = (spikes[getattr(r, f"{m}_input")] != 0).astype(np.float32)
        nonzero = (r.weight[:, r.columns(m, d_audio)] != 0).astype(np.float32)
        total += float((feats @ nonzero.T).sum())
    return total / batch
