"""A NIR graph written by quant.nir_export, read back as our integer network (torch, one step per call).

The reader undoes the export's mapping (docs/nir.md): each nir.LIF gives back the leak shift k (tau = dt 2^k,
dt from the graph's metadata) and the integer threshold (v_threshold 2^k + 1/2), and runs the accelerator's step
(firmware_sim.spec.lif_step: floor-shift leak, saturation, subtractive reset) on float32 tensors that hold
integers (exact below 2^24). So a round trip through NIR can be checked for exact equality with the simulator:
the output is the step logits before the shift, and its floor shift is the program's ``step_logits``.

Written by hand rather than with nirtorch: nirtorch 2.6's interpreter fails on a graph with two inputs ("Node
redefined name is_none"), which a concat-fusion model has; the executor here is a topological order and a sum
of each node's inputs, as NIR defines it.
"""
from __future__ import annotations

import math

import nir
import numpy as np
import torch
from torch import nn

from firmware_sim import spec
from quant.nir_export import NIRError

READABLE = ("Input", "Output", "Conv2d", "Affine", "Linear", "Flatten", "LIF", "Delay")


def _uniform(node_name: str, field: str, values) -> float:
    """The one value every neuron of a node shares, else NIRError naming the node and field."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0 or not np.all(arr == arr[0]):
        raise NIRError(f"NIR node {node_name!r}: {field} differs between neurons; edge-taaf's neurons of a layer share it")
    return float(arr[0])


class IntegerLIF(nn.Module):
    """The accelerator's LIF step (firmware_sim.spec.lif_step; no leak at k = LEAK_OFF) on integer-valued float32
    tensors; state inside.
    (B, *shape) synaptic current -> (B, *shape) spikes (0/1)."""

    def __init__(self, theta: int, leak_shift: int, state_bits: int = spec.STATE_BITS):
        super().__init__()
        self.theta, self.leak_shift = theta, leak_shift
        self.lo, self.hi = spec.state_range(state_bits)
        self.v: torch.Tensor | None = None     # the membranes after the last step
        self.spikes: torch.Tensor | None = None  # the last step's spikes
        self.saturated = 0                       # neuron-steps that hit the register limit since reset()

    def reset(self) -> None:
        self.v, self.spikes, self.saturated = None, None, 0

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(current) if self.v is None else self.v
        leaked = v if self.leak_shift >= spec.LEAK_OFF else v - torch.floor(v / 2.0 ** self.leak_shift)
        raw = leaked + current
        u = raw.clamp(self.lo, self.hi)
        self.saturated += int((raw != u).sum())
        self.spikes = (u >= self.theta).to(current.dtype)
        self.v = u - self.theta * self.spikes
        return self.spikes


class StepDelay(nn.Module):
    """nir.Delay of a whole number of steps: x_t -> x_{t-d} (zeros for t < d). (B, F) -> (B, F)."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps
        self.history: list[torch.Tensor] = []

    def reset(self) -> None:
        self.history = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.history.append(x)
        if len(self.history) <= self.steps:
            return torch.zeros_like(x)
        return self.history.pop(0)


def _lif(name: str, node, dt: float, state_bits: int) -> IntegerLIF:
    tau = _uniform(name, "tau", node.tau)
    k = round(math.log2(tau / dt)) if tau > 0 else -1
    if k < 0 or not math.isclose(tau, dt * 2.0 ** k, rel_tol=1e-6):
        raise NIRError(f"NIR node {name!r}: tau={tau:g} s is not dt * 2^k (dt={dt:g} s from the graph's metadata) for "
                       "a whole k >= 0; the accelerator's leak is a shift")
    for field, want in (("r", 1.0), ("v_leak", 0.0), ("v_reset", 0.0)):
        got = _uniform(name, field, getattr(node, field))
        if got != want:
            raise NIRError(f"NIR node {name!r}: {field}={got:g}, expected {want:g} (docs/nir.md, the normalised LIF)")
    theta = _uniform(name, "v_threshold", node.v_threshold) * 2.0 ** k + 0.5
    if theta != round(theta) or not 1 <= theta <= spec.state_range(state_bits)[1]:
        raise NIRError(f"NIR node {name!r}: v_threshold 2^k + 1/2 = {theta:g} is not an integer threshold in "
                       f"1..{spec.state_range(state_bits)[1]}")
    return IntegerLIF(int(theta), k, state_bits)


