"""Run a NIR graph through other frameworks' own NIR importers (the ``bench`` extra): snnTorch and Norse.

Each importer turns the graph into a torch module that runs one step per call; we feed the counts the
front-end passed to the first layer, step by step, and record the step outputs and every ``<layer>.lif``
node's spikes with forward hooks. What each importer does with the graph (docs/nir.md):

- snnTorch (``snntorch.import_nir.import_from_nir``): nir.LIF -> ``snn.Leaky`` with beta = 1 - dt / tau at its
  fixed dt = 1e-4 s and the input gain moved into the threshold. A graph for it is written with dt_s = 1e-4.
- Norse (``norse.torch.from_nir``): nir.LIF -> ``LIFBoxCell``, forward Euler at the dt we pass.

Both reset to v_reset = 0, as NIR's LIF says; ours subtracts theta, which NIR cannot carry. ``reset="nir"`` runs
the import as it comes; ``reset="subtract"`` then sets each neuron's reset to subtraction through the framework's
own neuron option (snnTorch: ``Leaky(reset_mechanism="subtract")`` with the imported beta and threshold; Norse: ``reset_method=reset_subtract`` in the
cell's parameters; Norse's ``from_nir(reset_method=...)`` applies it to nir.CubaLIF only, not to nir.LIF).

Sinabs and Rockpool were tried and fail on this graph: sinabs 3.1.3's importer tests ``any(node.v_leak) != 0``,
which raises on a conv layer's 3-D LIF parameters (and it needs samna, which we never install); Rockpool 3.1.0
reads no nir.Conv2d and asks nir.LIF for ``tau_mem``, which nir.LIF has no field of.
"""
from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from typing import Callable

import numpy as np
import torch

from quant.nir_export import check_importable

SNNTORCH, NORSE = "snntorch", "norse"
RESETS = ("nir", "subtract")   # as imported (NIR's reset to v_reset) | subtraction set after import
# The NIR node types each importer maps (read from their import_nir modules).
READABLE = {
    SNNTORCH: {"Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "AvgPool2d", "IF", "LIF", "CubaLIF"},
    NORSE: {"Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "SumPool2d", "IF", "LIF", "CubaLIF"},
}


@contextmanager
def quiet():
    """The importers print and log a warning per node (snnTorch's threshold scaling, Norse's r check)."""
    level = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), redirect_stdout(StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(level)


@dataclass
class Imported:
    """An imported graph: ``step(x_t) -> y_t`` runs one step (state kept inside), ``reset()`` starts a sample
    batch afresh, ``neurons`` maps each program layer to the module whose output holds its spikes."""

    module: torch.nn.Module
    step: Callable[[torch.Tensor], torch.Tensor]
    reset: Callable[[], None]
    neurons: dict[str, torch.nn.Module]


def _neurons(module: torch.nn.Module, graph) -> dict[str, torch.nn.Module]:
    """Program layer name -> the imported module of its ``<layer>.lif`` node (names sanitised: '.' -> '_')."""
    by_name = dict(module.named_modules())
    out = {}
    for name in graph.nodes:
        if name.endswith(".lif"):
            key = name.replace(".", "_")
            if key not in by_name:
                raise KeyError(f"the imported module has no submodule {key!r} for NIR node {name!r}")
            out[name[:-len(".lif")]] = by_name[key]
    return out


def import_snntorch(graph, reset: str) -> Imported:
    from snntorch.import_nir import import_from_nir
    with quiet():
        module = import_from_nir(graph)
    if reset == "subtract":
        # snnTorch picks a Leaky's state function in its constructor (setting reset_mechanism later changes only
        # half of it), so each imported Leaky is rebuilt with the same beta and threshold and reset by subtraction.
        import snntorch as snn
        for name in [n for n in graph.nodes if n.endswith(".lif")]:
            old = getattr(module, name.replace(".", "_"))
            setattr(module, name.replace(".", "_"), snn.Leaky(
                beta=old.beta.clone(), threshold=old.threshold.clone(), reset_mechanism="subtract",
                init_hidden=True, reset_delay=True))
    neurons = _neurons(module, graph)

    def reset_state():
        for m in neurons.values():
            m.reset_mem()

    def step(x):
        with quiet():
            out = module(x)
        return out[0] if isinstance(out, tuple) else out
    return Imported(module, step, reset_state, neurons)


def import_norse(graph, dt_s: float, reset: str) -> Imported:
    import norse.torch as norse
    from norse.torch.functional import reset as norse_reset
    with quiet():
        module = norse.from_nir(graph, dt=dt_s)
    neurons = _neurons(module, graph)
    if reset == "subtract":
        for m in neurons.values():
            m.p = m.p._replace(reset_method=norse_reset.reset_subtract)
    state = {"s": None}

    def reset_state():
        state["s"] = None

    def step(x):
        with quiet():
            out, state["s"] = module(x, state["s"])
        return out
    return Imported(module, step, reset_state, neurons)


def import_graph(graph, importer: str, dt_s: float, reset: str = "nir") -> Imported:
    """The graph through ``importer``'s NIR importer; NIRError naming the node when it holds a type it cannot read."""
    if importer not in READABLE:
        raise ValueError(f"importer={importer!r}; expected one of {sorted(READABLE)}")
    if reset not in RESETS:
        raise ValueError(f"reset={reset!r}; expected one of {list(RESETS)}")
    check_importable(graph, READABLE[importer], importer)
    return import_snntorch(graph, reset) if importer == SNNTORCH else import_norse(graph, dt_s, reset)


def run_imported(net: Imported, x: np.ndarray, batch: int = 100) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """x (T, B, *input shape) counts -> (step outputs (T, B, K) float32, spikes: layer -> (T, B, *shape) uint8)."""
    spikes: dict[str, list] = {name: [] for name in net.neurons}
    current: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: current.__setitem__(
        name, out[0] if isinstance(out, tuple) else out)) for name, m in net.neurons.items()]
    outputs = []
    try:
        with torch.no_grad():
            for b0 in range(0, x.shape[1], batch):
                net.reset()
                steps, layer_steps = [], {name: [] for name in net.neurons}
                for t in range(x.shape[0]):
                    steps.append(net.step(torch.from_numpy(np.ascontiguousarray(x[t, b0:b0 + batch], np.float32))))
                    for name in net.neurons:
                        layer_steps[name].append(current[name].to(torch.uint8).numpy())
                outputs.append(torch.stack(steps).numpy())
                for name in net.neurons:
                    spikes[name].append(np.stack(layer_steps[name]))
    finally:
        for h in hooks:
            h.remove()
    return np.concatenate(outputs, axis=1), {k: np.concatenate(v, axis=1) for k, v in spikes.items()}