def _module(name: str, node, dt: float, state_bits: int) -> nn.Module | None:
    """The torch module of one node (None for Input and Output, whose values the executor handles)."""
    kind = type(node).__name__
    if isinstance(node, (nir.Input, nir.Output)):
        return None
    if isinstance(node, nir.Conv2d):
        w = torch.as_tensor(np.asarray(node.weight, np.float32))
        conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=tuple(np.atleast_1d(node.stride)),
                         padding=tuple(np.atleast_1d(node.padding)), dilation=tuple(np.atleast_1d(node.dilation)),
                         groups=int(node.groups), bias=True)
        conv.weight.data, conv.bias.data = w, torch.as_tensor(np.asarray(node.bias, np.float32))
        return conv
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = torch.as_tensor(np.asarray(node.weight, np.float32))
        fc = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
        fc.weight.data = w
        if isinstance(node, nir.Affine):
            fc.bias.data = torch.as_tensor(np.asarray(node.bias, np.float32))
        return fc
    if isinstance(node, nir.Flatten):
        shift = lambda d: d if d < 0 else d + 1   # noqa: E731 (NIR's dims exclude the batch axis)
        return nn.Flatten(shift(int(node.start_dim)), shift(int(node.end_dim)))
    if isinstance(node, nir.LIF):
        return _lif(name, node, dt, state_bits)
    if isinstance(node, nir.Delay):
        steps = _uniform(name, "delay", node.delay) / dt     # float32 in the file: compare to the nearest step
        if round(steps) < 0 or not math.isclose(steps, round(steps), rel_tol=1e-6, abs_tol=1e-6):
            raise NIRError(f"NIR node {name!r}: delay {steps * dt:g} s is not a whole number of steps of {dt:g} s")
        return StepDelay(int(round(steps)))
    raise NIRError(f"NIR node {name!r} is a nir.{kind}, which edge-taaf cannot read back "
                   f"(it reads {', '.join(READABLE)})")


def _order(graph) -> list[str]:
    """The nodes in an order where every node follows its sources; NIRError for a cycle."""
    sources = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        sources[dst].append(src)
    order, done = [], set()
    while len(order) < len(sources):
        ready = [n for n in sources if n not in done and all(s in done for s in sources[n])]
        if not ready:
            raise NIRError(f"the NIR graph has a cycle among {sorted(set(sources) - done)}; edge-taaf's networks are "
                           "feed-forward")
        for n in ready:
            order.append(n)
            done.add(n)
    return order


class NIRIntegerNet(nn.Module):
    """An edge-taaf NIR graph as our integer network: ``forward({input name: (B, *shape)})`` runs one step and
    returns the graph's output (B, K): the step logits W z_t + b; ``reset()`` starts new samples."""

    def __init__(self, graph):
        super().__init__()
        meta = dict(getattr(graph, "metadata", {}) or {})
        if "dt_s" not in meta:
            raise NIRError("the NIR graph's metadata has no dt_s (the seconds of one accelerator step); it was not "
                           "written by quant.nir_export")
        dt, state_bits = float(meta["dt_s"]), int(meta.get("state_bits", spec.STATE_BITS))
        self.order = _order(graph)
        self.sources = {name: [s for s, d in graph.edges if d == name] for name in graph.nodes}
        self.inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
        self.outputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
        if len(self.outputs) != 1:
            raise NIRError(f"the NIR graph has {len(self.outputs)} output nodes; edge-taaf's have one (the step logits)")
        self.logit_shift = int(meta.get("logit_shift", 0))
        self.node_modules = nn.ModuleDict()
        for name, node in graph.nodes.items():
            module = _module(name, node, dt, state_bits)
            if module is not None:
                self.node_modules[name.replace(".", "_")] = module

    def neurons(self) -> dict[str, IntegerLIF]:
        """Program layer name -> its neuron module (from the ``<layer>.lif`` nodes)."""
        return {name[:-len(".lif")]: self.node_modules[name.replace(".", "_")] for name in self.order
                if name.endswith(".lif")}

    def reset(self) -> None:
        for m in self.node_modules.values():
            if hasattr(m, "reset"):
                m.reset()

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        missing = sorted(set(self.inputs) - set(inputs))
        if missing:
            raise NIRError(f"no value for the graph's input nodes {missing}; it reads {self.inputs}")
        values: dict[str, torch.Tensor] = {}
        for name in self.order:
            if name in self.inputs:
                values[name] = inputs[name]
                continue
            x = sum(values[s] for s in self.sources[name])
            key = name.replace(".", "_")
            values[name] = self.node_modules[key](x) if key in self.node_modules else x
        return values[self.outputs[0]]


def graph_feed(graph, sensors: dict[str, np.ndarray], frontend_outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What each input node of an edge-taaf graph reads: the sensor's counts or its front-end's output, as the
    graph's metadata ``inputs`` says (quant.nir_export). Both dicts: input name -> (T, B, ...)."""
    from quant.nir_export import SENSOR
    held = dict(part.split("=") for part in str(graph.metadata.get("inputs", "")).split(",") if part)
    return {f"input.{m}": sensors[m] if held.get(m) == SENSOR else frontend_outputs[m] for m in sensors}


def run_nir_integer(net: NIRIntegerNet, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """inputs: graph input name -> (T, B, *shape) counts. Returns (step logits >> logit_shift (T, B, K) int64,
    spikes: layer -> (T, B, *shape) uint8), the simulator's ``step_logits`` and ``spikes`` for the same program."""
    n_t = next(iter(inputs.values())).shape[0]
    net.reset()
    neurons = net.neurons()
    steps, spikes = [], {name: [] for name in neurons}
    with torch.no_grad():
        for t in range(n_t):
            out = net({k: torch.as_tensor(np.asarray(x[t], np.float32)) for k, x in inputs.items()})
            steps.append(torch.floor(out / 2.0 ** net.logit_shift).to(torch.int64).numpy())
            for name, m in neurons.items():
                spikes[name].append(m.spikes.to(torch.uint8).numpy())
    return np.stack(steps), {k: np.stack(v) for k, v in spikes.items()}
